"""A city folder with several versions of its policy, each in force over a date range.

``compile_versions(folder, registry)`` compiles every ``*.yb`` file directly in the folder
(each one version, its range from its ``effective A to B`` header) and returns the ``Policy``
(yibao.core.policy) holding the plans sorted by ``effective_from``. Versions must tile time: a gap or an overlap between
consecutive versions is a compile-time error, reported like every policy error with
``file:line:col``, the header line and a caret (codes E601 gap, E602 overlap). A folder with
one ``policy.yb`` is one version. Settling under the versions: ``settle`` of ``yibao.core.engine`` / ``yibao.core.reference``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from yibao.core.registry import Registry
from yibao.core.policy import Policy
from yibao.core.policy import version_problems

from .compiler import compile_file
from .errors import PolicyError, error, render
from .parser import parse
from .source import read_policy

VERSION_CODES = {"E601": "policy versions leave a gap", "E602": "policy versions overlap"}


class VersionsError(PolicyError):
    """Errors across several policy files: each diagnostic renders against its own file."""

    def __init__(self, diagnostics, sources: dict):
        self.sources = sources
        super().__init__(diagnostics, "")

    def render(self) -> str:
        return "\n\n".join(render(d, self.sources.get(d.span.file if d.span else "", ""))
                           for d in self.diagnostics)


def version_files(folder) -> list:
    """The policy files of a folder (or the one file given), sorted by name."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    files = sorted(folder.glob("*.yb"))
    if not files:
        raise FileNotFoundError(f"no *.yb policy file in {folder}")
    return files


def compile_versions(folder, registry: Optional[Registry] = None) -> Policy:
    """The folder's ``Policy``: every version's plan, sorted by effective_from; ``PolicyError`` with every file's
    errors, or a ``VersionsError`` for gaps and overlaps (pointing at the later header)."""
    diagnostics, sources, compiled = [], {}, []
    for path in version_files(folder):
        try:
            sources[str(path)] = read_policy(path)
            compiled.append((compile_file(path, registry), path))
        except PolicyError as exc:
            sources.setdefault(str(path), exc.source)
            diagnostics += exc.diagnostics
    if diagnostics:
        raise VersionsError(diagnostics, sources)
    compiled.sort(key=lambda pp: pp[0].effective_from)
    plans = tuple(p for p, _ in compiled)
    for i, kind, msg in version_problems(plans):
        prev = compiled[i - 1][1]
        code = "E601" if kind == "gap" else "E602"
        hint = (f"the previous version is {prev}; make this one start the day after it ends")
        diagnostics.append(error(code, f"policy version {msg}",
                                 _header_span(compiled[i][1], sources), hint))
    if diagnostics:
        raise VersionsError(diagnostics, sources)
    return Policy.of(plans)


def _header_span(path: Path, sources: dict):
    header = parse(sources[str(path)], str(path)).header()
    if header is None:
        return None
    return header.effective[0].span if header.effective else header.span
