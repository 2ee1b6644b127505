"""The provider text columns laid out by ``_texts.texts_at`` (``provider._Texts``) are the
strings and nulls Arrow's take and cast of the same dictionary array give: every code, a
null code, a null position (a claim in no pool), a sliced dictionary, an empty one, multibyte
text, values longer than a padded word, and values too long for ``_texts`` (Arrow then)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from yibao.core import provider
from yibao.core._texts import texts_at

DICTIONARIES = {
    "statuses": pa.array(["ok", "ungrouped", "default"]),
    "sliced": pa.array(["", "ok", "高倍率病例", "x" * 17, None, "y"]).slice(0, 4),
    "empty": pa.array([], pa.string()),
    "one": pa.array(["drg"]),
    "long": pa.array(["a" * (provider.MAX_TEXT_WIDTH + 1), "b"]),
    "null value": pa.array(["a", None]),
}


def _coded(dictionary: pa.Array, n: int, rng) -> pa.DictionaryArray:
    size = max(len(dictionary), 1)
    codes = rng.integers(0, size, n).astype(np.int32)
    mask = rng.random(n) < 0.15 if len(dictionary) else np.ones(n, bool)
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), dictionary)


def _sources(n: int, rng) -> list:
    return [None, pa.array(rng.integers(0, n, 300)),
            pa.array(rng.integers(0, n, 300), mask=rng.random(300) < 0.2),
            pa.array([], pa.int64()), pa.array(rng.permutation(n))]


@pytest.mark.parametrize("name", sorted(DICTIONARIES))
def test_laid_texts_equal_arrows_take_and_cast(name):
    rng = np.random.default_rng(5)
    coded = _coded(DICTIONARIES[name], 1000, rng)
    texts = provider._Texts(coded)
    for source in _sources(1000, rng):
        n = 1000 if source is None else len(source)
        got = provider._laid(provider._Layout(source), texts, pa.string(), n)
        want = (coded if source is None else coded.take(source)).cast(pa.string())
        got.validate(full=True)
        assert got.equals(want), name


def test_texts_at_builds_valid_arrow_buffers():
    """Offsets, data and validity as an Arrow string array reads them: the last row's
    word-wide copy stays inside the buffer's slack, nulls are zero-length rows."""
    values = [b"ab", b"", b"abcdefghi"]
    width = 16
    offsets = np.array([0, 2, 2, 11], np.int32)
    padded = np.frombuffer(b"".join(v.ljust(width, b"\0") for v in values), np.uint8)
    codes = np.array([2, 0, -1, 1, 2], np.int32)
    source = np.array([4, -1, 0, 2, 3, 1], np.int64)
    valid, offs, data, nulls = texts_at(offsets, padded, width, codes, source, False)
    laid = pa.Array.from_buffers(pa.string(), 6, [valid, offs, data], null_count=nulls)
    laid.validate(full=True)
    assert laid.to_pylist() == ["abcdefghi", None, "abcdefghi", None, "", "ab"]
    valid, offs, data, nulls = texts_at(offsets, padded, width, codes, source[:0], True)
    laid = pa.Array.from_buffers(pa.string(), 5, [valid, offs, data], null_count=nulls)
    assert laid.to_pylist() == ["abcdefghi", "ab", None, "", "abcdefghi"]


def test_one_value_for_every_row_laid_out_without_a_gather():
    """Every piece row one value (one pool holds every claim): the same strings, with the
    rows in no pool (null positions) still null."""
    rng = np.random.default_rng(9)
    coded = pa.DictionaryArray.from_arrays(pa.array(np.zeros(500, np.int32)), pa.array(["drg"]))
    texts = provider._Texts(coded)
    assert texts.constant
    for source in _sources(500, rng):
        n = 500 if source is None else len(source)
        got = provider._laid(provider._Layout(source), texts, pa.string(), n)
        got.validate(full=True)
        assert got.equals((coded if source is None else coded.take(source)).cast(pa.string()))
