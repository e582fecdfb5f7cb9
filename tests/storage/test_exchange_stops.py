"""Imports that stop partway say so: how many messages the committed batches hold, and that importing
again adds the rest and nothing twice. A bad JSONL line, and a disk that fills up (SQLite's own
SQLITE_FULL, reached through `PRAGMA max_page_count`)."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from storage.database import connect_sync, explain
from storage.exchange import BATCH_SIZE, ImportStopped, export_posts, import_file

CHANNEL = 5550001
WORDS = "минист санкции канада arctic treaty embassy визит council trade summit".split()


def text_of(i: int) -> str:
    """A distinct text per message (no two are copies of each other)."""
    return " ".join(WORDS[(i // 10**k) % 10] for k in range(4)) + f" #{i} " + "статья " * (i % 7)


def dmsg(i: int) -> dict[str, Any]:
    text = text_of(i)
    return {"id": i, "type": "message", "date": "2025-12-17T10:00:00",
            "date_unixtime": str(1765965600 + 60 * i), "text": text,
            "text_entities": [{"type": "plain", "text": text}]}


def jsonl_line(i: int) -> str:
    s = {"channel_id": CHANNEL, "username": "mfa", "title": "Ministry", "message_id": i,
         "date": "2025-12-17T10:00:00+00:00", "relation": "original",
         "first_seen": "2025-12-17T10:01:00+00:00"}
    post = {"post_id": i, "text": text_of(i), "entities": [], "sightings": [s], "versions": []}
    return json.dumps(post) + "\n"


def count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def contents(conn: sqlite3.Connection) -> list[tuple]:
    """Each message with the key of its post: what must match a clean import, duplicates included."""
    return conn.execute("SELECT m.channel_id, m.message_id, m.relation, p.key, p.text FROM messages m "
                        "JOIN posts p ON p.id = m.post_id ORDER BY 1, 2").fetchall()


# --- a bad JSONL line -------------------------------------------------------------------------------


def test_a_jsonl_import_stopped_at_a_bad_line_commits_and_counts_everything_before_it(capsys, tmp_path):
    path, db = tmp_path / "posts.jsonl", str(tmp_path / "archive.db")
    lines = [jsonl_line(i) for i in range(1, 1201)]
    path.write_text("".join(lines) + "{not json\n" + jsonl_line(1202), encoding="utf-8")
    code = main(["--db", db, "import", "--no-progress", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == (f"chanwatch: {path}: stopped at line 1201: not JSON (Expecting property name enclosed in "
                   "double quotes); expected a chanwatch JSONL export, one post object a line; committed "
                   "before it: 1,200 posts (1,200 messages); fix the line and import again: what is in is "
                   "not imported twice\n")
    archive = connect_sync(db)
    assert count(archive, "messages") == count(archive, "posts") == 1200  # not just whole batches of 500
    path.write_text("".join(lines) + jsonl_line(1201) + jsonl_line(1202), encoding="utf-8")
    assert main(["--db", db, "import", "--no-progress", str(path)]) == 0
    assert "1202 messages (2 new, 0 updated, 1200 unchanged)" in capsys.readouterr().out
    assert count(archive, "messages") == count(archive, "posts") == 1202


def test_a_line_that_is_not_a_post_object_stops_the_import_after_the_posts_before_it(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text(jsonl_line(1) + '["a list, not a post"]\n' + jsonl_line(3), encoding="utf-8")
    conn = connect_sync(":memory:")
    with pytest.raises(ImportStopped) as caught:
        import_file(conn, path)
    assert "stopped at line 2: not a post object with post_id and sightings" in str(caught.value)
    assert "committed before it: 1 post (1 message);" in str(caught.value)
    assert caught.value.committed == count(conn, "messages") == 1


def test_a_stop_after_only_skipped_posts_says_nothing_was_committed(tmp_path):
    path = tmp_path / "posts.jsonl"
    bad = json.loads(jsonl_line(1))
    bad["sightings"][0]["date"] = "yesterday"
    path.write_text(json.dumps(bad) + "\n" + "{not json\n", encoding="utf-8")
    with pytest.raises(ImportStopped) as caught:
        import_file(connect_sync(":memory:"), path)
    assert "stopped at line 2: not JSON" in str(caught.value)
    assert "; nothing before it was committed; fix the line" in str(caught.value)


# --- a full disk --------------------------------------------------------------------------------------

MESSAGES = 1600


@pytest.fixture(scope="module")
def desktop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "result.json"
    data = {"name": "Ministry", "type": "public_channel", "id": CHANNEL,
            "messages": [dmsg(i) for i in range(1, MESSAGES + 1)]}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clean(desktop_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple], str]:
    """The export imported with room to spare: its archive file, its contents and its JSONL."""
    db = tmp_path_factory.mktemp("clean") / "clean.db"
    conn = connect_sync(db)
    import_file(conn, desktop_file)
    out = io.StringIO()
    export_posts(conn, None, "jsonl", out)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    result = db, contents(conn), out.getvalue()
    conn.close()
    return result


def filling(db: Path, clean_db: Path) -> sqlite3.Connection:
    """An archive at `db` whose disk fills up halfway through the import (SQLITE_FULL, for real)."""
    conn = connect_sync(db)
    empty = conn.execute("PRAGMA page_count").fetchone()[0]
    probe = sqlite3.connect(clean_db)
    full = probe.execute("PRAGMA page_count").fetchone()[0]
    probe.close()
    conn.execute(f"PRAGMA max_page_count = {empty + (full - empty) // 2}")
    return conn


def full_disk_text(db: Path) -> str:
    return str(explain(sqlite3.OperationalError("database or disk is full"), db))


def test_a_full_disk_stops_a_desktop_import_saying_how_much_was_committed(desktop_file, clean, tmp_path):
    clean_db, clean_contents, _ = clean
    db = tmp_path / "archive.db"
    conn = filling(db, clean_db)
    with pytest.raises(ImportStopped) as caught:
        import_file(conn, desktop_file)
    committed = caught.value.committed
    assert 0 < committed < MESSAGES and committed % BATCH_SIZE == 0  # whole batches, some of them
    assert str(caught.value) == (
        f"{full_disk_text(db)}; committed before it stopped: {committed:,} of the 1,600 messages in "
        f"{desktop_file}; import it again to add the rest: what is in is not imported twice")
    assert "nothing was half-written (the archive is consistent)" in str(caught.value)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert count(conn, "messages") == committed and not conn.in_transaction
    conn.close()

    again = connect_sync(db)  # the space is back
    report = import_file(again, desktop_file)
    assert (report.new, report.unchanged) == (MESSAGES - committed, committed)
    assert contents(again) == clean_contents  # nothing twice, nothing missing


def test_a_full_disk_stops_a_jsonl_import_saying_how_much_was_committed(clean, tmp_path):
    clean_db, clean_contents, jsonl = clean
    path = tmp_path / "posts.jsonl"
    path.write_text(jsonl, encoding="utf-8")
    db = tmp_path / "archive.db"
    conn = filling(db, clean_db)
    with pytest.raises(ImportStopped) as caught:
        import_file(conn, path)
    committed = caught.value.committed
    assert 0 < committed < MESSAGES
    assert str(caught.value) == (
        f"{full_disk_text(db)}; {path}: committed before it stopped: {committed:,} posts ({committed:,} "
        f"messages), up to line {committed}; import it again to add the rest: what is in is not imported "
        "twice")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert count(conn, "messages") == committed
    conn.close()

    again = connect_sync(db)
    report = import_file(again, path)
    assert (report.new, report.unchanged) == (MESSAGES - committed, committed)
    assert contents(again) == clean_contents
    out = io.StringIO()
    export_posts(again, None, "jsonl", out)
    assert out.getvalue() == jsonl  # the resumed import exports exactly what a clean one does
