"""The PostgreSQL server the tests use (issue #17): where it is, whether it answers, a fresh schema.

`CHANWATCH_TEST_PG` names the server (a `postgresql://` URL; `.ci/run` sets it), else
`postgresql://127.0.0.1:5432/test` as the current user. When no server answers, the PostgreSQL tests
are skipped with the reason (the URL's password redacted), unless `CHANWATCH_REQUIRE_PG=1` (CI):
then they fail, saying how to start one. Each test gets its own empty schema, dropped afterwards,
so tests never see each other's rows and need no cleanup of their own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import quote

import pytest

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
        return f"no PostgreSQL server answers at {url.redacted}: {first}"
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
    """`url` whose connections use `schema` first (libpq's `options`)."""
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
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
