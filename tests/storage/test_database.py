"""Opening the archive from asyncio code: failures are clear and leave nothing running."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from storage.database import SCHEMA_VERSION, Database, StorageError


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
