"""The compiler's passes, one module each, run in the order of ``PASSES``.

Each pass is ``run(policy, ctx) -> policy``: it reads the AST, records what it learns in the
``Context`` (resolved names, types, loaded table rows) keyed by node identity, appends
diagnostics to ``ctx.diagnostics``, and returns the AST (a new one if it changed it). Passes
keep going after an error so that one compile reports several; ``lower_plan`` runs only on a
policy without errors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from yibao.core.claims import PLAN_TYPES, SETTINGS  # noqa: F401 (SETTINGS: re-exported)
from yibao.core.registry import Registry

from ..errors import ERROR

# The claim record of benefits.md (core/claims.py), in the order Plan.columns lists them.
BUILTIN_COLUMNS = PLAN_TYPES
ALWAYS_READ = ("claim_id", "person_id", "discharge_date", "total")
BUILTIN_FUNCTIONS = ("min", "max")


@dataclass
class Context:
    filename: str
    source: str
    registry: Registry
    base_dir: Optional[Path] = None
    diagnostics: list = field(default_factory=list)
    columns: dict = field(default_factory=lambda: dict(BUILTIN_COLUMNS))  # name -> Type
    tables: dict = field(default_factory=dict)  # name -> ast.TableDecl
    layers: list = field(default_factory=list)  # names in order
    kinds: dict = field(default_factory=dict)  # id(ast.Name) -> 'column' | 'word' | …
    types: dict = field(default_factory=dict)  # id(ast.Expr) -> Type | NUM | WORD
    table_rows: dict = field(default_factory=dict)  # table name -> ((keys, value, span), …)
    # table name -> ((value node, engine value, span to report), …): check_layers checks the
    # values of a table used as a layer's ratio against 0..100%
    table_values: dict = field(default_factory=dict)
    # the provider passes: resolve_provider, read_provider_tables, check_provider_conditions,
    # check_groupers, check_pools
    provider_decls: dict = field(default_factory=dict)  # groupers/pools/alliances: name -> decl
    provider_tables: dict = field(default_factory=dict)  # id(file ref) -> ProviderTable | None
    provider_tests: dict = field(default_factory=dict)  # id(condition) -> typed Tests | None
    grouper_nodes: dict = field(default_factory=dict)  # grouper name -> plan node | None
    provider: dict = field(default_factory=dict)  # groupers, pools (and alliances): plan nodes
    flags: list = field(default_factory=list)  # check_flags: supervision SupervisionFlag nodes

    def report(self, diag) -> None:
        self.diagnostics.append(diag)

    @property
    def failed(self) -> bool:
        return any(d.severity == ERROR for d in self.diagnostics)

    def key_column(self, key: str) -> Optional[str]:
        decl = self.registry.keys.get(key)
        return decl.column if decl else None
