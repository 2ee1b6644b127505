"""Reading policy and table files: bytes -> text, or a diagnostic that says why not.

Editors on Chinese Windows and Excel write GBK/GB18030 (or Big5, or UTF-16 "Unicode"); a
FIFO, device or folder named as a file would block or fail on read. Both are diagnostics
(E005 for a policy file, E305 for a table file) naming the file and, for text that is not
UTF-8, the encoding it seems to be in — guessed by trying the few that occur, no dependency.
"""
from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Optional

from . import ast
from .errors import PolicyError, error
from yibao.core.errors import YibaoError

MAX_FILE_BYTES = 64 * 1024 * 1024  # a table file larger than this is refused, not read


class SourceError(YibaoError, ValueError):
    """A file that cannot be read as text: ``message``, ``hint`` and where (line, col)."""

    def __init__(self, message: str, hint: str, line: int = 1, col: int = 1, text: str = ""):
        super().__init__(message)
        self.message, self.hint, self.line, self.col, self.text = message, hint, line, col, text


def not_regular(path: Path) -> Optional[str]:
    """What ``path`` is when it is not a regular file ('a FIFO (named pipe)', 'a folder' …),
    else None. Checked with stat before opening: opening a FIFO blocks."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def guess_encoding(data: bytes) -> Optional[str]:
    """The encoding bytes that are not UTF-8 seem to be in, or None."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 (Windows 'Unicode')"
    for codec, shown in (("gb18030", "GBK/GB18030"), ("big5", "Big5")):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return shown
    return None


def decode(data: bytes, name: str) -> str:
    """UTF-8 text (a leading BOM kept for the parser to skip), or SourceError naming the first
    byte that is not UTF-8, its line and column, and the encoding the file seems to be in."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        guess = guess_encoding(data)
        seems = f"; it looks like {guess}" if guess else ""
        codec = "GB18030" if guess == "GBK/GB18030" else "BIG5" if guess == "Big5" else None
        hint = "save it as UTF-8 (Excel: Save As 'CSV UTF-8'; editors: encoding UTF-8)" + (
            f", or convert it: iconv -f {codec} -t UTF-8" if codec else "")
        raise SourceError(f"'{name}' is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot "
                          f"be read{seems}", hint, line, col,
                          data.decode("utf-8", errors="replace")) from None


def read_text(path, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a regular UTF-8 file; SourceError otherwise (OSError when it is missing)."""
    path = Path(path)
    what = not_regular(path)
    if what is not None:
        raise SourceError(f"'{path}' is {what}, not a file", "name a regular file")
    size = os.stat(path).st_size
    if size > limit:
        raise SourceError(f"'{path}' is {size:,} bytes; the limit is {limit:,}",
                          "split it, or check that it is the file you meant")
    return decode(read_bytes(path), str(path))


# Every file a compile reads goes through read_bytes (policy files and CSV tables through
# read_text, workbooks through table_files): the compiled-policy cache (policy_cache.py)
# keeps a compile's result only while each of them holds the bytes it read.
_RECORDERS: list = []  # the lists of the files_read() blocks running, innermost last


@contextlib.contextmanager
def files_read():
    """Within the block, every file read through ``read_bytes`` is appended to the yielded
    list as (resolved path, sha256 of the bytes read), in reading order, repeats included."""
    read: list = []
    _RECORDERS.append(read)
    try:
        yield read
    finally:
        _RECORDERS.remove(read)


def read_bytes(path) -> bytes:
    """The bytes of ``path``, noted for every ``files_read`` block running."""
    data = Path(path).read_bytes()
    if _RECORDERS:
        import hashlib
        entry = (str(Path(path).resolve()), hashlib.sha256(data).hexdigest())
        for read in _RECORDERS:
            read.append(entry)
    return data


def read_table_text(path, limit: int = MAX_FILE_BYTES) -> str:
    """A table file's text: UTF-8, or else GB18030 (a superset of GBK: what Excel on Chinese
    Windows saves as "CSV") when the bytes read as such and hold Chinese text. Anything else
    (Big5, UTF-16, not text) is SourceError as for ``read_text``."""
    try:
        text = read_text(path, limit)
    except SourceError as exc:
        if "GBK/GB18030" not in exc.message:
            raise
        return read_bytes(path).decode("gb18030")
    return _gbk_read_as_utf8(path, text) or text


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _gbk_read_as_utf8(path, text: str) -> Optional[str]:
    """Short GBK text can be valid UTF-8 by accident ("300元" is b"300\xd4\xaa", which UTF-8
    reads as "300Ԫ", an Armenian letter). A table's non-ASCII text is Chinese: when every
    non-ASCII character of the UTF-8 reading is a two-byte letter past Latin-1 (U+0100–U+07FF:
    Armenian, Cyrillic, Hebrew … — what GBK pairs turn into; "²" or "é" stay UTF-8) and the
    GB18030 reading has Chinese, the GB18030 text, else None."""
    wide = [ch for ch in text if not ch.isascii()]
    if not wide or not all("\u0100" <= ch <= "\u07ff" for ch in wide):
        return None
    try:
        other = read_bytes(path).decode("gb18030")
    except UnicodeDecodeError:
        return None
    return other if _has_cjk(other) else None


def read_policy(path) -> str:
    """A policy file's text, or PolicyError (E005) with one diagnostic pointing at the first
    byte that is not UTF-8 (or at the file when it is not a regular file)."""
    try:
        return read_text(path)
    except SourceError as exc:
        span = ast.Span(str(path), exc.line, exc.col, exc.line, exc.col + 1)
        raise PolicyError([error("E005", exc.message, span, exc.hint)], exc.text) from None
