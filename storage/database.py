"""Open the archive (WAL, foreign keys, busy timeout), migrate it forward, run transactions.

Storage logic is written as plain synchronous functions over `sqlite3.Connection` (easy to test and
to benchmark); `Database` runs them on aiosqlite's worker thread so a whole batch is one thread hop
and one transaction, and the event loop never blocks on disk.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 64 * 1024


class StorageError(Exception):
    """The archive cannot be opened or used; the message says why and what to do. `kind` is the
    problem's class (`corrupt`, `notadb`, `readonly`, `full`, `locked`, `io`, `cantopen`, `other`)."""

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


def explain(exc: sqlite3.Error, path: str | Path) -> StorageError:
    """One line for an SQLite failure on the archive at `path`: what is wrong and what to do.

    Never echoes the error's own text for corruption (a decode error carries the bad bytes).
    """
    kind = problem_kind(exc)
    where = f"the archive at {path}"
    if kind == "corrupt":
        what = "text that is not UTF-8" if "decode" in str(exc).lower() else "the database file is malformed"
        text = (f"{where} is damaged ({what}); check it with `chanwatch --db {path} check`, then restore a "
                f"backup or recover it with `sqlite3 {path} .recover | sqlite3 recovered.db`")
    elif kind == "notadb":
        text = (f"cannot open {where}: the file is not an SQLite database (another file, or damaged from "
                "its first page); point --db or CHANWATCH_DB at the archive, or restore a backup")
    elif kind == "readonly":
        text = (f"{where} is read-only (the file, its folder or the mount); this command writes to it: "
                "make it writable, or copy it somewhere writable and use --db")
    elif kind == "full":
        text = (f"the disk holding {where} is full; the unfinished batch was rolled back and the archive is "
                "consistent: free some space and run the command again")
    elif kind == "locked":
        text = (f"{where} is locked by another process writing to it (another import or `chanwatch run`?); "
                "run the command again when it has finished")
    elif kind == "io":
        text = (f"cannot read or write {where}: disk I/O error; check the disk, then "
                f"`chanwatch --db {path} check`")
    elif kind == "cantopen":
        text = f"cannot open {where}: {exc}; check the path and its folder's permissions"
    else:
        text = f"{where}: {exc}"
    return StorageError(text, kind)


def _migrations() -> list[str]:
    """Forward-only migrations; index i brings the schema from version i to i + 1."""
    base = resources.files("storage")
    scripts = [base.joinpath("schema.sql").read_text(encoding="utf-8")]
    folder = base.joinpath("migrations")
    if folder.is_dir():
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
        scripts += [folder.joinpath(n).read_text(encoding="utf-8") for n in names]
    return scripts


SCHEMA_VERSION = len(_migrations())


def configure(conn: sqlite3.Connection) -> None:
    """Pragmas every connection gets."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # The dedup indexes (post_keys, fingerprints) are looked up at random: keep them in memory.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute("PRAGMA temp_store = MEMORY")


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration past the stored `user_version`, each in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    scripts = _migrations()
    if version > len(scripts):
        raise StorageError(
            f"the archive has schema version {version}, newer than this chanwatch knows "
            f"({len(scripts)}); upgrade chanwatch"
        )
    for number in range(version, len(scripts)):
        conn.executescript(
            "BEGIN IMMEDIATE;\n" + scripts[number] + f"\nPRAGMA user_version = {number + 1};\nCOMMIT;"
        )
    return len(scripts)


def connect_sync(path: str | Path) -> sqlite3.Connection:
    """A migrated synchronous connection, in autocommit mode (transactions are explicit)."""
    try:
        if str(path) != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        configure(conn)
        migrate(conn)
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    except OSError as exc:
        raise StorageError(f"cannot open the archive at {path}: {exc.strerror or exc}", "cantopen") from exc
    return conn


def run_in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(conn, *args)` inside BEGIN IMMEDIATE ... COMMIT; roll back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


AIOSQLITE_KNOWN = ("0.19", "0.20", "0.21", "0.22")
"""aiosqlite versions `_on_worker` was tried with; pyproject.toml pins the same range."""


async def _on_worker(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(raw sqlite3 connection, *args)` on aiosqlite's worker thread, in its queue order.

    aiosqlite has no public call for "run this function with the raw connection" (Datasette's
    `execute_fn` is the shape we want); `Connection._execute(fn, *args)` is how its own methods do
    it, and `_conn` is the raw connection. This is the only use of its private API:
    tests/storage/test_database.py fails loudly if either changes.
    """
    return await conn._execute(fn, conn._conn, *args)


class Database:
    """An open archive for asyncio code."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        """Open (creating and migrating as needed) the archive at `path`."""
        try:
            if str(path) != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(str(path), isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the archive at {path}: {exc}") from exc
        db = cls(conn, str(path))
        try:
            await db.run(configure)
            await db.run(migrate)
        except BaseException as exc:  # StorageError too (a newer schema): never leave the thread running
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot open the archive at {path}: {exc}") from exc
            raise
        return db

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(sqlite3_connection, *args, **kwargs)` on the connection's worker thread."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        return await _on_worker(self._conn, fn, *args)

    async def transaction(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` as one transaction on the worker thread."""
        return await self.run(run_in_transaction, functools.partial(fn, **kwargs) if kwargs else fn, *args)

    async def close(self) -> None:
        """Close the connection (a running transaction has finished by then: calls are serial)."""
        await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
