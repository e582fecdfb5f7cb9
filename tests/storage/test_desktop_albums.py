"""Desktop exports carry no grouped_id: a run of consecutive ids posted in one second, all with
album media and at most one with text, becomes one album (one post), as it is from the API; nothing
else merges, in built exports and in the real ones."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storage.exchange import desktop as desktop_module
from storage.exchange import import_file
from tests.real_fixtures import real

CHANNEL = 5550003
UNIX = 1765965600  # 2025-12-17 10:00:00 UTC


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


def part(mid: int, text: str = "", *, second: int = 0, media: dict | None = None) -> dict:
    """An export message with a photo unless `media` says otherwise (`{}`: none)."""
    return {"id": mid, "type": "message", "date": "2025-12-17T10:00:00", "date_unixtime": str(UNIX + second),
            "from": "x", "from_id": f"channel{CHANNEL}", "text": text,
            "text_entities": [{"type": "plain", "text": text}] if text else [],
            **({"photo": f"photos/{mid}.jpg", "width": 10, "height": 10} if media is None else media)}


def export(tmp_path: Path, *messages: dict) -> Path:
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"name": "Albums", "type": "public_channel", "id": CHANNEL,
                                "messages": list(messages)}))
    return path


def posts(conn: sqlite3.Connection) -> list[list[int]]:
    """Message ids of each post, by post."""
    rows = conn.execute("SELECT post_id, message_id FROM messages ORDER BY post_id, message_id")
    out: dict[int, list[int]] = {}
    for post_id, message_id in rows:
        out.setdefault(post_id, []).append(message_id)
    return sorted(out.values())


def test_parts_of_one_second_with_one_caption_become_one_post(conn, tmp_path):
    video = {"file": "v.mp4", "media_type": "video_file", "mime_type": "video/mp4"}
    import_file(conn, export(tmp_path, part(10), part(11, "The caption"), part(12, media=video)))
    assert posts(conn) == [[10, 11, 12]]
    assert {r[0] for r in conn.execute("SELECT grouped_id FROM messages")} == {-10}  # never Telegram's
    [text] = [r[0] for r in conn.execute("SELECT text FROM posts")]
    assert text == "The caption"


def test_what_is_not_an_album_stays_apart(conn, tmp_path):
    sticker = {"file": "s.webp", "media_type": "sticker"}
    import_file(conn, export(
        tmp_path,
        part(1), part(2, second=1),  # another second
        part(4), part(6),  # ids not consecutive
        part(10, "one text"), part(11, "another text"),  # two captions: two posts
        part(20), part(21, "plain text", media={}),  # no media
        part(30), part(31, media=sticker),  # stickers are never album parts
    ))
    assert posts(conn) == [[1], [2], [4], [6], [10], [11], [20], [21], [30], [31]]


def test_an_album_across_two_import_batches_is_still_one_and_a_reimport_changes_nothing(
        conn, tmp_path, monkeypatch):
    monkeypatch.setattr(desktop_module, "BATCH_SIZE", 2)
    path = export(tmp_path, part(1, "before"), *(part(i) for i in range(2, 6)), part(9, "after", second=5))
    import_file(conn, path)
    assert posts(conn) == [[1, 2, 3, 4, 5], [9]]
    again = import_file(conn, path)
    assert (again.new, again.updated, again.posts_new) == (0, 0, 0)


def test_the_real_exports_merge_no_two_captions_and_keep_pachums_album_whole(conn):
    folder = real("desktop_export")
    import_file(conn, folder / "trantor_library_TG101_result.json")
    albums = conn.execute(
        "SELECT grouped_id, count(*), sum(CASE WHEN text != '' THEN 1 ELSE 0 END), count(DISTINCT date)"
        " FROM messages WHERE grouped_id IS NOT NULL GROUP BY grouped_id").fetchall()
    assert len(albums) == 105
    assert all(2 <= n <= 10 and texts <= 1 and dates == 1 for _, n, texts, dates in albums)
    captioned = conn.execute("SELECT post_id FROM messages WHERE text != '' AND grouped_id IS NOT NULL"
                             " GROUP BY post_id HAVING count(*) > 1").fetchall()
    assert captioned == []
    import_file(conn, folder / "pachumarchive_result.json")
    pachum = conn.execute("SELECT DISTINCT post_id FROM messages WHERE message_id BETWEEN 3858 AND 3863")
    assert len(pachum.fetchall()) == 1  # a captioned photo and five videos of one second
