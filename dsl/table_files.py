"""The one reader of the table files a policy names (benefit tables, provider-payment tables,
decision tables): ``from "file.csv"`` or ``from "file.xlsx"`` in the policy's own folder.

- the path: relative, inside the policy's folder, no NUL byte (E304); a policy compiled from
  text has no folder (E305);
- a CSV is read as ``source.read_table_text`` reads it: a FIFO or device is refused before it
  is opened, UTF-8 or else GBK/GB18030 (what Excel on Chinese Windows saves), a leading BOM
  skipped; anything else is E305 naming the encoding it seems to be in;
- an ``.xlsx`` workbook is its first sheet (openpyxl, the ``xlsx`` extra), each cell as the
  text a CSV would hold (``sheet_cell``), cut to the columns some cell uses; a sheet row is
  numbered as its line would be, and messages say ``row`` where a CSV's say ``line``.

``read_table_file`` returns a ``TableFile`` (records numbered by the line or sheet row they
start on) or None after reporting. The passes that read tables (``check_tables``,
``read_provider_tables``, ``check_groupers``, ``apply_adjustments``) all go through it, so
a table behaves the same whatever declares it.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Optional

from . import ast
from .errors import error
from .source import SourceError, read_bytes, read_table_text

FOLDER_HINT = "the file must sit in the policy's folder, UTF-8"


@dataclass(frozen=True)
class TableFile:
    """A table file's records: ``unit`` is ``line`` (CSV) or ``row`` (a sheet);
    ``records`` are ``(number, cells)`` in file order, blank records included (as ``[]``
    or cells of spaces) so each caller decides what a blank line means."""
    name: str
    unit: str
    records: tuple
    path: Path
    text: Optional[str] = None  # a CSV's text as read (None for a sheet)

    def csv_text(self) -> str:
        """The file as CSV text, one line per line or sheet row (line numbers kept), for a
        loader that parses text (the decision tables)."""
        if self.text is not None:
            return self.text
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        line = 1
        for number, cells in self.records:
            out.write("\n" * (number - line))
            writer.writerow(cells)
            line = number + 1
        return out.getvalue()


def table_path(ref: ast.Str, ctx) -> Optional[Path]:
    """The file ``ref`` names inside the policy's folder, or None (reported E304/E305)."""
    if "\x00" in ref.value:
        ctx.report(error("E304", "table file name contains a NUL byte", ref.span,
                         "give a plain file name relative to the policy's folder"))
        return None
    rel = PurePath(ref.value)
    outside = rel.is_absolute() or ".." in rel.parts or ref.value.startswith(("/", "\\"))
    if outside or ":" in ref.value:
        ctx.report(error("E304", f"table file '{ref.value}' is outside the policy's folder",
                         ref.span, "give a file name relative to the policy's folder, no '..'"))
        return None
    if ctx.base_dir is None:
        ctx.report(error("E305", f"cannot read table file '{ref.value}': the policy has no "
                         "folder (compiled from text)", ref.span,
                         "compile the policy file, or pass base_dir"))
        return None
    base = Path(ctx.base_dir).resolve()
    path = (base / rel).resolve()
    if base not in path.parents:  # e.g. a symlink pointing out of the folder
        ctx.report(error("E304", f"table file '{ref.value}' resolves outside the policy's "
                         "folder", ref.span))
        return None
    return path


def is_workbook(ref: ast.Str) -> bool:
    return ref.value.lower().endswith(".xlsx")


def read_table_file(ref: ast.Str, ctx, what: str = "table file",
                    detail: bool = True) -> Optional[TableFile]:
    """The records of the table file ``ref`` names, or None (reported E304/E305).
    ``what`` names the file in messages ("table file", "file", "decision table");
    ``detail`` False leaves the line of an encoding error and the OS's reason for a file it
    cannot open out of the message (the decision tables' messages, unchanged)."""
    path = table_path(ref, ctx)
    if path is None:
        return None
    if path.suffix.lower() == ".xlsx":
        return _read_workbook(ref, path, ctx, what)
    try:
        text = read_table_text(path).removeprefix("\ufeff")
    except SourceError as exc:  # not a regular file, too large, neither UTF-8 nor GB18030
        where = f" (line {exc.line})" if exc.text and detail else ""
        ctx.report(error("E305", f"cannot read {what} '{ref.value}'{where}: "
                         f"{exc.message.replace(repr(str(path)), 'it')}", ref.span, exc.hint))
        return None
    except OSError as exc:
        reason = f": {exc.strerror or exc.__class__.__name__}" if detail else ""
        ctx.report(error("E305", f"cannot read {what} '{ref.value}'{reason}", ref.span,
                         FOLDER_HINT))
        return None
    records = tuple(_numbered(csv.reader(io.StringIO(text))))
    return TableFile(ref.value, "line", records, path, text)


def _numbered(reader) -> list:
    """(line a record starts on, cells): ``reader.line_num`` is the line it ended on."""
    out, line = [], 1
    for cells in reader:
        out.append((line, cells))
        line = reader.line_num + 1
    return out


def _read_workbook(ref: ast.Str, path: Path, ctx, what: str) -> Optional[TableFile]:
    """The first sheet of an .xlsx workbook, or None (reported E305)."""
    try:
        import openpyxl
    except ImportError:
        ctx.report(error("E305", f"cannot read {what} '{ref.value}': reading .xlsx "
                         "needs openpyxl", ref.span,
                         "pip install 'yibao[xlsx]', or save the sheet as CSV UTF-8"))
        return None
    try:
        # the bytes through source.read_bytes, so a compile notes the workbook it read
        book = openpyxl.load_workbook(io.BytesIO(read_bytes(path)), read_only=True,
                                      data_only=True)
        sheet = book.worksheets[0]
        rows = [[sheet_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        book.close()
    except Exception as exc:  # openpyxl raises zipfile, KeyError, its own errors …
        ctx.report(error("E305", f"cannot read {what} '{ref.value}': not an Excel "
                         f"workbook ({type(exc).__name__}: {exc})", ref.span,
                         "save it from Excel as .xlsx, or as CSV UTF-8"))
        return None
    return TableFile(ref.value, "row", tuple(enumerate(_used_columns(rows), 1)), path)


def _used_columns(rows: list) -> list:
    """The rows cut to the columns some cell uses: a sheet's dimension may run past them
    (a cell once formatted), and those empty columns are no part of the table."""
    width = max((i + 1 for row in rows for i, cell in enumerate(row) if cell.strip()),
                default=0)
    return [row[:width] for row in rows]


def sheet_cell(value) -> str:
    """A sheet cell as the text a CSV would hold: whole numbers without '.0', other numbers
    in their shortest exact decimal form (the digits typed: 0.85, not 0.8499999…), booleans
    as true/false, empty as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)
