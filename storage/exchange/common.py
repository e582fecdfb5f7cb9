"""What the importers share: the errors that name a bad file or a stopped import, the report of one
import (with the messages it skipped), committing a batch, compact JSON."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from storage.database import run_in_transaction
from storage.dialect import dialect_of
from storage.faults import explain

__all__ = [
    "BATCH_SIZE", "MALFORMED_SHOWN", "ExchangeError", "ImportReport", "ImportStopped", "any_int_digits",
    "archive_name", "commit", "counted", "json_text", "no_progress",
]

T = TypeVar("T")

BATCH_SIZE = 500
"""Messages per import transaction."""

MALFORMED_SHOWN = 3
"""How many skipped messages the report names (the rest are counted)."""


class ExchangeError(Exception):
    """A file cannot be imported or exported; the message names it and says what was expected."""


class ImportStopped(ExchangeError):
    """An import stopped partway (a bad line, a full disk): the message says why and how many
    messages (`committed`) were committed before it; importing the file again adds the rest."""

    def __init__(self, message: str, committed: int) -> None:
        super().__init__(message)
        self.committed = committed
        self.archive_kind: str | None = None  # set when the archive stopped it (`StorageError.kind`)


@dataclass(slots=True)
class ImportReport:
    """What one imported file held and what it changed (messages are counted once each).

    `malformed` counts the messages (Desktop) or posts (JSONL) skipped as unreadable;
    `malformed_shown` names the first few: `message 17 (text_entities[1]: ...)`.
    """

    format: str  # "desktop" or "jsonl"
    channel: str  # the channel's name (desktop), or "N channels" (jsonl)
    path: str = ""
    messages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    service_skipped: int = 0
    posts_new: int = 0
    malformed: int = 0
    malformed_shown: list[str] = field(default_factory=list)
    channels: set[int] = field(default_factory=set, repr=False)

    def skip(self, who: str, why: str) -> None:
        """Count one malformed message or post, naming it if it is among the first few."""
        self.malformed += 1
        if len(self.malformed_shown) < MALFORMED_SHOWN:
            self.malformed_shown.append(f"{who} ({why})".encode("utf-8", "backslashreplace").decode("utf-8"))


def json_text(value: Any) -> str:
    """Compact JSON, as `storage.ingest` stores it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def no_progress(label: str, done: int, total: int | None) -> None:
    """The `Progress` of a caller that does not want to know."""


@contextmanager
def any_int_digits() -> Iterator[None]:
    """Lift Python's limit on the digits of an int read from text while an import runs.

    ijson's C backend (3.6) crashes the interpreter (a segmentation fault) on a JSON integer of
    more than `sys.get_int_max_str_digits()` digits (4,300) instead of raising; without the limit
    it reads it, and the check of the message's fields then reports it out of range.
    """
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


def archive_name(conn: sqlite3.Connection) -> str:
    """The file of the archive `conn` writes to, for error messages (":memory:" for none; a
    PostgreSQL archive's URL without its password)."""
    if not dialect_of(conn).is_sqlite:
        return str(getattr(conn, "redacted", "the PostgreSQL archive"))
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return row[2] or ":memory:"
    return ":memory:"


def commit(
    conn: sqlite3.Connection, fn: Callable[..., T], *args: Any, archive: str | Path,
    stopped: Callable[[str], ImportStopped],
) -> T:
    """`fn(conn, *args)` in one transaction; an SQLite failure (a full disk, a lock, a damaged file)
    becomes `stopped(storage.faults.explain's line)`, with the transaction rolled back.

    Only `sqlite3.OperationalError` and `sqlite3.DatabaseError` proper stop the import; the errors of
    one bad message (`check.DATA_ERRORS`) go to the caller, which stores that batch message by message.
    """
    try:
        return run_in_transaction(conn, fn, *args)
    except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.DataError):
        raise
    except sqlite3.Error as exc:  # run_in_transaction rolled back (a failed COMMIT too)
        problem = explain(exc, archive)
        error = stopped(str(problem))
        error.archive_kind = problem.kind
        raise error from exc


def counted(number: int, word: str) -> str:
    """`1 message`, `1,200 messages`."""
    return f"{number:,} {word}{'' if number == 1 else 's'}"
