"""Syntax highlighting for the policy language, as CodeMirror mark decorations.

The keywords are read from ``dsl/grammar.lark`` (every terminal defined as a plain lower-case
string, e.g. ``LAYER: "layer"``), so a keyword added to the grammar is highlighted without
touching the studio. The rest is four simple rules: ``# comments``, ``"strings"``, numbers
(with ``_`` separators, ``%`` and dates) and money units. This is colouring only: what is valid
is decided by the compiler, whose diagnostics the editor shows beside it.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

_TERMINAL = re.compile(r'^[A-Z_]+(?:\.\d+)?\s*:\s*"([a-z_]+)"\s*$', re.MULTILINE)
UNITS = frozenset({"yuan", "fen", "days", "day", "points", "point"})
LITERALS = frozenset({"true", "false"})


@functools.lru_cache(maxsize=1)
def keywords() -> frozenset:
    """The policy language's keywords, from the grammar the parser uses."""
    grammar = Path(__file__).resolve().parents[1] / "grammar.lark"
    return frozenset(_TERMINAL.findall(grammar.read_text(encoding="utf-8")))


_TOKEN = re.compile(
    r'(?P<comment>#[^\n]*)'
    r'|(?P<string>"(?:[^"\\\n]|\\.)*"?)'
    r'|(?P<number>\d{4}-\d{2}-\d{2}|\d[\d_]*(?:\.\d+)?%?)'
    r'|(?P<word>[A-Za-z_][A-Za-z0-9_]*)')


def _word_class(word: str) -> str | None:
    if word in UNITS:
        return "yb-unit"
    if word in LITERALS:
        return "yb-lit"
    if word in keywords():
        return "yb-kw"
    return None


def highlight(text: str) -> list:
    """Mark decorations ``{kind, from, to, class}`` (Python string offsets) over ``text``."""
    marks = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        cls = _word_class(m.group()) if kind == "word" else f"yb-{kind}"
        if cls and m.end() > m.start():
            marks.append({"kind": "mark", "from": m.start(), "to": m.end(), "class": cls})
    return marks


# The colours of the classes above (one stylesheet, added to the page head).
CSS = """
.yb-kw { color: #7a3e9d; font-weight: 600; }
.yb-unit { color: #2a6f97; }
.yb-lit { color: #b5651d; }
.yb-number { color: #2a7f3f; }
.yb-string { color: #a0522d; }
.yb-comment { color: #808080; font-style: italic; }
.yb-error { text-decoration: underline wavy #d11; text-decoration-skip-ink: none; }
.yb-warning { text-decoration: underline wavy #d90; text-decoration-skip-ink: none; }
.cm-line.yb-error-line { background: #fde8e8 !important; }  /* over the active line's grey */
.cm-line.yb-warning-line { background: #fff6dd !important; }
.cm-line.yb-focus-line { background: #e3f0ff !important; }
"""
