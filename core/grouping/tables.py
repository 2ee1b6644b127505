"""Load the generated CHS-DRG tables (``data/chs_drg_11``) into Python sets and dicts.

Both groupers read this one object: the reference grouper uses the sets directly, the
kernel compiles them into integer arrays (``yibao.core.grouping.compile``).
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data" / "chs_drg_11"

# Grouping status (分组状态): the reason a claim has no DRG, never an exception.
STATUSES = (
    "ok",                    # grouped
    "invalid_principal_dx",  # principal diagnosis null, empty or not a 医保版 2.0 code
    "invalid_secondary_dx",  # a secondary diagnosis is not a valid code
    "invalid_procedure",     # a procedure is not a valid code
    "invalid_sex",           # sex null or not 1 (male) / 2 (female)
    "invalid_age",           # age null, negative or not a whole number; age_days likewise
    "sex_conflict",          # no group, and the principal dx belongs to the other sex's MDC
    "no_mdc",                # no MDC's entry condition holds
    "no_adrg",               # an MDC took the claim but none of its ADRGs (0000 无法入组)
    "invalid_birth_weight",  # birth weight negative or not a whole number of grams
    "missing_age_days",      # the rule that would decide (新生儿 < 29 days) needs age_days
    "missing_birth_weight",  # the rule that would decide (出生体重 …) needs birth_weight
)
STATUS_CODE = {name: i for i, name in enumerate(STATUSES)}

# DRG split (细分): which suffix a severity (0 none, 1 CC, 2 MCC) lands on, keyed by
# the suffixes the ADRG has in 3_DRG.txt.
SPLIT_BY_SUFFIXES = {
    "9": ("9", "9", "9"),
    "135": ("5", "3", "1"),
    "15": ("5", "5", "1"),     # split on cost: CC cases did not differ from none (§1.3)
    "35": ("5", "3", "3"),     # "…3" 伴并发症或合并症: MCC or CC
}


@dataclass(frozen=True, eq=False)   # hashed by identity: compiled arrays are cached per object
class DrgTables:
    """The scheme (MDC/ADRG rules) and code tables, as loaded from JSON.

    ``folder`` is the converted folder the tables were read from (``load_tables``), None for
    tables built in Python: the kernel's compiled arrays of a folder's tables are kept on
    disk by the hashes of its files (``grouping/stored.py``)."""
    scheme: dict
    dx_sets: dict            # name -> frozenset of diagnosis codes
    proc_sets: dict          # name -> frozenset of procedure codes
    diagnoses: frozenset
    procedures: frozenset
    or_procedures: frozenset
    mcc: dict                # dx -> exclusion table
    cc: dict
    cce: dict                # principal dx -> its exclusion table
    trauma_regions: dict     # dx -> tuple of MDCZ body regions
    folder = None            # a class attribute, not a field: see FolderTables

    @property
    def default_mdc_order(self) -> tuple:
        return tuple(self.scheme["mdc_order"])

    def split_suffix(self, adrg: str, severity: int) -> str:
        """DRG suffix for an ADRG given severity 0/1/2 (none/CC/MCC)."""
        key = "".join(sorted(self.scheme["adrg"][adrg]["drgs"]))
        return SPLIT_BY_SUFFIXES[key][severity]


class FolderTables(DrgTables):
    """The ``DrgTables`` of a converted folder, its JSON read on the first use of a field.

    A run that groups with the kernel and finds the compiled arrays on disk
    (``grouping/stored.py``) never reads the 2.6 MB of JSON nor builds its ~50,000-code sets
    (≈ 0.05 s); the reference grouper and a compile read them as before. ``digests`` are the
    sha256 of the very bytes the fields were parsed from: the disk cache files compiled
    arrays under them, never under a later read of files that may have changed since."""

    def __init__(self, folder: Path):  # the fields are set by _read_fields, on first use
        object.__setattr__(self, "folder", Path(folder))

    def __getattr__(self, name):  # only called for what the instance does not hold yet
        if name.startswith("__") or name not in DrgTables.__dataclass_fields__ and \
                name != "digests":
            raise AttributeError(name)
        self._read_fields()
        return object.__getattribute__(self, name)

    def _read_fields(self) -> None:
        with _READING:  # two threads' first uses: one reads, the other waits for every field
            if "digests" in self.__dict__:
                return
            fields, digests = _fields(self.folder)
            for name, value in fields.items():
                object.__setattr__(self, name, value)
            object.__setattr__(self, "digests", digests)  # last: the fields are all there

    def read_digests(self):
        """The digests of the bytes already parsed, or None when no field was used yet."""
        return self.__dict__.get("digests")

    def __repr__(self) -> str:
        return f"FolderTables({str(self.folder)!r})"


_READING = threading.Lock()
SOURCE_FILES = ("scheme.json", "codes.json")  # all a converted folder's fields come from


def source_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fields(path: Path) -> tuple:
    """(the ``DrgTables`` fields of a converted folder, the sha256 of the bytes of its
    SOURCE_FILES they were parsed from)."""
    data = [(path / name).read_bytes() for name in SOURCE_FILES]
    scheme, codes = (json.loads(raw.decode("utf-8")) for raw in data)
    return dict(
        scheme=scheme,
        dx_sets={k: frozenset(v) for k, v in scheme["dx_sets"].items()},
        proc_sets={k: frozenset(v) for k, v in scheme["proc_sets"].items()},
        diagnoses=frozenset(codes["diagnoses"]),
        procedures=frozenset(codes["procedures"]),
        or_procedures=frozenset(codes["or_procedures"]),
        mcc=codes["mcc"], cc=codes["cc"], cce=codes["cce"],
        trauma_regions={k: tuple(v) for k, v in scheme["trauma_regions"].items()},
    ), tuple(source_digest(raw) for raw in data)


@lru_cache(maxsize=4)
def load_tables(path: str | None = None) -> DrgTables:
    """The CHS-DRG 1.1 tables shipped with the package (or another converted folder). The
    files are read on the first use of a field (``FolderTables``); a missing folder is
    named then."""
    return FolderTables(Path(path) if path else DATA_DIR)


def resolve_order(tables: DrgTables, mdc_order) -> tuple:
    """Validate a city MDC order; None means the scheme's default."""
    order = tables.default_mdc_order if mdc_order is None else tuple(mdc_order)
    unknown = [m for m in order if m not in tables.scheme["mdc"]]
    if unknown:
        raise ValueError(f"unknown MDC in mdc_order: {unknown}")
    return order
