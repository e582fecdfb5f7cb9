"""Edits, deletions and albums through the poller's re-check and poll, on the simulator."""

from __future__ import annotations

from datetime import timedelta

from bot.resolve import resolve_channels
from bot.simulator import media
from tests.bot.test_poller import channel_row, fill, make_poller, rows

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


async def watched(world, reader, db, n: int = 5, username: str = "editchan"):
    ch = world.add_channel(username, "Edits")
    fill(world, ch, n)
    await resolve_channels(db, reader, [username])
    poller = make_poller(db, reader, world)
    await poller.poll_once()
    return ch, poller


async def test_edit_keeps_the_old_version(world, reader, db):
    ch, poller = await watched(world, reader, db)
    old_text = ch.messages[3].message
    world.advance(300)
    world.edit(ch, 3, "post 3, corrected")
    world.reset_requests()
    report = await poller.recheck_once()
    assert world.requests["channels.GetMessages"] == 1
    assert report.by_id(ch.id).edited == 1 and report.by_id(ch.id).deleted == 0
    assert report.by_id(ch.id).checked == 5
    [version] = rows(db.path, "SELECT * FROM message_versions WHERE channel_id = ?", ch.id)
    assert (version["message_id"], version["text"], version["edit_date"]) == (3, old_text, None)
    [msg] = rows(db.path, "SELECT * FROM messages WHERE channel_id = ? AND message_id = 3", ch.id)
    assert msg["text"] == "post 3, corrected" and msg["edit_date"] == world.now.isoformat()
    [post] = rows(db.path, "SELECT * FROM posts WHERE id = ?", msg["post_id"])
    assert post["text"] == "post 3, corrected" and post["edited_at"] is not None
    # A second re-check finds nothing new: no duplicate version.
    again = await poller.recheck_once()
    assert again.by_id(ch.id).edited == 0
    assert len(rows(db.path, "SELECT * FROM message_versions")) == 1
    # A second edit adds a second version.
    world.advance(300)
    world.edit(ch, 3, "post 3, corrected twice")
    await poller.recheck_once()
    texts = [r["text"] for r in rows(db.path, "SELECT text FROM message_versions ORDER BY id")]
    assert texts == [old_text, "post 3, corrected"]


async def test_deletions_are_matched_by_id_and_keep_content(world, reader, db):
    ch, poller = await watched(world, reader, db, n=7)
    kept_text = ch.messages[2].message
    world.delete(ch, [2, 5])
    world.advance(60)
    world.edit(ch, 6, "post six edited")  # an edit after the deleted ids: position matching would fail
    report = await poller.recheck_once()
    assert (report.by_id(ch.id).deleted, report.by_id(ch.id).edited) == (2, 1)
    deleted = rows(db.path, "SELECT message_id, text, deleted_at FROM messages WHERE channel_id = ? "
                            "AND deleted_at IS NOT NULL ORDER BY message_id", ch.id)
    assert [r["message_id"] for r in deleted] == [2, 5]
    assert deleted[0]["text"] == kept_text  # content kept
    assert deleted[0]["deleted_at"] == world.now.isoformat()
    assert rows(db.path, "SELECT text FROM messages WHERE channel_id = ? AND message_id = 6",
                ch.id)[0]["text"] == "post six edited"
    # Deleted ids are not asked for again.
    world.reset_requests()
    again = await poller.recheck_once()
    assert again.by_id(ch.id).checked == 5 and again.by_id(ch.id).deleted == 0


async def test_window_by_ids_and_days(world, reader, db):
    ch = world.add_channel("windowed", "Window")
    fill(world, ch, 250)
    await resolve_channels(db, reader, ["windowed"])
    poller = make_poller(db, reader, world)
    await poller.poll_once()  # newest page only: ids 151..250
    world.advance(days=10)
    fill(world, ch, 150, "recent")  # ids 251..400
    await poller.poll_once()
    world.reset_requests()
    report = await poller.recheck_once(window_ids=120, window_days=3)
    # 150 recent ones (within 3 days) cover the 120 newest ids: 150 ids, 2 requests.
    assert report.by_id(ch.id).checked == 150
    assert world.requests["channels.GetMessages"] == 2
    report = await poller.recheck_once(window_ids=200, window_days=1 / 24)
    assert report.by_id(ch.id).checked == 200


async def test_recheck_failure_marks_the_channel_and_others_go_on(world, reader, db):
    ch, poller = await watched(world, reader, db)
    other = world.add_channel("otherchan", "Other")
    fill(world, other, 2)
    await resolve_channels(db, reader, ["otherchan"])
    await poller.poll_once()
    world.make_private(ch)
    world.delete(other, 1)
    report = await poller.recheck_once()
    assert report.by_id(ch.id).status == "private"
    assert report.by_id(other.id).deleted == 1
    row = channel_row(db, ch.id)
    assert row["status"] == "private" and row["failures"] == 1


async def test_album_is_one_post_and_edit_of_its_caption(world, reader, db):
    ch = world.add_channel("albumchan", "Albums")
    world.post(ch, "before")
    world.advance(60)
    world.album(ch, [("Album caption", media.photo()), ("", media.photo()), ("", media.photo())])
    world.post(ch, "after")
    await resolve_channels(db, reader, ["albumchan"])
    poller = make_poller(db, reader, world)
    await poller.poll_once()
    album = rows(db.path, "SELECT DISTINCT post_id FROM messages WHERE grouped_id IS NOT NULL")
    assert len(album) == 1
    assert len(rows(db.path, "SELECT * FROM posts")) == 3
    [post] = rows(db.path, "SELECT * FROM posts WHERE id = ?", album[0]["post_id"])
    assert post["text"] == "Album caption" and post["media_kind"] == "photo"
    # An album forwarded elsewhere is still one post with the same members.
    dst = world.add_channel("albumfwd", "Album forwards")
    world.forward(ch, [2, 3, 4], dst)
    await resolve_channels(db, reader, ["albumfwd"])
    world.advance(timedelta(minutes=1).total_seconds())
    await poller.poll_once()
    assert len(rows(db.path, "SELECT * FROM posts")) == 3
    assert len(rows(db.path, "SELECT * FROM messages WHERE post_id = ?", post["id"])) == 6
