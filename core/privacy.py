"""Insured ids never appear raw in logs or error messages.

``mask_id`` replaces an id by a keyed HMAC-SHA256 prefix: the same id gives the same mask within
a deployment (so an operator can correlate messages), but cannot be reversed without the key.
Set ``YIBAO_MASK_KEY`` to a secret per deployment; the built-in default only keeps reruns
deterministic on a developer's machine.
"""
from __future__ import annotations

import hashlib
import hmac
import os

_DEFAULT_KEY = b"yibao-default-mask-key: set YIBAO_MASK_KEY in production"


def _key() -> bytes:
    env = os.environ.get("YIBAO_MASK_KEY")
    return env.encode() if env else _DEFAULT_KEY


def mask_id(value) -> str:
    """``'id#3f9a1c2e'`` for a value, ``'null'`` for None."""
    if value is None:
        return "null"
    digest = hmac.new(_key(), str(value).encode(), hashlib.sha256).hexdigest()
    return f"id#{digest[:10]}"
