"""The CHS-DRG grouping input: its schema, and how a user's extract is made to fit it.

``DRG_INPUT_SCHEMA`` is the canonical form (documented field by field in docs/grouping.md).
``group_drg`` and the reference grouper accept what real extracts hold and normalise it here,
once, before either grouper sees a claim, so both group the same normalised claim:

- ``sex``: 1 / 2 as any integer type, or text '1' '2' 'M' 'F' 'male' 'female' '男' '女'
  (case and surrounding spaces ignored). Anything else, null included, is ``invalid_sex``.
- ``age``, ``age_days``, ``birth_weight``: integers of any width, integral floats, or decimal
  text (spaces ignored). Null stays null; a value that is not a whole number becomes -1, so
  validation rejects it (``invalid_age`` / ``invalid_birth_weight``) instead of guessing.
- codes (``principal_dx``, ``secondary_dx``, ``procedures``): a code of the valid list is
  taken as is. Any other is looked up by its *skeleton*: surrounding spaces, case, the dot
  and the letter ``x`` after the first character ignored (``' k22.301 '``, ``I10.05``,
  ``E14.000X001``); then, when the code has no ``x`` extension, is not itself valid and
  exactly one valid code extends it (``E14.000`` → ``E14.000x001``), that code. A code that
  matches none or several stays unknown, and the claim gets ``invalid_*`` with that reason.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# The canonical grouping input. Types are what the groupers compute on; the accepted input
# types are wider (module docstring).
DRG_INPUT_SCHEMA = pa.schema([
    pa.field("principal_dx", pa.string(), metadata={"doc": "主要诊断, 医保版 ICD-10 2.0"}),
    pa.field("secondary_dx", pa.list_(pa.string()), metadata={"doc": "其他诊断, any order"}),
    pa.field("procedures", pa.list_(pa.string()),
             metadata={"doc": "手术操作, ICD-9-CM-3 2.0, the principal (主要手术) first"}),
    pa.field("sex", pa.int8(), metadata={"doc": "1 male, 2 female"}),
    pa.field("age", pa.int32(), metadata={"doc": "age in whole years"}),
    pa.field("age_days", pa.int32(), metadata={"doc": "days of life (出生天数); needed for age 0"}),
    pa.field("birth_weight", pa.int32(), metadata={"doc": "grams; 0 or null = not recorded"}),
    pa.field("los", pa.int32(), metadata={"doc": "length of stay in days (not read by 1.1)"}),
    pa.field("discharge_status", pa.string(),
             metadata={"doc": "离院方式 (not read by the national 1.1 rules)"}),
])

BAD_VALUE = -1          # a demographic value that is not a whole number (validation rejects it)
_SEX_WORDS = {"1": 1, "2": 2, "M": 1, "F": 2, "MALE": 1, "FEMALE": 2, "男": 1, "女": 2}


def sex_code(value) -> int | None:
    """1 / 2 for a recognised sex, else None (null and unknown values alike)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value) if value in (1, 2) else None
    if isinstance(value, float):
        return int(value) if value in (1.0, 2.0) else None
    return _SEX_WORDS.get(str(value).strip().upper())


def whole_number(value) -> int | None:
    """An int for a whole number (int, integral float, decimal text); None for null;
    ``BAD_VALUE`` for anything else (so validation rejects it)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BAD_VALUE
    if isinstance(value, (int, np.integer)):
        return int(value) if -2**31 < value < 2**31 else BAD_VALUE
    if isinstance(value, (float, np.floating)):
        return int(value) if value == value and float(value).is_integer() \
            and abs(value) < 2**31 else BAD_VALUE
    text = str(value).strip()
    if text.lstrip("+-").isdigit() and text.isascii():
        return whole_number(int(text))
    return BAD_VALUE


def skeleton(code: str) -> str:
    """A code with spaces, case, the dot and every ``x`` after the first character ignored."""
    c = code.strip().upper().replace(" ", "").replace(".", "")
    return c[:1] + c[1:].replace("X", "")


class CodeNormaliser:
    """Maps an input code to a code of ``universe`` (see the module docstring), or None.

    The skeleton and base maps are built on the first code that is not in the universe:
    building them walks every code of the universe (≈ 0.2 s for the CHS-DRG diagnoses), and
    a claim whose codes are all valid — every claim ``yibao explain`` groups, mostly — never
    needs them."""

    def __init__(self, universe):
        self.universe = frozenset(universe)
        self._maps = None  # (by_skeleton, by_base), built by ``_lookups`` when first needed

    def _lookups(self) -> tuple:
        if self._maps is None:
            self._maps = _skeleton_maps(self.universe)
        return self._maps

    @property
    def by_skeleton(self) -> dict:
        """skeleton -> the one code of the universe with that skeleton."""
        return self._lookups()[0]

    @property
    def by_base(self) -> dict:
        """skeleton of a base (``E14.000``) -> the one code extending it (``E14.000x001``)."""
        return self._lookups()[1]

    def __call__(self, code):
        if code is None or code in self.universe:
            return code
        if not isinstance(code, str):
            return None
        key = skeleton(code)
        by_skeleton, by_base = self._lookups()
        return by_skeleton.get(key) or by_base.get(key)


def _skeleton_maps(universe: frozenset) -> tuple:
    """(by_skeleton, by_base) of ``CodeNormaliser``: only skeletons and bases one code has."""
    by_skeleton: dict[str, set] = {}
    by_base: dict[str, set] = {}
    for code in universe:
        by_skeleton.setdefault(skeleton(code), set()).add(code)
        cut = code.find("x", 4)           # E14.000x001 -> base E14.000
        if cut > 0:
            by_base.setdefault(code[:cut], set()).add(code)
    return ({k: next(iter(v)) for k, v in by_skeleton.items() if len(v) == 1},
            {skeleton(k): next(iter(v)) for k, v in by_base.items()
             if len(v) == 1 and k not in universe})


@lru_cache(maxsize=8)
def normaliser(universe: frozenset) -> CodeNormaliser:
    return CodeNormaliser(universe)


# -- Arrow columns -----------------------------------------------------------------------------

_FITS_INT32 = (pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint16())


def _int32(arr, null: int) -> np.ndarray:
    return pc.cast(arr, pa.int32()).fill_null(null).to_numpy(zero_copy_only=False)


def sex_column(arr, n: int, null: int) -> np.ndarray:
    """int32 sex codes of a column (any integer, float or string type); ``null`` where the
    value is null or not a recognised sex (validation then gives ``invalid_sex``)."""
    if arr is None:
        return np.full(n, null, dtype=np.int32)
    if arr.type in _FITS_INT32:              # values other than 1 / 2 fail validation
        return _int32(arr, null)
    if pa.types.is_integer(arr.type):
        ok = pc.is_in(arr, pa.array([1, 2], arr.type))
        return pc.if_else(ok, arr.cast(pa.int32()), null).fill_null(null) \
            .to_numpy(zero_copy_only=False).astype(np.int32)
    return _by_distinct_value(arr, lambda v: sex_code(v), null)


def int_column(arr, n: int, null: int) -> np.ndarray:
    """int32 whole numbers of a column; ``null`` for nulls, ``BAD_VALUE`` for values that are
    not whole numbers in the int32 range."""
    if arr is None:
        return np.full(n, null, dtype=np.int32)
    if arr.type in _FITS_INT32:
        out = _int32(arr, null)
        if np.count_nonzero(out == null) == arr.null_count:
            return out                       # no value collides with the null marker
    if pa.types.is_integer(arr.type):
        wide = pc.cast(arr, pa.int64())
        fits = pc.and_(pc.greater(wide, -2**31), pc.less(wide, 2**31))
        return pc.if_else(fits, wide, BAD_VALUE).fill_null(null) \
            .to_numpy(zero_copy_only=False).astype(np.int32)
    return _by_distinct_value(arr, whole_number, null)


def _by_distinct_value(arr, convert, null: int) -> np.ndarray:
    """Apply a scalar ``convert`` once per distinct value of a column (strings, floats)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    enc = pc.dictionary_encode(arr)
    values = [convert(v) for v in enc.dictionary.to_pylist()]
    lookup = np.array([null if v is None else v for v in values] + [null], dtype=np.int32)
    idx = enc.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)
    return lookup[idx]
