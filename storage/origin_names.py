"""PostgreSQL's stand-in for SQLite's `chanwatch_name`: the name (`storage.query.name_key`, a title's
folded words) of every origin title, which `from:Title` compares.

SQLite calls the Python function in SQL (`storage.search.register_functions`); PostgreSQL runs no
Python there, and an SQL spelling of the fold (NFKC, casefold, accents, letter runs) would depend on
the server's locale and drift from `storage.text`. So the names live in a table, `origin_names`
(schema v17): a trigger on `posts` lists each new title (whoever writes it: ingest, imports, a copy),
and `name_titles` computes the names of the listed ones with the same Python. `storage.ingest` calls
it after each batch, so a reader (even a read-only one) finds every title its writer stored named.
"""

from __future__ import annotations

from typing import Any

from storage.dialect import dialect_of
from storage.query import name_key

__all__ = ["name_titles"]

_PENDING = "SELECT title FROM origin_names WHERE name IS NULL ORDER BY title LIMIT 500"
_READ_ONLY = "SELECT current_setting('transaction_read_only') = 'on'"


def name_titles(conn: Any, *, if_writable: bool = False) -> int:
    """Name the titles listed without a name yet (none on SQLite, which needs no table); returns how
    many. In title order, so two writers naming the same titles take their row locks alike; a title
    another writer named meanwhile is left as it named it. `if_writable`: name none on a read-only
    session (its writer names them after each ingest), rather than fail."""
    if dialect_of(conn).is_sqlite:
        return 0
    named = 0
    while rows := conn.execute(_PENDING).fetchall():
        if if_writable and conn.execute(_READ_ONLY).fetchone()[0]:
            return named
        conn.executemany("UPDATE origin_names SET name = ? WHERE title = ? AND name IS NULL",
                         [(name_key(r[0]), r[0]) for r in rows])
        named += len(rows)
    return named
