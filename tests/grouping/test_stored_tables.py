"""The compiled CHS-DRG tables kept on disk (core/grouping/stored.py, issue 14 c18): a run
loads the kernel's arrays instead of reading and compiling the JSON tables, and an entry is
used only for the same table files, MDC order and code — any change, a damaged or truncated
entry, a folder that cannot be written: compiled again, never a wrong answer, never an
error. Each test works on its own copy of the tables in its own cache folder."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import yibao.core
from yibao.core.grouping import compile as drg_compile
from yibao.core.grouping import drg, stored, tables

CLAIMS = [  # grouped by the 1.1 tables as they ship; the edit below makes E11.900 an MCC
    {"principal_dx": "J18.900", "secondary_dx": ["E11.900"], "sex": 1, "age": 5},   # ES35
    {"principal_dx": "I21.900", "secondary_dx": ["E11.900"], "sex": 2, "age": 70},  # FR19
    {"principal_dx": "K35.800", "procedures": ["47.0901"], "sex": 1, "age": 30},
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A copy of the shipped 1.1 tables, and an empty cache folder, for this test alone."""
    copy = tmp_path / "chs_drg_11"
    copy.mkdir()
    for name in stored.SOURCE_FILES:
        shutil.copy(tables.DATA_DIR / name, copy / name)
    monkeypatch.setenv("YIBAO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("YIBAO_NO_CACHE", raising=False)
    fresh_process()
    yield copy
    fresh_process()


def fresh_process():
    """Forget what this process compiled, as a new run would."""
    drg_compile._compiled.cache_clear()
    tables.load_tables.cache_clear()


@pytest.fixture
def compiles(monkeypatch):
    """How many times the tables were compiled (not loaded from disk)."""
    calls = []
    real = drg_compile._compile

    def counted(*args):
        calls.append(args[1])
        return real(*args)
    monkeypatch.setattr(drg_compile, "_compile", counted)
    return calls


def compiled(folder, mdc_order=None) -> dict:
    fresh_process()
    return drg_compile.compile_tables(tables.load_tables(str(folder)), mdc_order)


def entries(folder) -> list:
    where = stored.disk_cache.cache_dir() / "drg"
    return sorted(where.glob("*.pickle")) if where.is_dir() else []


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        elif key.endswith("_index"):  # (slots, keys) arrays of _drg.build_code_index
            assert all(np.array_equal(x, y) for x, y in zip(a[key], b[key])), key
        else:
            assert a[key] == b[key], key


def groups(folder, to_table) -> list:
    fresh_process()
    return drg.group_drg(to_table(CLAIMS), tables.load_tables(str(folder))) \
        .column("drg").to_pylist()


def test_a_second_run_loads_the_arrays_a_first_compiled(folder, compiles, to_table):
    first = compiled(folder)
    assert compiles == [tables.load_tables().default_mdc_order] and len(entries(folder)) == 1
    again = compiled(folder)
    assert compiles == [tables.load_tables().default_mdc_order]  # not compiled again
    assert_same(again, first)
    assert groups(folder, to_table) == drg.group_drg(to_table(CLAIMS)).column("drg").to_pylist()


def test_a_hit_reads_no_json(folder, compiles):
    compiled(folder)
    fresh_process()
    t = tables.load_tables(str(folder))
    drg_compile.compile_tables(t)
    assert "scheme" not in t.__dict__  # the tables' fields were never read
    assert len(t.diagnoses) > 30000 and "scheme" in t.__dict__  # and still read on use


def test_an_edited_table_file_is_compiled_again(folder, compiles, to_table):
    before = groups(folder, to_table)
    codes = (folder / "codes.json").read_text(encoding="utf-8")
    edited = codes.replace('"mcc":{', '"mcc":{"E11.900":1,', 1)  # E11.900 becomes an MCC
    assert edited != codes
    (folder / "codes.json").write_text(edited, encoding="utf-8")
    after = groups(folder, to_table)
    assert len(compiles) == 2 and len(entries(folder)) == 2
    assert before[0] == "ES35" and after[0] == "ES31"  # the MCC split of ES3
    assert after[1:] == before[1:]


def test_another_mdc_order_is_its_own_entry(folder, compiles):
    default = compiled(folder)
    order = ("MDCP", "MDCA", *[m for m in default["mdc_names"] if m not in ("MDCA", "MDCP")])
    other = compiled(folder, order)
    assert other["mdc_names"] == list(order) and default["mdc_names"][0] == "MDCA"
    assert len(compiles) == 2 and len(entries(folder)) == 2
    assert compiled(folder, order)["mdc_names"] == list(order) and len(compiles) == 2


def test_another_yibao_version_compiles_again(folder, compiles, monkeypatch):
    compiled(folder)
    monkeypatch.setattr(yibao.core, "__version__", yibao.core.__version__ + ".post1")
    compiled(folder)
    assert len(compiles) == 2 and len(entries(folder)) == 2


def test_edited_grouping_code_compiles_again(folder, compiles, monkeypatch):
    compiled(folder)
    real = stored.code_stamp()
    monkeypatch.setattr(stored, "code_stamp", lambda: (*real, ("compile.py", 1, 1)))
    compiled(folder)
    assert len(compiles) == 2


@pytest.mark.parametrize("damage", ["flip a byte of an array", "truncate", "empty", "garbage"])
def test_a_damaged_entry_is_compiled_again_and_replaced(folder, compiles, damage):
    good = compiled(folder)
    [entry] = entries(folder)
    data = bytearray(entry.read_bytes())
    if damage == "flip a byte of an array":  # still a valid pickle, with a wrong number in it
        at = data.find(good["dx_mcc"].tobytes()) + 1000
        assert at > 1000
        data[at] ^= 0x40
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a pickle at all" * 10)
    entry.write_bytes(bytes(data))
    again = compiled(folder)
    assert len(compiles) == 2
    assert_same(again, good)
    assert_same(compiled(folder), good) and len(compiles) == 2  # replaced: a hit again


def test_a_read_only_cache_folder_compiles_silently(folder, compiles, capsys, monkeypatch,
                                                    to_table):
    # Root ignores a folder's permission bits, so the folder refuses writes the way a
    # read-only mount does: creating the temporary file beside the entry fails.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")
    monkeypatch.setattr("tempfile.mkstemp", refuse)
    assert groups(folder, to_table) == groups(folder, to_table)
    assert len(compiles) == 2 and entries(folder) == []
    assert capsys.readouterr() == ("", "")


def test_a_cache_folder_under_a_file_compiles_silently(folder, compiles, capsys, monkeypatch,
                                                       tmp_path, to_table):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv("YIBAO_CACHE_DIR", str(tmp_path / "a_file" / "cache"))
    assert groups(folder, to_table) == groups(folder, to_table)
    assert len(compiles) == 2
    assert capsys.readouterr() == ("", "")


def test_no_home_compiles(folder, compiles, monkeypatch, to_table):
    monkeypatch.delenv("YIBAO_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(stored.disk_cache.Path, "home",
                        classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home"))))
    assert groups(folder, to_table)[1:] == groups(folder, to_table)[1:]
    assert len(compiles) == 2


def test_yibao_no_cache_neither_reads_nor_writes(folder, compiles, monkeypatch):
    compiled(folder)
    monkeypatch.setenv("YIBAO_NO_CACHE", "1")
    compiled(folder)
    assert len(compiles) == 2 and len(entries(folder)) == 1
    (entries(folder)[0]).unlink()
    compiled(folder)
    assert entries(folder) == []


def test_tables_built_in_python_are_not_stored(folder, compiles):
    t = tables.load_tables(str(folder))
    fields = {name: getattr(t, name) for name in tables.DrgTables.__dataclass_fields__}
    drg_compile.compile_tables(tables.DrgTables(**fields))
    assert len(compiles) == 1 and entries(folder) == []


def test_tables_read_before_their_files_change_never_file_under_the_new_files(folder, compiles,
                                                                             to_table):
    """A process that read the tables, then saw the folder converted again (a long-lived
    studio or notebook), compiles what it read: those arrays go under the digests of the
    bytes it read, so a new process on the new files compiles them, never the old arrays."""
    fresh_process()
    t = tables.load_tables(str(folder))
    assert len(t.diagnoses) > 30000  # this process has read the files
    codes = (folder / "codes.json").read_text(encoding="utf-8")
    (folder / "codes.json").write_text(codes.replace('"mcc":{', '"mcc":{"E11.900":1,', 1),
                                       encoding="utf-8")
    assert drg.group_drg(to_table(CLAIMS), t).column("drg").to_pylist()[0] == "ES35"  # old
    assert groups(folder, to_table)[0] == "ES31"  # a new process: the files as they are now
    assert len(compiles) == 2


def test_files_changed_between_the_lookup_and_the_build_file_under_what_was_built(
        folder, compiles, monkeypatch, to_table):
    """The converter rewrites a file after the lookup hashed it and before the build read
    it: the arrays are filed under the digests of the bytes built, so the original files,
    restored, are compiled again instead of loading the edited build."""
    codes = (folder / "codes.json").read_text(encoding="utf-8")
    real = drg_compile._built

    def rewritten_first(t, mdc_order):
        (folder / "codes.json").write_text(codes.replace('"mcc":{', '"mcc":{"E11.900":1,', 1),
                                           encoding="utf-8")
        return real(t, mdc_order)
    monkeypatch.setattr(drg_compile, "_built", rewritten_first)
    assert groups(folder, to_table)[0] == "ES31"  # built from the rewritten file
    monkeypatch.setattr(drg_compile, "_built", real)
    (folder / "codes.json").write_text(codes, encoding="utf-8")
    assert groups(folder, to_table)[0] == "ES35"
    assert len(compiles) == 2


def test_two_threads_first_using_the_tables_read_them_once(folder, monkeypatch):
    """Both threads see every field, and the files are read once."""
    import threading
    import time
    real, reads = tables._fields, []

    def slow(path):
        reads.append(path)
        time.sleep(0.2)  # the other thread asks meanwhile
        return real(path)
    monkeypatch.setattr(tables, "_fields", slow)
    fresh_process()
    t = tables.load_tables(str(folder))
    seen = {}
    threads = [threading.Thread(target=lambda n=n: seen.update({n: len(getattr(t, n))}))
               for n in ("diagnoses", "procedures")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1 and seen["diagnoses"] > 30000 and seen["procedures"] > 1000
