"""Calibration golden test, hand-checked.

Claims: A at level 3 costs 12,000 and 8,000 (avg 10,000); A at level 2 costs 7,000;
M at level 3 costs 30,000. City average = 57,000 / 4 = 14,250. Group A average =
27,000 / 3 = 9,000 -> B = 9,000 / 14,250 × 100 = 63.157894… -> 63.1579; M: 30,000 / 14,250
× 100 = 210.526315… -> 210.5263. k[3, A] = 10,000 / 9,000 = 1.111111; k[2, A] = 7/9 =
0.777778; k[3, M] = 1."""
import pyarrow as pa

from yibao.core.points.calibrate import calibrate, group_average_cost

from points_helpers import claims


def history():
    return claims(*(dict(claim_id=f"c{i}", drg=g, hospital_level=lv, total=c) for i, (g, lv, c)
                    in enumerate([("A", 3, 12_000), ("A", 3, 8_000), ("A", 2, 7_000),
                                  ("M", 3, 30_000), (None, 1, 99_999)])))


def test_calibrate_by_level():
    base, coef = calibrate(history())
    assert base == (("A", 631_579), ("M", 2_105_263))
    assert coef == (("2", "A", 777_778), ("3", "A", 1_111_111), ("3", "M", 1_000_000))


def test_calibrate_by_hospital_and_averages():
    base, coef = calibrate(history(), by="hospital_id")
    assert coef == (("h1", "A", 1_000_000), ("h1", "M", 1_000_000))
    assert group_average_cost(history()) == (("A", 9_000), ("M", 30_000))


def test_calibrate_empty():
    assert calibrate(history().slice(0, 0)) == ((), ())
