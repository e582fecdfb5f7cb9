"""Copying a whole archive between backends (`storage.migrate_db`): SQLite -> PostgreSQL -> SQLite
gives the same export, the same rows in every table and the same search answers; a copy stopped
anywhere continues without duplicates; a target holding another archive is refused; PostgreSQL's
ids continue past the copied ones."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.database import connect_sync
from storage.exchange.export import export_posts
from storage.ingest import ingest_batch
from storage.location import ServerUrl
from storage.migrate_db import PROGRESS_LABEL, PROGRESS_TABLE, MigrateError, copy_archive, copy_plan
from storage.outbox import get_alerts
from storage.rules import add_rule
from storage.search import search
from tests.pg_support import fresh_schema
from tests.storage.factories import MFA, T0, batch, msg
from tests.storage.full_archive import BIG, QUERIES, fill
from tests.storage.outbox_helpers import queue_alert

FTS_PREFIX = "posts_fts"
PARENTS = (("messages", "channels"), ("messages", "posts"), ("message_versions", "messages"),
           ("message_media", "tg_files"), ("tg_files", "media_files"), ("alerts", "posts"),
           ("rules", "subscribers"), ("leases", "channels"), ("message_stats", "messages"))


def schema_tables(conn: Any) -> list[str]:
    """The archive's tables as the schema lists them, read here independently of the code under test:
    SQLite's own, the FTS5 index, PostgreSQL's version table and its derived `origin_names` aside."""
    if isinstance(conn, sqlite3.Connection):
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(r[0] for r in rows if not r[0].startswith(("sqlite_", FTS_PREFIX)))
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return sorted(r[0] for r in rows if r[0] not in ("chanwatch_schema", "origin_names"))


def columns(table: str) -> list[str]:
    """The table's columns as SQLite's schema declares them (PostgreSQL's has the same, and `fts`)."""
    lite = connect_sync(":memory:")
    try:
        return [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
    finally:
        lite.close()


def rows(conn: Any, table: str) -> list[tuple[Any, ...]]:
    """Every row of `table`, its base columns, in one order whatever the backend sorts by."""
    cols = ", ".join(f'"{c}"' for c in columns(table))
    return sorted((tuple(r) for r in conn.execute(f"SELECT {cols} FROM {table}")), key=repr)


def exported(conn: Any) -> str:
    out = io.StringIO()
    export_posts(conn, None, "jsonl", out)
    return out.getvalue()


def answers(conn: Any) -> dict[str, list[int]]:
    return {q: [p.id for p in search(conn, q, limit=100, exact_total=True).posts] for q in QUERIES}


@pytest.fixture
def source(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """An SQLite archive file with rows in every table (tests/storage/full_archive.py)."""
    conn = connect_sync(tmp_path / "source.db")
    fill(conn)
    yield conn
    conn.close()


@pytest.fixture(params=("sqlite", "postgresql"))
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An empty archive to copy into: a new SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        conn = connect_sync(tmp_path / "target.db")
    else:
        conn = connect_sync(request.getfixturevalue("pg_url"))
    request.addfinalizer(conn.close)
    return conn


def test_the_test_archive_has_rows_in_every_table_of_the_schema(source):
    """A migration that adds a table fails here until full_archive.fill writes to it, so the copy
    tests below compare that table too."""
    empty = [t for t in schema_tables(source) if not source.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
    assert empty == []


def test_the_copy_plan_is_every_table_of_the_schema_parents_first(source, pg_conn):
    for conn in (source, pg_conn):
        plan = [t.name for t in copy_plan(conn)]
        assert sorted(plan) == schema_tables(conn)
        for child, parent in PARENTS:
            assert plan.index(parent) < plan.index(child)
    assert "fts" not in next(t for t in copy_plan(pg_conn) if t.name == "posts").columns


def test_sqlite_to_postgresql_and_back_exports_the_same_archive_row_for_row(source, pg_conn, tmp_path):
    copy_archive(source, pg_conn, batch_rows=3)
    back = connect_sync(tmp_path / "back.db")
    copy_archive(pg_conn, back, batch_rows=4)
    original = exported(source)
    assert original.count("\n") == 5 and "Канал 🦊" in original
    assert exported(pg_conn) == original
    assert exported(back) == original
    for table in schema_tables(source):
        assert rows(pg_conn, table) == rows(source, table), table
        assert rows(back, table) == rows(source, table), table
    big = back.execute("SELECT access_hash FROM channels WHERE id = ?", (BIG.id,)).fetchone()[0]
    assert big == BIG.access_hash
    for conn in (pg_conn, back):
        assert schema_tables(conn) == schema_tables(source)  # the progress table is gone
    back.close()


def test_search_answers_the_same_on_both_ends_of_a_copy(source, target):
    copy_archive(source, target, batch_rows=2)
    expected = answers(source)
    assert sum(1 for ids in expected.values() if ids) >= 8, expected
    assert answers(target) == expected
    if isinstance(target, sqlite3.Connection):  # FTS5 raises if its index does not match `posts`
        target.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")


def test_a_copy_interrupted_after_some_batches_continues_where_it_stopped(source, target, tmp_path):
    calls: list[int] = []

    def stop_after_five(label: str, done: int, total: int | None) -> None:
        assert label == PROGRESS_LABEL and total is not None and done <= total
        calls.append(done)
        if len(calls) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_archive(source, target, batch_rows=2, progress=stop_after_five)
    assert target.execute(f"SELECT sum(copied) FROM {PROGRESS_TABLE}").fetchone()[0] == calls[-1]
    seen: list[int] = []
    report = copy_archive(source, target, batch_rows=2, progress=lambda _l, done, _t: seen.append(done))
    assert report.resumed_rows == calls[-1] and seen[0] > calls[-1]  # nothing copied twice
    assert seen == sorted(seen) and seen[-1] == report.total
    for table in schema_tables(source):
        assert rows(target, table) == rows(source, table), table
    assert exported(target) == exported(source)


def test_a_lost_target_connection_is_one_error_and_the_next_run_continues(source, tmp_path):
    path = tmp_path / "target.db"
    target = connect_sync(path)
    batches = 0

    def lose_connection(*_: object) -> None:
        nonlocal batches
        batches += 1
        if batches == 3:
            target.close()

    with pytest.raises(MigrateError) as failed:
        copy_archive(source, target, batch_rows=2, names=("src.db", str(path)), progress=lose_connection)
    assert "(copying table " in str(failed.value) and "run the same migrate-db again" in str(failed.value)
    assert "\n" not in str(failed.value)
    again = connect_sync(path)
    copy_archive(source, again, batch_rows=2)
    assert exported(again) == exported(source)
    again.close()


def test_a_target_holding_another_archive_is_refused_and_left_as_it_was(source, target):
    ingest_batch(target, batch(MFA, msg(MFA, 1, "already here")), now=T0)
    with pytest.raises(MigrateError, match="is not empty .*holds no unfinished copy") as refused:
        copy_archive(source, target, names=("archive.db", "postgresql://me:***@db/x"))
    assert "copies only into an empty archive" in str(refused.value)
    assert schema_tables(target) == schema_tables(source)  # no progress table left behind
    assert target.execute("SELECT count(*) FROM posts").fetchone()[0] == 1


def test_a_complete_copy_is_not_copied_again_into_the_same_target(source, target):
    copy_archive(source, target)
    with pytest.raises(MigrateError, match="is not empty"):
        copy_archive(source, target)


def test_an_unfinished_copy_of_another_source_is_refused(source, target, tmp_path):
    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_archive(source, target, batch_rows=2, progress=stop)
    other = connect_sync(tmp_path / "other.db")
    with pytest.raises(MigrateError, match="holds an unfinished copy of another archive"):
        copy_archive(other, target)
    other.close()


def test_the_same_archive_at_both_ends_is_refused(source, tmp_path):
    same = connect_sync(tmp_path / "." / "source.db")
    with pytest.raises(MigrateError, match="the same archive"):
        copy_archive(source, same)
    same.close()


def test_the_same_postgresql_schema_reached_by_another_url_is_refused(pg_url, pg_conn):
    again = connect_sync(ServerUrl("postgresql", pg_url.url + "&application_name=another"))
    try:
        with pytest.raises(MigrateError, match="the same archive"):
            copy_archive(pg_conn, again)
    finally:
        again.close()


def test_a_source_changed_between_runs_is_reported_not_silently_half_copied(source, target):
    def stop(*_: object) -> None:  # after channels' first batch: channels is being copied
        if target.execute("SELECT count(*) FROM channels").fetchone()[0]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_archive(source, target, batch_rows=2, progress=stop)
    source.execute("INSERT INTO channels (id, username) VALUES (1, 'early')")  # before the copied keys
    with pytest.raises(MigrateError, match="changed during the copy .*channels"):
        copy_archive(source, target, batch_rows=2)


def test_postgresql_ids_continue_past_the_copied_ones(source, pg_conn):
    copy_archive(source, pg_conn, batch_rows=3)
    top = {t: pg_conn.execute(f"SELECT max(id) FROM {t}").fetchone()[0]
           for t in ("posts", "message_versions", "rules", "alerts")}
    ingest_batch(pg_conn, batch(MFA, msg(MFA, 99, "a new post after the copy")), now=T0 + timedelta(days=1))
    ingest_batch(pg_conn, batch(MFA, msg(MFA, 99, "a new post after the copy, edited",
                                         edit_date=T0 + timedelta(days=2))), now=T0 + timedelta(days=2))
    rule, created = add_rule(pg_conn, 42, "a new rule", T0)
    new_post = pg_conn.execute("SELECT post_id FROM messages WHERE message_id = 99").fetchone()[0]
    alert = queue_alert(pg_conn, 42, new_post, [rule.id], T0)
    assert created and new_post == top["posts"] + 1 and rule.id == top["rules"] + 1
    assert alert == top["alerts"] + 1 and alert in [a.id for a in get_alerts(pg_conn, 42)]
    version = pg_conn.execute("SELECT max(id) FROM message_versions").fetchone()[0]
    assert version == top["message_versions"] + 1


def test_postgresql_to_postgresql_copies_too_keeping_ids_given_out_once(source, pg_conn):
    copy_archive(source, pg_conn)
    pg_conn.execute("SELECT setval(pg_get_serial_sequence('rules', 'id'), 500)")  # rules 4..500 deleted
    with fresh_schema() as url:
        other = connect_sync(url)
        try:
            copy_archive(pg_conn, other, batch_rows=5)
            assert exported(other) == exported(source)
            assert rows(other, "channels") == rows(source, "channels")
            rule, _ = add_rule(other, 42, "a new rule", T0)
            assert rule.id == 501  # where the source's sequence was, past its largest row
        finally:
            other.close()


def test_an_archive_with_a_table_of_no_primary_key_is_refused_by_name(tmp_path):
    conn = connect_sync(tmp_path / "odd.db")
    conn.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(MigrateError, match="table notes has no primary key"):
        copy_plan(conn)
    conn.close()


def test_schemas_with_different_tables_are_refused(source, tmp_path):
    target = connect_sync(tmp_path / "target.db")
    target.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    with pytest.raises(MigrateError, match=r"different tables \(notes\)"):
        copy_archive(source, target)
    target.close()



def test_a_blob_crosses_to_sqlite_exactly_and_postgresql_refuses_it_naming_the_row(source, target):
    blob = b"\x00\xff raw bytes"  # SQLite keeps any value in any column; PostgreSQL's text cannot hold it
    source.execute("UPDATE messages SET raw = ? WHERE channel_id = ? AND message_id = 10", (blob, MFA.id))
    if isinstance(target, sqlite3.Connection):
        copy_archive(source, target)
        assert target.execute("SELECT raw FROM messages WHERE message_id = 10").fetchone()[0] == blob
        return
    with pytest.raises(MigrateError, match=r"source.db holds bytes .*\(table messages, column raw, key "
                       r"\[1001, 10\]\), which postgresql://me:\*\*\*@db/x cannot keep as they are"):
        copy_archive(source, target, names=("source.db", "postgresql://me:***@db/x"))


def test_text_postgresql_cannot_hold_is_one_error_naming_the_table(source, pg_conn):
    source.execute("UPDATE channels SET title = ? WHERE id = ?", ("NUL \x00 inside", MFA.id))
    with pytest.raises(MigrateError, match=r"NUL .*\(copying table channels\); the rows copied so far"):
        copy_archive(source, pg_conn)
