"""Finding and loading a policy for the commands that take one (check, plan, test, settle,
explain, diff, calibrate): a path, or the name of a city bundled with yibao."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from yibao.core.errors import YibaoError


class PolicyNotFound(YibaoError, FileNotFoundError):
    """The policy argument is neither an existing path nor a bundled city's name: the command
    line reports it in one line, `yibao CMD: error: …`, with exit 2."""


def resolve_policy(text) -> Path:
    """Where the policy ``text`` names lives. A path that exists wins (a folder called
    ``rizhao`` in the working directory shadows the bundled city); else a bundled city's
    name (``rizhao``, see `yibao demo --city`); else PolicyNotFound listing the bundled
    cities."""
    from .demo import bundled_cities, find_bundled
    path = Path(text)
    if path.exists():
        return path
    looks_like_name = os.sep not in str(text) and "/" not in str(text) and path.suffix == ""
    found = find_bundled(str(text)) if looks_like_name else None
    if found is not None:
        return found
    raise PolicyNotFound(f"no policy at {text}: not a file or folder, nor a bundled city "
                         f"(bundled: {', '.join(bundled_cities())})")


def load_policy(path, reg, cache: bool = True):
    """The folder's compiled ``Policy`` (its versions), or None after printing every error. ``path``
    may name a bundled city; PolicyNotFound when it names nothing (resolve_policy).
    ``cache``: through the compiled-policy cache (dsl/policy_cache.py) unless
    ``YIBAO_NO_CACHE`` is set; False (``--no-cache``, and the commands that exist to show
    diagnostics) always compiles."""
    from ._common import collections_paused
    where = resolve_policy(path)
    try:
        with collections_paused():
            return _compiled(where, reg, cache)
    except _policy_error() as exc:
        print(str(exc), file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"yibao: no policy at {path}: {exc}", file=sys.stderr)
    return None


def _compiled(where: Path, reg, cache: bool):
    """The policy at ``where``: from the cache when it may be used, else compiled. The
    compiler is imported only for a compile (a hit needs none of it)."""
    def compile():
        from ..versions import compile_versions
        return compile_versions(where, registry=reg)
    from .. import policy_cache
    if cache and policy_cache.enabled():
        return policy_cache.cached_compile(where, reg, compile)
    return compile()


def _policy_error() -> type:
    from ..errors import PolicyError
    return PolicyError


def policy_words(policy) -> list:
    """The words of the policy's source files: the claim columns its layers read are among
    them. A guess for reading the claims ahead while the policy compiles (settle's
    read-ahead, explain's): it never changes a result, only what is decoded early. Empty
    when the files cannot be read (compiling says why)."""
    import re
    try:
        where = resolve_policy(policy)
        files = sorted(where.rglob("*.yb")) if where.is_dir() else [where]
        return sorted({w for f in files
                       for w in re.findall(r"[A-Za-z_]\w*", f.read_text(encoding="utf-8"))})
    except (OSError, UnicodeError):  # PolicyNotFound too: compiling says what is wrong
        return []
