"""Convert the published CHS-DRG 1.1 text tables into the grouper's compact JSON tables.

Usage: ``python -m yibao.core.grouping.convert SRC OUT`` where SRC is the folder holding
``rules/`` and ``executable/`` (the OpenDRG split of the NHSA publication) and OUT the
folder to write ``scheme.json`` and ``codes.json`` into (see ``data/chs_drg_11/PROVENANCE.md``
for the format).

Sources and why each one:
- ``rules/4_ADRG_DETAIL.txt``: every MDC principal-diagnosis list (``MDCx 主诊表``) and every
  ADRG entry rule, one code a line under section headers. It is the only file with the
  MDCZ body-region headings and the two-set / 手术表 formulas in one place.
- ``rules/ADRG/*.dat`` and ``rules/MDC/*.dat``: the same lists, one file per ADRG / MDC. The
  two sources differ (``4_ADRG_DETAIL.txt`` misses I48.900x003 of FU2), so every list is their
  union and ``REPORT.txt`` names each code found in one source only.
- ``rules/1_MDC.txt``, ``2_ADRG.txt``, ``3_DRG.txt``: names, and which DRG suffixes
  (1/3/5/9) each ADRG is split into.
- ``executable/DATA/MCC.dat``, ``CC.dat``, ``CCE.dat``: code → exclusion-table number. The
  text versions (5_MCC, 6_CC, 7_CCE) lost lines where PDF pages were joined, so the flat
  files are authoritative; ``text_exclusion_tables`` parses the text for cross-checks.
- ``executable/DATA/SS_VALID.dat``: operating-room procedures (MDCA entry, 全部手术, 无手术).
- ``executable/ICD/ZD_INFO.dat``, ``SS_INFO.dat``: the valid 医保版 code lists.

The scheme's structure that is not a code list (MDCA enters by an operating-room principal
procedure, MDCP by age 0, MDCZ needs trauma in two body regions, MDCM/MDCN need the sex) is
written once in ``MDC_ENTRY`` below; ages and birth weights come from parsing ADRG names.

Rulings of ``spec/point-method.md`` §1 applied here (see docs/grouping.md):
- every MDCP ADRG but PV1 needs 出生年龄 < 29 天 (``NEWBORN_DAYS``), PV1 29 days or more;
- 「且无手术」 is ``no_or_proc``: no operating-room procedure among all the procedures;
- a principal diagnosis named by an MDC's own ADRG lists belongs to that MDC's list
  (``REPORT.txt`` names each code added).
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

SCHEME_VERSION = "CHS-DRG 1.1"
# Default MDC order (city-orderable): pre-groups first, then B … X.
PRE_ORDER = ["MDCA", "MDCP", "MDCY", "MDCZ", "MDCM", "MDCN"]

# Entry conditions added to "principal dx in the MDC list"; MDCA has no list (entry by
# an operating-room principal procedure), MDCZ also needs trauma in >= 2 body regions.
NEWBORN_DAYS = 29          # 新生儿: 出生年龄 < 29 天 (PB1/PC1/PJ1 names)
NEWBORN_MDC = "MDCP"
MDC_ENTRY = {
    "MDCA": [["pproc_or", None]],
    "MDCP": [["age_eq", 0]],
    "MDCZ": [["trauma_regions_ge", 2]],
    "MDCM": [["sex_eq", 1]],
    "MDCN": [["sex_eq", 2]],
}

_CODE = re.compile(r"^([A-Z]\d{2}\.|\d{2}\.)\S*$")
_ADRG_HEAD = re.compile(r"^([A-Z]{2}\d) (.*)$")
_MDC_HEAD = re.compile(r"^(MDC[A-Z]) (.*)$")
_TABLE_HEAD = re.compile(r"^手术(?:表)?\s*(\d+)：$")
_FORMULA = re.compile(r"^(?:或)?包含以下主要诊断((?:\+手术表\s*\d+)+)$")

# Section header → (kind of code list, key).
_SECTIONS = {
    "包含以下主要诊断：": "pdx",
    "主要诊断：": "pdx",
    "包含以下主要手术或操作：": "pproc",
    "同时包含以下手术：": "both1",
    "和": "both2",
    "主要诊断或其他诊断中包含以下诊断：": "anydx",
    "包含以下诊断：": "anydx",
}
_FLAGS = {"全部手术": "pproc_or", "包含全部手术": "pproc_or"}


def _read_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _clean_name(name: str) -> str:
    """Names wrap in the PDF; ``~~`` marks the join."""
    return name.replace("~~", "").strip()


def _new_adrg(code: str, name: str) -> dict:
    return {"code": code, "name": _clean_name(name), "lists": {}, "tables": {},
            "formulas": [], "flags": []}


def parse_adrg_detail(path: Path) -> tuple[dict, dict, dict]:
    """Parse 4_ADRG_DETAIL.txt into (mdc lists, adrg sections, trauma regions)."""
    mdc_lists: dict[str, list[str]] = {}
    adrgs: dict[str, dict] = {}
    regions: dict[str, list[str]] = {}
    target: list | None = None
    cur_adrg: dict | None = None
    cur_mdc = None
    region = None
    for line in _read_lines(path):
        first = line.split()[0]
        if _CODE.match(first):
            if target is None:
                raise ValueError(f"code outside a section: {line!r}")
            target.append(first)
            if region is not None and cur_adrg is None:
                # a code listed under two regions counts for both
                if region not in regions.setdefault(first, []):
                    regions[first].append(region)
            continue
        m = _MDC_HEAD.match(line)
        if m:
            cur_mdc, cur_adrg, target, region = m.group(1), None, None, None
            if m.group(2).strip() == "主诊表":
                target = mdc_lists.setdefault(cur_mdc, [])
            continue
        m = _ADRG_HEAD.match(line)
        if m:
            cur_adrg = adrgs[m.group(1)] = _new_adrg(m.group(1), m.group(2))
            target, region = None, None
            continue
        if cur_adrg is None:
            if line.endswith("创伤") and " " not in line:   # MDCZ body-region heading
                region = line
                continue
            if line in _SECTIONS:                          # "包含以下主要诊断：" after 主诊表
                continue
            raise ValueError(f"unexpected line in MDC list: {line!r}")
        target = _adrg_section(cur_adrg, line)
    return mdc_lists, adrgs, regions


def _adrg_section(adrg: dict, line: str) -> list | None:
    """Handle a non-code line inside an ADRG; returns the list codes now go to."""
    if line in _SECTIONS:
        return adrg["lists"].setdefault(_SECTIONS[line], [])
    if line in _FLAGS:
        adrg["flags"].append(_FLAGS[line])
        return None
    if line.startswith("符合") and "无手术" in line:
        adrg["flags"].append("no_or_proc")          # 且无手术: no OR procedure at all
        return None
    m = _FORMULA.match(line.replace(" ", ""))
    if m:
        adrg["formulas"].append([int(n) for n in re.findall(r"\d+", m.group(1))])
        return None
    m = _TABLE_HEAD.match(line.replace(" ", ""))
    if m:
        return adrg["tables"].setdefault(int(m.group(1)), [])
    raise ValueError(f"unknown section header in {adrg['code']}: {line!r}")


def name_conditions(name: str) -> list[list]:
    """Age and birth-weight conditions written in an ADRG's name (MDCP)."""
    n = name.replace(" ", "").replace("＜", "<").replace("＞", ">").replace("≤", "<=")
    conds: list[list] = []
    if re.search(r"29天<=出生年龄<1周岁", n):
        conds.append(["age_days_ge", 29])
    elif re.search(r"出生年龄<29天", n):
        conds.append(["age_days_lt", 29])
    m = re.search(r"出生体重(\d+)-(\d+)g", n)
    if m:
        conds += [["weight_ge", int(m.group(1))], ["weight_lt", int(m.group(2)) + 1]]
    m = re.search(r"出生体重<(\d+)g", n)
    if m:
        conds.append(["weight_lt", int(m.group(1))])
    m = re.search(r"出生体重>(\d+)g", n)
    if m:
        conds.append(["weight_ge", int(m.group(1)) + 1])
    return conds


def is_surgical(adrg_code: str) -> bool:
    """CHS-DRG naming: ADRG second letter A–J surgical, K–Q non-OR procedures, R–Z medical."""
    return "A" <= adrg_code[1] <= "J"


def adrg_rules(adrg: dict, dx_sets: dict, proc_sets: dict) -> list[list[list]]:
    """Turn parsed sections into OR-of-AND rules; registers the code sets they use."""
    code, lists = adrg["code"], adrg["lists"]
    conds: list[list] = []
    for kind, cond, sets in (("pdx", "pdx_in", dx_sets), ("anydx", "anydx_in", dx_sets),
                             ("pproc", "pproc_in", proc_sets),
                             ("both1", "anyproc_in", proc_sets),
                             ("both2", "anyproc_in", proc_sets)):
        if kind in lists:
            key = f"{code}.{kind}"
            sets[key] = sorted(set(lists[kind]))
            conds.append([cond, key])
    conds += [[flag, None] for flag in adrg["flags"]]
    conds += name_conditions(adrg["name"])
    if code[0] == NEWBORN_MDC[3] and not any(c[0].startswith("age_days") for c in conds):
        conds.append(["age_days_lt", NEWBORN_DAYS])   # ruling: 新生儿 is < 29 days old
    has_proc = any(c[0] in ("pproc_in", "anyproc_in", "pproc_or", "no_or_proc") for c in conds)
    if is_surgical(code) and not has_proc and not adrg["formulas"]:
        conds.append(["pproc_or", None])       # e.g. YC1 "HIV 相关疾患的手术室手术"
    if not adrg["formulas"]:
        return [conds]
    for n, codes in adrg["tables"].items():
        proc_sets[f"{code}.t{n}"] = sorted(set(codes))
    return [conds + [["anyproc_in", f"{code}.t{n}"] for n in f] for f in adrg["formulas"]]


def _pairs(path: Path) -> dict[str, str]:
    out = {}
    for line in _read_lines(path):
        parts = line.split(None, 1)
        out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def drg_splits(drg_txt: Path) -> dict[str, dict[str, str]]:
    """ADRG → {suffix: DRG code} from 3_DRG.txt (suffix 1 MCC, 3 CC, 5 none, 9 not split)."""
    out: dict[str, dict[str, str]] = {}
    for code in _pairs(drg_txt):
        out.setdefault(code[:3], {})[code[3]] = code
    return out


def text_exclusion_tables(path: Path) -> dict[str, int]:
    """Code → exclusion table from 5_MCC/6_CC text (page-joined lines tokenised)."""
    tokens = path.read_text(encoding="utf-8").split()
    out, code = {}, None
    for i, tok in enumerate(tokens):
        if _CODE.match(tok):
            code = tok
        elif tok == "表" and code and i + 1 < len(tokens) and tokens[i + 1].startswith("7-"):
            out[code] = int(tokens[i + 1][2:])
            code = None
    return out


def parse_adrg_dat(code: str, path: Path) -> dict:
    """One ``rules/ADRG/*.dat`` file: the sections of 4_ADRG_DETAIL.txt without the header."""
    adrg, target = _new_adrg(code, ""), None
    for line in _read_lines(path):
        first = line.split()[0]
        if _CODE.match(first):
            if target is None:
                raise ValueError(f"{path.name}: code outside a section: {line!r}")
            target.append(first)
            continue
        target = _adrg_section(adrg, line)
    return adrg


def parse_mdc_dat(path: Path) -> tuple[list, dict]:
    """One ``rules/MDC/*.dat`` file: (principal-dx codes, MDCZ code -> body regions)."""
    codes: list[str] = []
    regions: dict[str, list[str]] = {}
    region = None
    for line in _read_lines(path):
        if line.startswith("#"):                  # a line the source commented out
            continue
        first = line.split()[0]
        if _CODE.match(first):
            codes.append(first)
            if region is not None and region not in regions.setdefault(first, []):
                regions[first].append(region)
        elif line.endswith("创伤") and " " not in line:
            region = line
        elif line not in _SECTIONS:
            raise ValueError(f"{path.name}: unexpected line {line!r}")
    return codes, regions


def _dat_files(folder: Path, width: int) -> dict[str, Path]:
    """``{code: path}`` of ``AA1_名称.dat`` style files (code = the first ``width`` chars)."""
    return {p.name[:width]: p for p in sorted(folder.glob("*.dat"))}


def _union(detail: list, dat: list, where: str, dat_name: str, report: list) -> list:
    """Codes of both sources (detail order, then the .dat-only ones); reports the one-sided."""
    a, b = set(detail), set(dat)
    for code in sorted(a - b):
        report.append(f"one_source\t{where}\t{code}\tonly in 4_ADRG_DETAIL.txt, not {dat_name}")
    for code in sorted(b - a):
        report.append(f"one_source\t{where}\t{code}\tonly in {dat_name}, not 4_ADRG_DETAIL.txt")
    return detail + [c for c in dict.fromkeys(dat) if c not in a]


def merge_adrg(adrg: dict, dat: dict, dat_name: str, report: list) -> dict:
    """An ADRG's lists, tables, flags and formulas as the union of its two sources."""
    code = adrg["code"]
    for kind in sorted(set(adrg["lists"]) | set(dat["lists"])):
        adrg["lists"][kind] = _union(adrg["lists"].get(kind, []), dat["lists"].get(kind, []),
                                     f"{code}.{kind}", dat_name, report)
    for n in sorted(set(adrg["tables"]) | set(dat["tables"])):
        adrg["tables"][n] = _union(adrg["tables"].get(n, []), dat["tables"].get(n, []),
                                   f"{code}.t{n}", dat_name, report)
    for key in ("flags", "formulas"):
        for item in dat[key]:
            if item not in adrg[key]:
                report.append(f"one_source\t{code}.{key}\t{item}\tonly in {dat_name}")
                adrg[key].append(item)
        for item in adrg[key]:
            if item not in dat[key]:
                report.append(f"one_source\t{code}.{key}\t{item}\tonly in 4_ADRG_DETAIL.txt")
    return adrg


def merge_sources(rules: Path, report: list) -> tuple[dict, dict, dict]:
    """(MDC lists, ADRG sections, trauma regions): 4_ADRG_DETAIL.txt ∪ ADRG/*.dat ∪ MDC/*.dat."""
    mdc_lists, adrgs, regions = parse_adrg_detail(rules / "4_ADRG_DETAIL.txt")
    adrg_files = _dat_files(rules / "ADRG", 3)
    stray = sorted(set(adrg_files) - set(adrgs))
    if stray:
        raise ValueError(f"ADRG/*.dat files of ADRGs missing from 4_ADRG_DETAIL.txt: {stray}")
    for code, adrg in adrgs.items():
        if code not in adrg_files:
            report.append(f"one_source\t{code}\t-\tno ADRG/{code}_*.dat file")
            continue
        path = adrg_files[code]
        merge_adrg(adrg, parse_adrg_dat(code, path), f"ADRG/{path.name}", report)
    for mdc, path in _dat_files(rules / "MDC", 4).items():
        codes, dat_regions = parse_mdc_dat(path)
        if not codes and mdc not in mdc_lists:
            continue                              # MDCA: no principal-diagnosis list
        mdc_lists[mdc] = _union(mdc_lists.get(mdc, []), codes, mdc, f"MDC/{path.name}", report)
        _union_regions(regions, dat_regions, f"MDC/{path.name}", report)
    return mdc_lists, adrgs, regions


def _union_regions(regions: dict, dat_regions: dict, dat_name: str, report: list) -> None:
    """MDCZ body regions of each code: both sources' (the ruling then counts codes, §1)."""
    if not dat_regions:
        return
    for code in sorted(set(regions) | set(dat_regions)):
        mine, theirs = regions.setdefault(code, []), dat_regions.get(code, [])
        for r in mine:
            if r not in theirs:
                report.append(f"one_source\tMDCZ.{r}\t{code}\tonly in 4_ADRG_DETAIL.txt, "
                              f"not {dat_name}")
        for r in theirs:
            if r not in mine:
                report.append(f"one_source\tMDCZ.{r}\t{code}\tonly in {dat_name}, "
                              f"not 4_ADRG_DETAIL.txt")
                mine.append(r)


def adopt_adrg_diagnoses(mdc_lists: dict, adrgs: dict, report: list) -> None:
    """A principal dx an MDC's own ADRG lists name belongs to the MDC's list (ruling, §1).

    Reports each code added and the other MDC lists that already hold it (the MDC order
    then decides which MDC a claim enters first)."""
    owners: dict[str, list[str]] = {}
    for mdc, codes in mdc_lists.items():
        for c in dict.fromkeys(codes):
            owners.setdefault(c, []).append(mdc)
    for code, adrg in adrgs.items():
        mdc = "MDC" + code[0]
        if mdc not in mdc_lists:
            continue
        own = set(mdc_lists[mdc])
        for dx in adrg["lists"].get("pdx", []):
            if dx in own:
                continue
            others = ",".join(owners.get(dx, [])) or "no MDC list"
            report.append(f"mdc_list\t{mdc}\t{dx}\tnamed by {code} principal-dx list, "
                          f"missing from {mdc} list (also in: {others}); added to {mdc}")
            mdc_lists[mdc].append(dx)
            own.add(dx)


def build_scheme(src: Path, report: list | None = None) -> tuple[dict, dict]:
    """(scheme, codes); appends the sources' inconsistencies to ``report`` when given."""
    report = [] if report is None else report
    rules = src / "rules"
    mdc_lists, adrgs, regions = merge_sources(rules, report)
    adopt_adrg_diagnoses(mdc_lists, adrgs, report)
    mdc_names = {k: _clean_name(v) for k, v in _pairs(rules / "1_MDC.txt").items()}
    adrg_names = {k: _clean_name(v) for k, v in _pairs(rules / "2_ADRG.txt").items()}
    splits = drg_splits(rules / "3_DRG.txt")
    dx_sets: dict[str, list[str]] = {}
    proc_sets: dict[str, list[str]] = {}
    mdcs = {}
    for mdc, name in mdc_names.items():
        entry = list(MDC_ENTRY.get(mdc, []))
        if mdc in mdc_lists:
            dx_sets[mdc] = sorted(set(mdc_lists[mdc]))
            entry.insert(0, ["pdx_in", mdc])
        members = [a for a in adrgs if a[0] == mdc[3]]
        mdcs[mdc] = {"name": name, "entry": [entry], "adrgs": members}
    adrg_out = {}
    for code, adrg in adrgs.items():
        if code not in adrg_names or code not in splits:
            raise ValueError(f"ADRG {code} missing from 2_ADRG.txt or 3_DRG.txt")
        adrg_out[code] = {"name": adrg_names[code], "mdc": "MDC" + code[0],
                          "surgical": is_surgical(code),
                          "rules": adrg_rules(adrg, dx_sets, proc_sets),
                          "drgs": splits[code]}
    rest = sorted(m for m in mdcs if m not in PRE_ORDER)
    scheme = {"version": SCHEME_VERSION, "mdc_order": PRE_ORDER + rest, "mdc": mdcs,
              "adrg": adrg_out, "drg": _pairs(rules / "3_DRG.txt"),
              "dx_sets": dx_sets, "proc_sets": proc_sets, "trauma_regions": regions}
    return scheme, build_codes(src, dx_sets, proc_sets)


def build_codes(src: Path, dx_sets: dict, proc_sets: dict) -> dict:
    data, icd = src / "executable" / "DATA", src / "executable" / "ICD"
    excl = {k: {c: int(t) for c, t in _pairs(data / f"{k.upper()}.dat").items()}
            for k in ("mcc", "cc", "cce")}
    dx = set(_pairs(icd / "ZD_INFO.dat")) | {c for s in dx_sets.values() for c in s}
    for table in excl.values():
        dx |= set(table)
    proc = set(_pairs(icd / "SS_INFO.dat")) | {c for s in proc_sets.values() for c in s}
    or_proc = sorted(_pairs(data / "SS_VALID.dat"))
    proc |= set(or_proc)
    return {"diagnoses": sorted(dx), "procedures": sorted(proc), "or_procedures": or_proc,
            **excl}


REPORT_HEADER = (
    "# CHS-DRG 1.1 source report (generated by yibao.core.grouping.convert; do not edit)\n"
    "# kind<TAB>where<TAB>code<TAB>what. one_source: a code (or flag) found in one of\n"
    "# 4_ADRG_DETAIL.txt and rules/ADRG|MDC/*.dat only; the tables use the union.\n"
    "# mdc_list: a principal dx an MDC's own ADRG lists name but its MDC list omits;\n"
    "# the tables add it to that MDC (spec/point-method.md §1).\n")


def report_text(report: list) -> str:
    return REPORT_HEADER + "".join(line + "\n" for line in report)


def convert_chs_drg(src_dir, out_dir) -> dict:
    """Write scheme.json, codes.json, REPORT.txt and LICENSE; returns summary counts."""
    src, out = Path(src_dir), Path(out_dir)
    report: list[str] = []
    scheme, codes = build_scheme(src, report)
    out.mkdir(parents=True, exist_ok=True)
    for name, obj in (("scheme.json", scheme), ("codes.json", codes)):
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
        (out / name).write_text(text + "\n", encoding="utf-8")
    (out / "REPORT.txt").write_text(report_text(report), encoding="utf-8")
    shutil.copyfile(src / "LICENSE", out / "LICENSE")
    summary = {"mdc": len(scheme["mdc"]), "adrg": len(scheme["adrg"]),
               "drg": len(scheme["drg"]), "diagnoses": len(codes["diagnoses"]),
               "procedures": len(codes["procedures"]), "mcc": len(codes["mcc"]),
               "cc": len(codes["cc"]), "cce": len(codes["cce"]), "report_lines": len(report)}
    return summary


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m yibao.core.grouping.convert SRC OUT", file=sys.stderr)
        return 2
    print(json.dumps(convert_chs_drg(args[0], args[1]), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
