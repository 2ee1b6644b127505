"""The generated parser (dsl/_parser_tables.py) is grammar.lark's: made from the grammar as it
is now, and parsing every policy of the repository, and failing on every file of the error
corpus, exactly as a parser Lark builds from grammar.lark at test time."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import lark
import pytest

from yibao.dsl import _parser_tables, make_parser_tables, parser

REPO = Path(__file__).resolve().parents[2]
POLICIES = sorted([*REPO.glob("city_configs/*/*.yb"), *REPO.glob("tests/dsl/**/*.yb")])


@pytest.fixture(scope="module")
def built():
    """The parser built from grammar.lark now, with the options the tables were made with."""
    grammar = make_parser_tables.GRAMMAR.read_text(encoding="utf-8")
    return lark.Lark(grammar, postlex=parser.PostLex(), **make_parser_tables.OPTIONS)


def shape(node):
    """A parse tree as plain tuples (rule, positions, children; token type, text, positions),
    so trees of Lark's classes and of the generated module's compare."""
    if hasattr(node, "data"):
        meta = node.meta
        where = (meta.line, meta.column, meta.end_line, meta.end_column) if not meta.empty else ()
        return (str(node.data), where, tuple(shape(c) for c in node.children))
    return (node.type, str(node), node.line, node.column, node.end_line, node.end_column)


def outcome(parse, text: str):
    """The tree's shape, or the syntax error's kind, place and expected tokens."""
    try:
        return shape(parse(text))
    except Exception as exc:  # both parsers' Unexpected… classes (different modules)
        expected = getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()
        return (type(exc).__name__, exc.line, exc.column, tuple(sorted(expected)))


def test_the_tables_were_made_from_this_grammar():
    """Fails after an edit of grammar.lark until `python -m yibao.dsl.make_parser_tables`."""
    grammar = make_parser_tables.GRAMMAR.read_text(encoding="utf-8")
    assert _parser_tables.GRAMMAR_SHA256 == make_parser_tables.grammar_digest(grammar), \
        "grammar.lark changed: run python -m yibao.dsl.make_parser_tables"


def test_the_corpus_is_found():
    assert len(POLICIES) > 60


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_tables_parse_as_the_grammar_does(path, built):
    text = parser.strip_bom(path.read_text(encoding="utf-8", errors="replace"))
    assert outcome(parser._parser().parse, text) == outcome(built.parse, text)


def test_the_command_writes_a_working_parser(tmp_path, built):
    """What `make_parser_tables` writes loads and parses a city policy as the grammar does."""
    target = tmp_path / "tables.py"
    target.write_text(make_parser_tables.tables_text(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("regenerated_tables", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.Lark_StandAlone(postlex=parser.PostLex())
    text = (REPO / "city_configs" / "shanghai" / "policy.yb").read_text(encoding="utf-8")
    assert outcome(fresh.parse, text) == outcome(built.parse, text)


def test_parsing_does_not_import_lark():
    import subprocess
    import sys
    policy = REPO / "city_configs" / "shanghai" / "policy.yb"
    code = (f"import sys; from yibao.dsl import parser; "
            f"parser.parse(open({str(policy)!r}, encoding='utf-8').read(), 'p.yb'); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] == 'lark'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the pickled parser (dsl/_parser_tables.pickle) ------------------------------------------

def test_the_pickle_is_the_tables_parser_and_is_used():
    """Fails when `_parser_tables.py` was regenerated without its pickle: run
    python -m yibao.dsl.make_parser_tables (it writes both)."""
    saved = parser.pickled_parser()
    assert saved is not None, "dsl/_parser_tables.pickle is missing or stale"
    assert type(parser._parser()) is type(saved)
    fresh = _parser_tables.Lark_StandAlone(postlex=parser.PostLex())
    assert [t.name for t in saved.terminals] == [t.name for t in fresh.terminals]
    assert saved.parser.parser._parse_table.states.keys() == \
        fresh.parser.parser._parse_table.states.keys()


@pytest.mark.parametrize("content", [b"not a pickle", None, "other grammar"])
def test_a_damaged_or_stale_pickle_is_ignored(content, tmp_path, monkeypatch):
    target = tmp_path / "tables.pickle"
    if content == "other grammar":
        stale = make_parser_tables.pickled_parser(_parser_tables).replace(
            _parser_tables.GRAMMAR_SHA256.encode(), b"0" * 64)
        target.write_bytes(stale)
    elif content is not None:
        target.write_bytes(content)
    monkeypatch.setattr(parser, "PICKLED", target)
    assert parser.pickled_parser() is None


def test_the_command_pickles_a_parser_that_parses_as_the_grammar_does(built):
    import pickle
    loaded = pickle.loads(make_parser_tables.pickled_parser(_parser_tables))["parser"]
    text = (REPO / "city_configs" / "rizhao" / "policy.yb").read_text(encoding="utf-8")
    assert outcome(loaded.parse, text) == outcome(built.parse, text)


# -- the scanner (dsl/parser.py TerminalScanner) ---------------------------------------------

def test_the_terminal_scanner_matches_as_larks_alternation_does():
    """In every lexer state, at the start of every word and symbol of two policies and of the
    error corpus's text, trying the state's terminals one at a time finds the token Lark's
    one alternation finds (and fullmatch names the same terminal)."""
    from yibao.dsl._parser_tables import TextSlice
    states = parser._parser().parser.lexer.lexer.lexers.values()
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                     for p in [REPO / "city_configs" / "rizhao" / "policy.yb", *POLICIES[-12:]])
    text += "\n30万 ％ 1.5e3 \"open 2024-13-99 ->-> <=> !x _y"
    starts = [i for i in range(len(text)) if i == 0 or text[i - 1] in " \n(,[{:"][:1500]
    checked = 0
    for terminals in {tuple(lx.terminals) for lx in states}:
        ours = parser.TerminalScanner(list(terminals), 0, __import__("re"), False)
        larks = parser.Scanner(list(terminals), 0, __import__("re"), False)
        for i in starts:
            assert ours.match(TextSlice(text, 0, len(text)), i) == \
                larks.match(TextSlice(text, 0, len(text)), i), (terminals, text[i:i + 20])
        for word in ("rate", "deductible", "x1", "(", "2024-01-01", "12_000"):
            assert ours.fullmatch(word) == larks.fullmatch(word)
        checked += 1
    assert checked > 100
