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
