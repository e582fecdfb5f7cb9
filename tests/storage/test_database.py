"""Opening the archive: failures are clear and leave nothing running; migrations bring old archives up."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from storage.database import SCHEMA_VERSION, Database, StorageError, _migrations, connect_sync


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


def _archive_at_version(path, version: int) -> sqlite3.Connection:
    """An archive migrated only up to `version`, as an older chanwatch left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(_migrations()[:version]):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number + 1};\nCOMMIT;")
    return conn


def test_version_5_flags_posts_archived_already_edited_and_those_edited_since(tmp_path):
    path = tmp_path / "v4.db"
    old = _archive_at_version(path, 4)
    old.execute("INSERT INTO channels (id, username) VALUES (1, 'mfa'), (2, 'embassy')")
    day = "2025-12-17T10:00:00+00:00"
    later = "2025-12-17T11:00:00+00:00"
    posts = [  # (id, edited_at, the original's edit_date and raw, a copy's edit_date)
        (1, None, None, '{"id": 1}', None),
        (2, later, later, '{"id": 2, "edit_hide": true}', None),  # edited after it was archived
        (3, None, later, '{"id": 3}', None),  # archived already edited
        (4, None, later, '{"id": 4, "edit_hide": true}', None),  # an edit Telegram hides
        (5, None, None, None, later),  # only a copy elsewhere was edited
    ]
    for post, edited_at, edit_date, raw, copy_edit in posts:
        old.execute("INSERT INTO posts (id, key, date, first_seen, edited_at) VALUES (?, ?, ?, ?, ?)",
                    (post, f"tg:1:{post}", day, day, edited_at))
        old.execute("INSERT INTO messages (channel_id, message_id, post_id, relation, date, edit_date, "
                    "first_seen, raw) VALUES (1, ?, ?, 'original', ?, ?, ?, ?)",
                    (post, post, day, edit_date, day, raw))
        old.execute("INSERT INTO messages (channel_id, message_id, post_id, relation, date, edit_date, "
                    "first_seen) VALUES (2, ?, ?, 'copy', ?, ?, ?)", (post, post, day, copy_edit, day))
    old.execute("INSERT INTO message_versions (channel_id, message_id, text, replaced_at) "
                "VALUES (1, 2, 'before the edit', ?)", (later,))
    old.close()
    conn = connect_sync(path)
    assert [tuple(r) for r in conn.execute("SELECT id, edited FROM posts ORDER BY id")] == [
        (1, 0), (2, 1), (3, 1), (4, 0), (5, 0),
    ]

