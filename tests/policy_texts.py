"""Policy text the provider and supervision tests build on (not a test module): a test year
and one inpatient basic layer, so a test adds only the statements it is about."""

BASIC_HEADER = """policy "t" {
  region "test"
  effective 2024-01-01 to 2024-12-31
}
attribute grp: text
layer basic "基本" {
  applies when setting = inpatient
  base in_scope
  ratio 80%
}
"""


# A decision-table grouper (dt.csv) with its points (points.csv) and one DRG pool: the provider
# tests of coded groups and of the provider part beside the settlement.
DECISION_TABLE_POLICY = """\
policy "决策表点数法" {
  region "test"
  effective 2024-01-01 to 2024-12-31
}

attribute age: int

layer basic "基本医保住院" {
  applies when setting = inpatient
  base in_scope
  ratio 80%
}

grouper dt "决策表分组" from "dt.csv" default "GRP_OTHER"

pool drg "住院" {
  applies when setting = inpatient
  group by dt
  budget 90_000_000 yuan
  base points from "points.csv"
  coefficient by hospital_level { 1: 0.85, 2: 1.0, 3: 1.2 }
  high outlier 3 when points <= 100, 2 otherwise
  low outlier 0.4
  adjust old_age 1.05 when age >= 80
  point value (budget + patient_paid) / points
}
"""

DECISION_TABLE_CSV = """\
group,label,dx_prefix,proc_any,age_lo
GRP_I_SURG,,I,3*,
GRP_I_OLD,,I,,65
GRP_I,,I,,
GRP_J,,J,,
GRP_K,,K,,
"""

DECISION_TABLE_POINTS = """\
group,points,avg_cost
GRP_I_SURG,180.5000,21000.00
GRP_I_OLD,95.2500,9800.00
GRP_I,80.0000,8100.00
GRP_J,60.1000,6000.00
"""


def family_policy(deductible: str = "2_000", cap: str = "10_000") -> str:
    """One layer accumulating per family (the family plugin's key), for explain's tests."""
    return f"""
policy "家庭" {{
  region "test"
  effective 2024-01-01 to 2025-12-31
}}

layer basic "家庭统筹" {{
  base in_scope - self_first
  deductible {deductible} yuan per family per year
  ratio 80%
  cap {cap} yuan per family per year
}}
"""
