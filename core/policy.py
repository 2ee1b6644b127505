"""The policy: the one compiled unit a settle takes (the IR root above ``Plan``).

A ``Policy`` holds its versions — at least one ``Plan``, sorted by ``effective_from`` and
tiling time (core/settlement.py ``check_versions``) — and its provider payment (point method,
``core.points.plan.PointsPlan``, or None). It is frozen, printable as a whole (``describe()``)
and JSON-serialisable with one version string (``POLICY_VERSION``), as OPA's plan bundles a
policy's static data and plans in one root.

Where the provider payment lives: the compiler attaches it to each version's plan (a
provider block is part of a policy file), and ``Policy.of`` lifts the earliest version's into
the root, which is what the batch run settles the year's pools by (one provider payment per
run, as before). Each version keeps its own copy for the per-claim group and points columns.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import YibaoError
from .describe import format_date
from .plan import Plan, _decode, _encode, upgraded, versioned_json

POLICY_VERSION = "yibao.policy/1"


def version_problems(plans) -> list:
    """[(index of the later plan, "gap"|"overlap", message)] between consecutive versions
    (plans sorted by effective_from); empty when they tile time. The rule a policy's
    versions keep: the compiler reports it (E601/E602), a settle refuses it."""
    out = []
    for i in range(1, len(plans)):
        a, b = plans[i - 1], plans[i]
        if b.effective_from > a.effective_to + 1:
            out.append((i, "gap", f"no version is in force from "
                                  f"{format_date(a.effective_to + 1)} to "
                                  f"{format_date(b.effective_from - 1)}"))
        elif b.effective_from <= a.effective_to:
            out.append((i, "overlap", f"in force from {format_date(b.effective_from)}, but the "
                                      f"previous version runs to {format_date(a.effective_to)}"))
    return out


class PolicyShapeError(YibaoError, ValueError):
    """A Policy built without a version, or from something that is not a plan."""


@dataclass(frozen=True)
class Policy:
    name: str
    versions: tuple  # Plans sorted by effective_from, at least one
    provider: Any = None  # core.points.plan.PointsPlan of the earliest version, or None
    version: str = POLICY_VERSION

    def __post_init__(self):
        if not self.versions:
            raise PolicyShapeError(f"policy {self.name!r} has no version")
        if not all(isinstance(p, Plan) for p in self.versions):
            raise PolicyShapeError(f"policy {self.name!r}: every version must be a Plan")

    @staticmethod
    def of(plans) -> "Policy":
        """The policy of one plan or of several versions (any order); a Policy is returned
        as it is. Its name is the versions' distinct names joined by ", "."""
        if isinstance(plans, Policy):
            return plans
        plans = (plans,) if isinstance(plans, Plan) else tuple(plans)
        plans = tuple(sorted(plans, key=lambda p: p.effective_from))
        if not plans:
            raise PolicyShapeError("no policy version")
        name = ", ".join(dict.fromkeys(p.name for p in plans))
        return Policy(name, plans, plans[0].provider)

    @property
    def single(self) -> bool:
        """One version: settled by the plain single-plan path, never the version code."""
        return len(self.versions) == 1

    @property
    def first(self) -> Plan:
        return self.versions[0]

    @property
    def last(self) -> Plan:
        return self.versions[-1]

    def layer_names(self) -> list:
        """Layer names of every version, in layer order (the result columns' order)."""
        from .settlement import union_schema
        if self.single:
            return [layer.name for layer in self.first.layers]
        names = {layer.name for p in self.versions for layer in p.layers}
        return [n for n in union_schema(self.versions).names if n in names]

    def layer_labels(self) -> dict:
        labels = {layer.name: layer.label for p in self.versions for layer in p.layers}
        return {name: labels[name] for name in self.layer_names()}

    def describe(self) -> str:
        """The whole policy: a header line, then every version's plan (with its provider
        part) in date order."""
        head = f"policy {self.name} ({len(self.versions)} version" \
               f"{'s' if len(self.versions) != 1 else ''}, {self.version})"
        return "\n".join([head] + [p.describe().rstrip("\n") for p in self.versions]) + "\n"

    def to_json(self) -> str:
        data = {"version": self.version, "name": self.name,
                "versions": [_encode(p) for p in self.versions],
                "provider": _encode(self.provider)}
        return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "Policy":
        from .points import plan as _points  # noqa: F401  registers the provider nodes
        from .supervision import plan as _supervision  # noqa: F401  and the flag nodes
        data = versioned_json(text, POLICY_VERSION, "policy", PolicyShapeError)
        return Policy(data["name"], tuple(upgraded(_decode(v)) for v in data["versions"]),
                      _decode(data["provider"]))
