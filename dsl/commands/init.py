"""`yibao init NAME`: start a city folder that already passes `yibao check` and `yibao test`.

It writes NAME/policy.yb (a header, one table and one layer), NAME/tests.yaml (one
hand-checked case per table row) and NAME/README.md (where each figure must come from; every
figure starts out marked ASSUMED). It never overwrites: an existing NAME is refused (exit 2).
"""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "init"
HELP = "start a city folder: policy skeleton with a table, tests.yaml, README of sources"


def add_arguments(parser):
    parser.add_argument("name", metavar="NAME", help="the folder to create (e.g. wuxi)")
    # default None: this year, read by run (datetime is not imported to build the options)
    parser.add_argument("--year", type=int, default=None,
                        help="the policy year the skeleton is in force (default: this year)")


POLICY = '''\
# {region} — resident benefit policy ({year}), started by `yibao init`.
# Sources: README.md beside this file cites where every figure comes from; until a figure
# has a source it stays marked ASSUMED there.
policy "{region}城乡居民医保" {{
  region "{region}"
  effective {year}-01-01 to {year}-12-31
}}

table inpatient_deductible (hospital_level) -> money {{  # 起付线, per admission (ASSUMED)
  1: 300 yuan
  2: 600 yuan
  3: 1_000 yuan
}}

layer basic_inpatient "基本医保住院" {{
  applies when setting in {{inpatient, rehab}}
  base in_scope - self_first
  deductible per claim inpatient_deductible[hospital_level]
  ratio 80%  # ASSUMED
  cap 100_000 yuan per person per year  # ASSUMED
}}
'''

TESTS = '''\
# Hand-checked cases for policy.yb (money in yuan). Run with `yibao test {folder}`.
# Replace them with the worked examples of the city's own documents as the figures get sources.
- name: I1–I3 — one admission at each hospital level
  claims:
    - {{claim_id: I1, person_id: p1, setting: inpatient, hospital_level: 1,
       discharge_date: {year}-03-01, total: 5000, in_scope: 5000, self_first: 0}}
    - {{claim_id: I2, person_id: p2, setting: inpatient, hospital_level: 2,
       discharge_date: {year}-04-01, total: 12000, in_scope: 10000, self_first: 0}}
    - {{claim_id: I3, person_id: p3, setting: inpatient, hospital_level: 3,
       discharge_date: {year}-05-01, total: 22000, in_scope: 20000, self_first: 0}}
  # I1: (5,000 − 300) × 80% = 3,760;  I2: (10,000 − 600) × 80% = 7,520
  # I3: (20,000 − 1,000) × 80% = 15,200
  expect:
    I1: {{basic_inpatient: 3760, basic_inpatient_deductible: 300, self_pay: 1240}}
    I2: {{basic_inpatient: 7520, basic_inpatient_deductible: 600, self_pay: 4480}}
    I3: {{basic_inpatient: 15200, basic_inpatient_deductible: 1000, self_pay: 6800}}
'''

README = '''\
# {region} — resident benefit policy ({year})

`policy.yb` was started by `yibao init` and is a skeleton: **every figure below is ASSUMED**
until a row cites the document and the sentence it comes from (the city's 医保局 notice, its
number and date, or a report quoting it). Replace `ASSUMED` with the citation as you go.

## Figures

| figure | value | source |
|---|---|---|
| `basic_inpatient.deductible{{hospital_level=1}}` | 300 yuan | ASSUMED |
| `basic_inpatient.deductible{{hospital_level=2}}` | 600 yuan | ASSUMED |
| `basic_inpatient.deductible{{hospital_level=3}}` | 1,000 yuan | ASSUMED |
| `basic_inpatient.ratio` | 80% | ASSUMED |
| `basic_inpatient.cap` | 100,000 yuan | ASSUMED |

## Checking

    yibao check {folder}
    yibao test {folder}
'''


def run(args) -> int:
    folder = Path(args.name)
    if folder.exists():
        print(f"yibao init: error: {folder} already exists; init never overwrites "
              "(choose a new folder)", file=sys.stderr)
        return 2
    if args.year is None:
        import datetime
        args.year = datetime.date.today().year
    if not 1900 <= args.year <= 9999:
        print("yibao init: error: --year must be 1900..9999", file=sys.stderr)
        return 2
    region = folder.resolve().name.replace('"', "")  # it goes inside the header's quotes
    fields = {"region": region, "year": args.year, "folder": folder.as_posix()}
    folder.mkdir(parents=True)
    for name, template in (("policy.yb", POLICY), ("tests.yaml", TESTS), ("README.md", README)):
        (folder / name).write_text(template.format(**fields), encoding="utf-8")
    print(f"created {folder}/ (policy.yb, tests.yaml, README.md); next: "
          f"yibao check {folder} && yibao test {folder}")
    return 0
