"""PostgreSQL archives: one list of migrations gives the tables and columns SQLite has; the adapter
speaks sqlite3's dialect of the DB-API; the test server's absence is a skip, or a failure in CI."""

from __future__ import annotations

import sqlite3
from importlib import resources

import pytest

from storage import database
from storage.database import SCHEMA_VERSION, connect_sync, migrate, migration_names, schema_version
from storage.dialect import POSTGRESQL, SQLITE, dialect_of
from storage.location import ServerUrl
from storage.pg import translate
from tests import pg_support

FTS_TABLES = ("posts_fts",)  # SQLite's FTS5 table and its shadow tables (posts_fts_data, ...)
FTS_COLUMNS = {("posts", "fts")}  # PostgreSQL's tsvector column in their place
PG_ONLY_TABLES = ("origin_names",)  # the origin titles' names, in place of SQLite's chanwatch_name()


def sqlite_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
              if not r[0].startswith(FTS_TABLES) and not r[0].startswith("sqlite_")]
    return {t: {r["name"] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}


def pg_columns(conn) -> dict[str, set[str]]:
    columns: dict[str, set[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
    ):
        if (table, column) not in FTS_COLUMNS and table not in (database.PG_VERSION_TABLE, *PG_ONLY_TABLES):
            columns.setdefault(table, set()).add(column)
    return columns


def pg_indexes(conn) -> set[str]:
    rows = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    return {r[0] for r in rows}


def test_a_migrated_postgresql_archive_has_every_table_and_column_sqlite_has(pg_conn):
    assert pg_columns(pg_conn) == sqlite_columns(connect_sync(":memory:"))


def test_a_migrated_postgresql_archive_has_sqlite_s_named_indexes(pg_conn):
    lite = connect_sync(":memory:")
    rows = lite.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    named = {r[0] for r in rows}
    assert named <= pg_indexes(pg_conn)


def test_migrating_a_postgresql_archive_again_changes_nothing(pg_url):
    conn = connect_sync(pg_url)
    before = (pg_columns(conn), pg_indexes(conn))
    conn.close()
    again = connect_sync(pg_url)  # a second process opening the archive
    try:
        assert migrate(again) == SCHEMA_VERSION
        assert schema_version(again) == SCHEMA_VERSION
        assert again.execute(f"SELECT count(*) FROM {database.PG_VERSION_TABLE}").fetchone()[0] == 1
        assert (pg_columns(again), pg_indexes(again)) == before
    finally:
        again.close()


def test_a_postgresql_archive_newer_than_this_chanwatch_is_refused(pg_conn):
    pg_conn.execute(f"UPDATE {database.PG_VERSION_TABLE} SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(database.StorageError, match="newer than this chanwatch"):
        migrate(pg_conn)


def test_every_postgresql_migration_stands_for_a_numbered_shared_step():
    base = resources.files("storage")
    pg_only = [p.name for p in base.joinpath("migrations").iterdir() if p.name.endswith(database.PG_SUFFIX)]
    shared = set(migration_names())
    assert pg_only, "the PostgreSQL siblings are packaged"
    for name in pg_only:
        assert f"migrations/{name.removesuffix(database.PG_SUFFIX)}.sql" in shared
    assert len(database._migrations(POSTGRESQL)) == len(database._migrations(SQLITE)) == SCHEMA_VERSION


def lexemes(conn) -> set[str]:
    """The one post's search vector as a set of `'lexeme':positions` (their order is byte order)."""
    return set(conn.execute("SELECT fts::text FROM posts").fetchone()[0].split())


def test_the_full_text_column_follows_the_words_stems_and_tags_with_positions(pg_conn):
    pg_conn.execute("BEGIN")
    post = pg_conn.execute(
        "INSERT INTO posts (key, date, first_seen, words, stems, tags) VALUES (?, ?, ?, ?, ?, ?)",
        ("k", "2025-12-17T10:00:00+00:00", "2025-12-17T10:00:00+00:00", "новые санкции", "нов санкц", "мид"),
    ).lastrowid
    pg_conn.execute("COMMIT")
    # each column marked in its lexemes (stems '~', tags '#'; schema 19), weighted for ts_rank; its bucket
    assert lexemes(pg_conn) == {"'новые':1A", "'санкции':2A", "'~нов':3B", "'~санкц':4B", "'#мид':5C", "'$0'"}
    pg_conn.execute("UPDATE posts SET words = ? WHERE id = ?", ("старые санкции", post))
    hit = pg_conn.execute("SELECT id FROM posts WHERE fts @@ CAST(? AS tsquery)", ("'старые' <-> 'санкции'",))
    assert [r[0] for r in hit] == [post]
    stem_only = pg_conn.execute("SELECT id FROM posts WHERE fts @@ CAST(? AS tsquery)", ("'санкц'",))
    assert list(stem_only) == []  # a word query never finds a stem



VERSION_1_VECTOR = """CREATE OR REPLACE FUNCTION posts_fts_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.fts := setweight(to_tsvector('simple', NEW.words), 'A')
            || setweight(to_tsvector('simple', NEW.stems), 'B')
            || setweight(to_tsvector('simple', NEW.tags), 'C');
    RETURN NEW;
END $$"""


def test_migrating_to_version_19_marks_the_columns_in_the_vectors_already_stored(pg_url):
    old = connect_sync(pg_url)
    old.execute("BEGIN")
    old.execute(VERSION_1_VECTOR)  # the archive as version 18 left it: columns told apart by weight
    old.execute("DROP FUNCTION posts_fts_of")
    old.execute("DROP FUNCTION posts_fts_tokens")
    old.execute("INSERT INTO posts (key, date, first_seen, words, stems, tags) VALUES (?, ?, ?, ?, ?, ?)",
                ("k", "2025-12-17T10:00:00+00:00", "2025-12-17T10:00:00+00:00", "санкции", "санкц", "мид"))
    old.execute(f"UPDATE {database.PG_VERSION_TABLE} SET version = 18")
    old.execute("COMMIT")
    assert lexemes(old) == {"'мид':3C", "'санкц':2B", "'санкции':1A"}
    old.close()
    upgraded = connect_sync(pg_url)
    try:
        assert schema_version(upgraded) == SCHEMA_VERSION
        assert lexemes(upgraded) == {"'#мид':3C", "'~санкц':2B", "'санкции':1A", "'$0'"}
    finally:
        upgraded.close()


def test_each_vector_holds_its_post_s_bucket_of_ids_as_the_dialect_counts_them(pg_conn):
    size = POSTGRESQL.fts_bucket
    assert size is not None
    pg_conn.execute("BEGIN")
    for post_id in (1, size - 1, size, 7 * size + 5):
        pg_conn.execute("INSERT INTO posts (id, key, date, first_seen, words) VALUES (?, ?, ?, ?, ?)",
                        (post_id, f"k{post_id}", "2025-12-17T10:00:00+00:00", "2025-12-17T10:00:00+00:00",
                         "мид"))
    pg_conn.execute("COMMIT")
    buckets = {r[0]: [w for w in r[1].split() if w.startswith("'$")]
               for r in pg_conn.execute("SELECT id, fts::text FROM posts")}
    assert buckets == {1: ["'$0'"], size - 1: ["'$0'"], size: ["'$1'"], 7 * size + 5: ["'$7'"]}
    in_seventh = POSTGRESQL.fts_param_in_buckets('words : "мид"', [7, 1])
    assert [r[0] for r in pg_conn.execute("SELECT id FROM posts WHERE fts @@ CAST(? AS tsquery) ORDER BY id",
                                          (in_seventh,))] == [size, 7 * size + 5]


def test_a_token_too_long_for_a_lexeme_is_left_out_and_the_post_still_stored(pg_conn):
    long_word = "ж" * 1100  # 2,200 bytes: past PostgreSQL's 2 KiB lexeme
    pg_conn.execute("BEGIN")
    pg_conn.execute("INSERT INTO posts (key, date, first_seen, words, stems, tags) VALUES (?, ?, ?, ?, ?, ?)",
                    ("k", "2025-12-17T10:00:00+00:00", "2025-12-17T10:00:00+00:00",
                     f"визит {long_word} мид", f"визит {long_word} мид", ""))
    pg_conn.execute("COMMIT")
    # positions kept as if the long word were there
    assert lexemes(pg_conn) == {"'визит':1A", "'мид':3A", "'~визит':4B", "'~мид':6B", "'$0'"}

# -- the adapter ---------------------------------------------------------------------------------


def test_parameters_are_translated_outside_literals_and_percent_signs_escaped():
    assert translate("SELECT '?', \"a?\", x FROM t WHERE y = ? AND z LIKE '10%' -- ?\n")[0] == (
        "SELECT '?', \"a?\", x FROM t WHERE y = %s AND z LIKE '10%%' -- ?\n")
    assert translate("UPDATE t SET a = :a WHERE b = :b AND c::text = ':c'")[0] == (
        "UPDATE t SET a = %(a)s WHERE b = %(b)s AND c::text = ':c'")


def test_an_insert_into_a_table_with_a_generated_id_returns_it_once():
    assert translate("INSERT INTO posts (key) VALUES (?)") == (
        "INSERT INTO posts (key) VALUES (%s) RETURNING id", True)
    assert translate("INSERT INTO post_keys (key) VALUES (?)")[1] is False
    assert translate("INSERT INTO alerts (x) VALUES (?) RETURNING id, x")[1] is False


def test_rows_are_addressed_by_index_and_by_name_like_sqlite_rows(pg_conn):
    row = pg_conn.execute("SELECT 1 AS one, ? AS two, '50%' AS pct", ("2",)).fetchone()
    assert (row[0], row["two"], row["PCT"], tuple(row), row.keys()) == (1, "2", "50%", (1, "2", "50%"),
                                                                          ["one", "two", "pct"])
    assert dict(row) == {"one": 1, "two": "2", "pct": "50%"}
    with pytest.raises(IndexError):
        row["three"]


def test_a_flag_passed_as_a_bool_is_stored_as_sqlite_stores_it(pg_conn):
    pg_conn.execute("INSERT INTO channels (id, watched) VALUES (?, ?)", (1, True))
    assert pg_conn.execute("SELECT watched FROM channels").fetchone()[0] == 1


def test_a_duplicate_key_is_sqlite_s_integrity_error_and_the_transaction_rolls_back(pg_conn):
    pg_conn.execute("INSERT INTO channels (id) VALUES (?)", (1,))
    with pytest.raises(sqlite3.IntegrityError, match="duplicate key"):
        database.run_in_transaction(pg_conn, lambda c: c.execute("INSERT INTO channels (id) VALUES (2), (1)"))
    assert not pg_conn.in_transaction
    assert [r[0] for r in pg_conn.execute("SELECT id FROM channels")] == [1]


def test_each_connection_names_its_dialect(archive):
    assert dialect_of(archive).name in ("sqlite", "postgresql")
    assert (dialect_of(archive) is SQLITE) == isinstance(archive, sqlite3.Connection)


# -- the test server -----------------------------------------------------------------------------


@pytest.fixture
def no_server(monkeypatch):
    monkeypatch.setenv(pg_support.URL_ENV, "postgresql://someone:s3cret@127.0.0.1:1/test")
    pg_support.unavailable.cache_clear()
    yield
    pg_support.unavailable.cache_clear()


def test_without_a_server_the_postgresql_tests_are_skipped_with_the_reason(no_server, monkeypatch):
    monkeypatch.delenv(pg_support.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        pg_support.require_server()
    reason = str(skipped.value)
    assert "cannot connect to the PostgreSQL test server at postgresql://someone:***@127.0.0.1:1/" in reason
    assert "s3cret" not in reason


def test_without_a_server_ci_fails_the_postgresql_tests_saying_how_to_start_one(no_server, monkeypatch):
    monkeypatch.setenv(pg_support.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        pg_support.require_server()
    assert "pg_ctlcluster 15 main start" in str(failed.value) and "s3cret" not in str(failed.value)


def test_a_server_that_does_not_answer_is_a_storage_error_naming_the_url_without_its_password():
    url = ServerUrl("postgresql", "postgresql://someone:s3cret@127.0.0.1:1/test")
    with pytest.raises(database.StorageError) as failed:
        connect_sync(url)
    assert failed.value.kind == "unreachable"
    assert "postgresql://someone:***@127.0.0.1:1/test" in str(failed.value)
    assert "s3cret" not in str(failed.value) and "s3cret" not in repr(failed.value.__cause__)


def test_archive_sessions_run_without_jit(pg_conn):
    """JIT compiling cost the amplification report 1 s of its 1.4 s on 50k messages (pg.SESSION)."""
    assert pg_conn.execute("SHOW jit").fetchone()[0] == "off"
