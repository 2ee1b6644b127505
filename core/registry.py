"""Declarations apart from implementations.

The compiler type-checks a policy against ``FunctionDecl`` / ``KeyDecl`` signatures; the engine
runs the ``impl`` registered for them. A ``Registry`` is passed in (never a global), filled by
the plugin manager from every plugin's hooks, yibao's own built-ins included.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .plan import Type
from .records import Record, record


@record
class FunctionDecl(Record):
    """A policy-language function. ``impl(*arrays, n=rows) -> array`` is vectorised: it takes
    one numpy array (engine units, see plan.py) per argument, all of length ``n``, and returns
    one array of the result type. It is called once per batch, never per row."""
    name: str
    params: tuple  # Types of the arguments
    result: Type
    doc: str
    impl: Optional[Callable] = field(default=None, compare=False)
    plugin: str = "yibao"


@record
class KeyDecl(Record):
    """An accumulator key (person, family …): the claim column whose value groups claims; a
    null value falls back to ``person_id``."""
    name: str
    column: str
    doc: str
    plugin: str = "yibao"


@record
class Validator(Record):
    """A claim check contributed by a plugin. ``check(plan, columns, raw, n)`` is vectorised:
    ``columns`` are the accepted rows in engine units (arrow_io.Prepared.columns), ``raw`` the
    same rows as an Arrow table; it returns a bool numpy mask of the rows to reject (length
    ``n``) and one message per rejected row (a list, or a single string for all)."""
    name: str
    reason: str  # reject reason code written to rejects.parquet
    check: Callable
    plugin: str = "yibao"
    # the raw claim columns it reads beyond the plan's own (``columns``); None: any of them.
    # ``yibao explain`` reads only the columns every check declares (explain_columns).
    claim_columns: Optional[tuple] = None
    # whether it checks anything under a plan (the family check: only under the family key);
    # None: always. ``yibao explain --run`` settles a claim's rows in plain Python only when
    # no check acts on the plan (the checks read Arrow columns: reference.rows_apply)
    acts_on: Optional[Callable] = None

    def acts(self, plan) -> bool:
        return self.acts_on is None or bool(self.acts_on(plan))


@record
class Stage(Record):
    """A step after the layers, adding result columns (家庭共济 mutual aid, a report column).
    ``run(plan, results, claims, context)`` gets the results and the accepted claims, both
    in settlement order (discharge_date, claim_id), and ``context`` (the run's extra inputs,
    e.g. a balances table); it returns {column name: array of len(results)}, or None to add
    no columns when the run did not ask for it (no balances given). It is vectorised
    or a Cython loop over the whole batch, never a Python call per row. ``reference`` is the
    plain-Python version the conformance tests compare against (same signature)."""
    name: str
    run: Callable
    columns: tuple  # (name, pyarrow type or its name: "int64") it adds
    reference: Optional[Callable] = None
    plugin: str = "yibao"
    claim_columns: Optional[tuple] = None  # the claim columns it reads; None: all of them
    # whether the stage adds columns for a run's context (e.g. only when balances are given);
    # None: always. A run no stage acts on may settle in another order (engine.settle_by_bucket)
    acts_on: Optional[Callable] = None

    def acts(self, context) -> bool:
        return self.acts_on is None or bool(self.acts_on(context or {}))


@dataclass
class Registry:
    functions: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    validators: list = field(default_factory=list)  # Validator, run in order
    stages: list = field(default_factory=list)  # Stage, run in order after the layers
    groupers: dict = field(default_factory=dict)
    adjustments: dict = field(default_factory=dict)
    # plugin name -> (distribution, version) of every plugin the registry was built from
    # (plugins/manager.py build_registry; empty for default_registry): the manifest's record
    distributions: dict = field(default_factory=dict)

    def add_function(self, decl: FunctionDecl) -> None:
        if decl.name in self.functions and self.functions[decl.name] != decl:
            other = self.functions[decl.name].plugin
            raise ValueError(f"function {decl.name!r} from plugin {decl.plugin!r} clashes with "
                             f"the one from plugin {other!r}")
        self.functions[decl.name] = decl

    def add_key(self, decl: KeyDecl) -> None:
        self.keys[decl.name] = decl


def canonical_distribution(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503: case, and runs of ``-_.``,
    alike), which is ``packaging.utils.canonicalize_name``'s result; written here because
    importing packaging.utils (it imports packaging.tags, platform, subprocess) cost every
    compile more than the plugins it names."""
    import re
    return re.sub(r"[-_.]+", "-", name).lower()


def default_registry() -> Registry:
    """The registry with yibao's built-in keys only (no plugins loaded). The plugin manager
    builds the full one; this is for the compiler's and engine's tests and bare API use."""
    reg = Registry()
    reg.add_key(KeyDecl("person", "person_id", "the insured person"))
    return reg
