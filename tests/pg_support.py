"""The PostgreSQL server the tests use (issue #17): where it is, whether it answers, a fresh schema.

`CHANWATCH_TEST_PG` names the server (a `postgresql://` URL; `.ci/run` sets it), else
`postgresql://127.0.0.1:5432/test` as the current user. When no server answers, the PostgreSQL tests
are skipped with the reason (the URL's password redacted), unless `CHANWATCH_REQUIRE_PG=1` (CI):
then they fail, saying how to start one. A test gets an empty schema of its own (`fresh_schema`,
dropped afterwards) or one emptied for it (`ScratchArchives`), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import pytest

from storage.database import PG_VERSION_TABLE, connect_sync
from storage.location import ServerUrl, parse_location

URL_ENV = "CHANWATCH_TEST_PG"
REQUIRE_ENV = "CHANWATCH_REQUIRE_PG"
DEFAULT_URL = "postgresql://127.0.0.1:5432/test"
HOW_TO_START = (
    "start one with `pg_ctlcluster 15 main start` and create a role and a `test` database as .ci/run "
    f"does, then set {URL_ENV}=postgresql://USER:PASSWORD@127.0.0.1:5432/test"
)


def server() -> ServerUrl:
    """The test server's URL (`CHANWATCH_TEST_PG`, else the default on 127.0.0.1)."""
    location = parse_location(os.environ.get(URL_ENV) or DEFAULT_URL)
    if not isinstance(location, ServerUrl):
        raise pytest.UsageError(f"{URL_ENV} must be a postgresql:// URL")
    return location


@lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here (None: the server answers), asked once a session."""
    url = server()
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]', which includes the postgres extra)"
    try:
        with psycopg.connect(url.url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot connect to the PostgreSQL test server at {url.redacted}: {first}"
    return None


def require_server() -> ServerUrl:
    """The server's URL; skips the test when none answers, or fails it under CHANWATCH_REQUIRE_PG=1."""
    reason = unavailable()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 requires the PostgreSQL tests to run: {HOW_TO_START}",
                        pytrace=False)
        pytest.skip(reason)
    return server()


def _with_search_path(url: str, schema: str) -> str:
    """`url` whose connections use `schema` first (libpq's `options`), and commit without waiting for
    the disk (a test's rows need not survive a crash of the server; each commit is ~10x faster)."""
    option = "options=" + quote(f"-csearch_path={schema} -csynchronous_commit=off", safe="")
    return url + ("&" if "?" in url else "?") + option


@contextmanager
def fresh_schema() -> Iterator[ServerUrl]:
    """A new empty schema on the test server, as a URL whose connections use it; dropped afterwards
    (close every connection to it first)."""
    import psycopg

    base = require_server()
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base.url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield ServerUrl("postgresql", _with_search_path(base.url, name))
    finally:
        with psycopg.connect(base.url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def _emptying_order(conn: Any) -> list[str]:
    """The schema's tables (the version table aside), each after every table that references it."""
    tables = [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename != ?",
        (PG_VERSION_TABLE,))]
    refs: dict[str, set[str]] = {t: set() for t in tables}  # table -> the tables referencing it
    for child, parent in conn.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
    ):
        if child != parent:
            refs[parent].add(child)
    order: list[str] = []
    while refs:
        ready = sorted(t for t, children in refs.items() if children <= set(order))
        order += ready
        for t in ready:
            del refs[t]
    return order


class ScratchArchives:
    """Empty PostgreSQL archives reused from test to test, or from example to example of a property
    test: `new()` empties and returns the least recently handed out of `size` migrated schemas (rows
    deleted, ids restarted: ~2 ms, where a new schema costs ~0.8 s). At most `size` archives are in
    use at once. A connection the last user closed is opened again; a transaction it left open is
    rolled back."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self._made: list[tuple[Any, ServerUrl, Any]] = []  # (the schema's context manager, URL, connection)
        self._next = 0
        self._order: list[str] = []

    def new(self) -> Any:
        if len(self._made) < self.size:
            return self._fresh(len(self._made))
        at = self._next
        self._next = (self._next + 1) % self.size
        scope, url, conn = self._made[at]
        try:
            if conn.raw.closed:
                conn = connect_sync(url)
                self._made[at] = (scope, url, conn)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("BEGIN")
            for table in self._order:
                conn.execute(f"DELETE FROM {table}")
            for table in ("posts", "message_versions", "rules", "alerts"):  # ids from 1 again (no DDL)
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1, false)")
            conn.execute("COMMIT")
        except sqlite3.Error:  # the last user changed the schema itself (dropped a table): a new one
            conn.close()
            scope.__exit__(None, None, None)
            return self._fresh(at)
        return conn

    def _fresh(self, at: int) -> Any:
        scope = fresh_schema()
        url = scope.__enter__()
        conn = connect_sync(url)
        if at == len(self._made):
            self._made.append((scope, url, conn))
        else:
            self._made[at] = (scope, url, conn)
        self._order = self._order or _emptying_order(conn)
        return conn

    def close(self) -> None:
        for scope, _, conn in self._made:
            conn.close()
            scope.__exit__(None, None, None)
        self._made.clear()
