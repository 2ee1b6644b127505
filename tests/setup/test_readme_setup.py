"""The README's two set-up commands, run in that order in a fresh clone, as a new user would.

The failure this guards against: `pip install .` (the README's first command) leaves an empty
`site-packages/yibao/city_configs` when `.ci/run` (the second) re-installs yibao editable into
the same `.venv`, and `yibao demo --city rizhao` then found no bundled city.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from yibao.dsl.commands import demo

REPO = Path(__file__).resolve().parents[2]


def test_bundled_root_skips_an_empty_leftover_folder(tmp_path, monkeypatch):
    """An empty folder first on the namespace path (a regular install's leftover) is passed over."""
    leftover, real = tmp_path / "leftover", tmp_path / "real"
    leftover.mkdir()
    (real / "somecity").mkdir(parents=True)
    (real / "somecity" / "policy.yb").write_text("")
    spec = importlib.util.spec_from_loader("yibao.city_configs", loader=None, is_package=True)
    spec.submodule_search_locations = [str(leftover), "/not/a/folder", str(real)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    assert demo.bundled_root() == real
    assert demo.bundled_policy("somecity") == real / "somecity"


def test_bundled_root_falls_back_to_the_checkout(monkeypatch):
    """An editable install whose hook lists no folder still finds the repository's cities."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert demo.bundled_root() == REPO / "city_configs"


def readme_setup_commands() -> tuple[str, str]:
    """The two commands of the README's set-up block, as written there."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Set-up: two commands\n.*?```\n(.*?)```", text, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert len(lines) == 2, f"the README's set-up block should hold two commands: {lines}"
    return lines[0], lines[1]


@pytest.mark.slow
def test_readme_two_commands_in_a_fresh_clone(tmp_path):
    """Clone, run the README's first command, then its second (`.ci/run`) on the tests of the
    bundled policies — in the same checkout and `.venv`, as the README says."""
    if not (REPO / ".git").exists():
        pytest.fail("this test needs the git checkout it runs in (it clones it)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    shared = REPO.parent / "shared"
    if shared.is_dir():   # tests find ../shared beside the checkout
        (tmp_path / "shared").symlink_to(shared, target_is_directory=True)
    first, second = readme_setup_commands()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not p.startswith(str(Path(sys.prefix))))
    done = subprocess.run(first, shell=True, cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "claims settled" in done.stdout
    assert_python_api(clone, tmp_path, env)  # `import yibao` from the regular install
    # the second command, limited to the tests of the bundled policies (not this test again)
    selected = f"{second} -k 'demo and not readme'"
    done = subprocess.run(selected, shell=True, cwd=clone, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\d+ passed", done.stdout), done.stdout[-2000:]
    yibao = clone / ".venv" / "bin" / "yibao"
    done = subprocess.run([str(yibao), "demo", "--city", "rizhao", "-n", "500"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "500 claims settled" in done.stdout, done.stderr
    assert_python_api(clone, tmp_path, env)  # and from the editable one that replaced it
    shutil.rmtree(clone / ".venv")


API_CHECK = """
import yibao
from yibao.core.generate import generate_claims
result = yibao.settle(yibao.compile("rizhao"), generate_claims(50, seed=1, start_year=2016))
print(yibao.__file__, result.results.num_rows)
"""


def assert_python_api(clone, cwd, env) -> None:
    """docs/api.md's two calls work with the clone's .venv however yibao was installed."""
    python = clone / ".venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", API_CHECK], cwd=cwd, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split()[-1] == "50", done.stderr[-3000:]
