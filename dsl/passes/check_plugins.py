"""check_plugins: the ``plugin "distribution" "versions"`` declarations of a policy.

A policy names every plugin distribution it uses (docs/plugins.md); a run loads only those and
yibao's own plugins (plugins/manager.py), so a function, key or grouper of an undeclared
package is an unknown name. This pass checks what the compiler can: each version range is a
valid PEP 440 specifier (E701), no distribution is declared twice (E701), and each declared
distribution was loaded into the registry at a version inside its range (E702).
"""
from __future__ import annotations

from pathlib import Path

from .. import ast
from ..errors import error


def declared_plugins(policy: ast.PolicyFile) -> tuple:
    """((distribution, version range), …) as written, in file order."""
    return tuple((s.distribution.value, s.versions.value) for s in policy.statements
                 if isinstance(s, ast.PluginUse))


def policy_plugins(path) -> tuple:
    """The ``(distribution, range)`` pairs a policy file or folder declares (every ``*.yb``
    of a folder: the union of its versions'). A file that does not parse declares nothing
    here: compiling it reports its errors."""
    from ..errors import PolicyError
    from ..parser import parse
    from ..source import SourceError, read_text
    path = Path(path)
    files = sorted(path.glob("*.yb")) if path.is_dir() else [path]
    found = {}
    for file in files:
        try:  # read_text refuses a FIFO or device without opening it (it would block)
            policy = parse(read_text(file), str(file))
        except (PolicyError, SourceError, OSError, UnicodeDecodeError, ValueError):
            continue
        for dist, versions in declared_plugins(policy):
            found.setdefault(dist, versions)
    return tuple(found.items())


def canonical(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503: case, ``-_.`` alike)."""
    from yibao.core.registry import canonical_distribution
    return canonical_distribution(name)


def run(policy: ast.PolicyFile, ctx) -> ast.PolicyFile:
    loaded = {canonical(dist): version for dist, version in ctx.registry.distributions.values()}
    seen = set()
    for use in (s for s in policy.statements if isinstance(s, ast.PluginUse)):
        name = canonical(use.distribution.value)
        if name in seen:
            ctx.report(error("E701", f"plugin distribution '{use.distribution.value}' is "
                                     "declared twice", use.span, "keep one declaration"))
            continue
        seen.add(name)
        versions = _specifier(use, ctx)
        if versions is not None:
            _check_loaded(use, name, versions, loaded, ctx)
    return policy


def _specifier(use: ast.PluginUse, ctx):
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    try:
        return SpecifierSet(use.versions.value)
    except InvalidSpecifier:
        ctx.report(error("E701", f"'{use.versions.value}' is not a version range",
                         use.versions.span, 'write a PEP 440 range, e.g. ">=1.0, <2"'))
        return None


def _check_loaded(use, name: str, versions, loaded: dict, ctx) -> None:
    dist = use.distribution.value
    if name not in loaded:
        ctx.report(error("E702", f"plugin distribution '{dist}' is not loaded",
                         use.distribution.span, f"install it (pip install '{dist}"
                         f"{use.versions.value.replace(' ', '')}') and run yibao on this "
                         "policy, which loads the plugins it declares"))
    elif not versions.contains(loaded[name], prereleases=True):
        ctx.report(error("E702", f"plugin distribution '{dist}' is version {loaded[name]}, "
                                 f"outside the policy's range '{use.versions.value}'",
                         use.versions.span, f"install a version in the range: pip install "
                         f"'{dist}{use.versions.value.replace(' ', '')}'"))
