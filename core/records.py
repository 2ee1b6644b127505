"""Frozen records: a frozen dataclass's behaviour without its per-class code generation.

``@record`` on a class of annotated fields gives what ``@dataclass(frozen=True)`` gives:
fields in declaration order (a base's first); ``Cls(*fields)`` or by keyword, with the
class attribute as the default; ``__post_init__`` called when the class has one; equality and
hash over the fields that compare (same class only; ``field(compare=False)`` leaves one out);
the dataclass repr; assignment and deletion raise ``FrozenInstanceError``. It is a dataclass
for ``dataclasses.fields``, ``replace`` and ``is_dataclass``, and pickles and copies as one
(Spark pickles plans).

Why not ``@dataclass(frozen=True)``: it compiles six methods per class (``exec`` of generated
source), and doing that for the ~180 classes of the AST and the IR was the largest part of
every command's start-up (docs/cli.md). Here the dataclass machinery only collects the fields
(no method is generated) and the methods are written once, in ``Record``.

A field's default is a value, never a ``default_factory`` (refused: a record is immutable,
so a shared default is never mutated). A subclass of a record is a record only when
decorated too; a ``@dataclass(frozen=True)`` subclass of a record is refused by dataclasses
("cannot inherit frozen dataclass from a non-frozen one"): decorate it with ``@record``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError

REQUIRED = object()  # a field without a default


def record(cls):
    """Make ``cls`` a frozen record of its annotated fields (module docstring)."""
    undocumented = cls.__doc__ is None
    if undocumented:  # else dataclasses writes one from inspect.signature: half the cost
        cls.__doc__ = cls.__name__
    cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    fields = dataclasses.fields(cls)
    if undocumented:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields)})"
    if any(f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: a record field takes a default, not a factory")
    cls._field_defaults = {f.name: REQUIRED if f.default is dataclasses.MISSING else f.default
                           for f in fields}
    cls._fields = tuple(cls._field_defaults)
    cls._compared = tuple(f.name for f in fields if f.compare)
    cls._shown = tuple(f.name for f in fields if f.repr)
    cls._post_init = hasattr(cls, "__post_init__")
    return cls


class Record:
    """The methods of every ``@record`` class (see ``record``)."""
    __slots__ = ()
    _fields: tuple = ()
    _field_defaults: dict = {}
    _compared: tuple = ()
    _shown: tuple = ()
    _post_init: bool = False

    def __init__(self, *args, **kwargs):
        names = self._fields
        if not kwargs and len(args) == len(names):  # the usual call: every field in order
            object.__setattr__(self, "__dict__", dict(zip(names, args)))
        else:
            object.__setattr__(self, "__dict__", self._bound(args, kwargs))
        if self._post_init:
            self.__post_init__()

    def _bound(self, args: tuple, kwargs: dict) -> dict:
        """The fields' values from a call with defaults or keywords; TypeError as Python
        says it for a wrong call."""
        names = self._fields
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments but "
                            f"{len(args)} were given")
        values = dict(self._field_defaults)
        values.update(zip(names, args))
        for key in kwargs:
            if key not in values or key in names[:len(args)]:
                what = "unexpected" if key not in values else "a second value for"
                raise TypeError(f"{type(self).__name__}() got {what} argument {key!r}")
        values.update(kwargs)
        missing = [n for n, v in values.items() if v is REQUIRED]
        if missing:
            raise TypeError(f"{type(self).__name__}() missing required argument(s): "
                            f"{', '.join(map(repr, missing))}")
        return values

    def _values(self) -> tuple:
        values = self.__dict__
        return tuple(values[n] for n in self._compared)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        shown = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self._shown)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")
