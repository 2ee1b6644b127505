"""Policy file -> Plan: parse, then the named passes, then lowering.

``compile_text`` / ``compile_file`` / ``compile_policy`` raise ``PolicyError`` with every error
found (several per file); warnings are issued as ``PolicyWarning``. ``check_text`` returns the
plan (or None) and all diagnostics without raising, for tools (``yibao check``).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

from yibao.core.plan import Plan
from yibao.core.registry import Registry, default_registry

from .errors import ERROR, PolicyError, PolicyWarning, render
from .parser import parse, strip_bom
from .passes import (Context, apply_adjustments, check_flags, check_groupers, check_layers,
                     check_plugins, check_pools, check_provider_conditions, check_tables,
                     check_types, lower_plan, read_provider_tables, resolve_names,
                     resolve_provider)

# The passes in order (name, module); each is run(policy, ctx) -> policy.
PASSES = (
    ("check_plugins", check_plugins),
    ("resolve_names", resolve_names),
    ("check_tables", check_tables),
    ("check_types", check_types),
    ("check_layers", check_layers),
    ("resolve_provider", resolve_provider),
    ("read_provider_tables", read_provider_tables),
    ("check_provider_conditions", check_provider_conditions),
    ("check_groupers", check_groupers),
    ("check_pools", check_pools),
    ("apply_adjustments", apply_adjustments),
    ("check_flags", check_flags),
)


def check_text(text: str, filename: str = "<policy>", base_dir=None,
               registry: Optional[Registry] = None):
    """(plan or None, diagnostics): every error and warning, never raising PolicyError for
    semantic errors (syntax errors and input limits come back as a single diagnostic).
    A leading UTF-8 BOM is skipped."""
    text = strip_bom(text)
    try:
        policy = parse(text, filename)
    except PolicyError as exc:
        return None, exc.diagnostics
    ctx = Context(filename, text, registry or default_registry(),
                  Path(base_dir) if base_dir is not None else None)
    for _name, module in PASSES:
        policy = module.run(policy, ctx)
    if ctx.failed:
        return None, ctx.diagnostics
    return lower_plan.run(policy, ctx), ctx.diagnostics


def trace_passes(text: str, filename: str = "<policy>", base_dir=None,
                 registry: Optional[Registry] = None) -> list:
    """[(pass name, what it recorded)] for one policy text, in pass order, then
    ("lower_plan", the plan's describe()): the compiler's stages printed one by one, as
    DataFusion's EXPLAIN VERBOSE does (docs/architecture.md prints the reference city's)."""
    text = strip_bom(text)
    policy = parse(text, filename)
    ctx = Context(filename, text, registry or default_registry(),
                  Path(base_dir) if base_dir is not None else None)
    out = []
    for name, module in PASSES:
        before = _snapshot(ctx)
        policy = module.run(policy, ctx)
        out.append((name, _recorded(before, _snapshot(ctx))))
    if ctx.failed:
        return out + [("lower_plan", "(not run: errors above)")]
    return out + [("lower_plan", lower_plan.run(policy, ctx).describe().rstrip("\n"))]


def _snapshot(ctx) -> dict:
    """Each Context field as comparable text lines (node-keyed maps as counts by value)."""
    import collections
    import dataclasses
    out = {}
    for f in dataclasses.fields(ctx):
        if f.name in ("filename", "source", "registry", "base_dir"):
            continue
        value = getattr(ctx, f.name)
        if f.name in ("kinds", "types"):  # keyed by node identity: count what was recorded
            counts = collections.Counter(str(v) for v in value.values())
            lines = [f"{v}: {n}" for v, n in sorted(counts.items())]
        elif f.name in PROVIDER_PRINTS:
            lines = PROVIDER_PRINTS[f.name](value)
        elif f.name == "diagnostics":
            lines = [f"{d.code} {d.message}" for d in value]
        elif isinstance(value, dict):
            lines = [f"{k}: {_short(v)}" for k, v in value.items()]
        else:
            lines = [str(v) for v in value]
        out[f.name] = lines
    return out


def _described_tests(tests) -> str:
    """A condition's typed tests (a conjunction, or a disjunction of them: a DRG split),
    then the type of each column they compare."""
    from yibao.core.points.plan import describe_tests
    if tests is None:
        return "(reported)"
    conjunctions = tests if tests and isinstance(tests[0], tuple) else (tests,)
    text = " or ".join(f"({describe_tests(c)})" if len(conjunctions) > 1 else describe_tests(c)
                       for c in conjunctions)
    types = {t.column: t.type for c in conjunctions for t in c}
    return f"{text}  [{', '.join(f'{c}: {t}' for c, t in types.items())}]"


# How the provider passes' records print (node-keyed ones by value, in a stable order).
PROVIDER_PRINTS = {
    "provider_decls": lambda v: [f"{kind}: {', '.join(names) or '(none)'}"
                                 for kind, names in v.items()],
    "provider_tables": lambda v: [f"{t.name}: {len(t.rows)} row(s)" if t else "(unreadable)"
                                  for t in v.values()],
    "provider_tests": lambda v: sorted(_described_tests(t) for t in v.values()),
    "grouper_nodes": lambda v: [f"{name}: {type(node).__name__ if node else '(reported)'}"
                                for name, node in v.items()],
}


def _short(v) -> str:
    if isinstance(v, (tuple, list)):
        if v and isinstance(v[0], tuple):
            return f"{len(v)} row(s)"
        return ", ".join(_short(x.get("name", x)) if isinstance(x, dict) else _short(x)
                         for x in v) or "(none)"
    if isinstance(v, dict):
        return "; ".join(f"{k} {_short(x)}" for k, x in v.items())
    if isinstance(v, str):
        return v
    name = getattr(v, "name", v)  # a declaration: its name (an ast.Name or a str)
    return str(getattr(name, "name", name))


def _recorded(before: dict, after: dict) -> str:
    lines = []
    for name, now in after.items():
        new = [x for x in now if x not in set(before.get(name, ()))]
        if new:
            lines.append(f"ctx.{name}:")
            lines += [f"  {x}" for x in new]
    return "\n".join(lines) or "(checks only: nothing recorded, no diagnostics)"


def compile_text(text: str, filename: str = "<policy>", base_dir=None,
                 registry: Optional[Registry] = None) -> Plan:
    """Compile policy text. CSV tables are read from ``base_dir`` (none when it is None)."""
    text = strip_bom(text)
    plan, diagnostics = check_text(text, filename, base_dir, registry)
    if plan is None:
        raise PolicyError(diagnostics, text)
    for diag in diagnostics:
        warnings.warn(render(diag, text), PolicyWarning, stacklevel=2)
    return plan


def compile_file(path, registry: Optional[Registry] = None) -> Plan:
    """Compile one ``*.yb`` file; its folder is where its CSV tables live."""
    from .source import read_policy
    path = Path(path)
    if registry is None:  # yibao's own plugins and those the policy declares, as the CLI
        from .plugin_registry import registry_for
        registry = registry_for(path)
    return compile_text(read_policy(path), str(path), path.parent, registry)


def compile_policy(path, registry: Optional[Registry] = None) -> Plan:
    """Compile a city folder (its ``policy.yb``) or a single policy file."""
    path = Path(path)
    if path.is_dir():
        path = path / "policy.yb"
    return compile_file(path, registry)


__all__ = ["compile_text", "compile_file", "compile_policy", "check_text", "trace_passes",
           "PASSES", "ERROR"]
