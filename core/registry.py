"""Declarations apart from implementations.

The compiler type-checks a policy against ``FunctionDecl`` / ``KeyDecl`` signatures; the engine
runs the ``impl`` registered for them. A ``Registry`` is passed in (never a global), filled by
the plugin manager from every plugin's hooks, yibao's own built-ins included.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .plan import Type


@dataclass(frozen=True)
class FunctionDecl:
    """A policy-language function. ``impl(*arrays, n=rows) -> array`` is vectorised: it takes
    one numpy array (engine units, see plan.py) per argument, all of length ``n``, and returns
    one array of the result type. It is called once per batch, never per row."""
    name: str
    params: tuple  # Types of the arguments
    result: Type
    doc: str
    impl: Optional[Callable] = field(default=None, compare=False)
    plugin: str = "yibao"


@dataclass(frozen=True)
class KeyDecl:
    """An accumulator key (person, family …): the claim column whose value groups claims; a
    null value falls back to ``person_id``."""
    name: str
    column: str
    doc: str
    plugin: str = "yibao"


@dataclass
class Registry:
    functions: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    validators: list = field(default_factory=list)  # (plugin, callable(table, plan) -> rejects)
    extra_columns: list = field(default_factory=list)
    groupers: dict = field(default_factory=dict)
    adjustments: dict = field(default_factory=dict)

    def add_function(self, decl: FunctionDecl) -> None:
        if decl.name in self.functions and self.functions[decl.name] != decl:
            other = self.functions[decl.name].plugin
            raise ValueError(f"function {decl.name!r} from plugin {decl.plugin!r} clashes with "
                             f"the one from plugin {other!r}")
        self.functions[decl.name] = decl

    def add_key(self, decl: KeyDecl) -> None:
        self.keys[decl.name] = decl


def default_registry() -> Registry:
    """The registry with yibao's built-in keys only (no plugins loaded). The plugin manager
    builds the full one; this is for the compiler's and engine's tests and bare API use."""
    reg = Registry()
    reg.add_key(KeyDecl("person", "person_id", "the insured person"))
    return reg
