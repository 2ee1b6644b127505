"""Hypothesis strategies for benefit PLANS (not only batches), so kernel == reference is
checked on policies nobody wrote by hand: random layers whose bases go negative part-way
(``(in_scope - total) * 50%``), ratios that land on exact half fen, per-claim and yearly
deductibles (continuing ones too), bands of random shapes, caps of random kinds (shared ones
too, and caps that are expressions), self-pay limits, paid() of earlier layers, person and
family keys. Plans are built from plan nodes, in the shape the compiler produces (paid()
terms last in a base: dsl/passes/lower_plan.paid_last)."""
from __future__ import annotations

from hypothesis import strategies as st

from yibao.core.plan import (BOOL, INT, MONEY, MONTH, PER_CLAIM, PER_YEAR, RATIO, TEXT, Band,
                             BandSet, Bands,
                             Binary, Cap, Column, ColumnDecl, Cond, Const, Deductible, InSet,
                             Key, Layer, Paid, Plan, SelfPayLimit, Type)

from .plans import days

M, R, B = Type(MONEY), Type(RATIO), Type(BOOL)
SETTING = Type(TEXT, ("inpatient", "outpatient", "rehab"))
LEVEL = Type(INT, (1, 2, 3))
FAMILY = Key("family", "family_id")
PERSON_KEY = Key("person", "person_id")
# refined keys (issue 17): per person and a column, per person per month, per family and a
# column per month; the claims straddle months and the year boundary (strategies.START)
KEYS = st.sampled_from([PERSON_KEY, FAMILY, PERSON_KEY.refine(("setting",)),
                        PERSON_KEY.refine((), MONTH), FAMILY.refine(("hospital_level",), MONTH)])

# Ratios in millionths: halves of a fen are common with 50%, 5%, 15%, 12.5%, 0.5% and
# odd amounts; 0 and 100% are the edges.
RATIOS = st.one_of(st.sampled_from([0, 5_000, 50_000, 125_000, 150_000, 333_333, 400_000,
                                    500_000, 550_000, 850_000, 999_999, 1_000_000]),
                   st.integers(0, 1_000_000))
AMOUNTS = st.one_of(st.integers(0, 2_000_000), st.sampled_from([0, 1, 5, 15, 100_000]))


def money_column():
    return st.sampled_from([Column(M, "total"), Column(M, "in_scope"), Column(M, "self_first")])


@st.composite
def money_expr(draw, depth=2):
    """A claim-only money expression; differences can go negative before a ratio applies."""
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.one_of(money_column(), AMOUNTS.map(lambda v: Const(M, v))))
    op = draw(st.sampled_from(["+", "-", "-", "*ratio", "min", "max", "cond", "*int",
                               "adjust", "adjust"]))
    if op == "adjust":  # a + (b - c) × ratio: the difference is often negative, an exact half
        diff = Binary(M, "-", draw(money_column()), draw(money_column()))
        return Binary(M, "+", draw(money_column()), Binary(M, "*", diff, Const(R, draw(RATIOS))))
    left = draw(money_expr(depth - 1))
    if op == "*ratio":
        return Binary(M, "*", left, Const(R, draw(RATIOS)))
    if op == "*int":
        return Binary(M, "*", left, Const(Type(INT), draw(st.integers(-3, 3))))
    if op == "cond":
        return Cond(M, draw(condition()), left, draw(money_expr(depth - 1)))
    return Binary(M, op, left, draw(money_expr(depth - 1)))


@st.composite
def condition(draw):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return Column(B, "low_income")
    if kind == 1:
        return InSet(B, Column(SETTING, "setting"), tuple(sorted(draw(
            st.sets(st.integers(0, 2), min_size=1, max_size=2)))))
    if kind == 2:
        return Binary(B, ">", Column(M, "total"), Const(M, draw(AMOUNTS)))
    return Binary(B, "==", Column(LEVEL, "hospital_level"), Const(LEVEL, draw(st.integers(1, 3))))


@st.composite
def base(draw, earlier: list):
    """A claim part, then ± paid() of earlier layers (paid() terms last, as compiled)."""
    out = draw(money_expr())
    if earlier and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
        for name in chosen or [None]:
            paid = Paid(M, (name,) if name else ())
            out = Binary(M, draw(st.sampled_from(["-", "-", "+"])), out, paid)
    return out


@st.composite
def amount(draw):
    """A deductible, cap or limit amount: a constant, a claim-dependent one, or an expression."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return Const(M, draw(AMOUNTS))
    if kind == 1:
        return Cond(M, draw(condition()), Const(M, draw(AMOUNTS)), Const(M, draw(AMOUNTS)))
    return Binary(M, "*", Column(M, "total"), Const(R, draw(RATIOS)))


@st.composite
def band_rows(draw):
    edges = sorted(draw(st.sets(st.integers(1, 3_000_000), max_size=3)))
    rates = draw(st.lists(RATIOS, min_size=len(edges) + 1, max_size=len(edges) + 1))
    los = [0] + edges
    his = edges + [None]
    return tuple(Band(lo, hi, r) for lo, hi, r in zip(los, his, rates))


@st.composite
def bands(draw):
    """Bands, often with `when` sets of their own bounds (the last holding set pays)."""
    alts = tuple(BandSet(draw(condition()), draw(band_rows()))
                 for _ in range(draw(st.integers(0, 2))))
    return Bands(draw(band_rows()), draw(KEYS), alts)


@st.composite
def deductible(draw):
    scope = draw(st.sampled_from([PER_CLAIM, PER_YEAR]))
    continuing = (Column(B, "referral") if scope == PER_CLAIM and draw(st.booleans())
                  else None)
    return Deductible(draw(amount()), scope, draw(KEYS), continuing)


@st.composite
def caps(draw, shared: dict):
    out = []
    for _ in range(draw(st.integers(0, 2))):
        if shared and draw(st.booleans()):
            out.append(draw(st.sampled_from(sorted(shared.values(), key=lambda c: c.name))))
            continue
        scope = draw(st.sampled_from([PER_CLAIM, PER_YEAR]))
        cap = Cap(draw(amount()), scope, draw(KEYS))
        if scope == PER_YEAR and draw(st.integers(0, 3)) == 0:
            cap = Cap(Const(M, draw(AMOUNTS)), PER_YEAR, cap.key, f"shared{len(shared)}")
            shared[cap.name] = cap
        out.append(cap)
    return tuple(dict.fromkeys(out))  # a shared cap once per layer


@st.composite
def layer(draw, index: int, earlier: list, shared: dict):
    applies = draw(st.one_of(st.just(Const(B, True)), condition()))
    kind = draw(st.sampled_from(["ratio", "ratio", "bands", "full", "limit"]))
    ratio = limit = None
    if kind == "ratio":
        ratio = draw(st.one_of(RATIOS.map(lambda r: Const(R, r)),
                               st.tuples(condition(), RATIOS, RATIOS).map(
                                   lambda t: Cond(R, t[0], Const(R, t[1]), Const(R, t[2])))))
    elif kind == "bands":
        ratio = draw(bands())
    elif kind == "limit":
        limit = SelfPayLimit(draw(amount()), draw(KEYS))
    ded = draw(st.one_of(st.none(), deductible()))
    return Layer(f"l{index}", "", applies, draw(base(earlier)), deductible=ded, ratio=ratio,
                 caps=draw(caps(shared)), limit=limit)


COLUMNS = tuple(ColumnDecl(n, t) for n, t in (
    ("claim_id", Type(TEXT)), ("person_id", Type(TEXT)), ("discharge_date", Type("date")),
    ("total", M), ("in_scope", M), ("self_first", M), ("setting", SETTING),
    ("hospital_level", LEVEL), ("low_income", B), ("referral", B)))


@st.composite
def plans(draw, max_layers=4):
    layers, shared = [], {}
    for i in range(draw(st.integers(1, max_layers))):
        layers.append(draw(layer(i, [l.name for l in layers], shared)))
    return Plan("generated", "test", days("2024-01-01"), days("2025-12-31"), COLUMNS, (),
                tuple(layers))
