"""Extension through entry points alone: pip-install the standalone ``yibao-ageband`` package
(tests/plugins/thirdparty/, the example of docs/plugins.md), find it through the
``yibao.plugins`` entry-point group, compile a policy that declares it and calls its function,
settle on the kernel and the reference, then uninstall it. Beside it, ``yibao-impostor``
(tests/plugins/impostor/): an entry point named ``family`` that must never be imported."""
import datetime as dt
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from yibao.plugins.manager import build_registry, make_plugin_manager, plugin_info

from yibao.dsl.errors import PolicyError

from plugin_helpers import HEADER, both, by_claim, claims, compile_policy_text

PACKAGE = Path(__file__).parent / "thirdparty"
IMPOSTOR = Path(__file__).parent / "impostor"
POLICY = """
plugin "yibao-ageband" ">=1.0, <2"
attribute age: int
layer basic "基本医保(老年倾斜)" {
  base in_scope - self_first
  ratio 70% + age_band_uplift(age)
}
"""


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    # build in a scratch copy so the source folder gets no build/ or egg-info
    import shutil
    root = tmp_path_factory.mktemp("plugins")
    for name, folder in (("ageband", PACKAGE), ("impostor", IMPOSTOR)):
        shutil.copytree(folder, root / name)
        pip("install", "--no-build-isolation", "--no-deps", str(root / name))
    try:
        yield
    finally:
        pip("uninstall", "-y", "yibao-ageband", "yibao-impostor")
        for mod in [m for m in sys.modules if m.startswith("yibao_ageband")]:
            del sys.modules[mod]


def ages():
    return claims(*[{"claim_id": f"a{age}", "person_id": f"p{age}", "age": age,
                     "total": 10_000} for age in (59, 60, 69, 70, 79, 80, 101)])


def test_the_entry_point_plugin_settles_a_policy(installed):
    names = [ep.name for ep in metadata.entry_points(group="yibao.plugins")]
    assert "ageband" in names
    pm = make_plugin_manager(declared=policy_plugins_of(POLICY))
    assert ("ageband", "1.0.0", ("yibao_register_functions",)) in plugin_info(pm)
    reg = build_registry(pm)
    assert reg.functions["age_band_uplift"].plugin == "ageband"
    assert reg.distributions["ageband"] == ("yibao-ageband", "1.0.0")
    plan = compile_policy_text(POLICY, reg)
    for res in both(plan, ages(), reg):
        assert by_claim(res, "basic") == {"a59": 7_000, "a60": 7_200, "a69": 7_200,
                                          "a70": 7_500, "a79": 7_500, "a80": 7_800,
                                          "a101": 7_800}


def policy_plugins_of(body: str):
    from yibao.dsl.parser import parse
    from yibao.dsl.passes.check_plugins import declared_plugins
    return declared_plugins(parse(HEADER + body, "t.yb"))


def test_an_undeclared_plugin_is_not_loaded(installed):
    pm = make_plugin_manager()
    assert "ageband" not in pm.distributions
    with pytest.raises(PolicyError, match="E702"):  # declared, but built without it
        compile_policy_text(POLICY, build_registry(pm))


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "yibao.dsl.cli", *map(str, args)],
                          capture_output=True, text=True, env=env)


def test_settle_loads_the_declared_plugin_records_it_and_never_the_impostor(installed,
                                                                           tmp_path):
    import json
    import os
    from yibao.core.generate import write_claims
    folder = tmp_path / "city"
    folder.mkdir()
    (folder / "policy.yb").write_text(HEADER + POLICY, encoding="utf-8")
    write_claims(ages(), tmp_path / "in.parquet")
    marker = tmp_path / "impostor-imported"
    env = dict(os.environ, YIBAO_PLUGINS_ALLOW="family,tcm,yibao-ageband",
               YIBAO_IMPOSTOR_MARKER=str(marker))
    done = run_cli("settle", folder, tmp_path / "in.parquet", "--out",
                   tmp_path / "o", "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text(encoding="utf-8"))
    plugins = {p["name"]: p for p in manifest["plugins"]}
    assert plugins["ageband"] == {"name": "ageband", "distribution": "yibao-ageband",
                                  "version": "1.0.0"}
    assert plugins["family"]["distribution"] == "yibao"
    assert not marker.exists()  # the impostor named 'family' was never even imported
    # a policy needing another version of the plugin: refused in one line, exit 2
    (folder / "policy.yb").write_text(HEADER + POLICY.replace(">=1.0, <2", ">=2"),
                                      encoding="utf-8")
    done = run_cli("settle", folder, tmp_path / "in.parquet", "--out",
                   tmp_path / "o2", "--no-progress", env=env)
    assert done.returncode == 2
    assert "version 1.0.0 is installed but the policy declares '>=2'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not marker.exists()


def test_the_allowlist_refuses_a_declared_plugin_it_does_not_name(installed):
    from yibao.plugins.manager import PluginError
    with pytest.raises(PluginError, match="YIBAO_PLUGINS_ALLOW does not allow it"):
        make_plugin_manager(allowlist="family", declared=policy_plugins_of(POLICY))


def test_the_docs_example_is_this_package():
    import re
    docs = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text("utf-8")
    source = (PACKAGE / "yibao_ageband" / "__init__.py").read_text("utf-8")
    project = (PACKAGE / "pyproject.toml").read_text("utf-8")
    python_block = re.search(r"implements one hook:\n\n```python\n(.*?)```", docs, re.S).group(1)
    toml_block = re.search(r"```toml\n(.*?)```", docs, re.S).group(1)
    for line in python_block.splitlines():
        assert line.split("  #")[0].rstrip() in source, line
    for line in toml_block.splitlines():
        assert line in project, line
    policy_block = re.search(r"a policy that declares it can write:\n\n```\n(.*?)```", docs,
                             re.S).group(1)
    assert policy_block.strip() == POLICY.strip()
