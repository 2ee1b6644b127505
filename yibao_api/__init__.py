"""yibao (医保): settle medical-insurance claims under a city's policy, from Python.

Two calls, as the command line does them (`yibao settle POLICY CLAIMS`)::

    import yibao
    policy = yibao.compile("jinhua")          # a bundled city, a city folder or a .yb file
    result = yibao.settle(policy, claims)     # claims: any Arrow producer or a file path
    result.results   # pyarrow.Table, one row per settled claim: claim_id, person_id,
                     # hospital_id, discharge_date, then int64 fen per layer
    result.rejects   # pyarrow.Table, one row per refused input row, with its reason

``claims`` may be any of (docs/api.md has a runnable example of each):

- a ``pyarrow.Table``, ``RecordBatch`` or ``RecordBatchReader``;
- a path (``str`` or ``os.PathLike``) to a Parquet file, a folder of Parquet files, or an
  Arrow IPC file (``.arrow``, ``.ipc``, ``.feather``);
- a Polars ``DataFrame`` or ``LazyFrame``, a pandas ``DataFrame``, a DuckDB relation — any
  object with ``__arrow_c_stream__`` (the Arrow PyCapsule interface) or DuckDB's ``.arrow()``.

``compile`` loads the plugins the policy declares (``plugin "name" "range"``) and yibao's own
(family, tcm), exactly as the command line does, and keeps that registry with the compiled
policy, so ``settle`` needs no hand-built registry. This package is the only module that
joins the language (``yibao.dsl``) to the engine (``yibao.core``); ``yibao.core`` never
imports ``yibao.dsl``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

if TYPE_CHECKING:  # imported lazily: `import yibao` stays cheap
    from yibao.core.policy import Policy
    from yibao.core.registry import Registry
    from yibao.core.settlement import BatchResult

__all__ = ["CompiledPolicy", "compile", "settle"]

PolicySource = Union[str, "os.PathLike[str]"]
Claims = Any  # an Arrow producer or a path; see the module docstring


@dataclass(frozen=True)
class CompiledPolicy:
    """A compiled policy with the registry of functions it was compiled against (the
    plugins it declares), as ``yibao.settle`` takes it."""
    policy: "Policy"  # every version (one Plan per *.yb of the folder)
    registry: "Registry"
    source: Path  # the folder or file it was compiled from

    @property
    def name(self) -> str:
        return self.policy.name


def compile(policy: PolicySource) -> CompiledPolicy:
    """Compile ``policy``: an existing folder (each ``*.yb`` in it a version) or ``.yb`` file,
    or else the name of a city bundled with yibao (``"jinhua"``). Raises
    ``yibao.dsl.errors.PolicyError`` (``str()`` is every diagnostic, file:line:column),
    ``FileNotFoundError`` when ``policy`` names nothing, and
    ``yibao.plugins.manager.PluginError`` when a declared plugin cannot be loaded."""
    from yibao.dsl.commands._policies import resolve_policy
    from yibao.dsl.plugin_registry import registry_for
    from yibao.dsl.versions import compile_versions
    where = resolve_policy(os.fspath(policy))
    registry = registry_for(where)
    return CompiledPolicy(compile_versions(where, registry=registry), registry, where)


def settle(policy: Union[CompiledPolicy, PolicySource], claims: Claims,
           names: Literal["yibao", "national"] = "yibao") -> "BatchResult":
    """Settle ``claims`` in memory under ``policy`` (a ``CompiledPolicy``, or anything
    ``compile`` takes). Returns ``BatchResult``: ``results`` (settlement order: discharge
    date, claim id — never the input's order; claim_id, then the claims' person_id,
    hospital_id (when they have one) and discharge_date, then the amounts), ``rejects`` (input row order, with a reason)
    and ``input_rows``; every input row is in one of the two. Claims that cannot be read
    raise ``yibao.core.arrow_io.ClaimsError`` naming the column and the cast to make.
    ``names="national"``: the results under the national settlement-list names, yuan as
    decimal(16,2) (docs/outputs.md, core/national.py)."""
    import dataclasses
    from yibao.core.engine import settle as settle_batch
    if not isinstance(policy, CompiledPolicy):
        policy = compile(policy)
    if names not in ("yibao", "national"):
        raise ValueError(f"names={names!r}: use 'yibao' or 'national'")
    result = settle_batch(policy.policy, _claims_table(claims), policy.registry)
    if names == "national":
        from yibao.core.national import national_table
        named = national_table(policy.policy, result.results)
        result = dataclasses.replace(result, results=named)
    return result


def _claims_table(claims: Claims):
    """A path read as Parquet (file or folder) or Arrow IPC; a lazy frame (Polars
    ``LazyFrame``: no Arrow stream until collected) collected; anything else is passed to the
    engine, which takes every Arrow producer."""
    if isinstance(claims, (str, os.PathLike)):
        from yibao.dsl.commands._common import read_claims
        return read_claims(claims)
    if not hasattr(claims, "__arrow_c_stream__") and callable(getattr(claims, "collect", None)):
        return claims.collect()
    return claims
