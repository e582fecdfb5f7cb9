"""Opening the archive: failures are clear and leave nothing running; migrations bring old archives up;
a read-only open never migrates; writers wait for another's lock; SQLite's failures read as one line."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from storage.database import (
    AIOSQLITE_KNOWN,
    SCHEMA_VERSION,
    Database,
    LockWait,
    StorageError,
    _migrations,
    connect_readonly,
    connect_sync,
    explain,
    run_in_transaction,
)
from storage.ingest import ingest_batch
from storage.records import iso
from storage.text import analyse
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, STATEMENT_RU, T0, batch, msg


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


def test_version_6_lets_new_messages_find_what_an_older_archive_holds(tmp_path):
    """Copies, header-less forwards and album parts archived by v5 are found through the keys v6
    links by: a copy arriving later, the original of a Desktop-exported forward, the next part."""
    path = tmp_path / "v5.db"
    old = _archive_at_version(path, 5)
    old.executemany("INSERT INTO channels (id, username) VALUES (?, ?)",
                    [(c.id, c.username) for c in (MFA, EMBASSY, EMBASSY_UK)])
    day = iso(T0)
    statement, statement_ru = analyse(STATEMENT), analyse(STATEMENT_RU)
    for post, key, text, a in [(1, "tg:1001:10", STATEMENT, statement),
                               (2, f"tgtext:1001:{statement_ru.fingerprint}", STATEMENT_RU, statement_ru),
                               (3, "tg:1001:20", "", analyse(""))]:
        old.execute("INSERT INTO posts (id, key, date, first_seen, text, fingerprint, word_count) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", (post, key, day, day, text, a.fingerprint, a.word_count))
    rows = [  # (channel, message, post, relation, text, fwd_from_type, fwd_from_id, grouped_id)
        (MFA.id, 10, 1, "original", STATEMENT, None, None, None),
        (EMBASSY.id, 500, 2, "forward", STATEMENT_RU, "channel", MFA.id, None),
        (MFA.id, 20, 3, "original", "", None, None, 77),
    ]
    for channel, message, post, relation, text, from_type, from_id, grouped in rows:
        old.execute("INSERT INTO messages (channel_id, message_id, post_id, relation, date, text, "
                    "fwd_from_type, fwd_from_id, grouped_id, first_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (channel, message, post, relation, day, text, from_type, from_id, grouped, day))
    old.executemany("INSERT INTO post_keys (key, post_id) VALUES (?, ?)", [
        ("tg:1001:10", 1), (f"tgtext:1001:{statement.fingerprint}", 1),
        (f"tgtext:1001:{statement_ru.fingerprint}", 2), ("tg:2002:500", 2), ("tg:1001:20", 3),
    ])
    old.close()
    conn = connect_sync(path)
    ingest_batch(conn, batch(EMBASSY_UK, msg(EMBASSY_UK, 70, STATEMENT, minutes=2 * 24 * 60)))
    ingest_batch(conn, batch(MFA, msg(MFA, 11, STATEMENT_RU), msg(MFA, 21, "", grouped_id=77)))
    posts_of = dict(conn.execute("SELECT channel_id || ':' || message_id, post_id FROM messages"))
    assert posts_of == {"3003:70": 1, "1001:10": 1, "1001:11": 2, "2002:500": 2, "1001:20": 3, "1001:21": 3}
    assert conn.execute("SELECT origin_message_id FROM posts WHERE id = 2").fetchone()[0] == 11
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "posts_fingerprint" not in indexes and "posts_edited" in indexes


# --- failures: full, read-only, locked, a failed commit ---------------------------------------------


def test_explain_reads_sqlites_full_error_as_a_full_disk_and_names_the_archive(tmp_path):
    path = tmp_path / "a.db"
    conn = connect_sync(path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own limit: the same SQLITE_FULL
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("INSERT INTO subscribers (chat_id, created_at) VALUES (1, ?)", ("x" * 100_000,))
    error = explain(raised.value, path)
    assert error.kind == "full"
    assert str(error).startswith(f"the disk holding the archive at {path} is full; nothing was half-written")


def test_a_read_only_open_never_migrates_and_refuses_an_older_archive_unless_asked(tmp_path):
    path = tmp_path / "v5.db"
    _archive_at_version(path, 5).close()
    with pytest.raises(StorageError, match="has schema version 5, older than this chanwatch's") as raised:
        connect_readonly(path)
    assert raised.value.kind == "outdated"
    conn = connect_readonly(path, any_version=True)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("INSERT INTO channels (id, username) VALUES (1, 'x')")
    conn.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 5
    raw.close()


def _locked_by_another_connection(path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_writer_waits_past_its_busy_timeout_and_goes_on_when_the_other_writer_commits(tmp_path):
    path = tmp_path / "a.db"
    connect_sync(path).close()
    holder = _locked_by_another_connection(path)
    calls: list[str] = []

    def other_writer_finishes() -> None:  # called once the first wait (0.1 s) has passed
        calls.append("waiting")
        holder.execute("COMMIT")

    conn = connect_sync(path, busy_timeout_ms=100, lock_wait=LockWait(30, other_writer_finishes))
    run_in_transaction(conn, lambda c: c.execute("INSERT INTO channels (id, username) VALUES (1, 'x')"))
    assert calls == ["waiting"]
    assert conn.execute("SELECT username FROM channels").fetchone()[0] == "x"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 100  # restored after the retries


def test_a_writer_gives_up_with_sqlites_locked_error_after_its_total_wait(tmp_path):
    path = tmp_path / "a.db"
    connect_sync(path).close()
    holder = _locked_by_another_connection(path)
    calls: list[float] = []
    conn = connect_sync(path, busy_timeout_ms=100, lock_wait=LockWait(0.5, lambda: calls.append(1.0)))
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        run_in_transaction(conn, lambda c: c.execute("INSERT INTO channels (id, username) VALUES (1, 'x')"))
    assert time.monotonic() - started >= 0.5  # the whole wait (no upper bound: a noisy machine)
    assert calls == [1.0] and not conn.in_transaction
    holder.execute("ROLLBACK")


def test_a_commit_that_fails_is_rolled_back_so_the_connection_can_go_on(tmp_path):
    conn = connect_sync(tmp_path / "a.db")

    def orphan_rule(c: sqlite3.Connection) -> None:  # checked only at COMMIT
        c.execute("PRAGMA defer_foreign_keys = ON")
        c.execute("INSERT INTO rules (chat_id, query, created_at) VALUES (404, 'x', 'now')")

    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        run_in_transaction(conn, orphan_rule)
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM rules").fetchone()[0] == 0
    run_in_transaction(conn, lambda c: c.execute("INSERT INTO channels (id, username) VALUES (1, 'x')"))


async def test_a_postgresql_archive_runs_its_calls_on_pooled_connections_with_the_archive_session(pg_url):
    """Database.open(URL): a pool whose connections are set up as every archive connection (no JIT),
    several calls at once, a transaction that fails rolled back and its connection reusable."""
    db = await Database.open(pg_url)
    try:
        jit = await asyncio.gather(*(db.run(lambda c: c.execute("SHOW jit").fetchone()[0]) for _ in range(6)))
        assert set(jit) == {"off"}

        def fails(conn) -> None:
            conn.execute("INSERT INTO readers (name, started_at, seen_at) VALUES ('r', 'x', 'x')")
            raise RuntimeError("after the insert")

        with pytest.raises(RuntimeError):
            await db.transaction(fails)
        assert await db.run(lambda c: c.execute("SELECT count(*) FROM readers").fetchone()[0]) == 0
        assert not db.is_sqlite and "chanwatch-test" not in db.path
    finally:
        await db.close()
