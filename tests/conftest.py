"""Fixtures shared by every test: the archive on each backend (tests/pg_support.py has the server)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from storage.database import connect_sync
from storage.location import ServerUrl
from tests.pg_support import ScratchArchives, fresh_schema, require_server

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def pg_url() -> Iterator[ServerUrl]:
    """A fresh, empty PostgreSQL schema for this test (skipped, or failed under CHANWATCH_REQUIRE_PG=1,
    when no server answers)."""
    with fresh_schema() as url:
        yield url


@pytest.fixture
def pg_conn(pg_url: ServerUrl) -> Iterator[Any]:
    """A migrated PostgreSQL archive connection in this test's own schema."""
    conn = connect_sync(pg_url)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="session")
def pg_reused() -> Iterator[ScratchArchives]:
    """One PostgreSQL schema for the whole session, emptied for each test that takes `archive`."""
    scratch = ScratchArchives(size=1)
    try:
        yield scratch
    finally:
        scratch.close()


@pytest.fixture(params=BACKENDS)
def archive(request: pytest.FixtureRequest) -> Any:
    """A migrated, empty archive connection, once on SQLite (in memory) and once on PostgreSQL (the
    session's schema emptied: tests that change the schema itself take `pg_conn`)."""
    if request.param == "sqlite":
        conn = connect_sync(":memory:")
        request.addfinalizer(conn.close)
        return conn
    require_server()  # skip, or fail under CHANWATCH_REQUIRE_PG=1, without a server
    return request.getfixturevalue("pg_reused").new()


@pytest.fixture
def pg_scratch() -> Iterator[Callable[[], Any]]:
    """A maker of empty PostgreSQL archives for property tests, which need new ones for every example
    (at most three in use at once: `ScratchArchives`)."""
    require_server()  # skip, or fail under CHANWATCH_REQUIRE_PG=1, without a server
    scratch = ScratchArchives()
    try:
        yield scratch.new
    finally:
        scratch.close()


@pytest.fixture(params=BACKENDS)
def new_archive(request: pytest.FixtureRequest) -> Callable[[], Any]:
    """A maker of empty archives, on SQLite (in memory) and on PostgreSQL (`pg_scratch`)."""
    if request.param == "sqlite":
        return lambda: connect_sync(":memory:")
    return request.getfixturevalue("pg_scratch")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per reason tests were skipped, with their count (the PostgreSQL tests when no server
    answers are the only skips): the README's test command says why instead of a bare "N skipped"."""
    reasons = Counter(
        r.longrepr[2] if isinstance(r.longrepr, tuple) and len(r.longrepr) == 3 else str(r.longrepr)
        for r in terminalreporter.stats.get("skipped", []))
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"{count} test(s) skipped: {reason}")
