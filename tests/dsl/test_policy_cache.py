"""The compiled-policy cache (dsl/policy_cache.py): a hit is the policy a compile gives, any
change to what the compile read (a policy file, a table, a version added, a plugin's
declaration or code) compiles again, a damaged entry compiles again, warnings are issued
the same on a hit, ``--no-cache`` and ``YIBAO_NO_CACHE`` bypass it, racing writers leave one
whole entry, and ``yibao settle`` writes the same results warm or cold."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from yibao.dsl import policy_cache
from yibao.dsl.cli import main
from yibao.dsl.commands._common import registry
from yibao.dsl.versions import compile_versions

REPO = Path(__file__).resolve().parents[2]
CITIES = sorted(p.name for p in (REPO / "city_configs").iterdir() if (p / "policy.yb").exists()
                or any(p.glob("*.yb")))
WARNING_POLICY = REPO / "tests" / "dsl" / "errors" / "W407_contradiction.yb"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("YIBAO_CACHE_DIR", str(folder))
    monkeypatch.delenv("YIBAO_NO_CACHE", raising=False)
    return folder


class Compiles:
    """``compile`` for cached_compile that counts how often the policy was really compiled."""

    def __init__(self, where, reg):
        self.where, self.reg, self.count = where, reg, 0

    def __call__(self):
        self.count += 1
        return compile_versions(self.where, registry=self.reg)


def load(where, reg=None):
    """(policy, times compiled) through the cache."""
    where = Path(where)
    reg = reg or registry(where)
    compiles = Compiles(where, reg)
    return policy_cache.cached_compile(where, reg, compiles), compiles.count


def entries(cache: Path) -> list:
    return sorted((cache / "policies").glob("*")) if (cache / "policies").exists() else []


def printed(policy) -> str:
    return "\n".join(p.describe() for p in policy.versions)


@pytest.mark.parametrize("city", CITIES)
def test_a_hit_is_the_policy_a_compile_gives(city, cache):
    where = REPO / "city_configs" / city
    fresh, compiled = load(where)
    hit, again = load(where)
    assert (compiled, again) == (1, 0)
    assert hit == fresh and hit is not fresh
    assert printed(hit) == printed(fresh)
    assert [p.to_json() for p in hit.versions] == [p.to_json() for p in fresh.versions]


def test_a_hit_in_another_process_prints_the_same_plan(cache):
    cold = _yibao("plan", "rizhao")
    warm = _yibao("plan", "rizhao")
    assert cold.returncode == warm.returncode == 0
    assert len(entries(cache)) == 1
    assert warm.stdout == cold.stdout == _yibao("plan", "rizhao", "--no-cache").stdout


def _city_copy(tmp_path, city: str) -> Path:
    folder = tmp_path / city
    shutil.copytree(REPO / "city_configs" / city, folder)
    return folder


def test_editing_the_policy_file_compiles_again(tmp_path, cache):
    folder = _city_copy(tmp_path, "reference")
    before, _ = load(folder)
    text = (folder / "policy.yb").read_text(encoding="utf-8")
    assert "critical" in text
    (folder / "policy.yb").write_text(text.replace("critical", "critical_x"), encoding="utf-8")
    after, compiled = load(folder)
    assert compiled == 1
    assert "critical_x" in printed(after) and "critical_x" not in printed(before)
    assert load(folder)[1] == 0


def test_editing_a_table_csv_compiles_again(tmp_path, cache):
    folder = _city_copy(tmp_path, "jinhua")
    tables = sorted(folder.glob("*.csv"))
    assert tables, "jinhua reads CSV tables"
    before, _ = load(folder)
    table = tables[0]
    table.write_bytes(table.read_bytes() + b"\n")  # a blank line: same rows, other bytes
    _, compiled = load(folder)
    assert compiled == 1
    assert load(folder)[1] == 0


def test_a_version_added_compiles_again(tmp_path, cache):
    folder = _city_copy(tmp_path, "reference")
    load(folder)
    text = (folder / "policy.yb").read_text(encoding="utf-8")
    (folder / "zz_copy.yb").write_text(text, encoding="utf-8")  # overlaps: E602
    assert main(["plan", str(folder)]) == 2  # not the cached single version


def test_a_damaged_entry_compiles_again_and_is_replaced(cache, capsys):
    where = REPO / "city_configs" / "reference"
    fresh, _ = load(where)
    (entry,) = entries(cache)
    for damage in (b"", b"not a pickle", entry.read_bytes()[:40]):
        entry.write_bytes(damage)
        policy, compiled = load(where)
        assert compiled == 1 and policy == fresh
        assert load(where)[1] == 0  # the entry written again is whole
    assert capsys.readouterr().err == ""  # said nothing


def _plugin(tmp_path, name: str, doc: str):
    """A module declaring the function ``double`` with ``doc``, imported from ``tmp_path``."""
    source = tmp_path / f"{name}.py"
    source.write_text(
        "from yibao.core.plan import MONEY, Type\n"
        "from yibao.core.registry import FunctionDecl\n"
        "from yibao.plugins.hookspecs import hookimpl\n\n"
        "def double(x, n):\n    return x * 2\n\n"
        "@hookimpl\n"
        "def yibao_register_functions(registry):\n"
        f"    registry.add_function(FunctionDecl('double', (Type(MONEY),), Type(MONEY), {doc!r}, "
        "double))\n",
        encoding="utf-8")
    module = types.ModuleType(name)
    module.__file__ = str(source)
    exec(compile(source.read_text(encoding="utf-8"), str(source), "exec"), module.__dict__)
    sys.modules[name] = module
    return module


def _registry_with(module):
    from yibao.plugins.manager import build_registry, make_plugin_manager
    return build_registry(make_plugin_manager(plugins=[("doubler", module)],
                                              read_installed=False))


def test_a_plugin_declaration_or_its_code_changed_compiles_again(tmp_path, cache):
    where = REPO / "city_configs" / "reference"
    try:
        first = _plugin(tmp_path, "yibao_test_doubler", "twice the amount")
        assert load(where, _registry_with(first))[1] == 1
        assert load(where, _registry_with(first))[1] == 0
        other_doc = _plugin(tmp_path, "yibao_test_doubler", "two times the amount")
        assert load(where, _registry_with(other_doc))[1] == 1  # the declaration changed
        assert load(where, _registry_with(other_doc))[1] == 0
        source = Path(other_doc.__file__)  # its code edited, the declaration unchanged
        source.write_text(source.read_text(encoding="utf-8") + "\n# edited\n",
                          encoding="utf-8")
        assert load(where, _registry_with(other_doc))[1] == 1
    finally:
        sys.modules.pop("yibao_test_doubler", None)


def test_yibao_code_changed_compiles_again(cache, monkeypatch):
    where = REPO / "city_configs" / "reference"
    assert load(where)[1] == 1
    stamp = policy_cache.code_stamp()
    path, size, mtime = stamp[0]
    edited = ((path, size, mtime + 1),) + stamp[1:]
    monkeypatch.setattr(policy_cache, "code_stamp", lambda: edited)
    assert load(where)[1] == 1


def _warned_in_process(where, capsys) -> str:
    assert main(["plan", str(where)]) == 0
    return capsys.readouterr().err


def test_warnings_are_issued_the_same_on_a_hit(tmp_path, cache, capsys):
    where = tmp_path / "w407.yb"
    shutil.copy(WARNING_POLICY, where)
    cold = _yibao("plan", str(where))
    warm = _yibao("plan", str(where))
    assert "W407" in cold.stderr
    assert warm.stderr == cold.stderr == _yibao("plan", str(where), "--no-cache").stderr
    assert len(entries(cache)) == 1
    with pytest.warns(UserWarning, match="W407"):  # in process: the same category
        load(where)


def test_no_cache_and_the_environment_bypass_it(cache, monkeypatch):
    assert main(["plan", "reference", "--no-cache"]) == 0
    assert entries(cache) == []
    monkeypatch.setenv("YIBAO_NO_CACHE", "1")
    assert main(["plan", "reference"]) == 0
    assert entries(cache) == []
    monkeypatch.setenv("YIBAO_NO_CACHE", "0")
    assert main(["plan", "reference"]) == 0
    assert len(entries(cache)) == 1


def test_no_cache_compiles_even_with_a_valid_entry(cache, monkeypatch):
    assert main(["plan", "reference"]) == 0
    from yibao.dsl import versions
    seen = []
    real = versions.compile_versions

    def spying(*args, **kwargs):
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(versions, "compile_versions", spying)
    assert main(["plan", "reference"]) == 0 and seen == []  # a hit: no compile
    assert main(["plan", "reference", "--no-cache"]) == 0 and seen == [1]


def test_check_and_test_always_compile(cache):
    assert main(["check", "reference"]) == 0
    assert main(["test", "jinhua"]) in (0, 1)
    assert entries(cache) == []


def test_an_unwritable_folder_is_one_line_and_no_failure(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("YIBAO_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(policy_cache, "_told_unwritable", False)
    assert main(["plan", "reference"]) == 0
    assert main(["plan", "rizhao"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not cached" in err[0] and "YIBAO_CACHE_DIR" in err[0]


def test_racing_processes_leave_one_whole_entry(cache):
    env = {**os.environ, "YIBAO_CACHE_DIR": str(cache)}
    racers = [subprocess.Popen([sys.executable, "-m", "yibao.dsl.cli", "plan", "jinhua"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for _ in range(4)]
    outputs = [r.communicate(timeout=300) for r in racers]
    assert all(r.returncode == 0 for r in racers)
    assert len({out for out, _ in outputs}) == 1
    (entry,) = entries(cache)  # no temporary file left behind
    assert entry.suffix == ".pickle"
    assert load(REPO / "city_configs" / "jinhua")[1] == 0  # whole: a hit


def _yibao(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yibao.dsl.cli", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ})


@pytest.mark.parametrize("city", ["reference", "rizhao"])
def test_settle_writes_the_same_results_warm_or_cold(city, tmp_path, cache):
    import pyarrow.parquet as pq
    from yibao.core.generate import generate_claims, write_claims
    claims = tmp_path / "claims.parquet"
    write_claims(generate_claims(3_000, 5), claims)
    runs = {}
    for name, extra in (("none", ["--no-cache"]), ("cold", []), ("warm", [])):
        out = tmp_path / name
        done = _yibao("settle", city, str(claims), "--out", str(out), "--no-progress", *extra)
        assert done.returncode in (0, 1), done.stderr
        runs[name] = [pq.read_table(out / f) for f in ("claims.parquet", "rejects.parquet")]
    assert len(entries(cache)) == 1
    assert runs["warm"] == runs["cold"] == runs["none"]


DECLARING = [
    'plugin "yibao-ageband" ">=1.0, <2"\n',
    'plugin   "x" "1"',
    'plugin # the age bands\n"x" "1"',  # what grammar.lark ignores between the tokens
    '# a comment line naming plugin "x"\n',  # conservatively parsed: declares nothing
]
NOT_DECLARING = ["# the tcm plugin's tcm_tilt\n", "layer plugins_x {}", "PLUGIN \"x\" \"1\""]


@pytest.mark.parametrize("text", DECLARING + NOT_DECLARING)
def test_the_declaration_prefilter_never_misses_one(text, tmp_path):
    from yibao.dsl import plugin_registry
    from yibao.dsl.passes.check_plugins import policy_plugins
    policy = tmp_path / "policy.yb"
    policy.write_text(HEADER + text, encoding="utf-8")
    may = plugin_registry._may_declare(policy)
    assert may == (text in DECLARING)
    if not may:
        assert policy_plugins(policy) == ()


HEADER = 'policy "t" {\n  effective 2024-01-01 to 2024-12-31\n}\n'


def test_every_repository_policy_the_prefilter_passes_declares_nothing():
    from yibao.dsl import plugin_registry
    from yibao.dsl.passes.check_plugins import policy_plugins
    files = sorted(REPO.glob("city_configs/**/*.yb")) + sorted(REPO.glob("tests/**/*.yb"))
    assert len(files) > 20
    for file in files:
        if not plugin_registry._may_declare(file):
            assert policy_plugins(file) == (), file


def test_a_hit_imports_no_compiler(cache):
    probe = ("import sys; from yibao.dsl.cli import main; main(['plan', 'rizhao']); "
             "print(sorted(m for m in sys.modules if m.startswith(('lark', 'yibao.dsl.parser', "
             "'yibao.dsl.compiler', 'yibao.dsl.passes', 'yibao.dsl.ast'))))")
    run = lambda: subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                 timeout=300, env={**os.environ}).stdout.splitlines()[-1]
    assert run() != "[]"  # the compile
    assert run() == "[]"  # the hit


def test_a_policy_that_does_not_pickle_is_returned_and_not_stored(cache, capsys):
    where = REPO / "city_configs" / "reference"
    unpicklable = types.SimpleNamespace(rule=lambda: 0)  # a plugin node holding a lambda
    assert policy_cache.cached_compile(where, registry(where), lambda: unpicklable) \
        is unpicklable
    assert entries(cache) == [] and capsys.readouterr().err == ""
