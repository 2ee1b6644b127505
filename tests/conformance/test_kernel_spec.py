"""The kernel's layer spec is defined once: the ``cpdef enum``s of _kernel.pxd are what the
lowering uses (core/lower.py takes them from the compiled kernel) and what _kernel.pyi types;
the .pyi's ``LayerSpec`` names exactly the fields ``fill_layer`` reads and the lowering
builds."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from yibao.core import _kernel, lower
from yibao.core.engine import lower_batch
from yibao.core.policytest import claims_table
from yibao.dsl.compiler import compile_policy

CORE = Path(lower.__file__).resolve().parent
REPO = CORE.parent


def pxd_enums() -> dict:
    """{enum name: {member: value}} of the .pxd's cpdef enums."""
    text = (CORE / "_kernel.pxd").read_text(encoding="utf-8")
    out = {}
    for name, body in re.findall(r"^cpdef enum (\w+):\n((?:    .*\n)+)", text, re.M):
        out[name] = {m: int(v) for m, v in re.findall(r"^\s+(\w+) = (\d+)", body, re.M)}
    return out


def pyi_classes() -> dict:
    tree = ast.parse((CORE / "_kernel.pyi").read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {(t.targets[0].id if isinstance(t, ast.Assign) else t.target.id):
                              (t.value.value if isinstance(t, ast.Assign) else None)
                              for t in node.body if isinstance(t, (ast.Assign, ast.AnnAssign))}
    return out


def test_enums_are_defined_once():
    enums = pxd_enums()
    assert set(enums) == {"DeductibleKind", "RatioKind"}
    stubs = pyi_classes()
    for name, members in enums.items():
        compiled = getattr(_kernel, name)
        assert {m.name: int(m) for m in compiled} == members
        assert stubs[name] == members
        assert getattr(lower, name) is compiled
        for member in members:
            assert getattr(lower, member) is compiled[member]


def test_layer_spec_fields_are_what_the_kernel_reads_and_the_lowering_builds():
    pyx = (CORE / "_kernel.pyx").read_text(encoding="utf-8")
    read = set(re.findall(r'd\["(\w+)"\]', pyx))
    typed = set(pyi_classes()["LayerSpec"])
    plan = compile_policy(REPO / "city_configs" / "reference")
    rows = [dict(claim_id="A1", person_id="p1", discharge_date="2024-03-01",
                 hospital_level=3, total=50_000, in_scope=45_000, self_first=2_000)]
    program = lower_batch(plan, claims_table(rows, plan)).program
    built = {k for layer in program.layers for k in layer}
    assert read == typed
    assert read <= built, sorted(read - built)
