"""Media in the bot, against the simulator: /search results and alerts name what a post carries,
/status counts the download queue, and with CHANWATCH_ALERT_MEDIA an alert for a downloaded photo
arrives as that photo with the alert as its caption."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telethon import types

from bot.alerts import Dispatcher
from bot.config import ConfigError, Settings, load_settings
from bot.media import MB, MediaPolicy
from bot.simulator import SimUser, World
from bot.simulator import media as sim_media
from storage.outbox import get_alerts
from storage.rules import add_rule
from tests.bot.commands_support import Harness
from tests.bot.test_alerts import received, subscribe
from tests.bot.test_media_download import blob, downloader, poll
from tests.storage.outbox_helpers import queue_alert

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


def post_id_of(conn: sqlite3.Connection, text: str) -> int:
    return conn.execute("SELECT id FROM posts WHERE text = ?", (text,)).fetchone()[0]


async def archive_files(world: World, reader, db, tmp_path: Path, *, download: bool = True) -> None:
    """A channel with a photo, a 2.1 MB PDF and a 48 MB video, polled (and downloaded: not the video)."""
    ch = world.add_channel("files", "Files")
    world.post(ch, "sanctions photo", media=world.photo(blob(70_000, seed=1)))
    world.post(ch, "sanctions report", media=world.document(blob(int(2.1 * MB), seed=2),
                                                            mime_type="application/pdf", file_name="r.pdf"))
    world.post(ch, "sanctions clip", media=sim_media.video(size=48 * MB))
    await poll(world, reader, db, ch)
    if download:  # the video is skipped (CHANWATCH_MEDIA=photo,document)
        await downloader(world, reader, db, tmp_path, MediaPolicy()).run_once()


async def test_search_results_mark_a_photo_a_pdf_with_its_size_and_a_video_with_its_size(
        h, alice, world, reader, db, tmp_path) -> None:
    h.start()
    await h.allow(alice)
    await archive_files(world, reader, db, tmp_path, download=False)

    answer = await h.ask(alice, "/search sanctions")

    blocks = answer.text.split("\n\n")[1:]
    assert [block.split("\n")[1:3] for block in blocks] == [
        ["🎞 video · 48 MB", "sanctions clip"],
        ["📄 PDF · 2.1 MB", "sanctions report"],
        ["🖼 photo", "sanctions photo"],
    ]


async def test_status_shows_the_media_queue_stored_queued_skipped_failed(h, alice, world, reader, db,
                                                                         tmp_path) -> None:
    h.start()
    await h.allow(alice)
    await archive_files(world, reader, db, tmp_path)

    answer = await h.ask(alice, "/status")

    assert "\nMedia: 2 stored (2.2 MB) · 0 queued · 1 skipped · 0 failed" in answer.text


async def test_status_leaves_media_out_when_downloads_are_off_and_nothing_was_queued(h, alice) -> None:
    h.start(Settings(media_kinds=frozenset()))
    await h.allow(alice)
    answer = await h.ask(alice, "/status")
    assert "Media" not in answer.text
    assert "Watched channels: 0" in answer.text


async def alert_for(db, alice: SimUser, text: str, *queries: str) -> None:
    """An alert for the post with `text`, matching a rule for each query (default: sanctions)."""
    def setup(conn: sqlite3.Connection) -> None:
        rules = [add_rule(conn, alice.id, query)[0].id for query in queries or ("sanctions",)]
        queue_alert(conn, alice.id, post_id_of(conn, text), rules)

    await db.run(setup)


def photo_bytes(world: World, entry) -> bytes:
    assert isinstance(entry.media, types.MessageMediaPhoto)
    return world.files[entry.media.photo.id].data


async def test_an_alert_for_a_downloaded_photo_arrives_as_the_photo_with_the_alert_as_caption(
        world, reader, db, tmp_path, bot_client, bot_account, alice, fake_sleep) -> None:
    await archive_files(world, reader, db, tmp_path)
    await subscribe(world, bot_account, alice)
    await alert_for(db, alice, "sanctions photo")

    sent = await Dispatcher(db, bot_client, sleep=fake_sleep, photo_dir=tmp_path / "media").dispatch_instant()

    [entry] = received(world, alice, bot_account)
    assert sent == 1
    assert photo_bytes(world, entry) == blob(70_000, seed=1)
    assert "Matched rule: sanctions" in entry.text and "🖼 photo" in entry.text
    assert "sanctions photo" in entry.text
    assert [a.sent_at is not None for a in await db.run(get_alerts)] == [True]


async def test_an_alert_too_long_for_a_caption_sends_the_photo_then_the_text_once(
        world, reader, db, tmp_path, bot_client, bot_account, alice, fake_sleep) -> None:
    await archive_files(world, reader, db, tmp_path)
    await subscribe(world, bot_account, alice)
    # five rules shown at 120 characters each, emoji: two UTF-16 units apiece, 1200 in all
    rules = [f"sanctions OR {'😀' * 150}{i}" for i in range(5)]
    await alert_for(db, alice, "sanctions photo", *rules)

    d = Dispatcher(db, bot_client, sleep=fake_sleep, photo_dir=tmp_path / "media")
    assert await d.dispatch_instant() == 2
    assert await d.dispatch_instant() == 0

    photo, text = received(world, alice, bot_account)
    assert photo_bytes(world, photo) == blob(70_000, seed=1) and photo.text == ""
    assert text.media is None and "Matched rules: sanctions OR" in text.text
    assert "sanctions photo" in text.text and 1024 < len(text.text.encode("utf-16-le")) // 2 <= 4096


async def test_an_alert_whose_photo_is_not_downloaded_or_with_photos_off_is_text(
        world, reader, db, tmp_path, bot_client, bot_account, alice, fake_sleep) -> None:
    bob = world.add_user("Bob", username="bob_sub")
    await archive_files(world, reader, db, tmp_path, download=False)
    await subscribe(world, bot_account, alice)
    await subscribe(world, bot_account, bob)
    await alert_for(db, alice, "sanctions photo")
    assert await Dispatcher(db, bot_client, sleep=fake_sleep,
                            photo_dir=tmp_path / "media").dispatch_instant() == 1  # not downloaded yet
    await downloader(world, reader, db, tmp_path, MediaPolicy()).run_once()
    await alert_for(db, bob, "sanctions photo")
    assert await Dispatcher(db, bot_client, sleep=fake_sleep).dispatch_instant() == 1  # photos off

    for user in (alice, bob):
        [entry] = received(world, user, bot_account)
        assert entry.media is None
        assert "🖼 photo\nsanctions photo" in entry.text


def test_the_setting_turns_alert_photos_on_and_refuses_anything_but_true_or_false(tmp_path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    assert load_settings(empty, {"CHANWATCH_ALERT_MEDIA": "true"}).alert_media is True
    assert load_settings(empty, {}).alert_media is False
    with pytest.raises(ConfigError, match="CHANWATCH_ALERT_MEDIA"):
        load_settings(empty, {"CHANWATCH_ALERT_MEDIA": "maybe"})


class Crash(BaseException):
    """Stands for the process dying at a given point (not an error the dispatcher may catch)."""


async def photo_then_text_alert(world, reader, db, tmp_path, bot_account, alice) -> None:
    """An alert whose rules are too long for a caption: the photo, then the alert as text."""
    await archive_files(world, reader, db, tmp_path)
    await subscribe(world, bot_account, alice)
    await alert_for(db, alice, "sanctions photo", *[f"sanctions OR {'😀' * 150}{i}" for i in range(5)])


async def test_a_two_part_alert_crashed_before_its_mark_is_not_sent_again_in_any_part(
        world, reader, db, tmp_path, bot_client, bot_account, alice, fake_sleep) -> None:
    await photo_then_text_alert(world, reader, db, tmp_path, bot_account, alice)

    def crash(ids) -> None:
        if ids:  # the last part was sent; its mark never happens
            raise Crash

    with pytest.raises(Crash):
        await Dispatcher(db, bot_client, sleep=fake_sleep, photo_dir=tmp_path / "media",
                         before_mark=crash).dispatch_instant()
    restarted = Dispatcher(db, bot_client, sleep=fake_sleep, photo_dir=tmp_path / "media")
    assert await restarted.dispatch_instant() == 0
    assert len(received(world, alice, bot_account)) == 2
    assert [a.sent_at is not None for a in await db.run(get_alerts)] == [True]


async def test_a_two_part_alert_crashed_between_its_parts_sends_only_the_missing_part(
        world, reader, db, tmp_path, bot_client, bot_account, alice, fake_sleep) -> None:
    await photo_then_text_alert(world, reader, db, tmp_path, bot_account, alice)

    def crash(ids) -> None:
        if ids:  # before the last part (the text) is sent
            raise Crash

    with pytest.raises(Crash):
        await Dispatcher(db, bot_client, sleep=fake_sleep, photo_dir=tmp_path / "media",
                         before_send=crash).dispatch_instant()
    restarted = Dispatcher(db, bot_client, sleep=fake_sleep, photo_dir=tmp_path / "media")
    assert await restarted.dispatch_instant() == 1
    photo, text = received(world, alice, bot_account)
    assert photo_bytes(world, photo) == blob(70_000, seed=1) and "Matched rules: sanctions OR" in text.text
