"""Synthetic claim batches (模拟结算数据) in the claim-record schema of spec/benefits.md.

``generate_claims(n, seed)`` is deterministic: the same arguments give a byte-identical table
(one ``numpy.random.Generator`` drawn in a fixed order, no Python loop per row, so 5 million
claims take a few seconds). The shapes are meant to look like a city's year, not to be
statistics of one:

* about four claims per person (``persons = n // 4``), drawn with gamma-distributed weights so
  a few persons have many claims and many have one or two;
* settings: outpatient ~70 %, inpatient ~25 %, rehab ~5 %;
* inpatient cost lognormal with mean ≈ 9,399 yuan (Jinhua 2022 average inpatient cost, the
  seeds), rehab a few times that, outpatient a few hundred yuan; ``self_first ≤ in_scope ≤
  total`` always; money is int64 fen;
* ``low_income_share`` of persons are low-income (困难群众) and ~2 % of persons flip that flag
  on a day of the year, so a person's claims before and after differ (attributes that change
  mid-year are the case window-function settlements cannot follow);
* ``family_share`` of persons live in households of 2–4 persons sharing a ``family_id``; the
  others have a null ``family_id``;
* diagnoses and procedures are real 医保版 codes (ZD_INFO.dat / SS_INFO.dat of CHS-DRG 1.1):
  inpatient claims mostly carry 0–1 procedures and 0–4 secondary diagnoses;
* extra columns read by city policies and groupers: ``referral`` (a transfer, ~3 % of
  inpatient and rehab stays), ``age`` int16, ``sex`` int8 (1 male, 2 female), ``tcm_amount``
  (≤ in_scope, 中医 part) and ``scheme`` (employee / resident);
* rehab stays carry rehab-typical principal diagnoses (stroke sequelae I69, hemiplegia G81,
  femoral-neck fracture S72.0, spinal-cord injury T91.3 / S14.1, rehabilitation care Z50, real
  codes from the packaged list) and an ``adl_score`` (Barthel index 0–100, int16; null on
  other claims). Both come from a stream of their own (``_rehab``), so every other column is
  what it was for a seed before they existed.
* inpatient stays have a case mix that groups like real data (~97 % of stays get a CHS-DRG
  group; ``case_mix``): their principal diagnosis, and for ~35 % a principal procedure, are
  drawn from candidate pairs of the ADRG rules of the packaged tables, kept only where the
  real grouper groups them for the claim's sex and age (MDC M/N for that sex, MDC P for
  newborns, MDC O for women of 17–49); 18 % keep the uniform draw, as coding noise.
  ``age_days`` (claims at age 0) and ``birth_weight`` (newborns, 2,500–4,500 g) are null
  elsewhere. A stream of its own (``_inpatient_stays``).
* ``mtb_disease``: 10 % of persons are registered for a 门慢/门特 disease (``MTB_DISEASES``);
  60 % of their outpatient visits are settled under it and carry a diagnosis of it, every
  other claim says ``none``. ``family_doctor``: 35 % of persons signed with a family doctor.
  A stream of their own (``_chronic_visits``). Costs are not changed by either.
* ``alliance``: the 医共体 of the person's county (``ALLIANCES``: 40 % JUXIAN, 20 % WULIAN,
  15 % LANSHAN, 25 % null — in none), a stream of its own (``_alliances``).

Rows come in a shuffled order: claim ids ``C<zero-padded number>`` are a random permutation, and
neither ids nor dates are sorted, so an engine that relies on input order is caught.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .claims import SETTINGS, STANDARD_SCHEMA

__all__ = ["generate_claims", "write_claims", "sample_claims", "CLAIM_SCHEMA", "code_lists"]

_ICD_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "chs-drg-1.1" / "executable" / "ICD"

TIERS = ("tier1", "tier2", "tier3")
SCHEMES = ("employee", "resident")

_DICT = pa.dictionary(pa.int32(), pa.string())

CLAIM_SCHEMA = pa.schema([
    *STANDARD_SCHEMA,  # the claim record (core/claims.py)
    # extra attribute columns (policies / groupers)
    ("referral", pa.bool_()),
    ("age", pa.int16()),
    ("sex", pa.int8()),
    ("tcm_amount", pa.int64()),
    ("scheme", _DICT),
    ("jinhuibao", pa.bool_()),  # bought 金惠保 supplementary insurance (Jinhua: 93.5% insured)
    ("adl_score", pa.int16()),  # Barthel index 0-100 (ADL 日常生活活动能力评分), rehab stays only
    ("age_days", pa.int32()),   # days of life (出生天数), claims at age 0 only
    ("birth_weight", pa.int32()),  # grams (出生体重), newborns (age_days < 29) only
    ("mtb_disease", _DICT),     # 门慢/门特 disease a visit is settled under, "none" otherwise
    ("family_doctor", pa.bool_()),  # the person signed with a family doctor (签约家庭医生)
    ("alliance", _DICT),  # the 医共体 of the person's county of residence, null in none
])

_INPATIENT_MEAN_YUAN = 9_399.0   # Jinhua 2022 average inpatient cost (seeds)
_SETTING_P = (0.25, 0.70, 0.05)  # inpatient, outpatient, rehab — order of SETTINGS


# ---------------------------------------------------------------- code lists

def _read_codes(path: Path) -> list[str]:
    """First whitespace-separated field of every non-empty line (``CODE name``)."""
    with open(path, encoding="utf-8") as fh:
        return [line.split(maxsplit=1)[0] for line in fh if line.strip()]


@functools.lru_cache(maxsize=4)
def code_lists(icd_dir: str | None = None) -> tuple[pa.StringArray, pa.StringArray, pa.StringArray]:
    """(principal-eligible diagnoses, all diagnoses, procedures) as Arrow string arrays.

    Principal diagnoses exclude chapter V–Y (external causes are never principal); secondary
    diagnoses draw from the whole list. The folder is ``icd_dir``, else ``$YIBAO_ICD_DIR``, else
    the lists shipped in yibao.core.grouping's data. Read once per folder and cached.
    """
    chosen = icd_dir or os.environ.get("YIBAO_ICD_DIR")
    if chosen is None:
        return _packaged_code_lists()
    folder = Path(chosen)
    if not (folder / "ZD_INFO.dat").exists():
        raise FileNotFoundError(f"ICD code lists not found in {folder}: set YIBAO_ICD_DIR to the folder "
                                "holding ZD_INFO.dat and SS_INFO.dat (CHS-DRG 1.1 executable/ICD)")
    dx = _read_codes(folder / "ZD_INFO.dat")
    px = _read_codes(folder / "SS_INFO.dat")
    principal = [c for c in dx if c[0] not in "VWXY"]
    return pa.array(principal, pa.string()), pa.array(dx, pa.string()), pa.array(px, pa.string())


def _packaged_code_lists():
    """The default: the diagnosis and procedure lists of the CHS-DRG tables shipped inside the
    package (executable/ICD plus the four codes the ADRG rules name that ZD_INFO.dat lacks), so
    the same seed gives the same claims on every machine, with or without shared/ beside it."""
    import json
    path = Path(__file__).parent / "grouping" / "data" / "chs_drg_11" / "codes.json"
    codes = json.loads(path.read_text(encoding="utf-8"))
    dx, px = codes["diagnoses"], codes["procedures"]
    principal = [c for c in dx if c[0] not in "VWXY"]
    return pa.array(principal, pa.string()), pa.array(dx, pa.string()), pa.array(px, pa.string())


# ---------------------------------------------------------------- vectorised helpers

def _ids(prefix: str, numbers: np.ndarray, width: int | None = None) -> pa.StringArray:
    """``prefix + zero-padded number`` for every element, built straight into an Arrow buffer."""
    numbers = np.asarray(numbers, dtype=np.int64)
    count = len(numbers)
    if width is None:
        width = max(1, len(str(int(numbers.max())))) if count else 1
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    step = len(pre) + width
    chars = np.empty((count, step), dtype=np.uint8)
    chars[:, : len(pre)] = pre
    rest = numbers.copy()
    for col in range(step - 1, len(pre) - 1, -1):  # one pass per digit, least significant first
        chars[:, col] = rest % 10 + ord("0")
        rest //= 10
    offsets = np.arange(count + 1, dtype=np.int32) * step
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())])


def _dictionary(indices: np.ndarray, values: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(values, pa.string()))


def _code_lists(rng: np.random.Generator, counts: np.ndarray, codes: pa.StringArray) -> pa.ListArray:
    """A list<string> column with ``counts[i]`` codes drawn uniformly for row i."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = codes.take(pa.array(rng.integers(0, len(codes), int(offsets[-1]))))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _lognormal_fen(rng: np.random.Generator, mean_yuan: np.ndarray | float, sigma: float, size: int) -> np.ndarray:
    """Lognormal amounts with the given arithmetic mean, in whole fen (≥ 1 yuan)."""
    mu = np.log(mean_yuan) - sigma * sigma / 2
    yuan = rng.lognormal(mu, sigma, size)
    return np.maximum(np.rint(yuan * 100), 100).astype(np.int64)


def _portion(rng: np.random.Generator, amount: np.ndarray, low: float, high: float) -> np.ndarray:
    """``amount × u`` with u uniform in [low, high], in integer millionths (floor, so ≤ amount)."""
    ppm = rng.integers(int(low * 1_000_000), int(high * 1_000_000) + 1, len(amount))
    return amount * ppm // 1_000_000


# ---------------------------------------------------------------- persons and households

def _families(rng: np.random.Generator, persons: int, family_share: float) -> np.ndarray:
    """Household number per person, -1 for none; households hold 2–4 persons."""
    family = np.full(persons, -1, dtype=np.int64)
    members = rng.permutation(persons)[: int(round(persons * family_share))]
    sizes = rng.integers(2, 5, len(members) // 2 + 1)
    house = np.repeat(np.arange(len(sizes)), sizes)[: len(members)]
    if len(house) and np.count_nonzero(house == house[-1]) == 1 and house[-1] > 0:
        house[-1] = house[-2]  # no household of one
    family[members] = house
    return family


def _person_table(rng, persons, low_income_share, family_share):
    scheme = (rng.random(persons) >= 0.45).astype(np.int8)                  # 0 employee, 1 resident
    tier = rng.choice(3, persons, p=(0.30, 0.48, 0.22))
    age0 = np.where(scheme == 0, rng.integers(18, 91, persons), rng.integers(0, 96, persons))
    sex = rng.integers(1, 3, persons).astype(np.int8)
    low = rng.random(persons) < low_income_share
    flips = rng.random(persons) < 0.02
    flip_day = rng.integers(30, 331, persons)                                 # day of the first year
    weight = rng.gamma(0.8, 1.0, persons)
    family = _families(rng, persons, family_share)
    return dict(scheme=scheme, tier=tier, age0=age0, sex=sex, low=low, flips=flips,
                flip_day=flip_day, weight=weight / weight.sum(), family=family)


def _pick_persons(rng, weight, n):
    """``n`` persons drawn with probabilities ``weight``, in random order.

    Sorted uniforms make the binary search cache-friendly (8x faster than ``rng.choice(p=)``
    at 5M); the permutation afterwards restores a random order.
    """
    cumulative = np.cumsum(weight)
    who = np.searchsorted(cumulative, np.sort(rng.random(n)) * cumulative[-1], side="right")
    return np.minimum(who, len(weight) - 1)[rng.permutation(n)]


def _hospitals(rng, count):
    level = rng.choice(np.arange(1, 4), count, p=(0.45, 0.35, 0.20)).astype(np.int8)
    tcm = rng.random(count) < 0.15
    return _every_level(level), tcm


def _every_level(level: np.ndarray) -> np.ndarray:
    """Give a level that drew no hospital one, taken from the most common level (no random
    draw: seeds whose draw already covers every level keep their bytes)."""
    for missing in (lvl for lvl in (1, 2, 3) if not (level == lvl).any()):
        common = np.bincount(level, minlength=4)[1:].argmax() + 1
        level[np.flatnonzero(level == common)[-1]] = missing
    return level


def _pick_hospital(rng, claim_level, hosp_level):
    """A hospital of each claim's level (every level has at least one hospital)."""
    order = np.argsort(hosp_level, kind="stable")
    starts = np.searchsorted(hosp_level[order], np.arange(1, 5))
    first, size = starts[claim_level - 1], starts[claim_level] - starts[claim_level - 1]
    return order[first + (rng.random(len(claim_level)) * size).astype(np.int64)]


# ---------------------------------------------------------------- claims

def _dates(rng, n, start_year, years):
    year = start_year + rng.integers(0, years, n)
    jan1 = np.array([np.datetime64(f"{y}-01-01", "D").astype(np.int64) for y in range(start_year, start_year + years + 1)])
    first, nxt = jan1[year - start_year], jan1[year - start_year + 1]
    doy = (rng.random(n) * (nxt - first)).astype(np.int64)
    return year, doy, first + doy


def _costs(rng, setting):
    n = len(setting)
    inpatient, outpatient = setting == 0, setting == 1
    mean = np.where(inpatient, _INPATIENT_MEAN_YUAN, np.where(outpatient, 300.0, 28_000.0))
    sigma = 1.0
    total = _lognormal_fen(rng, mean, sigma, n)
    in_scope = _portion(rng, total, 0.72, 0.97)
    self_first = _portion(rng, in_scope, 0.0, 0.10)
    return total, in_scope, self_first


def _stay_length(rng, setting):
    inpatient_los = np.maximum(1, np.rint(rng.lognormal(np.log(7.0), 0.6, len(setting)))).astype(np.int32)
    rehab_los = np.maximum(7, np.rint(rng.lognormal(np.log(30.0), 0.5, len(setting)))).astype(np.int32)
    return np.where(setting == 0, inpatient_los, np.where(setting == 2, rehab_los, 0)).astype(np.int32)


def _draw_counts(rng, setting, table):
    """Per-row count drawn from ``table[setting]`` (a probability vector over 0..k)."""
    counts = np.zeros(len(setting), dtype=np.int32)
    for code, probs in table.items():
        rows = np.flatnonzero(setting == code)
        counts[rows] = rng.choice(len(probs), len(rows), p=probs)
    return counts


_SECONDARY_P = {0: (0.20, 0.30, 0.25, 0.15, 0.10), 1: (0.75, 0.25), 2: (0.3, 0.4, 0.3)}
_PROCEDURE_P = {0: (0.55, 0.38, 0.07), 1: (0.92, 0.08), 2: (0.6, 0.4)}
_LEVEL_P = {0: (0.20, 0.40, 0.40), 1: (0.55, 0.30, 0.15), 2: (0.35, 0.45, 0.20)}


def generate_claims(n: int, seed: int = 7, start_year: int = 2024, years: int = 1,
                    persons: int | None = None, low_income_share: float = 0.06,
                    family_share: float = 0.5) -> pa.Table:
    """``n`` synthetic claims (see the module docstring), deterministic for the arguments.

    ``n == 0`` gives an empty table of the same schema. ``persons`` defaults to ``n // 4``
    (at least one).
    """
    if n < 0 or years < 1:
        raise ValueError("n must be >= 0 and years >= 1")
    rng = np.random.default_rng(seed)
    persons = max(1, n // 4) if persons is None else int(persons)
    p = _person_table(rng, persons, low_income_share, family_share)
    hosp_level, hosp_tcm = _hospitals(rng, max(12, persons // 150))
    who = _pick_persons(rng, p["weight"], n)
    year, doy, discharge = _dates(rng, n, start_year, years)
    setting = rng.choice(3, n, p=_SETTING_P)
    level = _draw_counts(rng, setting, _LEVEL_P) + 1
    hospital = _pick_hospital(rng, level, hosp_level)
    los = _stay_length(rng, setting)
    total, in_scope, self_first = _costs(rng, setting)
    tcm = hosp_tcm[hospital]
    tcm_amount = np.where(tcm, _portion(rng, in_scope, 0.2, 0.6),
                          np.where(rng.random(n) < 0.15, _portion(rng, in_scope, 0.0, 0.2), 0))
    # a flip at day d of the first year holds from then on (later years too)
    flipped = p["flips"][who] & (((year - start_year) * 366 + doy) >= p["flip_day"][who])
    low_income = p["low"][who] ^ flipped
    referral = (setting != 1) & (rng.random(n) < 0.03)
    principal, all_dx, procs = code_lists()
    secondary = _code_lists(rng, _draw_counts(rng, setting, _SECONDARY_P), all_dx)
    procedures = _code_lists(rng, _draw_counts(rng, setting, _PROCEDURE_P), procs)
    claim_no = rng.permutation(n)
    hosp_ids = _ids("H", np.arange(len(hosp_level)))
    columns = {
        "claim_id": _ids("C", claim_no, len(str(max(n - 1, 0)))),
        "person_id": _ids("P", np.arange(persons)).take(pa.array(who)),
        "family_id": _family_ids(p["family"], persons).take(pa.array(who)),
        "tier": _dictionary(p["tier"][who], TIERS),
        "low_income": pa.array(low_income),
        "setting": _dictionary(setting, SETTINGS),
        "hospital_id": hosp_ids.take(pa.array(hospital)),
        "hospital_level": pa.array(level.astype(np.int8)),
        "hospital_tcm": pa.array(tcm),
        "admit_date": pa.array((discharge - los).astype(np.int32), pa.date32()),
        "discharge_date": pa.array(discharge.astype(np.int32), pa.date32()),
        "los": pa.array(los),
        "principal_dx": principal.take(pa.array(rng.integers(0, len(principal), n))),
        "secondary_dx": secondary,
        "procedures": procedures,
        "total": pa.array(total),
        "in_scope": pa.array(in_scope),
        "self_first": pa.array(self_first),
        "referral": pa.array(referral),
        "age": pa.array((p["age0"][who] + (year - start_year)).astype(np.int16)),
        "sex": pa.array(p["sex"][who]),
        "tcm_amount": pa.array(tcm_amount.astype(np.int64)),
        "scheme": _dictionary(p["scheme"][who], SCHEMES),
        "jinhuibao": pa.array(_jinhuibao(seed, persons)[who]),
    }
    is_rehab = setting == 2
    rehab_dx, adl = _rehab(seed, n, principal)
    columns["principal_dx"] = pc.if_else(pa.array(is_rehab), rehab_dx, columns["principal_dx"])
    columns["adl_score"] = pa.array(adl, pa.int16(), mask=~is_rehab)
    _fit_inpatient_stays(columns, seed, setting == 0)
    _chronic_visits(columns, seed, persons, who, setting == 1)
    columns["alliance"] = _alliances(seed, persons, who)
    return pa.Table.from_pydict(columns, schema=CLAIM_SCHEMA)


def _fit_inpatient_stays(columns: dict, seed: int, inpatient: np.ndarray) -> None:
    """Give inpatient stays a principal diagnosis (and, for surgical ones, a principal
    procedure) that groups for the claim's sex and age, and add ``age_days`` / ``birth_weight``
    (see ``_inpatient_stays``). Other settings keep their draws."""
    n = len(inpatient)
    sex = columns["sex"].to_numpy(zero_copy_only=False)
    age = columns["age"].to_numpy(zero_copy_only=False)
    dx, procs, age_days, weight, drawn = _inpatient_stays(seed, n, sex, age)
    fitted = pa.array(inpatient & drawn)
    columns["principal_dx"] = pc.if_else(fitted, dx, columns["principal_dx"])
    columns["procedures"] = pc.if_else(fitted, procs, columns["procedures"])
    columns["age_days"] = age_days
    columns["birth_weight"] = weight


# 门慢/门特 diseases (MTB_DISEASES order), their share among registered persons and the
# principal-diagnosis prefixes of their visits (SYNTHETIC shares)
MTB_DISEASES = ("none", "hypertension", "diabetes", "copd", "uremia", "cancer")
_MTB = (("hypertension", 0.45, ("I10",)), ("diabetes", 0.30, ("E11",)), ("copd", 0.10, ("J44",)),
        ("uremia", 0.05, ("N18.5",)), ("cancer", 0.10, ("C16", "C18", "C34", "C50")))
_MTB_REGISTERED = 0.10   # persons registered for a 门慢/门特 disease (ASSUMED)
_MTB_VISIT = 0.6         # a registered person's outpatient visits settled as 门慢/门特 visits
_FAMILY_DOCTOR = 0.35    # persons signed with a family doctor (ASSUMED)


def _chronic_visits(columns: dict, seed: int, persons: int, who: np.ndarray,
                    outpatient: np.ndarray) -> None:
    """``mtb_disease`` and ``family_doctor`` from a stream of their own. A registered person's
    门慢/门特 visits (outpatient, ``_MTB_VISIT`` of them) carry the disease and a principal
    diagnosis of it (a code with one of its prefixes, drawn uniformly from the principal
    list); every other claim is ``none`` and keeps its diagnosis."""
    rng = np.random.default_rng([seed, 4_6])
    n = len(who)
    registered = rng.random(persons) < _MTB_REGISTERED
    disease = rng.choice(len(_MTB), persons, p=[share for _, share, _ in _MTB]) + 1
    signed = rng.random(persons) < _FAMILY_DOCTOR
    visit = outpatient & registered[who] & (rng.random(n) < _MTB_VISIT)
    kind = np.where(visit, disease[who], 0)
    principal = code_lists()[0]
    codes = principal.to_numpy(zero_copy_only=False).astype(str)
    pick = rng.random(n)
    index = np.zeros(n, np.int64)
    for k, (_, _, prefixes) in enumerate(_MTB, start=1):
        rows = np.flatnonzero(np.char.startswith(codes, prefixes[0]) if len(prefixes) == 1 else
                              np.any([np.char.startswith(codes, p) for p in prefixes], axis=0))
        at = kind == k
        index[at] = rows[(pick[at] * len(rows)).astype(np.int64)]
    columns["principal_dx"] = pc.if_else(pa.array(visit), principal.take(pa.array(index)),
                                         columns["principal_dx"])
    columns["mtb_disease"] = _dictionary(kind, MTB_DISEASES)
    columns["family_doctor"] = pa.array(signed[who])


# principal-diagnosis prefixes of rehab stays and their shares (SYNTHETIC shares): stroke
# sequelae, hemiplegia, femoral-neck fracture, spinal-cord injury, rehabilitation care
_REHAB_DX = (("I69", 0.40), ("G81", 0.10), ("S72.0", 0.15), ("T91.3", 0.03), ("S14.1", 0.02),
             ("Z50", 0.30))


def _rehab(seed: int, n: int, principal: pa.StringArray):
    """(principal diagnosis, Barthel index 0–100) for every row, from a stream of its own; the
    caller keeps them on rehab rows only. A prefix is drawn by its share, then a code with that
    prefix uniformly from the principal list."""
    rng = np.random.default_rng([seed, 6_9])
    codes = principal.to_numpy(zero_copy_only=False)
    groups = [np.flatnonzero(np.char.startswith(codes.astype(str), pre)) for pre, _ in _REHAB_DX]
    kind = rng.choice(len(_REHAB_DX), n, p=[share for _, share in _REHAB_DX])
    pick = rng.random(n)
    index = np.zeros(n, np.int64)
    for k, rows in enumerate(groups):
        at = kind == k
        index[at] = rows[(pick[at] * len(rows)).astype(np.int64)]
    adl = np.clip(np.rint(rng.normal(50, 22, n)), 0, 100).astype(np.int16)
    return principal.take(pa.array(index)), adl


# ---------------------------------------------------------------- inpatient case mix

# Variants of the grouping check: (sex, age, age_days, birth_weight). A candidate stay is kept
# for a claim only if it groups under the variant the claim belongs to, so a generated stay's
# diagnosis, procedure, sex and age fit each other (sex-specific MDC M/N codes only for that
# sex, newborn MDC P codes only for age 0 with age_days < 29, pregnancy MDC O codes only for
# women of 17–49, whose MDC the national rules do not gate).
_VARIANTS = {
    "male_adult": (1, 50, None, None), "female_adult": (2, 50, None, None),
    "female_fertile": (2, 30, None, None),
    "male_child": (1, 8, None, None), "female_child": (2, 8, None, None),
    "male_infant": (1, 0, 200, None), "female_infant": (2, 0, 200, None),
    "male_newborn": (1, 0, 10, 3000), "female_newborn": (2, 0, 10, 3000),
}
_PER_RULE = 12            # candidate (diagnosis, procedure) pairs drawn per ADRG rule
_SURGICAL_SHARE = 0.35    # share of grouped stays with a principal procedure (SYNTHETIC)
_MISCODED_SHARE = 0.18    # stays keeping their uniform draw (~15 % of those do not group): ~97 % group


def _rule_candidates(rng, tables, rule):
    """(principal dx, principal procedure or None) pairs meeting a rule's code conditions,
    or [] when the rule asks for something the generator does not draw (secondary codes)."""
    dx_set = proc_set = None
    for op, arg in rule:
        if op == "pdx_in":
            dx_set = tables.dx_sets[arg]
        elif op in ("pproc_in", "anyproc_in") and proc_set is None:
            proc_set = tables.proc_sets[arg]
        elif op == "anydx_in":
            return []
    if dx_set is None and proc_set is None:
        return []
    dxs = sorted(dx_set) if dx_set is not None else None
    procs = sorted(proc_set) if proc_set is not None else None
    out = []
    for _ in range(_PER_RULE):
        proc = procs[rng.integers(len(procs))] if procs else None
        dx = dxs[rng.integers(len(dxs))] if dxs else None
        out.append((dx, proc))
    return out


@functools.lru_cache(maxsize=1)
def case_mix():
    """Candidate inpatient stays that group, per variant: ``{variant: (dx, procs, surgical)}``.

    Drawn once from the ADRG rules of the packaged CHS-DRG 1.1 tables (a fixed stream, so the
    same on every machine), then grouped with the real grouper under every variant; a pair is
    kept for the variants under which it groups. Newborns take MDC P stays only, MDC O is kept
    for women of 17–49 only. Rules without a diagnosis condition (MDCA transplants, entered by
    the procedure) give no pair: the generator draws a diagnosis for every stay."""
    from yibao.core.grouping import group_drg, load_tables
    tables = load_tables()
    rng = np.random.default_rng(20_26)
    pairs = []
    for name in sorted(tables.scheme["adrg"]):
        for rule in tables.scheme["adrg"][name]["rules"]:
            pairs += [p for p in _rule_candidates(rng, tables, rule) if p[0] is not None]
    pairs = sorted(set(pairs), key=lambda p: (p[0], p[1] or ""))
    dx = pa.array([p[0] for p in pairs], pa.string())
    proc_lists = pa.array([[p[1]] if p[1] else [] for p in pairs], pa.list_(pa.string()))
    out = {}
    for variant, (sex, age, age_days, weight) in _VARIANTS.items():
        n = len(pairs)
        probe = pa.table({
            "principal_dx": dx, "secondary_dx": pa.array([[]] * n, pa.list_(pa.string())),
            "procedures": proc_lists, "sex": pa.array([sex] * n, pa.int8()),
            "age": pa.array([age] * n, pa.int32()), "age_days": pa.array([age_days] * n, pa.int32()),
            "birth_weight": pa.array([weight] * n, pa.int32()),
        })
        grouped = group_drg(probe)
        ok = pc.equal(grouped.column("drg_status"), "ok")
        mdc = pc.fill_null(grouped.column("mdc"), "")
        if variant != "female_fertile":
            ok = pc.and_(ok, pc.not_equal(mdc, "MDCO"))
        if variant.endswith("newborn"):
            ok = pc.and_(ok, pc.equal(mdc, "MDCP"))
        ok = np.asarray(ok.to_numpy(zero_copy_only=False))
        keep = np.flatnonzero(ok)
        out[variant] = (dx.take(pa.array(keep)), proc_lists.take(pa.array(keep)),
                        np.array([bool(pairs[i][1]) for i in keep]))
    return out


def _variant_of(sex, age, age_days):
    """Index into ``_VARIANTS`` of every row (integer arithmetic: no per-row strings)."""
    names = list(_VARIANTS)
    female = sex == 2
    kind = np.select([female & (age >= 17) & (age < 50), age >= 17, age >= 1, age_days < 29],
                     [4, 0, 1, 3], default=2)  # fertile, adult, child, newborn, else infant
    code = {(f, k): names.index(("female_" if f else "male_") + word)
            for f in (False, True) for k, word in enumerate(("adult", "child", "infant", "newborn",
                                                             "fertile")) if f or k != 4}
    table = np.zeros((2, 5), np.int64)
    for (f, k), i in code.items():
        table[int(f), k] = i
    return table[female.astype(np.int64), kind]


def _inpatient_stays(seed, n, sex, age):
    """(principal dx, procedures, age_days, birth_weight, drawn) for every row from a stream
    of its own; ``drawn`` marks rows given a case-mix stay (the rest keep their uniform draw,
    the miscoded share). age_days is set for age 0 (days of life), birth_weight for newborns
    (< 29 days), both null otherwise."""
    rng = np.random.default_rng([seed, 97])
    age_days = np.where(rng.random(n) < 0.5, rng.integers(0, 29, n), rng.integers(29, 365, n))
    weight = np.clip(np.rint(rng.normal(3300, 350, n)), 2500, 4500).astype(np.int32)
    surgical = rng.random(n) < _SURGICAL_SHARE
    pick = rng.random(n)
    drawn = rng.random(n) >= _MISCODED_SHARE
    variant = _variant_of(sex, age, age_days)
    mix = case_mix()
    index = np.zeros(n, np.int64)
    dx_parts, proc_parts, offset = [], [], 0
    for k, name in enumerate(_VARIANTS):
        dx, procs, is_surg = mix[name]
        dx_parts.append(dx)
        proc_parts.append(procs)
        for want in (True, False):
            rows = np.flatnonzero((variant == k) & (surgical == want))
            pool = np.flatnonzero(is_surg == want)
            if not len(pool):
                pool = np.arange(len(dx))
            index[rows] = offset + pool[(pick[rows] * len(pool)).astype(np.int64)]
        offset += len(dx)
    all_dx = pa.concat_arrays(dx_parts)
    all_procs = pa.concat_arrays(proc_parts)
    is_newborn = (age == 0) & (age_days < 29)
    return (all_dx.take(pa.array(index)), all_procs.take(pa.array(index)),
            pa.array(age_days.astype(np.int32), mask=age != 0),
            pa.array(weight, mask=~is_newborn), drawn)


# 医共体 by county of residence (Rizhao: 莒县, 五莲县, 岚山区; the city district 东港区 in
# none): shares ASSUMED, roughly the counties' populations
ALLIANCES = (("JUXIAN", 0.40), ("WULIAN", 0.20), ("LANSHAN", 0.15))


def _alliances(seed: int, persons: int, who: np.ndarray) -> pa.DictionaryArray:
    """``alliance`` per claim: its person's 医共体 (null for the 25 % in none), from a stream
    of its own so the other columns stay as they were for a seed."""
    draw = np.random.default_rng([seed, 1_7]).random(persons)
    edges = np.cumsum([share for _, share in ALLIANCES])
    kind = np.searchsorted(edges, draw, side="right")  # len(ALLIANCES): in none
    names = tuple(name for name, _ in ALLIANCES)
    at = kind[who]
    return pa.DictionaryArray.from_arrays(
        pa.array(np.minimum(at, len(names) - 1).astype(np.int32), mask=at >= len(names)),
        pa.array(names))


def _jinhuibao(seed: int, persons: int) -> np.ndarray:
    """Who bought 金惠保, per person, from a stream of its own so the other columns stay as they
    were for a seed. 93.5% is the take-up the Jinhua seed reports (“投保率达93.5%”)."""
    return np.random.default_rng([seed, 93_5]).random(persons) < 0.935


def _family_ids(family: np.ndarray, persons: int) -> pa.StringArray:
    """``F<number>`` per person, null where the person has no household."""
    ids = _ids("F", np.maximum(family, 0), len(str(persons)))
    valid = pa.array(family >= 0)
    return pc.if_else(valid, ids, pa.nulls(len(family), pa.string()))


def write_claims(table: pa.Table, path: str | Path, row_group_size: int = 1_000_000) -> None:
    """Write a claim table to Parquet (zstd), ``row_group_size`` rows per row group."""
    pq.write_table(table, str(path), row_group_size=row_group_size, compression="zstd")


def sample_claims(n: int = 20_000, seed: int = 7, start_year: int = 2024) -> pa.Table:
    """The fixed small batch used by ``yibao demo``: 20,000 claims, seed 7, year 2024 (or
    ``start_year``: the same draws, discharged in that year instead)."""
    return generate_claims(n, seed=seed, start_year=start_year)
