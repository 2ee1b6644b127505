"""The ``yibao`` command line.

It lives under dsl/ because it composes the policy language, the plugins and the core (core
never imports either). Each subcommand is a module under ``yibao.dsl.commands`` defining
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; this module finds them,
so adding a command is adding a file. Exit codes everywhere, as linters use them: 0 done and
clean, 1 findings (rejected rows, failed cases, policy errors), 2 usage error or could not run
(bad usage, input or policy refused, named in one line), 70 internal error (an exception yibao
did not expect: a bug; one line on stderr naming it, the traceback only with YIBAO_DEBUG=1).
70 is EX_SOFTWARE of sysexits.h.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback

from . import commands as commands_pkg

EXIT_OK, EXIT_REJECTS, EXIT_FAILED, EXIT_INTERNAL = 0, 1, 2, 70


def discover_commands(wanted: str | None = None) -> dict:
    """NAME -> module of every command, or of ``wanted`` alone when it names one (its
    module is ``commands/<wanted>.py``): a command line that names its command builds that
    command's options only, instead of importing the 13 command modules and building all
    their options (≈ 10 ms of every command's start-up; `yibao --help` and an unknown
    command still see them all)."""
    if wanted is not None and not wanted.startswith("_") and wanted.isidentifier():
        name = f"{commands_pkg.__name__}.{wanted}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the command's module exists and lacks something: say so
                raise
            module = None
        if getattr(module, "NAME", None) == wanted and hasattr(module, "run"):
            return {wanted: module}
    found = {}
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
    return found


def named_command(argv) -> str | None:
    """The command a command line names: its first word, when it is not an option (the
    top level has only ``-h`` and ``--version``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return args[0] if args and not args[0].startswith("-") else None


def build_parser(commands: dict) -> argparse.ArgumentParser:
    from yibao.core import __version__
    parser = argparse.ArgumentParser(
        prog="yibao", description="Settle medical-insurance claims under a city's policy file.")
    parser.add_argument("--version", action="version", version=f"yibao {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in commands.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(command_parser=p)  # so a usage error shows this command's usage
    return parser


def expected_errors() -> tuple:
    """The exceptions from outside yibao that mean "could not run" (a bad path, a file that
    is not Parquet), reported in one line with exit 2; yibao's own are ``YibaoError``s and
    carry their exit code (tests/errors/test_one_base.py). Anything else is a bug in yibao
    and keeps its traceback."""
    import pyarrow as pa
    return (OSError, pa.ArrowException)


def main(argv=None) -> int:
    from .commands._common import collections_paused
    with collections_paused():
        commands = discover_commands(named_command(argv))
        parser = build_parser(commands)
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "operand_shape") and not any(e.startswith("-") for e in extra):
        args.operands += extra  # operands after an option (`settle P --out DIR C`): argparse
        extra = []              # stops a '*' positional at the first option
    if extra:  # argparse would blame the top level: show the subcommand's own usage instead
        getattr(args, "command_parser", parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return EXIT_FAILED
    normalise_spellings(args)
    if argv is None and not needs_pandas(args):  # the process's own command line, not a
        pyarrow_without_pandas_when_imported()   # caller's (tests, yibao_api) process
    from yibao.core.errors import YibaoError
    try:
        return commands[args.command].run(args)
    except KeyboardInterrupt:
        print("yibao: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except YibaoError as exc:  # the one place an error yibao raises on purpose becomes a code
        return refused(args.command, exc, exc.exit_code)
    except expected_errors() as exc:
        return refused(args.command, exc, EXIT_FAILED)
    except Exception as exc:  # a bug: never exit 1 (rejects) or 2 (refused input) for it
        return internal_error(args.command, exc)


class _HidePandas:
    """An import finder that refuses ``pandas`` (see ``pyarrow_without_pandas``)."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            raise ImportError("pandas is not needed by this command")
        return None


def needs_pandas(args) -> bool:
    """The commands that may hand pyarrow a pandas object: a Spark run (pyspark converts
    through pandas) and the studio (its web toolkit may)."""
    return args.command == "studio" or getattr(args, "engine", "local") == "spark"


def pyarrow_without_pandas() -> None:
    """Tell pyarrow there is no pandas, unless pandas is already imported.

    pyarrow imports pandas, when it is installed, the first time it converts any Python or
    numpy value (``pa.array([...])``, ``pa.scalar``, ``pc.equal(column, "x")``, importing
    ``pyarrow.dataset``), only to ask whether the value is a pandas object: about 0.5 s of a
    command that never sees one. Its lazy shim (``pyarrow.lib._pandas_api``) tries that
    import once and remembers the answer; here the one try is made while pandas is hidden,
    so the shim remembers "no pandas". pyarrow still imports pandas on a real need
    (``Table.to_pandas``): the shim retries then, and pandas is no longer hidden. Only a
    process that runs yibao as its program does this (``main()`` without ``argv``): a caller
    that calls ``main([...])`` in its own process keeps pyarrow as it was."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa
    hide = _HidePandas()
    sys.meta_path.insert(0, hide)
    try:
        pa.scalar(0)  # the shim's one soft try: it fails, and pyarrow records "no pandas"
    finally:
        sys.meta_path.remove(hide)


class _WhenPyarrowImported:
    """An import finder that, when ``pyarrow`` is first imported, lets the other finders load
    it and then runs ``pyarrow_without_pandas``; then it leaves ``sys.meta_path``."""

    def find_spec(self, name, path=None, target=None):
        if name != "pyarrow":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)  # pyarrow's own, from the finders after this one
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenHidePandas(spec.loader)
        return spec


class _ThenHidePandas:
    """pyarrow's loader, followed by ``pyarrow_without_pandas`` once the module has run; the
    module keeps its own loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader
        self.loader.exec_module(module)
        pyarrow_without_pandas()


def pyarrow_without_pandas_when_imported() -> None:
    """``pyarrow_without_pandas`` right after the command first imports pyarrow (now, if it is
    already imported). A command that never touches Arrow, such as `yibao check`, then never
    imports pyarrow (≈ 0.15 s) only to tell it there is no pandas."""
    if "pyarrow" in sys.modules:
        pyarrow_without_pandas()
    elif not any(isinstance(f, _WhenPyarrowImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenPyarrowImported())


def normalise_spellings(args) -> None:
    """The positional POLICY CLAIMS operands and ``-n/--count`` of the commands that take
    them, with the previous release's flags mapped onto them (and a deprecation note)."""
    from .commands._common import resolve_count, resolve_operands
    resolve_operands(args, args.command_parser)
    resolve_count(args)


def refused(command: str, exc: BaseException, code: int) -> int:
    """One line, ``yibao CMD: error: message``, and the exit code (the traceback only with
    YIBAO_DEBUG=1)."""
    if os.environ.get("YIBAO_DEBUG") == "1":
        raise exc
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"yibao {command}: error: {message}", file=sys.stderr)
    return code


def internal_error(command: str, exc: BaseException) -> int:
    """One line naming the exception and where it was raised (exit 70); the traceback only
    with YIBAO_DEBUG=1, so automation can tell a crash from a refusal or a run with rejects."""
    if os.environ.get("YIBAO_DEBUG") == "1":
        traceback.print_exception(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    message = " ".join(str(exc).split())[:300]
    print(f"yibao {command}: internal error: {type(exc).__name__}{': ' + message if message else ''}"
          f"{where} (a bug in yibao; YIBAO_DEBUG=1 shows the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def one_blas_thread() -> None:
    """``OPENBLAS_NUM_THREADS=1`` unless the user set it, before numpy is first imported.

    numpy's OpenBLAS starts a pool of threads when numpy is imported, one per core, and they
    spin waiting for work: on the 2-core benchmark machine that was 0.05-0.1 s of CPU before
    a `yibao settle` read its first claim (c18, benchmarks/README.md) and ~2 % of a 2M run's
    samples (w17's perf), taken from the read-ahead and the run's own threads. yibao does no
    linear algebra (no matrix product, no ``numpy.linalg``), so the pool only costs. Only the
    program sets it (``entry``), not a caller of ``main([...])`` in its own process; it is
    inherited by the processes a command starts, and a value the user set is kept."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def small_pages() -> None:
    """``NUMPY_MADVISE_HUGEPAGE=0`` and ``MIMALLOC_ALLOW_THP=0``, each unless the user set it,
    before numpy and pyarrow are first imported.

    numpy asks the kernel for transparent huge pages (``madvise``) on every array of 4 MiB or
    more, so the first touch of any byte faults in and zeroes a whole 2 MiB page. On the
    benchmark VM a fresh huge page is dear in system time (its memory is handed back to the
    host when freed and faulted in again), and a 2M-claim `yibao settle` run right after
    another process spent 1.07-1.20 s of system CPU with them and 0.60-0.77 s without, its
    wall time 1.84-2.09 s against 1.58-1.70 s (5 alternating rounds, benchmarks/README.md,
    "session 9: small pages"); user CPU did not move. Like ``one_blas_thread``, only the
    program sets it, and a value the user set is kept (``NUMPY_MADVISE_HUGEPAGE=1`` restores
    numpy's default).

    ``MIMALLOC_ALLOW_THP=0`` does the same for pyarrow's memory pool (mimalloc, pyarrow's
    default on Linux): mimalloc reserves its arenas a GiB at a time with huge pages advised,
    so Arrow's decoded columns were faulted in 2 MiB at a time too (22 % of a 2M run's
    `perf` samples zeroing huge pages after numpy's advice was already off, session 10).
    mimalloc reads it when pyarrow first allocates and then turns transparent huge pages off
    for the whole process (``prctl(PR_SET_THP_DISABLE)``), so it also covers any other
    library's advice. 4 alternating rounds after a DuckDB run: 1.43-1.51 s wall and
    0.51-0.57 s system CPU against 1.58-1.78 s and 0.79-1.14 s (benchmarks/README.md,
    "Session 10: no huge pages in Arrow's pool"). A mimalloc too old to know the option
    ignores it; ``MIMALLOC_ALLOW_THP=1`` keeps mimalloc's default."""
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")


FAST_EXIT = ("settle",)  # commands whose process ends without the interpreter's teardown


def entry() -> None:
    """The ``yibao`` program (its console script and ``python -m yibao.dsl.cli``): ``main()``
    on the process's own command line, then the exit. A ``FAST_EXIT`` command's process ends
    at once (``os._exit`` after flushing stdout and stderr) instead of tearing the
    interpreter down module by module: when ``main`` returns, its outputs are written,
    fsynced and published and its threads joined, and the teardown was 0.1-0.2 s of CPU
    after a 2M-claim ``yibao settle`` (issue 14, w16). A Spark run keeps the ordinary exit
    (pyspark stops its JVM from an atexit hook), as do the other commands."""
    one_blas_thread()
    small_pages()
    code = main()
    if sys.argv[1:2] and sys.argv[1] in FAST_EXIT and "pyspark" not in sys.modules:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe, a full disk: the output is lost, so
            code = code or 120  # not success (120: what the interpreter's own exit gives)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
