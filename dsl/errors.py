"""Diagnostics for people: a code, a place in the source, a message and a hint.

``render`` prints one the way rustc and CEL do::

    policy.yb:12:14: error[E201]: unknown name 'hospital_levle'
       12 |   ratio ratio_by_level[hospital_levle]
          |                        ^^^^^^^^^^^^^^
    help: did you mean 'hospital_level'?

Every code the compiler emits is listed in ``CODES`` (the error corpus in tests/dsl/errors/
has one file per code).
"""
from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Optional

from .ast import Span
from yibao.core.errors import YibaoError

ERROR, WARNING = "error", "warning"

CODES = {
    # input limits, checked before parsing (transform.check_limits)
    "E001": "file too large",
    "E002": "brackets nested too deeply",
    "E003": "too many statements or table rows",
    "E004": "expression nested too deeply",
    # the file itself (dsl/source.py)
    "E005": "policy file cannot be read as text (not UTF-8, or not a regular file)",
    # syntax
    "E101": "unexpected token",
    "E102": "unexpected character",
    "E103": "unexpected end of file",
    "E104": "invalid literal (number, date, unit; digits other than ASCII 0-9)",
    "E105": "name mixes alphabets or uses full-width/styled letters (a look-alike)",
    "E110": "policy header missing, repeated or incomplete",
    "E111": "statement repeated or misplaced in a layer",
    # names and types
    "E201": "unknown name",
    "E202": "name defined twice",
    "E203": "wrong function call (unknown function or argument count)",
    "E204": "unknown accumulator key",
    "E205": "domain declared on a column that cannot take one",
    "E206": "value outside the column's domain",
    "E207": "name looks like another name but is spelled differently (confusable)",
    "E210": "type mismatch",
    "E211": "ratio multiplied by ratio",
    "E212": "ratio not exact at the engine's scale (millionths)",
    "E213": "money not a whole number of fen",
    "E214": "unit does not fit here",
    "E215": "number outside the range a policy may write",
    # tables
    "E301": "table incomplete over closed domains",
    "E302": "duplicate table row",
    "E303": "row has the wrong number of keys",
    "E304": "table file path refused (absolute, outside the policy folder, or a NUL byte)",
    "E305": "table file cannot be read (missing, not a regular file, not UTF-8, bad cell)",
    "E306": "table key is not a claim column",
    # layers
    "E401": "paid() of a layer that is not earlier",
    "E402": "paid used outside base",
    "E403": "paid not added or subtracted at the top of base",
    "E404": "shared cap declared twice differently",
    "E405": "shared cap referenced but never declared",
    "E406": "layer can never apply (condition is constant false)",
    "W407": "layer condition is contradictory (layer never applies)",
    "E408": "layer has both a ratio and a self-pay limit",
    "E409": "layer has no base",
    "E410": "layer has both ratio and bands",
    "E411": "bands not contiguous from 0",
    "E412": "continuing deductible must be per claim",
    "E413": "a layer's ratio outside 0%..100% (e.g. a bare 85 meaning 8500%)",
    "E414": "an accumulator key refined by a money or ratio column",
    "E420": "a layer's national field is not a national settlement-list fund field",
    # provider payment (dsl/passes/resolve_provider.py … check_pools.py)
    "E501": "group by an unknown grouper",
    "E502": "a condition that cannot be a grouping or pool test",
    "E503": "a pool without group by, budget or base points",
    "E504": "a decision table that cannot be read",
    "E505": "a decision-table row that is hidden by earlier rows or never matches",
    "W506": "decision-table rows overlap",
    "E507": "a provider CSV with a bad header or value",
    "E508": "an unknown MDC or grouping table set",
    "E509": "outlier bands or day tiers out of order",
    "E510": "a bad split suffix",
    "E511": "per-hospital budgets combined with capitation, a per-head control or a baseline",
    "W512": "sharing of fund money with a point value that adds patients' payments back",
    "E513": "an unknown point adjustment, or a bad figure for one (adjust by …)",
    "E514": "group by several groupers: a grouper named twice, or 'otherwise' not last",
    "E515": "fixed point values combined with capitation",
    "E516": "a bad alliance (医共体) declaration: a missing part, unknown pool, bad column",
    # policy versions in one folder (dsl/versions.py)
    "E601": "policy versions leave a gap",
    "E602": "policy versions overlap",
    # plugins a policy declares (dsl/passes/check_plugins.py)
    "E701": "a bad plugin declaration (version range, declared twice)",
    "E702": "a declared plugin not loaded, or at a version outside its range",
    "E703": "a grouper plugin (grouper … { by NAME }) that no loaded plugin registers",
    # fund supervision (dsl/passes/check_flags.py)
    "E801": "a flag without a rule, or with two",
    "E802": "a flag rule that reads the claims' group in a policy without a pool",
    "E803": "an unknown flag severity",
    "E804": "a payment effect on a hospital flag",
    "E805": "a flag figure out of range (a factor or weight of 0, no cases)",
}


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: str
    message: str
    span: Optional[Span]
    hint: Optional[str] = None


def error(code: str, message: str, span: Optional[Span], hint: Optional[str] = None) -> Diagnostic:
    return Diagnostic(code, ERROR, message, span, hint)


def warning(code: str, message: str, span: Optional[Span], hint: Optional[str] = None) -> Diagnostic:
    return Diagnostic(code, WARNING, message, span, hint)


class PolicyError(YibaoError):
    """A policy that does not compile. ``diagnostics`` holds every error found (and the
    warnings met on the way), in source order; ``source`` is the text they point into."""

    def __init__(self, diagnostics: Iterable[Diagnostic], source: str = ""):
        self.diagnostics = sorted(diagnostics, key=_order)
        self.source = source
        super().__init__(self.render())

    @property
    def codes(self) -> list:
        return [d.code for d in self.diagnostics]

    def render(self) -> str:
        return "\n\n".join(render(d, self.source) for d in self.diagnostics)


class PolicyWarning(UserWarning):
    """Issued by ``compile_text`` for each warning of a policy that compiles."""


def _order(d: Diagnostic):
    s = d.span
    return (s.file, s.line, s.col, d.code) if s else ("", 0, 0, d.code)


def suggest(name: str, candidates: Iterable[str]) -> Optional[str]:
    """'did you mean …?' for the closest candidate, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render(diag: Diagnostic, source_text: str) -> str:
    """The diagnostic as text: header line, the source line with its number, a caret line
    under the span (to the end of the line when the span spans lines), then ``help:``."""
    s = diag.span
    where = f"{s.file}:{s.line}:{s.col}: " if s else ""
    out = [f"{where}{diag.severity}[{diag.code}]: {diag.message}"]
    lines = source_text.splitlines()
    if s and 1 <= s.line <= len(lines):
        src = lines[s.line - 1].replace("\t", "    ")
        raw = lines[s.line - 1]
        start = max(0, s.col - 1)
        end = s.end_col - 1 if s.end_line == s.line else len(raw.rstrip())
        end = max(end, start + 1)
        pad = _width(raw[:start].replace("\t", "    "))
        carets = max(1, _width(raw[start:end].replace("\t", "    ")))
        out.append(f"{s.line:>5} | {src.rstrip()}")
        out.append(f"{'':>5} | {' ' * pad}{'^' * carets}")
    if diag.hint:
        out.append(f"help: {diag.hint}")
    return "\n".join(out)
