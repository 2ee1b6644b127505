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


def load_policy(path, reg):
    """The folder's compiled ``Policy`` (its versions), or None after printing every error. ``path``
    may name a bundled city; PolicyNotFound when it names nothing (resolve_policy)."""
    from ..errors import PolicyError
    from ..versions import compile_versions
    from ._common import collections_paused
    where = resolve_policy(path)
    try:
        with collections_paused():
            return compile_versions(where, registry=reg)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"yibao: no policy at {path}: {exc}", file=sys.stderr)
    return None

