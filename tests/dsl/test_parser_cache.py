"""The LALR parser is analysed once and then loaded from a private cache (start-up time)."""
from __future__ import annotations

import os
from pathlib import Path

from yibao.dsl import parser

REPO = Path(__file__).resolve().parents[2]


def fresh_parser(monkeypatch, cache_home: Path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.delenv("YIBAO_NO_PARSER_CACHE", raising=False)
    parser._parser.cache_clear()
    return parser._parser()


def test_cached_parser_parses_as_the_built_one(tmp_path, monkeypatch):
    text = (REPO / "city_configs" / "jinhua" / "policy.yb").read_text(encoding="utf-8")
    built = fresh_parser(monkeypatch, tmp_path).parse(text)
    files = list((tmp_path / "yibao").glob("parser-*.lark"))
    assert len(files) == 1 and files[0].stat().st_size > 0
    loaded = fresh_parser(monkeypatch, tmp_path).parse(text)
    assert loaded == built
    parser._parser.cache_clear()


def test_no_cache_in_a_folder_others_can_write(tmp_path, monkeypatch):
    """A pickle in a folder others can write could be planted: build instead."""
    (tmp_path / "yibao").mkdir(mode=0o777)
    os.chmod(tmp_path / "yibao", 0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parser._cache_file("grammar") is None
    os.chmod(tmp_path / "yibao", 0o700)
    assert parser._cache_file("grammar").parent == tmp_path / "yibao"


def test_the_key_changes_with_the_grammar(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert parser._cache_file("a") != parser._cache_file("b")
    monkeypatch.setenv("YIBAO_NO_PARSER_CACHE", "1")
    assert parser._cache_file("a") is None
