"""JSONL exports carry the complete record: each message's engagement readings (`stats`) and each
version's raw JSON; importing them back restores both, older files without them still import, and a
malformed reading skips its post, named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storage.database import connect_sync
from storage.exchange import import_file
from storage.exchange.common import ImportReport
from storage.records import iso
from tests.storage.factories import MFA, T0
from tests.storage.test_exchange import build_archive, export

STATS = ("SELECT channel_id, message_id, at, views, forwards, replies, reactions FROM message_stats"
         " ORDER BY 1, 2, 3")
VERSION_RAW = "SELECT channel_id, message_id, edit_date, text, raw FROM message_versions ORDER BY id"


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """The exchange tests' archive with readings and raw versions, on SQLite and on PostgreSQL."""
    conn = archive
    build_archive(conn)
    conn.execute("DELETE FROM message_stats")  # the readings ingest took at first sight: these instead
    conn.executemany(
        "INSERT INTO message_stats (channel_id, message_id, at, views, forwards, replies, reactions)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(MFA.id, 10, iso(T0), 100, 0, 0, None),
         (MFA.id, 10, "2025-12-17T11:00:00+00:00", 140, 2, 1, json.dumps({"👍": 4, "custom:5368": 1})),
         (2002, 500, "2025-12-17T12:00:00+00:00", 5, 1, None, json.dumps({"paid": 3}))],
    )
    conn.executemany("UPDATE message_versions SET raw = ? WHERE id = ?", [
        (json.dumps({"_": "Message", "message": text}, ensure_ascii=False, separators=(",", ":")), version)
        for version, text in conn.execute("SELECT id, text FROM message_versions WHERE edit_date IS NULL")])
    return conn


def readings(conn: sqlite3.Connection) -> list[tuple]:
    """The message_stats rows, reactions parsed (the JSON's spelling is the archive's own)."""
    return [(*row[:6], json.loads(row[6]) if row[6] else None) for row in conn.execute(STATS)]


def imported(tmp_path: Path, text: str) -> tuple[sqlite3.Connection, ImportReport]:
    path = tmp_path / "archive.jsonl"
    path.write_text(text, encoding="utf-8")
    fresh = connect_sync(":memory:")
    return fresh, import_file(fresh, path)


def test_each_message_carries_its_readings_and_each_version_its_raw(conn) -> None:
    posts = [json.loads(line) for line in export(conn).splitlines()]
    mfa = next(s for p in posts for s in p["sightings"]
               if (s["channel_id"], s["message_id"]) == (MFA.id, 10))
    assert mfa["stats"] == [
        {"at": iso(T0), "views": 100, "forwards": 0, "replies": 0, "reactions": None},
        {"at": "2025-12-17T11:00:00+00:00", "views": 140, "forwards": 2, "replies": 1,
         "reactions": {"👍": 4, "custom:5368": 1}}]
    versions = next(p["versions"] for p in posts if p["versions"])
    assert versions[0]["raw"] == {"_": "Message", "message": versions[0]["text"]}
    assert versions[1]["raw"]["message"] == versions[1]["text"]  # ingest kept the raw it replaced


def test_export_import_export_gives_the_same_file_and_the_same_readings_and_raws(conn, tmp_path) -> None:
    first = export(conn)
    fresh, _ = imported(tmp_path, first)
    assert export(fresh) == first
    assert readings(fresh) == readings(conn)
    assert [tuple(r) for r in fresh.execute(VERSION_RAW)] == [tuple(r) for r in conn.execute(VERSION_RAW)]


def test_importing_again_adds_no_reading_twice(conn, tmp_path) -> None:
    first = export(conn)
    fresh, _ = imported(tmp_path, first)
    import_file(fresh, tmp_path / "archive.jsonl")
    assert readings(fresh) == readings(conn)


def test_an_older_export_without_readings_or_version_raw_still_imports(conn, tmp_path) -> None:
    posts = [json.loads(line) for line in export(conn).splitlines()]
    for post in posts:
        for s in post["sightings"]:
            del s["stats"]
        for v in post["versions"]:
            del v["raw"]
    fresh, report = imported(tmp_path, "\n".join(json.dumps(p, ensure_ascii=False) for p in posts) + "\n")
    assert report.malformed == 0 and report.new == 10
    carried = {(c, m): (v, f, r) for c, m, v, f, r in fresh.execute(
        "SELECT channel_id, message_id, views, forwards, replies FROM messages")}
    # no exported readings: only the counts each message carries, read when it was first seen
    assert readings(fresh) and all(carried[(c, m)] == (v, f, r) for c, m, _, v, f, r, _ in readings(fresh))
    assert [row[4] for row in fresh.execute(VERSION_RAW)] == [None, None]
    assert fresh.execute("SELECT raw FROM messages WHERE message_id = 10").fetchone()[0] is not None


@pytest.mark.parametrize(("reading", "named"), [
    ({"views": 5}, "sightings[0].stats[0].at: missing"),
    ({"at": "yesterday"}, "sightings[0].stats[0].at: 'yesterday' is not an ISO date"),
    ({"at": "2025-12-17T11:00:00+00:00", "views": -1}, "sightings[0].stats[0].views: -1 is out of range"),
    ({"at": "2025-12-17T11:00:00+00:00", "reactions": {"👍": "many"}},
     "sightings[0].stats[0].reactions.👍: text 'many', expected a whole number"),
    ({"at": "2025-12-17T11:00:00+00:00", "reactions": [1]}, "sightings[0].stats[0].reactions: a list"),
])
def test_a_malformed_reading_skips_its_post_and_names_the_field(conn, tmp_path, reading, named) -> None:
    posts = [json.loads(line) for line in export(conn).splitlines()]
    posts[0]["sightings"][0]["stats"] = [reading]
    fresh, report = imported(tmp_path, "\n".join(json.dumps(p, ensure_ascii=False) for p in posts) + "\n")
    assert report.malformed == 1 and named in report.malformed_shown[0], report.malformed_shown
    assert fresh.execute("SELECT count(*) FROM posts").fetchone()[0] < conn.execute(
        "SELECT count(*) FROM posts").fetchone()[0]
