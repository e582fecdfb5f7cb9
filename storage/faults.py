"""What an SQLite failure on the archive means for the user, in one line: `explain` turns any
`sqlite3.Error` into a `StorageError` saying what is wrong and what to do, with the problem's `kind`
(by SQLite's result code), so the CLI, imports and the daemon all say the same thing.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from pathlib import Path

FULL_BELOW_BYTES = 1 << 20
"""An I/O error on a disk with less free space than this is reported as a full disk: SQLite says
"disk I/O error" when it cannot even make room for its `-shm` file."""

class StorageError(Exception):
    """The archive cannot be opened or used; the message says why and what to do. `kind` is the
    problem's class (`corrupt`, `notadb`, `readonly`, `full`, `locked`, `io`, `cantopen`, `outdated`,
    `other`)."""

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind


# SQLite's primary result codes (the low byte of `sqlite_errorcode`) that a user can meet.
_KINDS = {5: "locked", 6: "locked", 8: "readonly", 10: "io", 11: "corrupt", 13: "full", 14: "cantopen",
          26: "notadb"}


def problem_kind(exc: sqlite3.Error) -> str:
    """What class of problem an SQLite error is, by its result code, else by its message."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _KINDS:
        return _KINDS[code & 0xFF]
    text = str(exc).lower()
    if "not a database" in text:
        return "notadb"
    if "malformed" in text or "could not decode" in text:
        return "corrupt"
    if "readonly" in text or "read-only" in text:
        return "readonly"
    if "disk is full" in text:
        return "full"
    if "locked" in text or "busy" in text:
        return "locked"
    return "other"


def shell_quoted(path: str | Path) -> str:
    """`path` as it must be typed in a shell command we suggest."""
    return shlex.quote(str(path))


def _free_bytes(path: str | Path) -> int | None:
    """Free space for ordinary users on the file system holding `path`, if it can be told."""
    try:
        stat = os.statvfs(Path(path).expanduser().absolute().parent)
    except (OSError, ValueError):
        return None
    return stat.f_bavail * stat.f_frsize


_SAYS = {
    "corrupt": "{where} is damaged ({what}); `chanwatch --db {shell} check` shows what is wrong and how to "
               "recover what is still readable, or restore a backup",
    "notadb": "cannot open {where}: the file is not an SQLite database (another file, or damaged from its "
              "first page); point --db or CHANWATCH_DB at the archive, or restore a backup",
    "readonly": "{where} is read-only (the file, its folder or the mount); {writer} writes to it: make it "
                "writable{elsewhere}",
    "full": "the disk holding {where} is full; nothing was half-written (the archive is consistent): free "
            "some space{again}",
    "locked": "{where} is locked by another process writing to it (another import or `chanwatch run`?)"
              "{again_later}",
    "io": "cannot read or write {where}: disk I/O error; check the disk, then `chanwatch --db {shell} check`",
    "cantopen": "cannot open {where}: {error}; check the path and its folder's permissions",
    "other": "{where}: {error}",
}
"""What each kind of failure says; `explain` fills in the archive, the error and who retries."""
_COMMAND = {"writer": "this command", "elsewhere": ", or copy it somewhere writable and use --db",
            "again": " and run the command again",
            "again_later": "; run the command again when it has finished"}
_DAEMON = {"writer": "the daemon", "elsewhere": "", "again": ": the next cycle tries again",
           "again_later": "; the next cycle tries again"}


def explain(exc: sqlite3.Error, path: str | Path, *, daemon: bool = False) -> StorageError:
    """One line for an SQLite failure on the archive at `path`: what is wrong and what to do — for a
    command the user runs again, or (`daemon`) for the daemon's log, where the next cycle retries.

    Never echoes the error's own text for corruption (a decode error carries the bad bytes).
    """
    kind = problem_kind(exc)
    if kind == "io" and str(path) != ":memory:" and (_free_bytes(path) or 0) < FULL_BELOW_BYTES:
        kind = "full"
    what = "text that is not UTF-8" if "decode" in str(exc).lower() else "the database file is malformed"
    advice = _DAEMON if daemon else _COMMAND
    text = _SAYS[kind].format(where=f"the archive at {path}", shell=shell_quoted(path), what=what,
                              error=exc, **advice)
    return StorageError(text, kind)
