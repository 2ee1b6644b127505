"""A plugin-supplied function vs the same logic written with built-in operators.

The policy pays ``min(in_scope × 10%, 500 yuan)`` per claim, once as the built-in expression
and once as ``capped_share(in_scope, 10%, 500 yuan)``, a function contributed by a plugin
registered through the manager (vectorised impl, one numpy call per batch). Both run the whole
``settle`` on ``generate_claims(size)`` and, separately, only the layer's base
expression through the vector evaluator. Target: the plugin path within 10% of the built-in.
Timings are interleaved (builtin, plugin, builtin, …) and the best of ``ROUNDS`` is kept, so
load from other processes on the machine hits both sides alike. Run:

  cd /work/main && /work/venv/bin/python -m pytest benchmarks/test_bench_plugins.py \
      --benchmark-only -q --bench-sizes 1000000,5000000
"""
from __future__ import annotations

import time

import numpy as np

from yibao.core.arrow_io import prepare
from yibao.core.engine import settle
from yibao.core.plan import MONEY, RATIO, Type
from yibao.core.registry import FunctionDecl
from yibao.core.vector import Evaluator, apply_ratio
from yibao.dsl.compiler import compile_text
from yibao.plugins.hookspecs import hookimpl
from yibao.plugins.manager import build_registry, make_plugin_manager

ROUNDS = 3
EXPR_ROUNDS = 9  # a 0.2 s measurement on a shared machine needs more rounds to settle
HEADER = 'policy "bench" {\n  effective 2024-01-01 to 2024-12-31\n}\n'
BUILTIN = HEADER + 'layer basic "b" {\n  base min(in_scope * 10%, 500 yuan)\n}\n'
PLUGIN = HEADER + 'layer basic "b" {\n  base capped_share(in_scope, 10%, 500 yuan)\n}\n'


def capped_share(amount, rate, cap, *, n):
    return np.minimum(apply_ratio(amount, rate), cap)


class BenchPlugin:
    @hookimpl
    def yibao_register_functions(self, registry):
        registry.add_function(FunctionDecl(
            "capped_share", (Type(MONEY), Type(RATIO), Type(MONEY)), Type(MONEY),
            "capped_share(amount, rate, cap): min(amount × rate, cap)", capped_share))


def registry():
    return build_registry(make_plugin_manager(load_entry_points=False,
                                              plugins=[("bench", BenchPlugin())]))


def best_interleaved(a, b, rounds=ROUNDS):
    ta, tb = [], []
    for _ in range(rounds):
        for f, out in ((a, ta), (b, tb)):
            start = time.perf_counter()
            f()
            out.append(time.perf_counter() - start)
    return min(ta), min(tb)


def test_plugin_function_overhead(benchmark, claims, size):
    reg = registry()
    builtin, plugin = compile_text(BUILTIN, registry=reg), compile_text(PLUGIN, registry=reg)
    a = settle(builtin, claims, reg).results
    b = settle(plugin, claims, reg).results
    assert a.equals(b) and a.num_rows == size  # same logic, same fen

    t_builtin, t_plugin = best_interleaved(lambda: settle(builtin, claims, reg),
                                           lambda: settle(plugin, claims, reg))
    prep_b, prep_p = prepare(builtin, claims), prepare(plugin, claims)
    e_builtin, e_plugin = best_interleaved(
        lambda: Evaluator(builtin, prep_b.columns, prep_b.n, reg)(builtin.layers[0].base),
        lambda: Evaluator(plugin, prep_p.columns, prep_p.n, reg)(plugin.layers[0].base),
        rounds=EXPR_ROUNDS)
    benchmark.extra_info.update(
        claims=size, settle_builtin_s=round(t_builtin, 3), settle_plugin_s=round(t_plugin, 3),
        settle_ratio=round(t_plugin / t_builtin, 3), expr_builtin_s=round(e_builtin, 4),
        expr_plugin_s=round(e_plugin, 4), expr_ratio=round(e_plugin / e_builtin, 3))
    benchmark.pedantic(settle, args=(plugin, claims, reg), rounds=1, iterations=1)
    # The target is ≤ 1.10; the assertion leaves room for a noisy shared machine but still
    # fails if the plugin path becomes a per-row or copying path.
    assert t_plugin / t_builtin < 1.25, benchmark.extra_info
