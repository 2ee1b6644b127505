"""Expected failures (a bad path, a file that is not Parquet, bad option values) end in one
line `yibao <command>: error: …` on stderr and exit 2, never a traceback or exit 1; a bug
(an exception yibao did not expect) exits 70 with one line naming it, its traceback only with
YIBAO_DEBUG=1."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from yibao.core.generate import generate_claims, write_claims
from yibao.dsl import cli
from yibao.dsl.cli import main

from .conftest import CONFIGS

REFERENCE = str(CONFIGS / "reference")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_errors")
    claims = root / "c.parquet"
    write_claims(generate_claims(50, seed=3), claims)
    fake = root / "fake.parquet"
    fake.write_text("claim_id,total\nC1,100\n", encoding="utf-8")
    blocker = root / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    return {"claims": str(claims), "fake": str(fake), "unwritable": str(blocker / "sub")}


def one_line_error(capsys, command):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"yibao {command}: error: "), err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    return err


def test_settle_into_an_unwritable_folder(files, capsys):
    argv = ["settle", REFERENCE, files["claims"], "--out", files["unwritable"],
            "--no-progress"]
    assert main(argv) == 2
    one_line_error(capsys, "settle")


def test_generate_to_an_unwritable_path(files, capsys):
    assert main(["generate", "-n", "10", "--out", files["unwritable"]]) == 2
    one_line_error(capsys, "generate")


@pytest.mark.parametrize("argv", [
    ["explain", REFERENCE, "{fake}", "--claim-id", "C1"],
    ["diff", REFERENCE, REFERENCE, "{fake}"],
    ["settle", REFERENCE, "{fake}", "--out", "{out}", "--no-progress"],
])
def test_a_csv_named_parquet(argv, files, tmp_path, capsys):
    argv = [a.format(fake=files["fake"], out=str(tmp_path / "o")) for a in argv]
    assert main(argv) == 2
    one_line_error(capsys, argv[0])


@pytest.mark.parametrize("value", ["0", "-3"])
def test_partitions_below_one_is_a_usage_error(value, files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["settle", REFERENCE, files["claims"], "--out", str(tmp_path / "o"),
              "--partitions", value])
    assert exit_.value.code == 2
    assert "--partitions" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_bug_exits_70_with_one_line(monkeypatch, capsys):
    commands = cli.discover_commands()

    def broken(args):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(cli, "discover_commands", lambda wanted=None: commands)
    monkeypatch.setattr(commands["generate"], "run", broken)
    monkeypatch.delenv("YIBAO_DEBUG", raising=False)
    assert main(["generate", "--out", "x"]) == cli.EXIT_INTERNAL == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("yibao generate: internal error: ZeroDivisionError: a bug at ")
    monkeypatch.setenv("YIBAO_DEBUG", "1")
    assert main(["generate", "--out", "x"]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_subprocess_exit_code_and_debug_traceback(files):
    argv = [sys.executable, "-m", "yibao.dsl.cli", "generate", "-n", "5", "--out",
            files["unwritable"]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("yibao generate: error: ")
    debug = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "YIBAO_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_demo_settles_a_policy_of_another_year(capsys):
    """Rizhao's policy is in force in 2016 only: the demo's sample is discharged then."""
    assert main(["demo", "--city", "rizhao", "-n", "2000"]) == 0
    out = capsys.readouterr().out
    assert "2,000 claims settled, 0 rejected" in out and "hint" not in out


def test_generate_start_year_and_the_all_rejected_hint(tmp_path, capsys):
    rizhao = str(CONFIGS / "rizhao")
    c24, c16 = tmp_path / "c24", tmp_path / "c16"
    assert main(["generate", "-n", "300", "--out", str(c24)]) == 0
    assert main(["generate", "-n", "300", "--start-year", "2016", "--out", str(c16)]) == 0
    capsys.readouterr()
    assert main(["settle", rizhao, str(c24), "--out", str(tmp_path / "a"),
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert ("hint: all 300 claims are outside the policy period 2016-01-01 – 2016-12-31"
            in err)
    assert main(["settle", rizhao, str(c16), "--out", str(tmp_path / "b"),
                 "--no-progress"]) == 0
    assert "hint" not in capsys.readouterr().err


def test_a_yibao_error_exits_with_its_own_code_in_one_line(monkeypatch, capsys):
    """dsl/cli.py maps every YibaoError to its exit code in one place (core/errors.py)."""
    import yibao.dsl.commands.check as check
    from yibao.core.errors import EXIT_FINDINGS, YibaoError
    from yibao.dsl.cli import main

    class Found(YibaoError):
        exit_code = EXIT_FINDINGS

    def run(args):
        raise Found("three claims over the cap\n  at line 4")

    monkeypatch.setattr(check, "run", run)
    assert main(["check", "anything"]) == EXIT_FINDINGS
    err = capsys.readouterr().err
    assert err == "yibao check: error: three claims over the cap at line 4\n"


def test_the_core_errors_of_a_run_are_yibao_errors():
    from yibao.core.errors import EXIT_CANNOT_RUN, YibaoError
    from yibao.core.explain import ExplainError
    from yibao.core.manifest import OutputBusyError
    from yibao.core.policy import PolicyShapeError
    from yibao.core.runner import BalanceError, InputError
    from yibao.core.settlement import SettlementError, VersionError
    for cls in (ExplainError, OutputBusyError, PolicyShapeError, BalanceError, InputError,
                SettlementError, VersionError):
        assert issubclass(cls, YibaoError) and cls.exit_code == EXIT_CANNOT_RUN, cls
