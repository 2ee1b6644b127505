"""Policy text -> AST. The only module that parses with Lark.

``parse(text, filename)`` checks the input limits first (transform.check_limits), parses with
an LALR(1) parser, and turns Lark's exceptions into ``PolicyError`` diagnostics that name the
expected tokens in plain words.

The parser is Lark's stand-alone module generated from ``grammar.lark``
(``_parser_tables.py``, written by ``python -m yibao.dsl.make_parser_tables``): loading it
imports neither Lark nor its grammar loader, and analyses nothing at start-up. The same
command pickles that module's parser once deserialised (``_parser_tables.pickle``), which
loads in a third of the time; it is used only when made from the module's grammar digest.
"""
from __future__ import annotations

import functools
import pickle
from pathlib import Path

from . import _parser_tables, ast
from ._parser_tables import (GRAMMAR_SHA256, Lark, Lark_StandAlone, Scanner,
                             UnexpectedCharacters, UnexpectedEOF, UnexpectedInput)
from .errors import PolicyError, error
from .transform import check_limits, collect_comments, to_ast

# a newline right after one of these does not end the statement
CONTINUES = {"PLUS", "MINUS", "STAR", "EQ", "NE", "LT", "LE", "GT", "GE", "COMMA", "LBRACE",
             "LPAR", "LSQB", "AND", "OR", "NOT", "IN", "IF", "THEN", "ELSE", "WHEN", "ARROW",
             "COLON"}

WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": 'a quoted text ("…")',
    "DATE": "a date (YYYY-MM-DD)", "MONTHDAY": "a month and day (MM-DD)",
    "_NL": "end of line", "$END": "end of file", "PERCENT": "'%'", "LBRACE": "'{'",
    "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COLON": "':'",
    "COMMA": "','", "ARROW": "'->'", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'", "EQ": "'='",
    "NE": "'!='", "LT": "'<'", "LE": "'<='", "GT": "'>'", "GE": "'>='", "DATE_TYPE": "'date'",
}


def describe_terminal(name: str) -> str:
    """A terminal's name in plain words: keywords quoted as written."""
    if name in WORDS:
        return WORDS[name]
    return f"'{name.lower()}'"


class PostLex:
    """Drops newlines that do not end a statement (see grammar.lark)."""
    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0  # inside ( ) or [ ]
        prev = None  # last token passed on
        # No look-ahead here: the contextual lexer lexes the next token in the parser state
        # of the moment, so a token held back would be lexed in the wrong state.
        for tok in stream:
            if tok.type == "_NL":
                if prev is None or depth > 0 or prev.type in CONTINUES or prev.type == "_NL":
                    continue
            elif tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            prev = tok
            yield tok


class TerminalScanner(Scanner):
    """Lark's scanner of one lexer state, trying the state's terminals one at a time in Lark's
    order instead of as one alternation of named groups. The first match is the same: an
    alternation whose every branch is a whole terminal matches with its first branch that
    matches (``fullmatch``: the first that matches all). But each terminal's expression is
    compiled once per process (~80, 1.5 ms), where the contextual lexer compiled one
    alternation per parser state it met (117 for rizhao's policy, ≈ 40 ms of its compile:
    Python's ``re`` compiler is written in Python). ``dsl/_parser_tables.py`` is Lark's
    generated code and stays as generated: its lexers build their scanners with this one."""

    def _build_mres(self, terminals, max_size):
        return [(self.re_.compile(t.pattern.to_regexp(), self.g_regex_flags), t.name)
                for t in terminals]

    def match(self, text, pos):
        for expression, name in self._mres:
            found = expression.match(text.text, pos, text.end)
            if found:
                return found.group(0), name
        return None

    def fullmatch(self, text: str):
        for expression, name in self._mres:
            if expression.fullmatch(text):
                return name
        return None


_parser_tables.Scanner = TerminalScanner  # read by BasicLexer._build_scanner, _create_unless

PICKLED = Path(__file__).resolve().parent / "_parser_tables.pickle"


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser, loaded once per process: the pickled one, else deserialised from the
    generated tables (with the post-lexer, which the tables leave out)."""
    return pickled_parser() or Lark_StandAlone(postlex=PostLex())


def pickled_parser():
    """The parser ``make_parser_tables`` pickled, or None when the file is missing, does not
    load (another Python, a damaged file) or was made from another grammar than
    ``_parser_tables.py``'s: the tables then give the same parser, a little slower."""
    try:
        saved = pickle.loads(PICKLED.read_bytes())
        made_here = saved["grammar_sha256"] == GRAMMAR_SHA256 and isinstance(saved["parser"], Lark)
    except Exception:  # whatever a stale or damaged pickle raises: the tables are the truth
        return None
    return saved["parser"] if made_here else None


def terminal_names() -> list:
    return [t.name for t in _parser().terminals]


BOM = "\ufeff"


def strip_bom(text: str) -> str:
    """The text without a leading UTF-8 byte-order mark (Windows Notepad writes one)."""
    return text[1:] if text.startswith(BOM) else text


def parse(text: str, filename: str = "<policy>") -> ast.PolicyFile:
    """Parse policy text (a leading BOM is skipped). Raises PolicyError (limits, syntax,
    literals). The same text and file name parse once per process: the plugin declarations
    are read before the registry is built (plugin_registry) and the compiler then parses the
    same file; the AST is frozen, so both share it."""
    return _parse(strip_bom(text), filename)


@functools.lru_cache(maxsize=16)
def _parse(text: str, filename: str) -> ast.PolicyFile:
    check_limits(text, filename)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise PolicyError([_syntax_error(exc, text, filename)], text) from None
    return to_ast(tree, filename, text, collect_comments(text, filename))


def _syntax_error(exc, text: str, filename: str):
    line, col = max(1, exc.line or 1), max(1, exc.column or 1)
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        span = ast.Span(filename, line, col, line, col + 1)
        return error("E102", f"unexpected character {ch!r}", span,
                     _full_width_hint(ch) or _expected(exc.allowed))
    token = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or token is None or token.type == "$END":
        last = text.rstrip().splitlines() or [""]
        n = len(last)
        span = ast.Span(filename, n, len(last[-1]) + 1, n, len(last[-1]) + 2)
        return error("E103", "unexpected end of file", span, _expected(exc.expected))
    if token.type == "_NL":
        span = ast.Span(filename, line, col, line, col + 1)
        return error("E101", "unexpected end of line", span, _expected(exc.expected))
    span = ast.Span(filename, line, col, token.end_line or line,
                    token.end_column or col + len(token))
    what = describe_terminal(token.type)
    shown = f"'{token}'" if token.type in ("NAME", "NUMBER", "STRING", "DATE") else what
    return error("E101", f"unexpected {shown}", span,
                 _chinese_amount_hint(text, line, col, str(token)) or _expected(exc.expected))


def _chinese_amount_hint(text: str, line: int, col: int, word: str):
    """For `30万` / `3000元` / `1.5万元` written in a policy file: the spelling the language
    reads (`300_000 yuan`), exact; None for anything else."""
    import re
    from decimal import Decimal
    unit = next((u for u in ("万元", "万", "元") if word.startswith(u)), None)
    before = (text.splitlines()[line - 1:line] or [""])[0][:col - 1]
    number = re.search(r"([0-9][0-9_]*(?:\.[0-9]+)?)$", before)
    if unit is None or number is None:
        return None
    yuan = Decimal(number.group(1).replace("_", "")) * (10_000 if unit.startswith("万") else 1)
    shown = f"{int(yuan):_}" if yuan == yuan.to_integral_value() else format(yuan, "f")
    return (f"write {shown} yuan: {number.group(1)}{unit} is read in CSV and XLSX tables, "
            "not in a policy file")


def _full_width_hint(ch: str):
    """For a full-width character typed with a Chinese input method (％ ， ： （ ） ｛ ｝ ＝ …,
    U+FF01..U+FF5E, and the ideographic space): the ASCII one to use instead."""
    if "\uff01" <= ch <= "\uff5e":
        plain = chr(ord(ch) - 0xFEE0)
    elif ch == "\u3000":
        plain = " "
    else:
        return None
    return f"use the ASCII '{plain}' instead of the full-width '{ch}'"


def _expected(names) -> str:
    words = sorted({describe_terminal(n) for n in (names or ()) if n not in ("COMMENT", "WS")})
    if not words:
        return None
    if len(words) > 8:
        words = words[:8] + ["…"]
    return "expected " + (words[0] if len(words) == 1 else "one of " + ", ".join(words))
