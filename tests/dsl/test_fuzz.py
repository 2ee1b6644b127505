"""Hypothesis fuzzing: random token soups, mutated valid policies, raw bytes (GBK, UTF-16,
invalid UTF-8), look-alike letters and digits of other scripts, numbers beyond every range and
tables whose completeness check would list millions of rows must compile or raise
PolicyError, never any other exception, and in bounded time. Every input that crashes is
written to regressions/ (as bytes, named by its hash) before the test fails, so it stays a
test: commit the file with the fix."""
import hashlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.dsl.compiler import compile_file, compile_text
from yibao.dsl.errors import PolicyError, render

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SEEDS = [p.read_text(encoding="utf-8") for p in
         sorted([*REPO.glob("city_configs/**/*.yb"), *HERE.glob("valid/*.yb")])]
TOKENS = ["policy", "region", "effective", "to", "year", "starts", "domain", "attribute", "table",
          "from", "layer", "applies", "when", "base", "deductible", "per", "claim", "continuing",
          "ratio", "by", "bands", "and", "above", "cap", "self_pay_limit", "if", "then", "else",
          "or", "not", "in", "paid", "true", "false", "money", "int", "bool", "text", "of",
          "yuan", "fen", "%", "{", "}", "(", ")", "[", "]", ":", ",", "->", "+", "-", "*", "=",
          "!=", "<", "<=", ">", ">=", "\n", "#c\n", "300", "1_000.50", "0.85", "85%",
          "2024-01-01", "07-01", '"x"', "tier", "setting", "in_scope", "person", "family",
          "low_income", "hospital_level", "inpatient", "a", "大病", "min", "max", "0", "-1",
          # hostile: look-alikes, other digits, out-of-range numbers, full-width forms
          "bаsic", "раss", "ａ", "３００_000", "٣", "²", "99999999999999999999999999",
          "9223372036854775807", "-9223372036854775808", "10_000_000_000_001", "yuan",
          "\x00", "\ufeff", "％", "（",
          # issue 15: the national field of a layer, amounts written the Chinese way
          "national", "hifp_pay", "hifmi_pya", "万", "元", "万元"]
# YIBAO_FUZZ_EXAMPLES=5000 runs the fuzzer longer on purpose (crashes land in regressions/)
FUZZ = settings(max_examples=int(os.environ.get("YIBAO_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=list(HealthCheck))
REGRESSIONS = HERE / "regressions"
MAX_SECONDS = 5  # one compile; the completeness bomb took 11 s before it was counted


def keep_crash(data: bytes, exc: BaseException) -> Path:
    """Write a crashing input to regressions/ (idempotent: named by its hash)."""
    path = REGRESSIONS / f"crash_{hashlib.sha256(data).hexdigest()[:12]}.yb"
    if not path.exists():
        path.write_bytes(data)
    return path


def compiles_or_policy_error(text) -> None:
    """Compile text (str) or a file's bytes (bytes, read as `yibao check` reads files)."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    start = time.monotonic()
    try:
        if isinstance(text, bytes):
            _compile_bytes(text)
        else:
            compile_text(text, "fuzz.yb")
    except PolicyError as exc:
        assert exc.diagnostics
        for diag in exc.diagnostics:
            render(diag, exc.source)
    except Exception as exc:
        path = keep_crash(data, exc)
        raise AssertionError(f"{type(exc).__name__}: {exc} (input kept in {path})") from exc
    if time.monotonic() - start > MAX_SECONDS:
        path = keep_crash(data, TimeoutError())
        raise AssertionError(f"compile took over {MAX_SECONDS} s (input kept in {path})")


def _compile_bytes(data: bytes) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.yb"
        path.write_bytes(data)
        compile_file(path)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_token_soup(text):
    compiles_or_policy_error(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup_after_a_valid_header(text):
    compiles_or_policy_error('policy "p" { effective 2024-01-01 to 2024-12-31 }\n' + text)


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        kind = draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + " " + draw(st.sampled_from(TOKENS)) + " " + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            k = draw(st.integers(0, len(text)))
            text = text[:i] + text[k:k + 8] + text[j:]
    return text


@FUZZ
@given(mutated())
def test_mutated_policies(text):
    compiles_or_policy_error(text)


@FUZZ
@given(mutated(), st.sampled_from(["gbk", "utf-16", "big5", "latin-1", "garbage"]),
       st.integers(0, 200))
def test_policy_bytes_not_utf8(text, encoding, at):
    """A policy saved in another encoding, or with bytes that are no encoding at all."""
    if encoding == "garbage":
        raw = text.encode("utf-8")
        data = raw[:at] + bytes([0xff, 0xc3, 0x28, 0x80]) + raw[at:]
    else:
        data = text.encode(encoding, errors="replace")
    compiles_or_policy_error(data)


HEAD = 'policy "p" { effective 2024-01-01 to 2024-12-31 }\n'
LOOK_ALIKE = st.text(alphabet="abcopxyаеорсухαονρ_１ａ", min_size=1, max_size=6)


@FUZZ
@given(st.lists(LOOK_ALIKE, min_size=1, max_size=4))
def test_look_alike_layer_names(names):
    body = "".join(f"layer {n} {{\n  base in_scope\n}}\n" for n in names)
    compiles_or_policy_error(HEAD + body)


@FUZZ
@given(st.one_of(st.integers(-10**30, 10**30), st.sampled_from([2**63, 2**63 - 1, -2**63])),
       st.sampled_from(["yuan", "fen", "%", ""]),
       st.sampled_from(["cap {} per claim", "deductible {} per claim", "ratio {}",
                        "base in_scope * {}", "base in_scope - {}"]))
def test_numbers_beyond_every_range(value, unit, stmt):
    number = f"{value}{' ' + unit if unit in ('yuan', 'fen') else unit}"
    compiles_or_policy_error(HEAD + "layer a {\n  base in_scope\n  " + stmt.format(number)
                             + "\n}\n" if not stmt.startswith("base") else
                             HEAD + "layer a {\n  " + stmt.format(number) + "\n}\n")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(1, 8), st.integers(2, 30), st.integers(0, 5))
def test_completeness_bomb(keys, values, rows):
    """keys × values closed-domain keys: up to 30**8 combinations, a handful of rows."""
    text = HEAD
    for k in range(keys):
        words = ", ".join(f"v{k}_{i}" for i in range(values))
        text += f"attribute k{k}: text of {{ {words} }}\n"
    names = ", ".join(f"k{k}" for k in range(keys))
    text += f"table big ({names}) -> ratio {{\n"
    for r in range(rows):
        text += "  " + ", ".join(f"v{k}_{r % values}" for k in range(keys)) + ": 50%\n"
    text += f"}}\nlayer a {{\n  base in_scope\n  ratio big[{names}]\n}}\n"
    compiles_or_policy_error(text)


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.yb")), ids=lambda p: p.stem)
def test_regressions(path):
    compiles_or_policy_error(path.read_bytes())


def test_a_crash_is_kept_as_a_regression(monkeypatch, tmp_path):
    """The keeping itself: a compiler that raises anything but PolicyError fails the test and
    leaves the input in regressions/ (here a temporary folder)."""
    import sys
    fuzz = sys.modules[__name__]
    monkeypatch.setattr(fuzz, "REGRESSIONS", tmp_path)

    def crash(text, name):
        raise KeyError("total")
    monkeypatch.setattr(fuzz, "compile_text", crash)
    with pytest.raises(AssertionError, match="KeyError"):
        compiles_or_policy_error("layer x {}")
    [kept] = tmp_path.glob("crash_*.yb")
    assert kept.read_bytes() == b"layer x {}"
