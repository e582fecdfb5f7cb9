"""Opening the archive from asyncio code: failures are clear and leave nothing running."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from storage.database import AIOSQLITE_KNOWN, SCHEMA_VERSION, Database, StorageError


async def test_a_newer_archive_is_refused_and_its_worker_thread_ends(tmp_path):
    path = tmp_path / "future.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    before = set(threading.enumerate())
    with pytest.raises(StorageError, match="newer than this chanwatch knows"):
        await Database.open(path)
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)  # it was told to stop; an unclosed connection would keep it waiting
        assert not thread.is_alive()


async def test_functions_run_on_aiosqlites_worker_thread_with_the_raw_connection_in_order(tmp_path):
    """The one use of aiosqlite's private API (Connection._execute, ._conn): if a release changes
    it, this fails here, by name, rather than somewhere deep in the daemon."""
    import aiosqlite

    assert aiosqlite.__version__.rsplit(".", 1)[0] in AIOSQLITE_KNOWN, (
        f"aiosqlite {aiosqlite.__version__} was never tried with storage.database._on_worker; "
        "check Connection._execute and ._conn, then widen AIOSQLITE_KNOWN and pyproject.toml's pin")
    seen: list[tuple[str, int]] = []

    def record(conn: sqlite3.Connection, label: str) -> int:
        assert isinstance(conn, sqlite3.Connection)
        seen.append((label, threading.get_ident()))
        return conn.execute("SELECT 41 + 1").fetchone()[0]

    async with await Database.open(tmp_path / "a.db") as db:
        results = await asyncio.gather(*(db.run(record, str(i)) for i in range(5)))
        keyword = await db.run(lambda conn, *, n: n * 2, n=21)
    assert results == [42] * 5 and keyword == 42
    assert [label for label, _ in seen] == ["0", "1", "2", "3", "4"]  # queued in call order
    assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()
