"""What a failure on the archive means for the user, in one line: `explain` turns any
`sqlite3.Error` into a `StorageError` saying what is wrong and what to do, with the problem's `kind`
(by SQLite's result code), so the CLI, imports and the daemon all say the same thing.

A PostgreSQL archive's errors reach storage code as `sqlite3` errors too (`storage.pg` maps psycopg's),
carrying the server's `sqlstate` and the archive's URL without its password (`server`); `explain`
says those in the server's terms (unreachable, login refused, no such database, connection lost, disk
full, read-only session, statement timeout), naming the server by that redacted URL only.
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
from pathlib import Path

from storage.location import ServerUrl

FULL_BELOW_BYTES = 1 << 20
"""An I/O error on a disk with less free space than this is reported as a full disk: SQLite says
"disk I/O error" when it cannot even make room for its `-shm` file."""

class StorageError(Exception):
    """The archive cannot be opened or used; the message says why and what to do. `kind` is the
    problem's class (`corrupt`, `notadb`, `readonly`, `full`, `locked`, `io`, `cantopen`, `outdated`,
    `other`; a server's also `unreachable`, `auth`, `nodatabase`, `gone`, `timeout`, `denied`, `busy`)."""

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind


# SQLite's primary result codes (the low byte of `sqlite_errorcode`) that a user can meet.
_KINDS = {5: "locked", 6: "locked", 8: "readonly", 10: "io", 11: "corrupt", 13: "full", 14: "cantopen",
          26: "notadb"}


def problem_kind(exc: sqlite3.Error) -> str:
    """What class of problem an SQLite error is, by its result code, else by its message (a server's
    error, `server_kind`)."""
    if hasattr(exc, "sqlstate"):
        return server_kind(exc)
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


# PostgreSQL's SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html) a user
# can meet, then whole classes of them by their first two characters.
_SQLSTATE_KINDS = {"28P01": "auth", "28000": "auth", "3D000": "nodatabase", "53100": "full",
                   "25006": "readonly", "57P01": "gone", "57P02": "gone", "57P03": "unreachable",
                   "53300": "busy", "42501": "denied", "25P03": "timeout"}
_SQLSTATE_CLASSES = {"08": "gone", "28": "auth"}
# What libpq and psycopg say when there is no SQLSTATE (failures to connect, a lost connection).
_SERVER_TEXTS = (
    ("authentication failed", "auth"), ("no password supplied", "auth"), ("no pg_hba.conf entry", "auth"),
    ('role "', "auth"), ('database "', "nodatabase"), ("connection refused", "unreachable"),
    ("failed to resolve host", "unreachable"), ("could not translate host name", "unreachable"),
    ("timeout expired", "unreachable"), ("no route to host", "unreachable"),
    ("network is unreachable", "unreachable"), ("no such file or directory", "unreachable"),
    ("connection is closed", "gone"), ("connection is lost", "gone"),
    ("server closed the connection", "gone"),
    ("terminating connection", "gone"), ("consuming input failed", "gone"), ("eof detected", "gone"),
    ("too many clients", "busy"), ("remaining connection slots", "busy"),
)


def server_kind(exc: BaseException) -> str:
    """What class of problem a database server's error is: by its SQLSTATE, else by its message."""
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc).lower()
    if state == "57014":  # query_canceled: by statement_timeout, or by a user's cancel request
        return "timeout" if "timeout" in text else "other"
    if state in _SQLSTATE_KINDS:
        return _SQLSTATE_KINDS[state]
    if state[:2] in _SQLSTATE_CLASSES:
        return _SQLSTATE_CLASSES[state[:2]]
    if state:
        return "other"
    return next((kind for needle, kind in _SERVER_TEXTS if needle in text), "other")


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


_SERVER_SAYS = {
    "unreachable": "cannot reach the PostgreSQL server of {where}: {reason}; start the server, or fix the "
                   "host and port in its URL{again}",
    "auth": "the PostgreSQL server of {where} refused the login ({reason}); fix the user or password in "
            "the URL, or in ~/.pgpass or PGPASSWORD",
    "nodatabase": "the PostgreSQL server of {where} says: {reason}; create the database (createdb NAME, "
                  "as a role that may) or fix its name at the end of the URL",
    "gone": "lost the connection to the PostgreSQL server of {where} (the server stopped or restarted, or "
            "ended this session; what was not committed is not kept): check the server{again}",
    "full": "the disk of the PostgreSQL server of {where} is full; nothing was half-written (the "
            "transaction rolled back): free some space on the server{again}",
    "readonly": "the PostgreSQL archive {where} is read-only for this session (a standby server, or "
                "default_transaction_read_only for this role or database); {writer} writes to it: point "
                "the URL at the primary server, with a role that may write",
    "timeout": "a statement on the PostgreSQL archive {where} ran past the server's statement_timeout and "
               "was cancelled; raise it for this role (ALTER ROLE ... SET statement_timeout = ...){again}",
    "denied": "the PostgreSQL server of {where} denied access ({reason}); grant this role rights on the "
              "archive's tables, or use the role that created them",
    "busy": "the PostgreSQL server of {where} takes no more connections (max_connections); close other "
            "clients or raise max_connections{again_later}",
    "other": "the PostgreSQL archive {where}: {reason}",
}
"""What each kind of server failure says; `where` is the URL without its password."""
_LIBPQ_PREFIX = re.compile(r'^(connection failed: )?(connection to server (at|on) [^,]*(, port \d+)? '
                           r'failed: )?((FATAL|ERROR):\s+)?', re.IGNORECASE)


def _reason(exc: BaseException) -> str:
    """The server's own words, on one line: libpq's "connection to server at ... failed: FATAL:" cut."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return _LIBPQ_PREFIX.sub("", first).strip() or type(exc).__name__


def _explain_server(exc: BaseException, server: str, daemon: bool) -> StorageError:
    kind = server_kind(exc)
    advice = _DAEMON if daemon else _COMMAND
    return StorageError(_SERVER_SAYS[kind].format(where=server, reason=_reason(exc), **advice), kind)


def explain(exc: sqlite3.Error, path: str | Path | ServerUrl, *, daemon: bool = False) -> StorageError:
    """One line for a failure on the archive at `path`: what is wrong and what to do — for a
    command the user runs again, or (`daemon`) for the daemon's log, where the next cycle retries.
    A PostgreSQL archive's (a `ServerUrl`, or an error carrying its `server`) is said in the server's
    terms, naming it by its URL without the password.

    Never echoes the error's own text for corruption (a decode error carries the bad bytes).
    """
    server = path.redacted if isinstance(path, ServerUrl) else getattr(exc, "server", None)
    if server is not None:
        return _explain_server(exc, server, daemon)
    kind = problem_kind(exc)
    if kind == "io" and str(path) != ":memory:" and (_free_bytes(path) or 0) < FULL_BELOW_BYTES:
        kind = "full"
    what = "text that is not UTF-8" if "decode" in str(exc).lower() else "the database file is malformed"
    advice = _DAEMON if daemon else _COMMAND
    text = _SAYS[kind].format(where=f"the archive at {path}", shell=shell_quoted(path), what=what,
                              error=exc, **advice)
    return StorageError(text, kind)
