"""A PostgreSQL archive connection that storage code uses as it uses a `sqlite3.Connection`.

`PgConnection` wraps a psycopg 3 connection (autocommit: transactions are explicit, as with
`isolation_level=None`) and offers the part of `sqlite3.Connection` storage code calls:
`execute` / `executemany` with SQLite's `?` and `:name` parameters (translated once per statement
text, cached; a literal `%` escaped), rows addressable by index and by name like `sqlite3.Row`,
`fetchone` / `fetchall` / iteration / `rowcount` / `lastrowid`, `executescript`, `in_transaction`,
`commit` / `rollback` / `close`. psycopg's errors are raised as the `sqlite3` error of the same class
(`IntegrityError`, `OperationalError`, ...), chained to the original, so storage code that catches
one catches both; each carries the server's `sqlstate` and the redacted URL (`server`), from which
`storage.faults.explain` says what went wrong. What SQL differs is `storage.dialect`; this module only
carries statements.

`lastrowid`: PostgreSQL has no rowid; an `INSERT` of one row into a table with an `id` column gets
`RETURNING id` appended (unless it has a RETURNING already) and `lastrowid` is that id.

psycopg is an optional dependency (the `postgres` extra): importing this module without it fails
with an ImportError that names the extra; SQLite archives never import it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

try:
    import psycopg
    from psycopg import pq
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImportError("PostgreSQL archives need psycopg: pip install 'chanwatch[postgres]'") from exc

from storage.dialect import POSTGRESQL, Dialect

__all__ = ["PgConnection", "PgCursor", "Row", "translate"]

_TOKENS = re.compile(
    r"""'(?:[^']|'')*'            # a string literal
      | "(?:[^"]|"")*"            # a quoted identifier
      | --[^\n]*                  # a comment
      | ::                        # a cast, not a parameter
      | \?                        # a positional parameter
      | (?<![:\w]):([A-Za-z_]\w*) # a named parameter
      | %                         # psycopg's placeholder character, escaped
    """,
    re.VERBOSE,
)
_INSERT_WITH_ID = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\b(?![\s\S]*\bRETURNING\b)", re.IGNORECASE)
_TABLES_WITH_ID = frozenset({"posts", "message_versions", "rules", "alerts"})
"""Tables whose `id` is generated (an identity column): an INSERT into one returns it."""


SESSION = "SET jit = off"
"""Every session's settings. No JIT: PostgreSQL compiles a statement the planner costs high (over
`jit_optimize_above_cost`) for about a second, which an archive's statements, from milliseconds to a
second or two, never earn back: the amplification report over 50k messages took 1.4 s, 1.0 s of it
compiling (EXPLAIN ANALYZE), and 0.4 s without."""


@lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, bool]:
    """SQLite parameter style -> psycopg's: `?` -> `%s`, `:name` -> `%(name)s`, `%` -> `%%`, outside
    string literals, quoted identifiers and comments (`::` casts kept). Returns the text and whether
    its `INSERT` returns the new row's id (`lastrowid`)."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        if token[0] in "'\"" and "%" in token:
            return token.replace("%", "%%")
        return token

    text = _TOKENS.sub(replace, sql)
    insert = _INSERT_WITH_ID.match(text)
    returning = insert is not None and insert.group(1).lower() in _TABLES_WITH_ID
    if returning:
        text = text.rstrip().rstrip(";") + " RETURNING id"
    return text, returning


class Row(tuple):
    """A result row: a tuple, also addressable by column name (`row["id"]`) like `sqlite3.Row`."""

    _index: dict[str, int] = {}
    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key.lower()])
            except KeyError:
                raise IndexError(f"No item with that key: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The column names, in order (as `sqlite3.Row.keys`)."""
        return list(self._names)


@lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    """A `Row` subclass knowing these column names (one per distinct result shape)."""
    return type("Row", (Row,), {"_index": {n.lower(): i for i, n in enumerate(names)}, "_names": names})


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    names = tuple(c.name for c in cursor.description or ())
    cls = _row_class(names)
    return lambda values: cls(values)


def _sqlite_error(exc: psycopg.Error, server: str) -> sqlite3.Error:
    """The `sqlite3` error of the same class as psycopg's (its first line kept; no parameters in it),
    carrying the server's `sqlstate` (None where libpq gives none: a failed connection) and `server`,
    the archive's URL without its password, for `storage.faults.explain`."""
    if isinstance(exc, psycopg.IntegrityError):
        kind: type[sqlite3.Error] = sqlite3.IntegrityError
    elif isinstance(exc, psycopg.OperationalError):
        kind = sqlite3.OperationalError
    elif isinstance(exc, psycopg.ProgrammingError):
        kind = sqlite3.ProgrammingError
    elif isinstance(exc, psycopg.DataError):
        kind = sqlite3.DataError
    elif isinstance(exc, psycopg.InterfaceError):
        kind = sqlite3.InterfaceError
    else:
        kind = sqlite3.DatabaseError
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    error = kind(first)
    error.sqlstate = exc.sqlstate  # type: ignore[attr-defined]
    error.server = server  # type: ignore[attr-defined]
    return error


def _params(params: Sequence[Any] | Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
    """Parameters as sqlite3 stores them: a bool is an integer (the schema keeps flags in INTEGER)."""
    if isinstance(params, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


class PgCursor:
    """The result of one statement, read as a `sqlite3.Cursor` is."""

    def __init__(self, cursor: psycopg.Cursor[Any], lastrowid: int | None = None) -> None:
        self._cursor = cursor
        self.lastrowid = lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone() if self._cursor.description is not None else None

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall() if self._cursor.description is not None else []

    def fetchmany(self, size: int = 1) -> list[Row]:
        return self._cursor.fetchmany(size) if self._cursor.description is not None else []

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())

    def close(self) -> None:
        self._cursor.close()


class PgConnection:
    """A PostgreSQL archive connection with the `sqlite3.Connection` calls storage code uses."""

    dialect: Dialect = POSTGRESQL
    lock_wait: Any = None  # storage.database.LockWait: PostgreSQL waits for row locks itself

    def __init__(self, raw: psycopg.Connection[Any], redacted: str) -> None:
        self.raw = raw
        self.redacted = redacted  # the URL without its password: what messages may name
        raw.autocommit = True
        raw.row_factory = _row_factory

    @classmethod
    def connect(cls, url: str, redacted: str) -> PgConnection:
        """Connect to the server at `url`; errors as `sqlite3.OperationalError` (never the URL)."""
        try:
            raw = psycopg.connect(url, autocommit=True)
            raw.execute(SESSION)
        except psycopg.Error as exc:
            raise _sqlite_error(exc, redacted) from None
        return cls(raw, redacted)

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> PgCursor:
        text, returning = translate(sql)
        try:  # a closed connection fails already at cursor()
            cursor = self.raw.cursor()
            if params or "%(" in text or "%s" in text:
                cursor.execute(text, _params(params))  # type: ignore[arg-type]
            else:
                cursor.execute(text.replace("%%", "%"))
        except psycopg.Error as exc:
            raise _sqlite_error(exc, self.redacted) from exc
        lastrowid = None
        if returning:
            row = cursor.fetchone()
            lastrowid = row[0] if row is not None else None
        return PgCursor(cursor, lastrowid)

    def cursor(self) -> PgConnection:
        """What `sqlite3.Connection.cursor()` is used for here: statements run one after another.
        Rows are `Row` tuples whatever `row_factory` a caller sets (they compare as tuples)."""
        return self

    row_factory: Any = None

    def executemany(self, sql: str, seq: Iterable[Sequence[Any] | Mapping[str, Any]]) -> PgCursor:
        text, returning = translate(sql)
        if returning:  # the new ids of many rows are never read: no RETURNING for each
            text = text.removesuffix(" RETURNING id")
        try:
            cursor = self.raw.cursor()
            cursor.executemany(text, [_params(p) for p in seq])  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise _sqlite_error(exc, self.redacted) from exc
        return PgCursor(cursor)

    def executescript(self, script: str) -> None:
        """Run several statements (a migration) as PostgreSQL's simple query protocol does."""
        try:
            self.raw.execute(script.encode())  # type: ignore[call-overload]
        except psycopg.Error as exc:
            raise _sqlite_error(exc, self.redacted) from exc

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
