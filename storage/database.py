"""Open the archive (WAL, foreign keys, busy timeout), migrate it forward, run transactions; open it
read-only; say in one line what an SQLite failure means (`explain`); check the file (`find_problems`).

Storage logic is written as plain synchronous functions over `sqlite3.Connection` (easy to test and
to benchmark); `Database` runs them on aiosqlite's worker thread so a whole batch is one thread hop
and one transaction, and the event loop never blocks on disk.

A read-only open (`connect_readonly`) uses SQLite's `mode=ro` and never migrates. In WAL mode even a
reader needs the `-shm` file; where SQLite cannot create it (a read-only folder or mount) and no
write-ahead log is pending, the archive is opened `immutable` (no locks, nothing created): nobody
can be writing to it then, since a writer needs that file too.
"""

from __future__ import annotations

import functools
import os
import shlex
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 64 * 1024
FULL_BELOW_BYTES = 1 << 20
"""An I/O error on a disk with less free space than this is reported as a full disk: SQLite says
"disk I/O error" when it cannot even make room for its `-shm` file."""
PROBLEMS_SHOWN = 20
"""`find_problems` lists at most this many problems of each check (and says how many more)."""


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


def _shell(path: str | Path) -> str:
    """`path` as it must be typed in a shell command we suggest."""
    return shlex.quote(str(path))


def _free_bytes(path: str | Path) -> int | None:
    """Free space for ordinary users on the file system holding `path`, if it can be told."""
    try:
        stat = os.statvfs(Path(path).expanduser().absolute().parent)
    except (OSError, ValueError):
        return None
    return stat.f_bavail * stat.f_frsize


def explain(exc: sqlite3.Error, path: str | Path) -> StorageError:
    """One line for an SQLite failure on the archive at `path`: what is wrong and what to do.

    Never echoes the error's own text for corruption (a decode error carries the bad bytes).
    """
    kind = problem_kind(exc)
    if kind == "io" and str(path) != ":memory:" and (_free_bytes(path) or 0) < FULL_BELOW_BYTES:
        kind = "full"
    where = f"the archive at {path}"
    if kind == "corrupt":
        what = "text that is not UTF-8" if "decode" in str(exc).lower() else "the database file is malformed"
        text = (f"{where} is damaged ({what}); `chanwatch --db {_shell(path)} check` shows what is wrong "
                "and how to recover what is still readable, or restore a backup")
    elif kind == "notadb":
        text = (f"cannot open {where}: the file is not an SQLite database (another file, or damaged from "
                "its first page); point --db or CHANWATCH_DB at the archive, or restore a backup")
    elif kind == "readonly":
        text = (f"{where} is read-only (the file, its folder or the mount); this command writes to it: "
                "make it writable, or copy it somewhere writable and use --db")
    elif kind == "full":
        text = (f"the disk holding {where} is full; nothing was half-written (the archive is consistent): "
                "free some space and run the command again")
    elif kind == "locked":
        text = (f"{where} is locked by another process writing to it (another import or `chanwatch run`?); "
                "run the command again when it has finished")
    elif kind == "io":
        text = (f"cannot read or write {where}: disk I/O error; check the disk, then "
                f"`chanwatch --db {_shell(path)} check`")
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


@dataclass(frozen=True)
class LockWait:
    """How long in all a writer waits for another process's write lock (`begin_immediate`), and what
    to call once when the first wait — the connection's busy timeout — has passed without it."""

    total_s: float
    on_wait: Callable[[], None] | None = None


class ArchiveConnection(sqlite3.Connection):
    """A connection to the archive that knows how its writers wait for another process's lock."""

    lock_wait: LockWait | None = None


def configure(conn: sqlite3.Connection, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
              readonly: bool = False) -> None:
    """Pragmas every connection gets; a read-only one leaves the journal mode as the file has it."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly and conn.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # The dedup indexes (post_keys, fingerprints) are looked up at random: keep them in memory.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute("PRAGMA temp_store = MEMORY")


def schema_version(conn: sqlite3.Connection) -> int:
    """The archive's schema version (`PRAGMA user_version`: how many migrations it has had)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _newer(version: int) -> StorageError:
    return StorageError(f"the archive has schema version {version}, newer than this chanwatch knows "
                        f"({SCHEMA_VERSION}); upgrade chanwatch")


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration past the stored `user_version`, each in its own transaction."""
    version = schema_version(conn)
    scripts = _migrations()
    if version > len(scripts):
        raise _newer(version)
    for number in range(version, len(scripts)):
        conn.executescript(
            "BEGIN IMMEDIATE;\n" + scripts[number] + f"\nPRAGMA user_version = {number + 1};\nCOMMIT;"
        )
    return len(scripts)


def connect_sync(path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
                 lock_wait: LockWait | None = None) -> ArchiveConnection:
    """A migrated synchronous connection, in autocommit mode (transactions are explicit); with
    `lock_wait`, its transactions wait that long for another process's write lock."""
    try:
        if str(path) != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                               factory=ArchiveConnection)
    except sqlite3.Error as exc:
        raise explain(exc, path) from exc
    except OSError as exc:
        raise StorageError(f"cannot open the archive at {path}: {exc.strerror or exc}", "cantopen") from exc
    try:
        configure(conn, busy_timeout_ms=busy_timeout_ms)
        migrate(conn)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise explain(exc, path) from exc
        raise
    conn.lock_wait = lock_wait
    return conn


def _open_readonly(path: Path, busy_timeout_ms: int, *, immutable: bool) -> ArchiveConnection:
    """`path` opened with SQLite's `mode=ro` (and `immutable=1`), configured and read once, so a
    file SQLite cannot read fails here rather than in the command."""
    uri = path.absolute().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                           factory=ArchiveConnection)
    try:
        configure(conn, busy_timeout_ms=busy_timeout_ms, readonly=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def connect_readonly(path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
                     any_version: bool = False) -> ArchiveConnection:
    """The existing archive at `path`, read-only and never migrated: SQLite's `mode=ro`, or
    `immutable` where SQLite cannot create the `-shm` file a WAL reader needs and no write-ahead log
    is pending (see the module's docstring). An archive older than this chanwatch is refused (kind
    `outdated`) unless `any_version`: its queries are written for the current schema."""
    target = Path(path).expanduser()
    if not target.is_file():
        raise StorageError(f"no archive at {path}", "cantopen")
    try:
        conn = _open_readonly(target, busy_timeout_ms, immutable=False)
    except sqlite3.Error as exc:
        if problem_kind(exc) not in ("readonly", "cantopen"):
            raise explain(exc, path) from exc
        wal = target.with_name(target.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise StorageError(
                f"cannot read the archive at {path} here: its write-ahead log ({wal.name}) holds changes "
                "not yet in the archive file, and SQLite cannot open that log where it cannot create "
                f"{target.name}-shm beside it; run any chanwatch command on it once where its folder is "
                "writable (that merges the log), or copy both files somewhere writable and use --db",
                "readonly") from exc
        try:
            conn = _open_readonly(target, busy_timeout_ms, immutable=True)
        except sqlite3.Error as again:
            raise explain(again, path) from again
    try:
        version = schema_version(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise explain(exc, path) from exc
    if version > SCHEMA_VERSION or (version < SCHEMA_VERSION and not any_version):
        conn.close()
        if version > SCHEMA_VERSION:
            raise _newer(version)
        raise StorageError(
            f"the archive at {path} has schema version {version}, older than this chanwatch's "
            f"({SCHEMA_VERSION}), and it cannot be upgraded here because it is read-only: run any "
            "chanwatch command on it once where it is writable (that upgrades it), or copy it somewhere "
            "writable and use --db", "outdated")
    return conn


def begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE. A connection with a `LockWait` keeps trying past its busy timeout while
    another process holds the write lock: it calls `on_wait` once, after the first wait, and gives
    up with SQLite's own "database is locked" when `total_s` has passed."""
    wait = getattr(conn, "lock_wait", None)
    if wait is None:
        conn.execute("BEGIN IMMEDIATE")
        return
    deadline = time.monotonic() + wait.total_s
    first_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    told = False
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if problem_kind(exc) != "locked" or left_ms <= 0:
                    raise
                if not told and wait.on_wait is not None:
                    wait.on_wait()
                told = True
                conn.execute(f"PRAGMA busy_timeout = {max(1, min(first_ms, left_ms))}")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {first_ms}")


def run_in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(conn, *args)` inside BEGIN IMMEDIATE ... COMMIT (`begin_immediate`); roll back on any
    exception, a failed COMMIT too (a full disk), so the connection is never left in a transaction."""
    begin_immediate(conn)
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled back already, or cannot: the original error says more
        raise
    return result


# --- checking the file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the archive file: which check found it, and what (never stored data)."""

    check: str  # "integrity", "foreign key", "text", "search index"
    detail: str


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_utf8(value: bytes | None) -> int:
    try:
        (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return 1


def _capped(problems: list[Problem], check: str, count: int, limit: int) -> list[Problem]:
    if count > limit:
        problems = [*problems, Problem(check, f"… and {count - limit:,} more")]
    return problems


def _stopped(check: str, exc: sqlite3.Error) -> Problem:
    """A check that could not finish: the file is damaged where it reads (or it says why)."""
    return Problem("integrity", f"the {check} check stopped: {_error_text(exc)}")


def _integrity(conn: sqlite3.Connection, quick: bool, limit: int) -> list[Problem]:
    pragma = "quick_check" if quick else "integrity_check"
    try:
        found = [line for row in conn.execute(f"PRAGMA {pragma}({limit + 1})")
                 for line in str(row[0]).splitlines() if line and not line.startswith("*** in database")]
    except sqlite3.Error as exc:
        return [_stopped("integrity", exc)]
    if found == ["ok"]:
        return []
    more = [Problem("integrity", "… and more")] if len(found) > limit else []
    return [Problem("integrity", line) for line in found[:limit]] + more


def _foreign_keys(conn: sqlite3.Connection, limit: int) -> list[Problem]:
    try:
        rows = conn.execute("PRAGMA foreign_key_check").fetchall()
    except sqlite3.Error as exc:
        return [_stopped("foreign key", exc)]
    found = [Problem("foreign key", f"{table} row {rowid} refers to a {parent} row that is not there")
             for table, rowid, parent, _ in rows[:limit]]
    return _capped(found, "foreign key", len(rows), limit)


def _text_encoding(conn: sqlite3.Connection, limit: int) -> list[Problem]:
    """Text values that are not UTF-8 (SQLite stores what it is given; Python cannot read them)."""
    conn.create_function("chanwatch_is_utf8", 1, _is_utf8, deterministic=True)
    found: list[Problem] = []
    try:
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                              "AND name NOT LIKE 'sqlite%' AND sql NOT LIKE 'CREATE VIRTUAL%'").fetchall()
        for table, sql in tables:
            key = "NULL" if "WITHOUT ROWID" in str(sql).upper() else "rowid"
            for column in [r[1] for r in conn.execute(f"PRAGMA table_info({_quoted(table)})")]:
                bad = [r[0] for r in conn.execute(
                    f"SELECT {key} FROM {_quoted(table)} WHERE typeof({_quoted(column)}) = 'text' "
                    f"AND NOT chanwatch_is_utf8(CAST({_quoted(column)} AS BLOB))")]
                if bad:
                    rows = "" if key == "NULL" else " (rowid " + ", ".join(map(str, bad[:limit])) + (
                        ", …)" if len(bad) > limit else ")")
                    found.append(Problem("text", f"{table}.{column}: {len(bad):,} "
                                                 f"{'value is' if len(bad) == 1 else 'values are'} "
                                                 f"not UTF-8{rows}"))
    except sqlite3.Error as exc:
        found.append(_stopped("text encoding", exc))
    return found


def _search_index(conn: sqlite3.Connection) -> list[Problem]:
    try:
        posts, indexed = conn.execute(
            "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM posts_fts_docsize)").fetchone()
    except sqlite3.Error as exc:
        return [_stopped("search index", exc)]
    if posts == indexed:
        return []
    return [Problem("search index", f"it indexes {indexed:,} posts of {posts:,}")]


def _error_text(exc: sqlite3.Error) -> str:
    """An SQLite error as a check reports it: never with the stored bytes a decode error quotes."""
    return "text that is not UTF-8" if "decode" in str(exc).lower() else str(exc)


def find_problems(conn: sqlite3.Connection, *, quick: bool = False,
                  limit: int = PROBLEMS_SHOWN) -> list[Problem]:
    """What is wrong with the archive file; none when it is sound. SQLite's integrity_check (or the
    faster quick_check, which skips comparing indexes with their tables), foreign keys, text that is
    not UTF-8, and whether the search index covers every post. Reads only."""
    return [*_integrity(conn, quick, limit), *_foreign_keys(conn, limit), *_text_encoding(conn, limit),
            *_search_index(conn)]


def header_schema_version(path: str | Path) -> int | None:
    """The schema version as the file's header holds it (bytes 60-63), for an archive whose schema
    SQLite cannot read; None when there is no SQLite header to read."""
    try:
        with Path(path).expanduser().open("rb") as f:
            header = f.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return None
    return int.from_bytes(header[60:64], "big")


def how_to_recover(path: str | Path, problems: list[Problem], version: int | None) -> list[str]:
    """What to do about `problems`, as lines of advice with the commands to type (SQLite's own tools:
    SQL text stays in storage/)."""
    shown = _shell(path)
    checks = {p.check for p in problems}
    lines: list[str] = []
    if checks & {"integrity", "foreign key"}:
        if version is None:
            version = header_schema_version(path)
        user_version = f"echo 'PRAGMA user_version = {version if version is not None else SCHEMA_VERSION};'"
        lines += [
            "to recover: restore a backup, or copy what is still readable into a new archive and use that:",
            f"  sqlite3 {shown} .recover | sqlite3 recovered.db",
            "  (a sqlite3 that says \"SQL logic error\" there lacks .recover; use instead",
            f"   (sqlite3 {shown} .dump; {user_version}) | sqlite3 recovered.db)",
            "  sqlite3 recovered.db \"INSERT INTO posts_fts(posts_fts) VALUES('rebuild')\"",
            "  chanwatch --db recovered.db check",
        ]
    elif "search index" in checks:
        lines.append(f"to rebuild the search index: sqlite3 {shown} "
                     "\"INSERT INTO posts_fts(posts_fts) VALUES('rebuild')\"")
    if "text" in checks:
        lines.append("text that is not UTF-8 cannot be read: restore a backup, or overwrite those values "
                     f"with sqlite3 {shown} (UPDATE table SET column = '' WHERE rowid = N)")
    return lines


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
        except sqlite3.Error as exc:
            raise explain(exc, path) from exc
        except OSError as exc:
            raise StorageError(f"cannot open the archive at {path}: {exc.strerror or exc}",
                               "cantopen") from exc
        db = cls(conn, str(path))
        try:
            await db.run(configure)
            await db.run(migrate)
        except BaseException as exc:  # StorageError too (a newer schema): never leave the thread running
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise explain(exc, path) from exc
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
