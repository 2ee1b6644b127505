"""Start-up: a command line that names its command imports that command's module alone and
builds its options only (``cli.discover_commands(wanted)``, issue 14 c18: ≈ 15 ms of every
command's start-up went to importing the 13 command modules and building all their options).
`yibao --help` and an unknown command still list every command."""
from __future__ import annotations

import subprocess
import sys

from yibao.dsl import cli

from .conftest import CONFIGS, REPO

COMMAND_MODULES = """
import sys
from yibao.dsl import cli
sys.argv = ["yibao", *sys.argv[1:]]
try:
    code = cli.main()
except SystemExit as exc:  # --help
    code = exc.code
loaded = sorted(m.rsplit(".", 1)[1] for m in sys.modules
                if m.startswith("yibao.dsl.commands.")
                and hasattr(sys.modules[m], "NAME") and hasattr(sys.modules[m], "run"))
print("COMMANDS " + " ".join(loaded))
sys.exit(code)
"""


def command_modules(*argv) -> tuple:
    """(exit code, the command modules imported) of ``yibao ARGV`` in a fresh process."""
    done = subprocess.run([sys.executable, "-c", COMMAND_MODULES, *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    line = next(x for x in done.stdout.splitlines() if x.startswith("COMMANDS"))
    return done.returncode, line.split()[1:]


def test_a_named_command_imports_its_own_module_only():
    # demo: the bundled cities, which _policies.resolve_policy asks for a policy's name
    assert command_modules("check", str(CONFIGS / "reference")) == (0, ["check", "demo"])
    assert command_modules("settle", "--help") == (0, ["settle"])


def test_help_and_an_unknown_command_still_see_every_command():
    every = sorted(cli.discover_commands())
    assert len(every) == 13
    assert command_modules("--help") == (0, every)
    code, loaded = command_modules("settel", "x")
    assert code == 2 and loaded == every


def test_a_name_that_is_no_command_module_finds_every_command():
    every = cli.discover_commands()
    for name in ("summary", "_common", "settle.py", "..", "nosuch"):
        assert cli.discover_commands(name) == every
    assert list(cli.discover_commands("plan")) == ["plan"]


def test_the_command_is_the_first_word_unless_an_option():
    assert cli.named_command(["settle", "p", "c"]) == "settle"
    assert cli.named_command(["--version"]) is None
    assert cli.named_command(["-h", "settle"]) is None
    assert cli.named_command([]) is None
