"""Extension through entry points alone: pip-install the standalone ``yibao-ageband`` package
(tests/plugins/thirdparty/, the example of docs/plugins.md), find it through the
``yibao.plugins`` entry-point group, compile a policy calling its function, settle on the
kernel and the reference, then uninstall it."""
import datetime as dt
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from yibao.plugins.manager import build_registry, make_plugin_manager, plugin_info

from plugin_helpers import both, by_claim, claims, compile_policy_text

PACKAGE = Path(__file__).parent / "thirdparty"
POLICY = """
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
    src = tmp_path_factory.mktemp("ageband") / "pkg"
    shutil.copytree(PACKAGE, src)
    pip("install", "--no-build-isolation", "--no-deps", str(src))
    try:
        yield
    finally:
        pip("uninstall", "-y", "yibao-ageband")
        for mod in [m for m in sys.modules if m.startswith("yibao_ageband")]:
            del sys.modules[mod]


def test_the_entry_point_plugin_settles_a_policy(installed):
    names = [ep.name for ep in metadata.entry_points(group="yibao.plugins")]
    assert "ageband" in names
    pm = make_plugin_manager(allowlist="ageband")
    assert ("ageband", "1.0.0", ("yibao_register_functions",)) in plugin_info(pm)
    reg = build_registry(pm)
    assert reg.functions["age_band_uplift"].plugin == "ageband"
    plan = compile_policy_text(POLICY, reg)
    t = claims(*[{"claim_id": f"a{age}", "person_id": f"p{age}", "age": age, "total": 10_000}
                 for age in (59, 60, 69, 70, 79, 80, 101)])
    for res in both(plan, t, reg):
        assert by_claim(res, "basic") == {"a59": 7_000, "a60": 7_200, "a69": 7_200,
                                          "a70": 7_500, "a79": 7_500, "a80": 7_800,
                                          "a101": 7_800}


def test_the_allowlist_keeps_the_installed_plugin_out(installed):
    pm = make_plugin_manager(allowlist="family")
    assert ("ageband", "not on the allowlist (YIBAO_PLUGINS_ALLOW)") in pm.skipped
    assert "age_band_uplift" not in build_registry(pm).functions


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
    policy_block = re.search(r"a policy can write:\n\n```\n(.*?)```", docs, re.S).group(1)
    assert policy_block.strip() == POLICY.strip()
