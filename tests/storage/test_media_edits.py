"""A media-only edit is a whole version: the earlier media kept in `message_versions` (naming its file),
the post's media kind following its origin, `is:edited` finding it, and the JSONL round trip keeping it."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from storage.database import _migrations, connect_sync
from storage.exchange import export_posts, import_file
from storage.ingest import ingest_batch
from storage.records import iso
from storage.search import search
from tests.storage.factories import EMBASSY, MFA, STATEMENT, T0, batch, msg
from tests.storage.test_media_queue import LATER, PHOTO, VIDEO


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """An empty archive, once on SQLite and once on PostgreSQL."""
    return archive


def versions(conn: sqlite3.Connection) -> list[tuple]:
    """(message id, edit date, text, the file id of its media) of each kept version."""
    return [(m, edit, text, (json.loads(media or "null") or {}).get("file_id")) for m, edit, text, media
            in conn.execute("SELECT message_id, edit_date, text, media FROM message_versions ORDER BY id")]


def media_kind(conn: sqlite3.Connection, channel_id: int, message_id: int) -> str | None:
    return conn.execute(
        "SELECT p.media_kind FROM posts p JOIN messages m ON m.post_id = p.id"
        " WHERE m.channel_id = ? AND m.message_id = ?", (channel_id, message_id),
    ).fetchone()[0]


def export(conn: sqlite3.Connection) -> str:
    out = io.StringIO()
    export_posts(conn, None, "jsonl", out)
    return out.getvalue()


def test_a_photo_replaced_by_a_video_keeps_the_photo_version_and_the_post_becomes_a_video(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    result = ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=VIDEO, edit_date=LATER)), now=LATER)
    assert result.edits == 1
    assert versions(conn) == [(1, None, STATEMENT, 555)]  # the earlier state names the photo's file
    assert media_kind(conn, MFA.id, 1) == "video"
    assert {p.sightings[0].message_id for p in search(conn, "is:edited", limit=10).posts} == {1}
    # the same state seen again is no new version
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=VIDEO, edit_date=LATER)), now=LATER)
    assert len(versions(conn)) == 1


def test_a_text_edit_keeps_the_media_the_message_had(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT + " Updated.", media=PHOTO, edit_date=LATER)))
    assert versions(conn) == [(1, None, STATEMENT, 555)]
    assert media_kind(conn, MFA.id, 1) == "photo"


def test_a_copys_media_edit_leaves_the_posts_media_kind_to_its_origin(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 4, STATEMENT, minutes=30, media=PHOTO)), now=T0)
    assert media_kind(conn, EMBASSY.id, 4) == "photo" == media_kind(conn, MFA.id, 1)  # one post
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 4, STATEMENT, minutes=30, media=VIDEO, edit_date=LATER)))
    assert versions(conn) == [(4, None, STATEMENT, 555)]
    assert media_kind(conn, MFA.id, 1) == "photo"


def test_a_media_only_edit_without_a_newer_edit_date_keeps_no_version(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO, edit_date=LATER)), now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=VIDEO, edit_date=LATER)), now=LATER)
    assert versions(conn) == []


def test_a_media_edit_version_survives_the_jsonl_round_trip(conn, tmp_path):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=VIDEO, edit_date=LATER)), now=LATER)
    first = export(conn)
    (line,) = [json.loads(x) for x in first.splitlines()]
    assert [v["media"]["file_id"] for v in line["versions"]] == [555]
    path = tmp_path / "archive.jsonl"
    path.write_text(first, encoding="utf-8")
    fresh = connect_sync(":memory:")
    import_file(fresh, path)
    assert export(fresh) == first
    assert versions(fresh) == versions(conn)
    links = "SELECT file_id, replaced_at IS NULL FROM message_media ORDER BY file_id"
    assert [tuple(r) for r in fresh.execute(links)] == [(555, 0), (777, 1)]


def test_an_export_without_version_media_imports_the_messages_media_for_it(conn, tmp_path):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT + " Updated.", media=PHOTO, edit_date=LATER)))
    line = json.loads(export(conn))
    for v in line["versions"]:
        del v["media"]  # as chanwatch wrote versions before schema v9
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    fresh = connect_sync(":memory:")
    import_file(fresh, path)
    assert versions(fresh) == [(1, None, STATEMENT, 555)]


def test_version_9_gives_versions_kept_before_it_the_messages_media(tmp_path):
    path = tmp_path / "v8.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(_migrations()[:8]):
        old.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number + 1};\nCOMMIT;")
    day, photo = iso(T0), json.dumps({"kind": "photo", "file_id": 555})
    old.execute("INSERT INTO channels (id, username) VALUES (?, 'mfa')", (MFA.id,))
    for message_id, text, media in ((1, STATEMENT, photo), (2, "no media", None)):  # as v8 stored them
        old.execute("INSERT INTO posts (id, key, date, first_seen) VALUES (?, ?, ?, ?)",
                    (message_id, f"tg:{MFA.id}:{message_id}", day, day))
        old.execute("INSERT INTO messages (channel_id, message_id, post_id, relation, date, text, media,"
                    " first_seen) VALUES (?, ?, ?, 'original', ?, ?, ?, ?)",
                    (MFA.id, message_id, message_id, day, text, media, day))
    old.execute("INSERT INTO message_versions (channel_id, message_id, text, replaced_at) VALUES"
                " (?, 1, 'before', ?), (?, 2, 'before', ?)", (MFA.id, iso(LATER), MFA.id, iso(LATER)))
    old.close()
    conn = connect_sync(path)
    assert [(m, f) for m, _, _, f in versions(conn)] == [(1, 555), (2, None)]
