"""Loading a policy folder's versions for the policy-author commands (explain, test, diff)."""
from __future__ import annotations

import sys

from ..errors import PolicyError


def load_versions(path, reg):
    """The folder's versions (sorted plans), or None after printing every error."""
    from ..versions import compile_versions
    try:
        return compile_versions(path, registry=reg)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"yibao: no policy at {path}: {exc}", file=sys.stderr)
    return None


def settle_under(plans, claims, reg):
    """settle_versions when there are several versions, else the plain kernel batch."""
    from yibao.core.engine import settle_batch
    from yibao.core.versions import settle_versions
    if len(plans) == 1:
        return settle_batch(plans[0], claims, reg)
    return settle_versions(plans, claims, reg)
