"""Every exception class yibao defines derives from ``YibaoError`` (core/errors.py), which
carries the command's exit code, so the command line maps errors in one place (dsl/cli.py
``refused``). Walks every module of yibao.core, yibao.dsl and yibao.plugins."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import yibao.core
import yibao.dsl
import yibao.plugins
from yibao.core.errors import EXIT_CANNOT_RUN, EXIT_UNEXPECTED, YibaoError

# Exceptions that must NOT be YibaoErrors, and why. Each is a signal raised and caught inside
# yibao; one that escapes is a bug, which the command line reports as an internal error
# (exit 70) rather than as a refusal of the user's input.
INTERNAL_SIGNALS = {
    "yibao.core.reference.LookupMiss",  # a claim misses a table: caught, becomes a reject
    "yibao.core.reference.ClaimOutOfRange",  # caught by the oracle, becomes a reject
    "yibao.core.money.OutOfRange",  # an amount leaves int64: caught, becomes a reject
    "yibao.core.grouping.reference._Undecided",  # the DRG oracle's early exit
    "yibao.core.supervision.compute._Undecided",  # a bracketed sum at a rounding boundary:
    #                                               caught, the hospital recomputed exactly
    "yibao.dsl.errors.PolicyWarning",  # a warnings category (UserWarning), not an error
}
# generated modules holding another project's code: Lark's stand-alone parser
# (dsl/make_parser_tables.py) defines Lark's exceptions, which dsl/parser.py turns into
# PolicyError diagnostics
VENDORED = ("yibao.dsl._parser_tables",)
# optional extras whose modules cannot be imported without them (the walk names what it left)
OPTIONAL = ("nicegui", "pyspark")


def yibao_modules():
    for package in (yibao.core, yibao.dsl, yibao.plugins):
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            yield info.name


def exception_classes():
    """(qualified name, class) of every exception class defined in a yibao module; modules
    that need a missing optional extra are listed apart."""
    found, unimportable = {}, []
    for name in yibao_modules():
        if name in VENDORED:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in OPTIONAL:
                unimportable.append(name)
                continue
            raise
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found[f"{name}.{cls.__qualname__}"] = cls
    return found, unimportable


def test_every_exception_derives_from_yibao_error():
    found, unimportable = exception_classes()
    assert len(found) > 20, "the walk found too few exception classes"
    outside = sorted(n for n, cls in found.items()
                     if not issubclass(cls, YibaoError) and n not in INTERNAL_SIGNALS)
    assert not outside, f"not under YibaoError: {outside}"
    stale = sorted(n for n in INTERNAL_SIGNALS if n not in found)
    assert not stale, f"INTERNAL_SIGNALS names classes that no longer exist: {stale}"
    assert not [n for n in unimportable if not n.startswith(("yibao.dsl.studio",
                                                             "yibao.core.spark"))]


@pytest.mark.parametrize("name", ["yibao.plugins.manager.PluginError",
                                  "yibao.core.grouping.table.DecisionTableError",
                                  "yibao.core.lower.LoweringError",
                                  "yibao.dsl.errors.PolicyError",
                                  "yibao.core.arrow_io.ClaimsError"])
def test_refusals_carry_exit_code_2(name):
    module, cls = name.rsplit(".", 1)
    assert getattr(importlib.import_module(module), cls).exit_code == EXIT_CANNOT_RUN


def test_a_bug_carries_exit_code_70():
    from yibao.core.vector import UnsupportedNodeError
    assert UnsupportedNodeError(object()).exit_code == EXIT_UNEXPECTED


def test_the_old_bases_still_catch():
    """``except ValueError`` in a caller still catches what it caught before."""
    from yibao.core.arrow_io import ClaimsError
    from yibao.dsl.commands._policies import PolicyNotFound
    from yibao.plugins.manager import PluginError
    assert issubclass(ClaimsError, ValueError) and issubclass(PolicyNotFound, OSError)
    assert issubclass(PluginError, RuntimeError)


def test_plan_and_policy_json_of_another_version_are_refused_alike():
    """One reader of versioned IR JSON (plan.versioned_json) for both roots."""
    import json
    from yibao.core.plan import IRVersionError, Plan
    from yibao.core.policy import Policy, PolicyShapeError
    with pytest.raises(IRVersionError, match="plan version 'x' is not"):
        Plan.from_json(json.dumps({"version": "x"}))
    with pytest.raises(PolicyShapeError, match="policy version 'x' is not"):
        Policy.from_json(json.dumps({"version": "x"}))
