"""The SQL that differs between the archive's backends, in one place: storage code stays one copy.

Storage functions take a connection — a `sqlite3.Connection`, or `storage.pg.PgConnection` for
PostgreSQL, which offers the same calls — and write portable SQL; where a backend spells something
differently, they ask `dialect_of(conn)` for that piece. What is portable already and needs nothing
here: `INSERT ... ON CONFLICT (...) DO NOTHING` and `ON CONFLICT (...) DO UPDATE SET x = excluded.x`
(SQLite >= 3.24 and PostgreSQL alike), partial indexes (`CREATE INDEX ... WHERE ...`, the same on
both), `?` and `:name` parameters (the adapter translates them), and dates, which are ISO-8601 UTC
TEXT on both backends, so that comparisons, ranges and sorts give the same answers.

The full-text index: SQLite's FTS5 table `posts_fts`, PostgreSQL's `posts.fts` tsvector; the query
compiler writes FTS5 expressions, which `fts_param` translates for PostgreSQL (`storage.tsquery`).
Not here: the schema's DDL (a migration whose SQL differs has a `.pg.sql` sibling,
`storage.database`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.tsquery import in_buckets, tsquery

__all__ = ["POSTGRESQL", "SQLITE", "Dialect", "Numbered", "dialect_of"]


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
    instr: str
    """`instr(text, part)`: the 1-based position of `part` in `text`, 0 if absent (PostgreSQL's `strpos`)."""
    null_safe_equal: str
    """`a IS b` of SQLite: equal, or both NULL (PostgreSQL's `IS NOT DISTINCT FROM`)."""
    fts_from: str
    fts_match: str
    fts_id: str
    fts_score: str
    """The full-text index as a row source (`fts_rows`): its FROM, its match condition (one `?`, the
    expression `fts_param` gives, in FROM on PostgreSQL, in WHERE on SQLite: before any other
    parameter of the statement either way), the post id column, and a score, lower is better (FTS5's
    bm25; PostgreSQL's ts_rank negated)."""
    fts_post: str | None
    """Where the index is a column of `posts` (PostgreSQL's `fts`): the condition (one `?`, as
    `fts_match`) that post `p` matches, tested on the row itself or by a bitmap scan of the GIN index,
    as the planner prefers; never NULL (the trigger fills `fts` from NOT NULL columns). None where the
    index is a table of its own (FTS5), whose ids a query reads with `p.id IN (fts_rows)`: on
    PostgreSQL that semijoin re-scanned a walk step's id range once per candidate post."""
    fts_bucket: int | None = None
    """Posts per bucket of ids where the index holds each post's bucket (PostgreSQL: `posts.fts` has
    `$7` for ids 700000-799999, migrations/0019_fts_marked_lexemes.pg.sql), so that a count can stop
    early (`fts_param_in_buckets`); None where the index stops early by itself (FTS5)."""

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"

    @property
    def defer_foreign_keys(self) -> str:
        """The statement that defers foreign-key checks to the end of the current transaction, for
        rows moving between keys (PostgreSQL's schema declares its foreign keys DEFERRABLE)."""
        return "PRAGMA defer_foreign_keys = ON" if self.is_sqlite else "SET CONSTRAINTS ALL DEFERRED"

    def lock_rows(self, table: str) -> str:
        """What ends a SELECT of rows to claim: on PostgreSQL `FOR UPDATE OF table SKIP LOCKED` (rows a
        concurrent claim is taking are passed over, not waited for); nothing on SQLite, where the
        claiming transaction holds the write lock already."""
        return "" if self.is_sqlite else f" FOR UPDATE OF {table} SKIP LOCKED"

    def fts_param(self, expression: str) -> str:
        """The parameter `fts_match` takes for an FTS5 expression of `storage.query_sql`."""
        return expression if self.is_sqlite else tsquery(expression)

    def fts_param_in_buckets(self, expression: str, buckets: list[int]) -> str:
        """`fts_param` for the posts of `buckets` only (ids // `fts_bucket`; PostgreSQL)."""
        assert self.fts_bucket is not None, "only an index that holds buckets"
        return in_buckets(tsquery(expression), buckets)

    def fts_rows(self, columns: str | None = None, where: str = "") -> str:
        """`SELECT columns FROM` the full-text index `WHERE` it matches (one `?`) `where`: the ids of
        the posts an expression matches, by default."""
        return f"SELECT {columns or self.fts_id} FROM {self.fts_from} WHERE {self.fts_match}{where}"

    def indexed_by(self, index: str) -> str:
        """SQLite's `INDEXED BY index` after a table name (PostgreSQL's planner takes no such hint)."""
        return f" INDEXED BY {index}" if self.is_sqlite else ""

    def numbered(self, name: str, query: str, order: str) -> Numbered:
        """`name`: the rows of `query` (a SELECT without ORDER BY) numbered 1, 2, ... in `order` (its
        result columns) as `rowid`, so that a group's k-th row (a median) is read without a second
        sort (`Numbered.rank_base`, `Numbered.at_rank`).

        SQLite: a temporary table filled in that order, whose rowids are the ranks (a read-only
        connection may still write its temporary store). PostgreSQL: a materialized CTE with
        `row_number()`, since a read-only transaction creates no table there, temporary or not."""
        if self.is_sqlite:
            return Numbered(name, create=f"CREATE TEMP TABLE {name} AS {query} ORDER BY {order}", with_="",
                            drop=f"DROP TABLE IF EXISTS temp.{name}")
        return Numbered(name, create="", drop="", with_=(
            f"{name} AS MATERIALIZED (SELECT numbered.*, row_number() OVER (ORDER BY {order}) AS rowid"
            f" FROM ({query}) AS numbered), "))

    def origin_name_in(self, marks: str) -> str:
        """SQL true when the name (`storage.query.name_key`) of the post `p`'s origin title is one of
        `marks` (parameters): SQLite computes it by the Python function `chanwatch_name`; PostgreSQL,
        which runs no Python in SQL, looks the title up in `origin_names` (`storage.origin_names`)."""
        if self.is_sqlite:
            return f"chanwatch_name(p.origin_title) IN ({marks})"
        return f"p.origin_title IN (SELECT n.title FROM origin_names n WHERE n.name IN ({marks}))"

    def transaction_lock(self) -> str | None:
        """A statement (one `?`, the lock's number) that waits for a lock and holds it until the
        transaction ends, or None where a write transaction excludes every other already (SQLite's
        BEGIN IMMEDIATE). PostgreSQL's is a transaction-level advisory lock."""
        return None if self.is_sqlite else "SELECT pg_advisory_xact_lock(?)"

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


@dataclass(frozen=True, slots=True)
class Numbered:
    """How one statement's rows become a relation read by rank (`Dialect.numbered`): a statement to
    run before the readers (or ""), then each reader's SQL starts `WITH {with_}...` (its parameters,
    the query's, before the reader's own), then `drop` (or "") when done."""

    name: str
    create: str
    with_: str
    drop: str

    @property
    def is_table(self) -> bool:
        """SQLite's temporary table, whose rowids are the ranks (else PostgreSQL's CTE)."""
        return bool(self.create)

    def rank_base(self, column: str) -> str:
        """An aggregate over a group of the relation's rows that are consecutive in its order, from
        which `at_rank` reads the group's k-th `column`: SQLite's first rowid (the k-th row is one
        lookup by rowid), PostgreSQL's array of the group's values in order (no index on a CTE)."""
        return "min(rowid)" if self.is_table else f"array_agg({column} ORDER BY rowid)"

    def at_rank(self, column: str, base: str, rank: str) -> str:
        """SQL for the `rank`-th (1-based, an SQL expression) `column` of a group whose `rank_base`
        is `base`."""
        if self.is_table:
            return f"(SELECT {column} FROM {self.name} WHERE rowid = {base} + {rank} - 1)"
        return f"({base})[CAST({rank} AS INTEGER)]"


SQLITE = Dialect(
    "sqlite", greatest="max", least="min", instr="instr", null_safe_equal="IS",
    fts_from="posts_fts", fts_match="posts_fts MATCH ?", fts_id="rowid", fts_score="bm25(posts_fts)",
    fts_post=None,
)
POSTGRESQL = Dialect(
    "postgresql", greatest="greatest", least="least", instr="strpos", null_safe_equal="IS NOT DISTINCT FROM",
    fts_from="posts, CAST(? AS tsquery) AS fts_query", fts_match="fts @@ fts_query", fts_id="id",
    fts_score="-ts_rank(fts, fts_query)", fts_post="p.fts @@ CAST(? AS tsquery)", fts_bucket=100_000,
)


def dialect_of(conn: Any) -> Dialect:
    """The dialect of an archive connection: the adapter's own, else SQLite (a `sqlite3.Connection`)."""
    return getattr(conn, "dialect", SQLITE)
