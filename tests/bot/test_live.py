"""Live updates (bot/live.py) through the daemon and the simulator: pushed new messages, edits and
deletions of joined, watched channels are stored and alerted at once, exactly once with the poll;
lost pushes are filled by Telethon's channel difference or by a poll; a reconnection polls at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telethon import TelegramClient
from telethon.network.mtprotosender import MTProtoSender
from telethon.sessions import StringSession
from telethon.tl import functions

from bot.config import Settings
from bot.live import Live, Wakeup
from bot.service import Service
from storage.channels import unwatch_name
from storage.identity import set_source
from storage.records import iso
from tests.bot.conftest import rows

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


def paused_scheduler() -> AsyncIOScheduler:
    """A started scheduler that runs nothing by itself: no poll or dispatch runs unless a test calls it."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    return scheduler


async def joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path: Path, fake_sleep,
                         *channels: str, **settings: object) -> Service:
    """A started daemon with CHANWATCH_JOIN, alerting `alice` for "sanctions"; no job runs by itself."""
    world.say(alice, bot_account, "/start")  # the bot learns how to reach the alert chat
    await world.settle()
    config = Settings(db_path=tmp_path / "archive.db", channels=channels, join=True,  # type: ignore[arg-type]
                      alert_chat=alice.id, keywords=("sanctions",), **settings)
    service = Service(config, db, reader, bot_client, scheduler=paused_scheduler(), now=lambda: world.now,
                      sleep=fake_sleep)
    await service.start()
    await settled(world, service)
    world.reset_requests()
    return service


async def settled(world, service: Service) -> None:
    """Every pushed update handled, and the wake-ups it caused (dispatch, poll) run to the end."""
    while True:
        await world.settle()
        busy = [w for w in (service.alerts_now, service.poll_now) if w is not None and w.busy]
        if not busy:
            return
        for wakeup in busy:
            await wakeup.wait()


def alerts_sent(world, alice, bot_account) -> list[str]:
    return [e.text for e in world.chat_log(alice, with_=bot_account)
            if e.sender_id == bot_account.id and "sanctions" in e.text.lower()]


async def test_a_live_post_is_stored_and_alerted_before_any_poll(
        world, reader, bot_client, bot_account, reader_account, alice, db, tmp_path, fake_sleep):
    ch = world.add_channel("livechan", "Live")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "livechan")
    assert reader_account.id in ch.members  # joined at start (CHANWATCH_JOIN)
    post = world.post(ch, "New sanctions announced")
    await settled(world, service)
    assert rows(db.path, "SELECT message_id, text FROM messages WHERE channel_id = ?", ch.id) == [
        (post.id, "New sanctions announced")]
    assert alerts_sent(world, alice, bot_account) and "New sanctions announced" in alerts_sent(
        world, alice, bot_account)[0]
    assert world.requests["messages.GetHistory"] == 0 and world.requests["messages.GetPeerDialogs"] == 0
    # the cursor stays: an update proves nothing about the messages before it
    assert rows(db.path, "SELECT cursor FROM channels WHERE id = ?", ch.id) == [(0,)]
    await service.stop()
    world.post(ch, "More sanctions after the stop")
    await world.settle()
    assert rows(db.path, "SELECT count(*) FROM messages WHERE channel_id = ?", ch.id) == [(1,)]


async def test_an_edit_update_becomes_a_version(world, reader, bot_client, bot_account, alice, db, tmp_path,
                                               fake_sleep):
    ch = world.add_channel("editchan", "Edits")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "editchan")
    post = world.post(ch, "first wording")
    await settled(world, service)
    world.advance(30)
    world.edit(ch, post.id, "second wording")
    await settled(world, service)
    assert rows(db.path, "SELECT text FROM messages WHERE channel_id = ?", ch.id) == [("second wording",)]
    assert rows(db.path, "SELECT text FROM message_versions WHERE channel_id = ? AND message_id = ?",
                ch.id, post.id) == [("first wording",)]
    assert world.requests["channels.GetMessages"] == 0
    await service.stop()


async def test_a_live_forward_names_its_origin_and_a_renamed_channel_from_the_updates_chats(
        world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep):
    origin, ch = world.add_channel("originchan", "The Origin"), world.add_channel("fwdchan", "Forwards")
    original = world.post(origin, "A statement worth forwarding")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "fwdchan")
    world.set_title(ch, "Forwards, renamed")
    world.forward(origin, original.id, ch)
    await settled(world, service)
    origins = "SELECT origin_channel_id, origin_username, origin_title, origin_message_id FROM posts"
    assert rows(db.path, origins) == [(origin.id, "originchan", "The Origin", original.id)]
    assert rows(db.path, "SELECT title FROM channels WHERE id = ?", ch.id) == [("Forwards, renamed",)]
    assert world.requests["channels.GetChannels"] == 0 and world.requests["messages.GetHistory"] == 0
    await service.stop()


async def test_a_deletion_update_dates_deleted_at_to_the_second_it_arrived_and_says_update(
        world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep):
    ch = world.add_channel("delchan", "Deletions")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "delchan")
    kept, gone = world.post(ch, "stays"), world.post(ch, "goes")
    await settled(world, service)
    world.advance(17)
    arrived = iso(world.now)
    world.delete(ch, gone.id)
    await settled(world, service)
    assert rows(db.path, "SELECT message_id, deleted_at, deleted_via FROM messages WHERE channel_id = ?"
                " ORDER BY message_id", ch.id) == [(kept.id, None, None), (gone.id, arrived, "update")]
    await service.stop()


async def test_a_message_taken_live_and_then_by_poll_is_one_message_and_one_alert(
        world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep):
    ch = world.add_channel("twicechan", "Twice")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "twicechan")
    post = world.post(ch, "Sanctions lifted")
    await settled(world, service)
    await service.poll_cycle()  # reads the channel down to the cursor: the same message again
    await service.dispatcher.dispatch_instant()
    assert world.requests["messages.GetHistory"] >= 1
    assert rows(db.path, "SELECT count(*) FROM messages WHERE channel_id = ?", ch.id) == [(1,)]
    assert rows(db.path, "SELECT count(*) FROM posts") == [(1,)]
    assert rows(db.path, "SELECT count(*) FROM alerts") == [(1,)]
    assert len(alerts_sent(world, alice, bot_account)) == 1
    assert rows(db.path, "SELECT cursor FROM channels WHERE id = ?", ch.id) == [(post.id,)]
    await service.stop()


async def test_a_lost_push_is_filled_by_telethons_channel_difference(
        world, reader, bot_client, bot_account, reader_account, alice, db, tmp_path, fake_sleep):
    ch = world.add_channel("gapchan", "Gaps")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "gapchan")
    world.post(ch, "before the gap")
    await settled(world, service)
    world.lose_pushes(reader_account)
    world.post(ch, "Sanctions in the gap")
    world.post(ch, "after the gap")  # its pts shows Telethon the gap
    await settled(world, service)
    assert world.lost_pushes[reader_account.id] == 1
    assert world.requests["updates.GetChannelDifference"] >= 1 and world.requests["messages.GetHistory"] == 0
    assert [r[0] for r in rows(db.path, "SELECT text FROM messages WHERE channel_id = ? ORDER BY message_id",
                               ch.id)] == ["before the gap", "Sanctions in the gap", "after the gap"]
    assert len(alerts_sent(world, alice, bot_account)) == 1
    await service.stop()


async def test_a_lost_push_with_nothing_after_it_is_filled_by_the_next_poll_once(
        world, reader, bot_client, bot_account, reader_account, alice, db, tmp_path, fake_sleep):
    ch = world.add_channel("lastchan", "Last")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "lastchan")
    world.lose_pushes(reader_account)
    world.post(ch, "Sanctions nobody pushed")
    await settled(world, service)
    assert rows(db.path, "SELECT count(*) FROM messages WHERE channel_id = ?", ch.id) == [(0,)]
    await service.poll_cycle()
    await service.dispatcher.dispatch_instant()
    await service.poll_cycle()
    await service.dispatcher.dispatch_instant()
    assert rows(db.path, "SELECT text FROM messages WHERE channel_id = ?", ch.id) == [
        ("Sanctions nobody pushed",)]
    assert len(alerts_sent(world, alice, bot_account)) == 1
    await service.stop()


async def test_after_a_reconnection_every_joined_channel_is_polled_at_once(
        world, reader, bot_client, bot_account, reader_account, alice, db, tmp_path, fake_sleep):
    one, two = world.add_channel("recone", "One"), world.add_channel("rectwo", "Two")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "recone", "rectwo")
    world.lose_pushes(reader_account, 2)  # pushed while the connection was down
    world.post(one, "Sanctions while offline")
    world.post(two, "Weather while offline")
    world.inject_error("help.GetConfig", "drop")  # the connection drops with a request in flight
    await reader(functions.help.GetConfigRequest())
    await settled(world, service)
    assert world.reconnects[reader_account.id] == 1
    assert service.poll_now.runs == 1
    assert rows(db.path, "SELECT text FROM messages ORDER BY channel_id") == [
        ("Sanctions while offline",), ("Weather while offline",)]
    await service.dispatcher.dispatch_instant()  # a poll's alerts go with the dispatcher's next run
    assert len(alerts_sent(world, alice, bot_account)) == 1
    await service.stop()


async def test_an_unwatched_channels_updates_are_ignored_even_when_the_account_is_a_member(
        world, reader, bot_client, bot_account, reader_account, alice, db, tmp_path, fake_sleep):
    watched, other = world.add_channel("watchedchan", "Watched"), world.add_channel("otherchan", "Other")
    world.join(other, reader_account)
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "watchedchan")
    world.post(other, "Sanctions elsewhere")
    await settled(world, service)
    assert rows(db.path, "SELECT count(*) FROM messages") == [(0,)]
    await db.transaction(unwatch_name, "watchedchan")  # the set is read from the archive at each update
    world.post(watched, "Sanctions after the unwatch")
    await settled(world, service)
    assert rows(db.path, "SELECT count(*) FROM messages") == [(0,)]
    assert service.live is not None and service.live.ignored == 2 and service.live.stored == 0
    assert alerts_sent(world, alice, bot_account) == []
    await service.stop()


async def test_a_channel_watched_with_the_watch_command_is_taken_live_at_once(
        world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep):
    fresh = world.add_channel("freshlive", "Fresh")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   admins=frozenset({alice.id}))
    world.say(alice, bot_account, "/watch @freshlive")
    await settled(world, service)
    [reply] = [e.text for e in world.chat_log(alice, with_=bot_account) if e.text.startswith("watching")]
    assert reply.endswith("joined; new posts arrive as they are posted (live updates)")
    world.post(fresh, "Sanctions on the fresh channel")
    await settled(world, service)
    assert rows(db.path, "SELECT text FROM messages WHERE channel_id = ?", fresh.id) == [
        ("Sanctions on the fresh channel",)]
    assert len(alerts_sent(world, alice, bot_account)) == 1
    await service.stop()


@pytest.mark.sqlite_only
async def test_an_archive_that_cannot_be_written_costs_one_line_and_the_poll_stores_it_later(
        world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep, caplog):
    ch = world.add_channel("rochan", "Read-only")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "rochan")
    await db.run(lambda conn: conn.execute("PRAGMA query_only = ON"))  # SQLite refuses every write
    caplog.set_level(logging.INFO, logger="chanwatch")
    world.post(ch, "Sanctions not writable")
    await settled(world, service)
    lines = [r for r in caplog.records if r.name.startswith("chanwatch") and "not stored" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None and "next poll" in lines[0].getMessage()
    assert service.live is not None and service.live.failed == 1
    await db.run(lambda conn: conn.execute("PRAGMA query_only = OFF"))
    world.post(ch, "and the next one goes live")  # Telethon's update loop is still running
    await settled(world, service)
    await service.poll_cycle()
    assert [r[0] for r in rows(db.path, "SELECT text FROM messages ORDER BY message_id")] == [
        "Sanctions not writable", "and the next one goes live"]
    await service.stop()


async def test_a_wakeup_never_runs_twice_at_once_and_a_call_during_a_run_runs_it_once_more():
    running = most = 0
    release = asyncio.Event()

    async def job() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    wakeup = Wakeup(job, "test")
    wakeup()
    await asyncio.sleep(0)
    for _ in range(3):
        wakeup()
    release.set()
    await wakeup.wait()
    assert (wakeup.runs, most) == (2, 1)


async def test_live_chains_telethons_own_reconnection_callback_and_gives_it_back_on_stop(db):
    """Pins the private hook on a real, unconnected client: MTProtoSender's `_auto_reconnect_callback`."""
    client = TelegramClient(StringSession(), 1, "0" * 32)
    sender = client._sender
    assert isinstance(sender, MTProtoSender)
    assert sender._auto_reconnect_callback == client._handle_auto_reconnect
    calls: list[str] = []

    async def telethons() -> None:
        calls.append("telethon")

    sender._auto_reconnect_callback = telethons
    live = Live(db, client, on_reconnect=lambda: calls.append("poll"))
    await live.start()
    await sender._auto_reconnect_callback()
    assert calls == ["telethon", "poll"]
    await live.stop()
    assert sender._auto_reconnect_callback is telethons


async def test_a_channel_read_by_its_web_preview_is_neither_resolved_joined_nor_taken_live(
        world, reader, bot_client, bot_account, reader_account, alice, db, tmp_path, fake_sleep):
    api, web, later = (world.add_channel(n, n.title()) for n in ("apilive", "weblive", "weblater"))
    world.join(web, reader_account)  # a member already: Telegram pushes its posts to the account
    for name in ("weblive", "weblater"):
        await db.transaction(set_source, name, "web")
    service = await joined_service(world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep,
                                   "apilive", "weblive", admins=frozenset({alice.id}))
    assert rows(db.path, "SELECT username, access_hash IS NULL FROM channels WHERE username LIKE 'web%'"
                " ORDER BY username") == [("weblater", 1), ("weblive", 1)]  # never looked up by the account
    world.say(alice, bot_account, "/watch @weblater")
    world.post(web, "Sanctions on the web channel")
    world.post(api, "Sanctions on the API channel")
    await settled(world, service)
    [reply] = [e.text for e in world.chat_log(alice, with_=bot_account) if e.text.startswith("watching")]
    assert reply == "watching @weblater by its web preview; new posts arrive with the next poll"
    assert reader_account.id not in later.members
    assert [r[0] for r in rows(db.path, "SELECT text FROM messages")] == ["Sanctions on the API channel"]
    await service.stop()
