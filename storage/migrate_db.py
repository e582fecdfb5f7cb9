"""Copy a whole archive to another one, across backends (SQLite <-> PostgreSQL), losslessly and
resumably: `copy_archive(source, target)`, which `chanwatch migrate-db SOURCE TARGET` runs.

What is copied: every table of the schema, read from the database's own catalog (`copy_plan`: a
table a future migration adds is copied without a change here), parents before the tables whose
foreign keys name them, each in batches in primary-key order. Values go across as Python reads them
(integers of any size, text, NULL), ids as they are (provenance links posts, versions and alerts by
id). Derived search data is not copied but rebuilt by the target from the base columns, so search
answers the same there: SQLite's FTS5 table `posts_fts` (and its shadow tables) is filled by
`posts`' insert trigger, PostgreSQL's `posts.fts` (any tsvector column) by its trigger. At the end
PostgreSQL's identity sequences are set past the largest id copied, so the next insert does not
collide (and no lower than the source's sequence: an id PostgreSQL gave out is not given again);
SQLite needs nothing (its next id is the largest plus one).

Resumable: the target holds a progress table (`chanwatch_migration`: the source's identity, and per
table the last key copied and the rows so far), written in the same transaction as each batch, so a
copy stopped anywhere (Ctrl-C, killed, a lost connection) continues where it stopped when run again,
never duplicating a row. The table is dropped once the copy is complete and checked (row counts).
A target that holds rows of its own, or an unfinished copy of another source, is refused
(`MigrateError`): a copy is never merged into an archive. The source must not change meanwhile
(stop `chanwatch run` writing to it): the count check at the end says so if it did.

The catalog queries differ by backend (`_SqliteCatalog`, `_PgCatalog`: what a schema holds is read
from `sqlite_master` there, `pg_catalog`/`information_schema` here); the copy itself is one code.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from storage.database import PG_VERSION_TABLE, Connection, run_in_transaction, schema_version
from storage.dialect import dialect_of
from storage.faults import StorageError, explain
from storage.origin_names import name_titles
from storage.progress import Progress

__all__ = ["BATCH_ROWS", "PROGRESS_LABEL", "PROGRESS_TABLE", "CopyReport", "MigrateError", "Table",
           "copy_archive", "copy_plan", "identity"]

BATCH_ROWS = 1000
"""Rows per batch: one read of the source, one transaction of the target."""
PROGRESS_TABLE = "chanwatch_migration"
"""The target's record of an unfinished copy (see the module's docstring); dropped when it completes."""
PROGRESS_LABEL = "rows"
"""The label of the copy's `Progress` calls: rows copied (of every table) out of the source's rows."""

T = TypeVar("T")

_BOOKKEEPING = frozenset({PG_VERSION_TABLE, PROGRESS_TABLE, "origin_names"})
"""Tables that are not the archive's data: PostgreSQL's schema version, the copy's own progress, and
PostgreSQL's `origin_names` (derived from posts by its trigger, named at the end of a copy)."""


class MigrateError(StorageError):
    """The copy cannot go on (a target that holds another archive, the same archive at both ends,
    schemas that differ, a failure of one end); the one-line message says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "migrate")


@dataclass(frozen=True)
class Table:
    """One table to copy: its name, the columns copied (derived ones left out), its primary key."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


@dataclass
class CopyReport:
    """What one run did: rows per table (all of the copy's, earlier runs' included), and the rows an
    earlier, interrupted run had copied already (0: this run started the copy)."""

    rows: dict[str, int] = field(default_factory=dict)
    resumed_rows: int = 0
    schema_version: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _q(name: str) -> str:
    """An identifier quoted for both backends (column names such as `key`, `position`, `at`)."""
    return '"' + name.replace('"', '""') + '"'


# --- the catalog: what the schema holds, read from each backend's own tables ---------------------


class _SqliteCatalog:
    """SQLite's schema: `sqlite_master` and the table pragmas. Virtual tables (FTS5) and their shadow
    tables hold derived search data; `sqlite_*` tables are SQLite's own (statistics)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def tables(self) -> list[str]:
        rows = self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
        return sorted(name for name, _ in rows
                      if not name.startswith("sqlite_") and name not in _BOOKKEEPING
                      and not any(name == v or name.startswith(v + "_") for v in virtual))

    def columns(self, table: str) -> tuple[list[str], list[str]]:
        """(the columns in order, the primary key's columns in key order)."""
        info = self.conn.execute(f"PRAGMA table_info({_q(table)})").fetchall()
        columns = [r[1] for r in info]
        key = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        return columns, key

    def parents(self, table: str) -> set[str]:
        return {r[2] for r in self.conn.execute(f"PRAGMA foreign_key_list({_q(table)})")}

    def next_ids(self) -> dict[tuple[str, str], int]:
        """None beyond the largest: SQLite gives a new row the largest id plus one (no AUTOINCREMENT
        in the schema)."""
        return {}

    def after_copy(self, next_ids: dict[tuple[str, str], int]) -> None:
        """Nothing to set (see `next_ids`)."""


class _PgCatalog:
    """PostgreSQL's schema (the connection's current schema): tsvector columns hold derived search
    data, which the target's trigger rebuilds (generated columns, none yet, would be left out too);
    identity and serial columns have sequences."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def tables(self) -> list[str]:
        rows = self.conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return sorted(r[0] for r in rows if r[0] not in _BOOKKEEPING)

    def columns(self, table: str) -> tuple[list[str], list[str]]:
        columns = [r[0] for r in self.conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? AND data_type != 'tsvector'"
            "  AND is_generated = 'NEVER'"
            " ORDER BY ordinal_position", (table,))]
        key = [r[0] for r in self.conn.execute(
            "SELECT k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name"
            "  AND k.constraint_schema = c.constraint_schema AND k.table_name = c.table_name"
            " WHERE c.table_schema = current_schema() AND c.table_name = ?"
            "  AND c.constraint_type = 'PRIMARY KEY'"
            " ORDER BY k.ordinal_position", (table,))]
        return columns, key

    def parents(self, table: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint"
            " WHERE contype = 'f' AND conrelid = ?::regclass", (_q(table),))
        return {r[0].strip('"') for r in rows}

    def _generated(self) -> list[tuple[str, str]]:
        """(table, column) of every identity or serial column."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
            "  AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')")]

    def next_ids(self) -> dict[tuple[str, str], int]:
        """The id each sequence gives next: past the largest row when the newest rows were deleted
        (PostgreSQL never gives an id twice; a copy keeps that promise)."""
        found: dict[tuple[str, str], int] = {}
        for table, column in self._generated():
            last = self.conn.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence(?, ?)::regclass)",
                                     (_q(table), column)).fetchone()[0]
            found[(table, column)] = 1 if last is None else int(last) + 1
        return found

    def after_copy(self, next_ids: dict[tuple[str, str], int]) -> None:
        """Every identity or serial sequence past the largest value copied into its column, and no
        lower than where the source's was (`next_ids`)."""
        for table, column in self._generated():
            self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), {dialect_of(self.conn).greatest}("
                f"coalesce(max({_q(column)}), 0) + 1, ?), false) FROM {_q(table)}",
                (_q(table), column, next_ids.get((table, column), 1)))


def _catalog(conn: Connection) -> _SqliteCatalog | _PgCatalog:
    return _SqliteCatalog(conn) if dialect_of(conn).is_sqlite else _PgCatalog(conn)


def copy_plan(conn: Connection) -> list[Table]:
    """Every table of the archive's schema with its copied columns and primary key, each after every
    table its foreign keys name (ties by name). MigrateError for a table with no primary key (it
    cannot be copied in resumable batches) or foreign keys in a cycle."""
    catalog = _catalog(conn)
    names = catalog.tables()
    tables: dict[str, Table] = {}
    parents: dict[str, set[str]] = {}
    for name in names:
        columns, key = catalog.columns(name)
        if not key:
            raise MigrateError(f"table {name} has no primary key, so it cannot be copied in resumable "
                               "batches; this chanwatch does not know that schema")
        tables[name] = Table(name, tuple(columns), tuple(key))
        parents[name] = {p for p in catalog.parents(name) if p in names and p != name}
    order: list[Table] = []
    placed: set[str] = set()
    while len(order) < len(names):
        ready = [n for n in names if n not in placed and parents[n] <= placed]
        if not ready:
            raise MigrateError("the archive's foreign keys form a cycle: "
                               + ", ".join(n for n in names if n not in placed))
        for name in ready:
            order.append(tables[name])
            placed.add(name)
    return order


def identity(conn: Connection) -> str:
    """Which archive `conn` is, for telling the two ends apart and naming the source in the target's
    progress record (no password: it is stored): the SQLite file's real path, or PostgreSQL's
    server, database and schema."""
    if dialect_of(conn).is_sqlite:
        files = {r[1]: r[2] for r in conn.execute("PRAGMA database_list")}
        path = files.get("main") or ""
        return "sqlite:" + (os.path.realpath(path) if path else f"memory:{id(conn)}")
    server, port, database, schema = conn.execute(
        "SELECT coalesce(host(inet_server_addr()), 'local'), coalesce(inet_server_port(), 0),"
        " current_database(), current_schema()").fetchone()
    return f"postgresql://{server}:{port}/{database}?schema={schema}"


# --- the copy --------------------------------------------------------------------------------------


@dataclass
class _End:
    """One end of the copy: its connection and how messages name it (a path, a redacted URL)."""

    conn: Connection
    shown: str

    def ask(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)`, a failure of this end as `failed` says it."""
        try:
            return fn(self.conn)
        except sqlite3.Error as exc:
            raise self.failed(exc) from exc

    def failed(self, exc: sqlite3.Error, table: str | None = None) -> MigrateError:
        """One line for a failure of this end (while copying `table`), ending with what to do: once
        the cause is fixed (a lost connection, a full disk, a row the target refuses), the same
        command continues the copy."""
        if dialect_of(self.conn).is_sqlite:
            text = str(explain(exc, self.shown))
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            text = f"the PostgreSQL archive at {self.shown}: {first}"
        if table is None:
            return MigrateError(f"{text}; once that is fixed, run the same migrate-db again")
        return MigrateError(f"{text} (copying table {table}); the rows copied so far are kept: once that is "
                            "fixed, run the same migrate-db again to continue")


def _start(source: _End, target: _End, source_id: str, plan: list[Table]) -> dict[str, tuple[Any, int, bool]]:
    """The target's progress for `source_id`, per table: (last key copied or None, rows, done).
    A target with no record of this source is claimed for it (progress rows written) if every table
    is empty, else refused, in one transaction."""

    def claim(conn: Connection) -> dict[str, tuple[Any, int, bool]]:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} ("
                     " source TEXT NOT NULL, tbl TEXT NOT NULL,"
                     " last_key TEXT,"  # JSON list: the primary key of the last row copied
                     " copied BIGINT NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,"
                     " PRIMARY KEY (source, tbl))")
        sources = [r[0] for r in conn.execute(f"SELECT DISTINCT source FROM {PROGRESS_TABLE}")]
        others = [s for s in sources if s != source_id]
        if others:
            raise MigrateError(
                f"{target.shown} holds an unfinished copy of another archive ({others[0]}), not of "
                f"{source.shown}: finish that one (migrate-db with that source), or copy into an empty "
                "archive")
        if sources:
            rows = conn.execute(f"SELECT tbl, last_key, copied, done FROM {PROGRESS_TABLE} WHERE source = ?",
                                (source_id,)).fetchall()
            state = {r[0]: (None if r[1] is None else json.loads(r[1]), int(r[2]), bool(r[3]))
                     for r in rows}
            for table in plan:  # a table a migration added since the copy began (both ends upgraded)
                if table.name not in state:
                    conn.execute(f"INSERT INTO {PROGRESS_TABLE} (source, tbl) VALUES (?, ?)",
                                 (source_id, table.name))
                    state[table.name] = (None, 0, False)
            return state
        for table in plan:
            if conn.execute(f"SELECT 1 FROM {_q(table.name)} LIMIT 1").fetchone() is not None:
                raise MigrateError(
                    f"{target.shown} is not empty (table {table.name} has rows) and holds no unfinished copy "
                    f"of {source.shown}: migrate-db copies only into an empty archive and never merges; give "
                    "a new file or an empty PostgreSQL database (or schema) as TARGET")
        conn.executemany(f"INSERT INTO {PROGRESS_TABLE} (source, tbl) VALUES (?, ?)",
                         [(source_id, t.name) for t in plan])
        return {t.name: (None, 0, False) for t in plan}

    try:
        return run_in_transaction(target.conn, claim)
    except sqlite3.Error as exc:
        raise target.failed(exc) from exc


def _read_batch(source: _End, table: Table, after: Sequence[Any] | None, limit: int) -> list[tuple[Any, ...]]:
    """Up to `limit` rows of `table` whose key follows `after` (None: from the first), in key order."""
    key = ", ".join(_q(c) for c in table.key)
    where, params = "", list(after or ())
    if after is not None:
        where = (f" WHERE {_q(table.key[0])} > ?" if len(table.key) == 1
                 else f" WHERE ({key}) > ({', '.join('?' * len(table.key))})")
    sql = (f"SELECT {', '.join(_q(c) for c in table.columns)} FROM {_q(table.name)}{where}"
           f" ORDER BY {key} LIMIT ?")
    try:
        return [tuple(r) for r in source.conn.execute(sql, [*params, limit])]
    except sqlite3.Error as exc:
        raise source.failed(exc, table.name) from exc


def _write_batch(target: _End, source_id: str, table: Table, rows: list[tuple[Any, ...]], copied: int,
                 done: bool) -> None:
    """Insert `rows` and record how far the copy of `table` got, in one transaction of the target."""
    at = [table.columns.index(c) for c in table.key]
    last = json.dumps([rows[-1][i] for i in at]) if rows else None
    insert = (f"INSERT INTO {_q(table.name)} ({', '.join(_q(c) for c in table.columns)})"
              f" VALUES ({', '.join('?' * len(table.columns))})")

    def write(conn: Connection) -> None:
        if rows:
            conn.executemany(insert, rows)
        conn.execute(f"UPDATE {PROGRESS_TABLE} SET last_key = coalesce(?, last_key), copied = ?, done = ?"
                     " WHERE source = ? AND tbl = ?", (last, copied, int(done), source_id, table.name))

    try:
        run_in_transaction(target.conn, write)
    except sqlite3.Error as exc:
        raise target.failed(exc, table.name) from exc


def _refuse_bytes(source: _End, target: _End, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """MigrateError for a BLOB in the rows bound for PostgreSQL, whose schema holds no bytes: its
    text column would silently take the bytes' hex spelling instead (SQLite keeps any value in any
    column; nothing chanwatch writes is bytes)."""
    for row in rows:
        for column, value in zip(table.columns, row, strict=True):
            if isinstance(value, bytes):
                key = [row[table.columns.index(c)] for c in table.key]
                raise MigrateError(
                    f"{source.shown} holds bytes (a BLOB) where text belongs (table {table.name}, column "
                    f"{column}, key {key}), which {target.shown} cannot keep as they are; correct that row "
                    "in SOURCE, then run the same migrate-db again to continue")


def _finish(source: _End, target: _End, plan: list[Table]) -> None:
    """Check every table's row count against the source, set the sequences (no lower than the
    source's), drop the progress."""
    for table in plan:
        def count(conn: Connection, name: str = table.name) -> int:
            return int(conn.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()[0])

        there, here = source.ask(count), target.ask(count)
        if there != here:
            raise MigrateError(
                f"{source.shown} changed during the copy (table {table.name}: {there} rows there, {here} "
                f"copied): stop every chanwatch writing to it, then copy again into an empty archive")

    next_ids = source.ask(lambda conn: _catalog(conn).next_ids())

    def finish(conn: Connection) -> None:
        _catalog(conn).after_copy(next_ids)
        name_titles(conn)  # PostgreSQL: the origin titles the copied posts listed, named for from:
        conn.execute(f"DROP TABLE {PROGRESS_TABLE}")

    try:
        run_in_transaction(target.conn, finish)
    except sqlite3.Error as exc:
        raise target.failed(exc) from exc


def _same_plan(source: _End, target: _End) -> list[Table]:
    """The source's plan, once the target's schema is known to have the same tables and columns."""
    plan, theirs = source.ask(copy_plan), {t.name: t for t in target.ask(copy_plan)}
    ours = {t.name for t in plan}
    if ours != set(theirs):
        extra = sorted(ours ^ set(theirs))
        raise MigrateError(f"{source.shown} and {target.shown} have different tables ({', '.join(extra)}): "
                           "both must be archives of this chanwatch's schema")
    for table in plan:
        if set(table.columns) != set(theirs[table.name].columns):
            diff = sorted(set(table.columns) ^ set(theirs[table.name].columns))
            raise MigrateError(f"table {table.name} has different columns at the two ends "
                               f"({', '.join(diff)}): both must be archives of this chanwatch's schema")
    return plan


def copy_archive(source: Connection, target: Connection, *, names: tuple[str, str] = ("SOURCE", "TARGET"),
                 batch_rows: int = BATCH_ROWS, progress: Progress | None = None) -> CopyReport:
    """Copy every row of the archive `source` into the archive `target` (both migrated to this
    chanwatch's schema: `storage.database.connect_sync`), continuing an earlier copy of the same
    source that stopped. `names` are how messages name the ends (paths, redacted URLs). `progress`
    gets `(PROGRESS_LABEL, rows copied, rows in the source)` after each batch is committed.

    MigrateError when the two are the same archive, the target holds another archive, their schemas
    differ, the source changed during the copy, or either end fails (an interrupted copy resumes).
    """
    src, dst = _End(source, names[0]), _End(target, names[1])
    source_id = src.ask(identity)
    if source_id == dst.ask(identity):
        raise MigrateError(f"SOURCE and TARGET are the same archive ({names[0]}): give another TARGET")
    versions = src.ask(schema_version), dst.ask(schema_version)
    if versions[0] != versions[1]:
        raise MigrateError(f"{names[0]} has schema version {versions[0]} and {names[1]} {versions[1]}: "
                           "open both with this chanwatch (any command upgrades an archive)")
    plan = _same_plan(src, dst)
    state = _start(src, dst, source_id, plan)
    report = CopyReport(schema_version=versions[0])
    report.resumed_rows = sum(copied for _, copied, _ in state.values())
    total = None
    if progress is not None:
        total = sum(src.ask(lambda c, t=t: c.execute(f"SELECT count(*) FROM {_q(t.name)}").fetchone()[0])
                    for t in plan)
    done_rows = report.resumed_rows
    for table in plan:
        last, copied, done = state[table.name]
        while not done:
            rows = _read_batch(src, table, last, batch_rows)
            if not dialect_of(target).is_sqlite:
                _refuse_bytes(src, dst, table, rows)
            done = len(rows) < batch_rows
            copied += len(rows)
            _write_batch(dst, source_id, table, rows, copied, done)
            if rows:
                last = [rows[-1][table.columns.index(c)] for c in table.key]
                done_rows += len(rows)
                if progress is not None:
                    progress(PROGRESS_LABEL, done_rows, total)
        report.rows[table.name] = copied
    _finish(src, dst, plan)
    return report
