"""Policy years looked up per day of the batch's span (issue 14) are Python's calendar: the
year of the date, less one before the policy year's start (month, day)."""
from __future__ import annotations

import datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core.lower import policy_years

EPOCH = datetime.date(1970, 1, 1)
DAYS = st.integers(datetime.date(1, 1, 1).toordinal() - EPOCH.toordinal(),
                   datetime.date(9999, 12, 31).toordinal() - EPOCH.toordinal())


def python_year(day: int, start: tuple) -> int:
    date = EPOCH + datetime.timedelta(days=day)
    return date.year - ((date.month, date.day) < start)


@settings(max_examples=200, deadline=None)
@given(near=st.lists(st.integers(19_000, 19_800), max_size=50),
       far=st.lists(DAYS, max_size=3),
       start=st.sampled_from([(1, 1), (7, 1), (2, 29), (12, 31), (3, 15)]))
def test_policy_years_are_the_calendars(near, far, start):
    """Dates of a year or two (the looked-up path) and dates centuries apart (each computed)."""
    days = np.array(near + far, dtype=np.int64)
    want = [python_year(int(d), start) for d in days]
    assert policy_years(days, start).tolist() == want
    assert policy_years(days.astype("datetime64[D]"), start).tolist() == want
    assert policy_years(days, start).dtype == np.int32
