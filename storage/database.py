"""Open the archive (WAL, foreign keys, busy timeout), migrate it forward, run transactions; open it
read-only. What a failure means is `storage.faults`; checking the file is `storage.integrity`.

Storage logic is written as plain synchronous functions over `sqlite3.Connection` (easy to test and
to benchmark); `Database` runs them on aiosqlite's worker thread so a whole batch is one thread hop
and one transaction, and the event loop never blocks on disk.

`connect_sync(ServerUrl)` opens a PostgreSQL archive instead (`storage.pg`, docs/architecture.md
"Backends"): the same migrations from one numbered list (a `.pg.sql` sibling where PostgreSQL's SQL
differs), the version in the one-row table `chanwatch_schema`; `Database.open(ServerUrl)` runs the
same storage functions over a connection pool (`storage.pg_database`).

A read-only open (`connect_readonly`) never migrates: SQLite's `mode=ro`; on PostgreSQL a session
with `default_transaction_read_only = on` (`connect_readonly_pg`). In WAL mode even a
reader needs the `-shm` file; where SQLite cannot create it (a read-only folder or mount) and no
write-ahead log is pending, the archive is opened `immutable` (no locks, nothing created): nobody
can be writing to it then, since a writer needs that file too.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiosqlite

from storage.dialect import POSTGRESQL, SQLITE, Dialect, dialect_of
from storage.faults import StorageError, explain, problem_kind
from storage.location import ServerUrl, SqlitePath

if TYPE_CHECKING:
    from storage.pg_database import PgPool

__all__ = ["BUSY_TIMEOUT_MS", "SCHEMA_VERSION", "ArchiveConnection", "Connection", "Database", "LockWait",
           "StorageError", "migration_names",
           "begin_immediate", "configure", "connect_readonly", "connect_readonly_pg", "connect_sync",
           "explain", "migrate", "run_in_transaction", "schema_version"]

T = TypeVar("T")

Connection = Any
"""An archive connection: `sqlite3.Connection` or `storage.pg.PgConnection` (which has its calls)."""

BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 64 * 1024
PG_SUFFIX = ".pg.sql"


def migration_names() -> list[str]:
    """The one numbered list of migrations, as files relative to the package: `schema.sql` (version
    1), then `migrations/NNNN_*.sql` in order. A step whose SQL differs on PostgreSQL has a sibling
    `*.pg.sql` (`schema.pg.sql`, `NNNN_*.pg.sql`) that takes its place there."""
    folder = resources.files("storage").joinpath("migrations")
    names = ["schema.sql"]
    if folder.is_dir():
        names += sorted(f"migrations/{p.name}" for p in folder.iterdir()
                        if p.name.endswith(".sql") and not p.name.endswith(PG_SUFFIX))
    return names


def _migrations(dialect: Dialect = SQLITE) -> list[str]:
    """Forward-only migrations for `dialect`; index i brings the schema from version i to i + 1."""
    base = resources.files("storage")
    scripts = []
    for name in migration_names():
        sibling = base.joinpath(name.removesuffix(".sql") + PG_SUFFIX)
        chosen = sibling if not dialect.is_sqlite and sibling.is_file() else base.joinpath(name)
        scripts.append(chosen.read_text(encoding="utf-8"))
    return scripts


SCHEMA_VERSION = len(migration_names())


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


PG_VERSION_TABLE = "chanwatch_schema"
"""PostgreSQL keeps the schema version in this one-row table (SQLite in `PRAGMA user_version`)."""


def schema_version(conn: Connection) -> int:
    """The archive's schema version: how many migrations it has had (0: a new archive)."""
    if dialect_of(conn).is_sqlite:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    if conn.execute(f"SELECT to_regclass('{PG_VERSION_TABLE}')").fetchone()[0] is None:
        return 0
    row = conn.execute(f"SELECT version FROM {PG_VERSION_TABLE}").fetchone()
    return int(row[0]) if row else 0


def _newer(version: int) -> StorageError:
    return StorageError(f"the archive has schema version {version}, newer than this chanwatch knows "
                        f"({SCHEMA_VERSION}); upgrade chanwatch")


def migrate(conn: Connection) -> int:
    """Apply every migration past the stored version, each in its own transaction."""
    if not dialect_of(conn).is_sqlite:
        return _migrate_pg(conn)
    version = schema_version(conn)
    scripts = _migrations()
    if version > len(scripts):
        raise _newer(version)
    for number in range(version, len(scripts)):
        conn.executescript(
            "BEGIN IMMEDIATE;\n" + scripts[number] + f"\nPRAGMA user_version = {number + 1};\nCOMMIT;"
        )
    return len(scripts)


_PG_MIGRATE_LOCK = 0x63776D67  # 'cwmg': the advisory lock that serialises migrations of one database


def _migrate_pg(conn: Connection) -> int:
    """PostgreSQL: each step is one transaction (DDL is transactional there) that also writes the
    version row; an advisory lock makes a second process wait and then find the step done."""
    scripts = _migrations(POSTGRESQL)
    while True:
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_PG_MIGRATE_LOCK,))
            version = schema_version(conn)
            if version > len(scripts):
                raise _newer(version)
            if version == len(scripts):
                conn.execute("COMMIT")
                return version
            conn.executescript(scripts[version])
            if version == 0:
                conn.execute(f"CREATE TABLE {PG_VERSION_TABLE} (version INTEGER NOT NULL)")
                conn.execute(f"INSERT INTO {PG_VERSION_TABLE} (version) VALUES (1)")
            else:
                conn.execute(f"UPDATE {PG_VERSION_TABLE} SET version = ?", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def connect_sync(path: str | Path | SqlitePath | ServerUrl, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
                 lock_wait: LockWait | None = None) -> Any:
    """A migrated synchronous connection, in autocommit mode (transactions are explicit); with
    `lock_wait`, its transactions wait that long for another process's write lock (SQLite).

    `path` is an SQLite file (a path, `:memory:`, a `SqlitePath`) or a `ServerUrl` (PostgreSQL: a
    `storage.pg.PgConnection`, which needs the `postgres` extra)."""
    if isinstance(path, ServerUrl):
        return _connect_pg(path)
    if isinstance(path, SqlitePath):
        path = path.path
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


def _connect_pg(url: ServerUrl) -> Any:
    """A migrated connection to the PostgreSQL archive at `url`; errors name the URL redacted."""
    conn = _connect_pg_session(url)
    try:
        migrate(conn)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise explain(exc, url) from exc
        raise
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


def connect_readonly(path: str | Path | ServerUrl, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
                     any_version: bool = False) -> Any:
    """The existing archive at `path`, read-only and never migrated: SQLite's `mode=ro`, or
    `immutable` where SQLite cannot create the `-shm` file a WAL reader needs and no write-ahead log
    is pending (see the module's docstring); a `ServerUrl` is `connect_readonly_pg`'s. An archive
    older than this chanwatch is refused (kind `outdated`) unless `any_version`: its queries are
    written for the current schema."""
    if isinstance(path, ServerUrl):
        return connect_readonly_pg(path, any_version=any_version)
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


def _connect_pg_session(url: ServerUrl) -> Any:
    """A connection to the PostgreSQL server at `url` (`storage.pg`); errors name the URL redacted."""
    try:
        from storage.pg import PgConnection
    except ImportError as exc:
        raise StorageError(f"cannot open {url.redacted}: {exc}", "cantopen") from None
    try:
        return PgConnection.connect(url.url, url.redacted)
    except sqlite3.Error as exc:
        raise explain(exc, url) from None


def connect_readonly_pg(url: ServerUrl, *, any_version: bool = False) -> Any:
    """The existing PostgreSQL archive at `url`, read-only and never migrated: a session with
    `default_transaction_read_only = on`, so the server refuses every write (`explain`: kind
    `readonly`). Refuses a database with no archive (`cantopen`), a newer schema, and an older one
    (`outdated`) unless `any_version`, as `connect_readonly` does for SQLite."""
    conn = _connect_pg_session(url)
    try:
        conn.execute("SET default_transaction_read_only = on")
        version = schema_version(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise explain(exc, url) from exc
    if version == 0 or version > SCHEMA_VERSION or (version < SCHEMA_VERSION and not any_version):
        conn.close()
        if version == 0:
            raise StorageError(f"no archive at {url.redacted}: the database (schema) holds no chanwatch "
                               "tables; check the URL, or create the archive there once with a role that "
                               "may write", "cantopen")
        if version > SCHEMA_VERSION:
            raise _newer(version)
        raise StorageError(
            f"the archive at {url.redacted} has schema version {version}, older than this chanwatch's "
            f"({SCHEMA_VERSION}), and it cannot be upgraded over a read-only connection: run any chanwatch "
            "command on it once with a role that may write (that upgrades it)", "outdated")
    return conn


def begin_immediate(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE. A connection with a `LockWait` keeps trying past its busy timeout while
    another process holds the write lock: it calls `on_wait` once, after the first wait, and gives
    up with SQLite's own "database is locked" when `total_s` has passed."""
    if not dialect_of(conn).is_sqlite:
        conn.execute("BEGIN")  # PostgreSQL: writers wait for each other's row locks, not for the file
        return
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
    """An open archive for asyncio code: SQLite on aiosqlite's worker thread (calls in order), or
    PostgreSQL on a pool of connections (`storage.pg_database`)."""

    def __init__(self, conn: aiosqlite.Connection | None, path: str, pool: PgPool | None = None) -> None:
        self._conn = conn
        self._pool = pool
        self.path = path  # what messages name: the file, or the server's URL without its password

    @classmethod
    async def open(cls, path: str | Path | SqlitePath | ServerUrl) -> Database:
        """Open (creating and migrating as needed) the archive at `path`: an SQLite file, or a
        PostgreSQL server's URL."""
        if isinstance(path, ServerUrl):
            return await cls._open_server(path)
        if isinstance(path, SqlitePath):
            path = path.path
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

    @classmethod
    async def _open_server(cls, url: ServerUrl) -> Database:
        """The PostgreSQL archive at `url`, migrated on a connection of its own, then pooled."""
        try:
            from storage.pg_database import PgPool
        except ImportError as exc:
            raise StorageError(f"cannot open {url.redacted}: {exc}", "cantopen") from None
        await asyncio.to_thread(lambda: connect_sync(url).close())
        pool = PgPool(url)
        await asyncio.to_thread(pool.open)
        return cls(None, pool.path, pool)

    @property
    def is_sqlite(self) -> bool:
        """Whether the archive is an SQLite file (else a PostgreSQL server)."""
        return self._pool is None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(connection, *args, **kwargs)` on a worker thread (SQLite: the connection's own)."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        if self._pool is not None:
            return await self._pool.run(fn, *args)
        assert self._conn is not None
        return await _on_worker(self._conn, fn, *args)

    async def transaction(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` as one transaction on a worker thread."""
        return await self.run(run_in_transaction, functools.partial(fn, **kwargs) if kwargs else fn, *args)

    async def close(self) -> None:
        """Close the connection (a running transaction has finished by then: calls are serial), or
        the pool (its calls in flight finish first)."""
        if self._pool is not None:
            await self._pool.close()
        elif self._conn is not None:
            await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
