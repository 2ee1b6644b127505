"""`yibao studio [CITY_FOLDER] [--port N] [--no-browser]`: the policy editor in the browser.

Serves ``yibao.dsl.studio`` on 127.0.0.1 only (flags spelt as Jupyter's). Needs the optional
extra: ``pip install 'yibao[studio]'``."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "studio"
HELP = "edit, run, explain, test and compare a city policy in a local web page (127.0.0.1)"


def add_arguments(parser):
    parser.add_argument("folder", nargs="?", default=".",
                        help="the city folder (policy *.yb, tables *.csv, tests.yaml); "
                             "default: the current folder")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser tab, only serve")


def port_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be listened on (checked first, for a one-line message
    instead of the web server's traceback)."""
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run(args) -> int:
    folder = Path(args.folder)
    if not any(folder.glob("*.yb")):
        print(f"yibao studio: no policy file (*.yb) in {folder}", file=sys.stderr)
        return 2
    if not port_free(args.port):
        print(f"yibao studio: port {args.port} is in use on 127.0.0.1; give another with "
              "--port N", file=sys.stderr)
        return 2
    try:
        from yibao.dsl.studio.app import serve
    except ImportError as exc:
        print(f"yibao studio: needs the studio extra ({exc.name} is missing): "
              "pip install 'yibao[studio]'", file=sys.stderr)
        return 2
    serve(folder, port=args.port, open_browser=not args.no_browser)
    return 0
