"""The settle command reads the claims while it compiles the policy (core/read_ahead.py, issue
14, w16). The tables a run gets must be those it would have read itself, whatever the files'
split, row groups, nulls and the guessed columns; it must read nothing ahead for a run in
partitions, an Arrow IPC file or files it cannot read; and the outputs must be the same bytes.
Also: a plan without the family key no longer decodes family_id (the family validator
declared it for every plan)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core import sources
from yibao.core.generate import generate_claims, write_claims
from yibao.core.manifest import OUTPUTS
from yibao.core.read_ahead import AHEAD_COLUMNS, ReadAhead
from yibao.core.runner import run_settle
from yibao.core.sources import input_files, open_sources, read_columns, read_rest, read_sources
from yibao.dsl.cli import main as cli_main
from yibao.dsl.commands._common import registry as full_registry
from yibao.dsl.compiler import compile_policy

ROOT = Path(__file__).resolve().parents[2]
CITIES = ("reference", "jinhua", "shanghai", "rizhao")
CLAIMS = generate_claims(600, seed=8)


def _with_nulls(t: pa.Table) -> pa.Table:
    """Nulls in an id, a money column and a text column the policy reads."""
    for name, rows in (("claim_id", (3,)), ("total", (5, 9)), ("tier", (11,))):
        values = t.column(name).to_pylist()
        for r in rows:
            values[r] = None
        t = t.set_column(t.schema.get_field_index(name), name,
                         pa.array(values, t.schema.field(name).type))
    return t


def _split(folder: Path, cuts: list, row_group: int) -> list:
    """The claims (with nulls) in one file per stretch between ``cuts``."""
    folder.mkdir(parents=True, exist_ok=True)
    claims = _with_nulls(CLAIMS)
    bounds = [0, *cuts, claims.num_rows]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        write_claims(claims.slice(a, b - a), folder / f"part-{k}.parquet",
                     row_group_size=row_group)
    return input_files(folder)


def _read_whole(ahead: ReadAhead) -> ReadAhead:
    """``ahead`` once its thread has read every file (``tables()`` would stop it between
    files)."""
    ahead._thread.join()
    return ahead


@pytest.fixture(scope="module")
def reference():
    reg = full_registry()
    return compile_policy(ROOT / "city_configs" / "reference", registry=reg), reg


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, 599), max_size=3, unique=True).map(sorted),
       row_group=st.sampled_from([50, 128, 600]),
       words=st.lists(st.sampled_from(["tier", "setting", "los", "nothing", "referral",
                                       "secondary_dx", "age"]), max_size=4),
       every=st.booleans())
def test_tables_read_ahead_are_the_tables_read(reference, tmp_path_factory, cuts, row_group,
                                               words, every):
    plan, reg = reference
    folder = tmp_path_factory.mktemp("split")
    files = _split(folder, cuts, row_group)
    columns = None if every else read_columns(plan, reg)
    found = open_sources(plan, files)
    early = _read_whole(ReadAhead(folder, words=words)).tables([s.path for s in found])
    assert early is not None and None not in early
    got, want = read_rest(found, early, columns), read_sources(found, columns)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.equals(b, check_metadata=True)


@pytest.mark.parametrize("name", CITIES)
def test_every_run_reads_the_columns_read_ahead(name):
    reg = full_registry()
    plan = compile_policy(ROOT / "city_configs" / name, registry=reg)
    assert set(AHEAD_COLUMNS) <= set(read_columns(plan, reg))


def test_nothing_read_ahead_for_partitions_ipc_or_bad_files(tmp_path):
    files = _split(tmp_path / "p", [300], 128)
    assert ReadAhead(tmp_path / "p", memory_limit=1_000).tables(files) is None  # partitions
    assert ReadAhead(tmp_path / "p").tables(files[:1]) is None  # other files than the run's
    assert ReadAhead(tmp_path / "missing").tables(files) is None
    feather.write_feather(CLAIMS, tmp_path / "c.arrow")
    assert ReadAhead(tmp_path / "c.arrow").tables([tmp_path / "c.arrow"]) is None
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    assert ReadAhead(tmp_path / "bad.parquet").tables([tmp_path / "bad.parquet"]) is None
    ahead = ReadAhead(tmp_path / "p")
    assert ahead.tables(files) is not None and ahead.tables(files) is None  # handed over once


def test_files_not_begun_are_read_by_the_run(reference, tmp_path):
    """``tables()`` stops the reading ahead between files: whatever it had read (here asked
    for at once, and with the first file's or the second's table dropped), the run's tables
    are those it would read itself."""
    plan, reg = reference
    files = _split(tmp_path / "p", [200, 420], 100)
    found = open_sources(plan, files)
    columns = read_columns(plan, reg)
    want = read_sources(found, columns)
    early = ReadAhead(tmp_path / "p").tables(files)  # at once: some files may not be begun
    assert early is None or len(early) == 3
    full = _read_whole(ReadAhead(tmp_path / "p")).tables(files)
    for mixed in (early or [None] * 3, [None, full[1], full[2]], [full[0], None, full[2]]):
        got = read_rest(found, mixed, columns)
        assert all(a.equals(b, check_metadata=True) for a, b in zip(got, want))


def _outputs(folder: Path) -> dict:
    return {n: (folder / n).read_bytes() for n in OUTPUTS
            if (folder / n).exists() and n not in ("summary.json", "manifest.json")}


@pytest.mark.parametrize("name", ["reference", "jinhua", "family_plan"])
def test_outputs_are_the_same_bytes(name, tmp_path, request):
    reg = full_registry()
    plan = request.getfixturevalue(name) if name == "family_plan" else \
        compile_policy(ROOT / "city_configs" / name, registry=reg)
    _split(tmp_path / "in", [250], 128)
    run_settle(plan, tmp_path / "in", tmp_path / "plain", registry=reg, progress=False)
    run_settle(plan, tmp_path / "in", tmp_path / "ahead", registry=reg, progress=False,
               read_ahead=ReadAhead(tmp_path / "in", words=["tier"]))
    plain, ahead = _outputs(tmp_path / "plain"), _outputs(tmp_path / "ahead")
    assert plain["claims.parquet"] and plain == ahead


def test_command_reads_ahead_and_writes_the_same(tmp_path, monkeypatch, capsys):
    """`yibao settle` starts the read-ahead (and not for --partitions): the same results."""
    _split(tmp_path / "in", [400], 128)
    made = []
    real = ReadAhead.__init__
    monkeypatch.setattr(ReadAhead, "__init__",
                        lambda self, *a, **k: made.append(1) or real(self, *a, **k))
    policy = str(ROOT / "city_configs" / "reference")
    for out, extra in (("a", []), ("p", ["--partitions", "2"])):
        code = cli_main(["settle", policy, str(tmp_path / "in"), "--out", str(tmp_path / out),
                         "--no-progress"] + extra)
        assert code == 1  # the rows with nulls are rejected
    assert made == [1]
    monkeypatch.setenv("YIBAO_THREADS", "1")  # no thread: no read-ahead
    assert cli_main(["settle", policy, str(tmp_path / "in"), "--out", str(tmp_path / "one"),
                     "--no-progress"]) == 1
    assert made == [1]
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "p") == _outputs(tmp_path / "one")


def test_family_id_is_read_only_under_the_family_key(family_plan, registry):
    reference = compile_policy(ROOT / "city_configs" / "reference", registry=registry)
    assert "family" not in {k.name for k in reference.keys()}
    assert "family_id" not in read_columns(reference, registry)
    assert "family" in {k.name for k in family_plan.keys()}
    assert "family_id" in read_columns(family_plan, registry)


def test_the_read_ahead_holds_one_file_open_at_a_time(tmp_path, monkeypatch):
    """A folder of many daily extracts: the read-ahead opens one file at a time. It held every
    file open while decoding, beside the run's readers and the input hashes, and a valid run
    of ~1,000 files ran out of file descriptors (review, found with `ulimit -n`)."""
    import pyarrow.parquet as pq
    paths = _split(tmp_path / "many", list(range(20, 600, 20)), 64)
    live, most = [0], [0]

    class Counted(pq.ParquetFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            live[0] += 1
            most[0] = max(most[0], live[0])

        def close(self, force: bool = False):
            live[0] -= 1
            super().close(force=force)

    monkeypatch.setattr(pq, "ParquetFile", Counted)
    ahead = _read_whole(ReadAhead(tmp_path / "many"))
    tables = ahead.tables(paths)
    assert tables is not None and all(t is not None for t in tables) and len(tables) == 30
    assert most[0] == 1


def test_files_not_begun_are_read_beside_the_file_read_ahead(reference, tmp_path):
    """``stop`` does not wait for the file being read ahead: the run begins the files the
    read-ahead had not begun before ``tables`` (waiting for it) returns (issue 14, w19), and
    the tables are those it would read itself, the begun files' too."""
    import threading
    plan, reg = reference
    files = _split(tmp_path / "p", [300], 128)
    found = open_sources(plan, files)
    columns = read_columns(plan, reg)
    want = read_sources(found, columns)
    full = _read_whole(ReadAhead(tmp_path / "p")).tables(files)
    first_read = threading.Event()
    real = sources.Source.read

    def read(self, cols=None):
        table = real(self, cols)
        first_read.set()
        return table

    def early_tables():  # the read-ahead still decoding the first file
        assert first_read.wait(10), "the second file was not read beside the first"
        return [full[0], None]
    sources.Source.read = read
    try:
        got = sources.read_beside(found, columns, {files[0]}, early_tables)
    finally:
        sources.Source.read = real
    assert all(a.equals(b, check_metadata=True) for a, b in zip(got, want))
    assert sources.read_beside(found, columns, set(files), lambda: None)[1].equals(want[1])


@pytest.mark.parametrize("cuts", [[], [300]])
def test_a_begun_files_other_columns_are_read_beside_the_read_ahead(reference, tmp_path,
                                                                     monkeypatch, cuts):
    """The columns of a begun file that the read-ahead does not decode (``ReadAhead.reads``)
    are read before ``tables`` (waiting for it) returns, not after (issue 14, p20), and the
    tables are those the run would read itself."""
    import threading
    plan, reg = reference
    files = _split(tmp_path / "p", cuts, 128)
    found = open_sources(plan, files)
    columns = read_columns(plan, reg)
    want = read_sources(found, columns)
    ahead = _read_whole(ReadAhead(tmp_path / "p"))
    assert set(columns) - set(ahead.reads(columns))  # the run reads columns it did not
    full = ahead.tables(files)
    late_read = threading.Event()
    real = sources.Source.read_late

    def read_late(self, names):
        table = real(self, names)
        late_read.set()
        return table

    def early_tables():  # the read-ahead still decoding
        assert late_read.wait(10), "the other columns were not read beside the read-ahead"
        return full
    monkeypatch.setattr(sources.Source, "read_late", read_late)
    got = sources.read_beside(found, columns, set(files), early_tables, ahead.taken)
    assert all(a.equals(b, check_metadata=True) for a, b in zip(got, want))


def test_a_read_ahead_stopped_within_a_file_hands_over_the_columns_it_took(reference,
                                                                           tmp_path,
                                                                           monkeypatch):
    """The read-ahead decodes a file a column at a time: stopped while it decodes one, it
    hands over the columns read so far and that one (``taken``, known as soon as it is
    stopped), and the run reads every other column at once, beside it (issue 14, p20: the
    run's thread waited for the whole file with a core idle); the tables are those the run
    would read itself."""
    import threading
    import pyarrow.parquet as pq
    plan, reg = reference
    files = _split(tmp_path / "p", [], 128)
    found = open_sources(plan, files)
    columns = read_columns(plan, reg)
    want = read_sources(found, columns)
    decoding, go_on = threading.Event(), threading.Event()
    real = pq.ParquetFile.read

    def read(self, columns=None, **kwargs):
        if threading.current_thread().name == "yibao-read-ahead" and columns == ["person_id"]:
            decoding.set()
            go_on.wait(10)
        return real(self, columns=columns, **kwargs)
    monkeypatch.setattr(pq.ParquetFile, "read", read)
    ahead = ReadAhead(tmp_path / "p")
    assert decoding.wait(10)
    assert ahead.stop(files) == set(files)
    taken = ahead.taken(files[0])
    assert taken is not None and taken[-1] == "person_id" and "total" not in taken
    read_late = []
    real_late = sources.Source.read_late

    def late(self, names):
        read_late.append(list(names))
        return real_late(self, names)
    monkeypatch.setattr(sources.Source, "read_late", late)

    def early_tables():
        go_on.set()  # the read-ahead finishes its column, then hands over
        return ahead.tables(files)
    got = sources.read_beside(found, columns, set(files), early_tables, ahead.taken)
    assert read_late and "total" in read_late[0] and "person_id" not in read_late[0]
    assert all(a.equals(b, check_metadata=True) for a, b in zip(got, want))


def test_stop_says_which_files_were_begun(tmp_path):
    files = _split(tmp_path / "p", [300], 128)
    ahead = _read_whole(ReadAhead(tmp_path / "p"))
    assert ahead.stop(files) == set(files) and ahead.stop(files[:1]) == set()
    assert ReadAhead(tmp_path / "p", memory_limit=1_000).stop(files) == set()  # partitions
