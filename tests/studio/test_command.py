"""`yibao studio`'s own refusals, before any web server starts."""
from __future__ import annotations

import socket
from pathlib import Path

from yibao.dsl.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_a_folder_without_a_policy_is_refused(tmp_path, capsys):
    assert main(["studio", str(tmp_path), "--no-browser"]) == 2
    assert "no policy file (*.yb)" in capsys.readouterr().err


def test_a_port_in_use_is_refused_in_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["studio", str(REPO / "city_configs" / "jinhua"), "--port", str(port),
                     "--no-browser"])
    assert code == 2
    assert f"port {port} is in use" in capsys.readouterr().err
