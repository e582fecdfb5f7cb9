"""Read-only opens of a PostgreSQL archive (`database.connect_readonly` given a `ServerUrl`): a session
the server keeps from writing, never migrating, refusing a schema of another version as SQLite's read-
only open does; reports and `from:` by title read through it."""

from __future__ import annotations

import sqlite3

import pytest

from storage import database
from storage.database import SCHEMA_VERSION, StorageError, connect_readonly, connect_sync, schema_version
from storage.faults import explain
from storage.ingest import ingest_batch
from storage.reports import amplification
from storage.search import search
from tests.storage.factories import MFA, STATEMENT, batch, msg
from tests.storage.test_reports import amplification_story


def at_version(url, version: int) -> None:
    writer = connect_sync(url)
    writer.execute(f"UPDATE {database.PG_VERSION_TABLE} SET version = ?", (version,))
    writer.close()


def test_a_read_only_open_of_an_empty_database_finds_no_archive_and_creates_none(pg_url):
    with pytest.raises(StorageError, match="no archive at postgresql://") as raised:
        connect_readonly(pg_url)
    assert raised.value.kind == "cantopen" and "chanwatch-test" not in str(raised.value)
    import psycopg

    with psycopg.connect(pg_url.url) as raw:
        assert raw.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                           ).fetchone()[0] == 0


def test_a_read_only_open_refuses_an_older_archive_unless_asked_and_never_migrates_it(pg_url):
    at_version(pg_url, SCHEMA_VERSION - 1)
    with pytest.raises(StorageError, match=f"has schema version {SCHEMA_VERSION - 1}, older than") as raised:
        connect_readonly(pg_url)
    assert raised.value.kind == "outdated"
    reader = connect_readonly(pg_url, any_version=True)
    assert schema_version(reader) == SCHEMA_VERSION - 1
    reader.close()


def test_a_read_only_open_refuses_a_newer_archive(pg_url):
    at_version(pg_url, SCHEMA_VERSION + 1)
    with pytest.raises(StorageError, match="newer than this chanwatch"):
        connect_readonly(pg_url, any_version=True)


def test_the_server_refuses_every_write_of_a_read_only_session(pg_url):
    connect_sync(pg_url).close()
    reader = connect_readonly(pg_url)
    with pytest.raises(sqlite3.Error) as failed:
        ingest_batch(reader, batch(MFA, msg(MFA, 1, STATEMENT)))
    assert explain(failed.value, pg_url).kind == "readonly"
    with pytest.raises(sqlite3.Error):
        reader.execute("BEGIN")
        reader.execute("DELETE FROM posts")
    reader.rollback()
    assert not reader.in_transaction
    reader.close()


def test_reports_and_from_by_title_read_through_a_read_only_session(pg_url):
    writer = connect_sync(pg_url)
    amplification_story(writer)
    writer.close()
    reader = connect_readonly(pg_url)
    assert [(a.name, a.median_delay_s, a.p90_delay_s) for a in amplification(reader).amplifiers] == [
        ("rusembc", 300, 1800), ("RussianEmbassyUK", 120, 90000)]
    assert search(reader, 'from:"russian mfa" statement').total == 1  # named when the writer ingested
    reader.close()


def test_a_title_no_writer_has_named_yet_is_not_found_read_only_and_breaks_no_search(pg_url):
    writer = connect_sync(pg_url)
    amplification_story(writer)
    writer.execute("UPDATE posts SET origin_title = 'Renamed Ministry' WHERE origin_title IS NOT NULL")
    renamed = writer.execute("SELECT count(*) FROM posts WHERE origin_title IS NOT NULL").fetchone()[0]
    reader = connect_readonly(pg_url)
    assert search(reader, 'from:"renamed ministry"').total == 0  # listed by the trigger, not named yet
    assert search(writer, 'from:"renamed ministry"').total == renamed > 0  # a writer names it first
    assert search(reader, 'from:"renamed ministry"').total == renamed
    reader.close()
    writer.close()
