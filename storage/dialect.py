"""The SQL that differs between the archive's backends, in one place: storage code stays one copy.

Storage functions take a connection — a `sqlite3.Connection`, or `storage.pg.PgConnection` for
PostgreSQL, which offers the same calls — and write portable SQL; where a backend spells something
differently, they ask `dialect_of(conn)` for that piece. What is portable already and needs nothing
here: `INSERT ... ON CONFLICT (...) DO NOTHING` and `ON CONFLICT (...) DO UPDATE SET x = excluded.x`
(SQLite >= 3.24 and PostgreSQL alike), partial indexes (`CREATE INDEX ... WHERE ...`, the same on
both), `?` and `:name` parameters (the adapter translates them), and dates, which are ISO-8601 UTC
TEXT on both backends, so that comparisons, ranges and sorts give the same answers.

Not here: the schema's DDL (a migration whose SQL differs has a `.pg.sql` sibling,
`storage.database`) and the full-text search's query side (`storage.query_sql`, later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["POSTGRESQL", "SQLITE", "Dialect", "dialect_of"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """One backend's spelling of the SQL pieces that differ.

    `greatest` / `least`: the scalar max / min of their arguments (SQLite's two-argument `max`,
    `min`); used only on non-NULL arguments, where SQLite's NULL-for-any-NULL and PostgreSQL's
    NULL-ignoring agree.
    """

    name: str
    greatest: str
    least: str

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"

    def insert_or_ignore(self, table_and_columns: str, values: str) -> str:
        """`INSERT OR IGNORE INTO table (cols) values`: a row whose key is taken is skipped.

        SQLite's own form is kept there (it also skips NOT NULL and CHECK failures, which no caller
        relies on); PostgreSQL has only `ON CONFLICT DO NOTHING` (unique keys)."""
        if self.is_sqlite:
            return f"INSERT OR IGNORE INTO {table_and_columns} {values}"
        return f"INSERT INTO {table_and_columns} {values} ON CONFLICT DO NOTHING"

    def seconds_between(self, start: str, end: str) -> str:
        """SQL for the seconds from ISO date `start` to ISO date `end` (SQL expressions), a float."""
        if self.is_sqlite:
            return f"((julianday({end}) - julianday({start})) * 86400.0)"
        return f"(EXTRACT(EPOCH FROM (({end})::timestamptz - ({start})::timestamptz))::float8)"

    def json_text(self, column: str, key: str) -> str:
        """SQL for the top-level `key` of the JSON text in `column`, as SQL text (NULL: absent)."""
        if self.is_sqlite:
            return f"json_extract({column}, '$.{key}')"
        return f"(({column})::jsonb ->> '{key}')"

    def json_not_true(self, column: str, key: str) -> str:
        """SQL true unless the JSON text in `column` has `key` set to JSON `true` (NULL column: true)."""
        if self.is_sqlite:
            return f"json_type({column}, '$.{key}') IS NOT 'true'"
        return f"(({column})::jsonb -> '{key}') IS DISTINCT FROM 'true'::jsonb"


SQLITE = Dialect("sqlite", greatest="max", least="min")
POSTGRESQL = Dialect("postgresql", greatest="greatest", least="least")


def dialect_of(conn: Any) -> Dialect:
    """The dialect of an archive connection: the adapter's own, else SQLite (a `sqlite3.Connection`)."""
    return getattr(conn, "dialect", SQLITE)
