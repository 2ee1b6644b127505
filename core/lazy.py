"""A heavy module imported when first used, not when the module naming it is imported.

``yibao check`` compiles a policy; compiling imports the modules that declare plan nodes and
plugin functions, some of which also hold the vectorised code that runs them over Arrow
tables (a decision table's grouping, a plugin's implementation). Importing pyarrow and numpy
for those declarations alone cost a third of the check (docs/cli.md, start-up)::

    np = lazy_module("numpy")   # nothing imported yet
    np.zeros(3)                 # numpy imported here, once

The stand-in only forwards attribute reads (``np.int64``, ``pa.Table``, ``pc.sum``), which is
all those modules do with the name; ``isinstance(x, pa.Table)`` and ``except
pa.ArrowInvalid`` read an attribute too, so they work unchanged.
"""
from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module ``name``; the first attribute read imports it (a missing module
    raises ImportError there, naming it)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr == "_name":  # not set yet: a copy being unpickled (below) asks before it is
            raise AttributeError(attr)
        # after the first call import_module is a sys.modules lookup
        return getattr(importlib.import_module(self._name), attr)

    def __reduce__(self):
        # Spark ships the functions of a run to its Python workers by pickling them with the
        # globals they read: a stand-in goes as "the stand-in for this name" (without this,
        # unpickling read ``_name`` before setting it and recursed without end)
        return (lazy_module, (self._name,))

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> LazyModule:
    return LazyModule(name)
