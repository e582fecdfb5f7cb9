"""Faults injected into the simulated Telegram (issue #12): the simulator's random faults themselves
(flood waits, server errors, dropped connections, requests never answered), and one test for each
thing they found in the daemon. Time moves only through the World's clock and the loop clock that
`drive` moves through each stall: nothing waits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telethon import TelegramClient, functions, types

from bot.alerts import Dispatcher
from bot.config import Settings
from bot.connect import connect_bot, connect_user
from bot.poller import Poller
from bot.service import Service
from bot.simulator import (
    CHAOS_KINDS,
    Chaos,
    LoopClock,
    RequestHung,
    SimChannel,
    SimUser,
    World,
    attach,
    drive,
)
from bot.simulator.chaos import TELETHON_ATTEMPTS, TELETHON_RETRY_DELAY
from bot.telegram import REQUEST_TIMEOUT
from storage.channels import store_resolved
from storage.outbox import get_alerts
from storage.percolator import Percolator
from storage.records import Channel
from storage.rules import seed_alert_chat
from tests.bot.conftest import API_HASH, rows, saved_session

# --- the simulator's faults -----------------------------------------------------------------------


def history_request(min_id: int = 0) -> functions.messages.GetHistoryRequest:
    return functions.messages.GetHistoryRequest(peer=types.InputPeerChannel(1, 2), offset_id=0,
                                                offset_date=None, add_offset=0, limit=100, max_id=0,
                                                min_id=min_id, hash=0)


def test_chaos_fails_the_same_requests_whatever_order_they_arrive_in():
    asked = [history_request(i) for i in range(300)]
    first = {r.min_id: Chaos(rate=0.2, seed=7).decide(5, "messages.GetHistory", r) for r in asked}
    chaos = Chaos(rate=0.2, seed=7)
    second = {r.min_id: chaos.decide(5, "messages.GetHistory", r) for r in reversed(asked)}
    assert first == second
    assert 30 <= sum(f is not None for f in first.values()) <= 90
    assert set(chaos.injected) == set(CHAOS_KINDS) and sum(chaos.injected.values()) == len(chaos.faults)
    other = {r.min_id: Chaos(rate=0.2, seed=8).decide(5, "messages.GetHistory", r) for r in asked}
    assert other != first


def test_a_burst_of_server_errors_fails_every_attempt_telethon_makes():
    chaos = Chaos(rate=1.0, seed=3, kinds=("rpc",), burst_share=1.0)
    faults = [chaos.decide(5, "messages.GetHistory", history_request()) for _ in range(TELETHON_ATTEMPTS)]
    assert len({f.detail for f in faults}) == 1 and all(f.kind == "rpc" for f in faults)
    chaos.stop()
    assert chaos.decide(5, "messages.GetHistory", history_request()) is None


async def test_a_dropped_connection_is_made_again_and_the_request_answered_once(
        world, reader, reader_account):
    ch = world.add_channel("dropchan", "Drop")
    world.post(ch, "still here")
    world.reset_requests()
    world.inject_error("messages.GetHistory", "drop")
    [message] = await reader.get_messages(ch.input_peer, limit=1)
    assert message.message == "still here" and reader.is_connected()
    assert world.requests["messages.GetHistory"] == 2  # sent again on the new connection
    assert world.reconnects[reader_account.id] == 1 and reader._sender.reconnects == 1


async def test_a_request_never_answered_holds_its_caller_until_the_caller_gives_up(world, reader):
    ch = world.add_channel("quietchan", "Quiet")
    world.post(ch, "unheard")
    world.inject_error("messages.GetHistory", "timeout", times=2)
    loop = asyncio.get_running_loop()
    with LoopClock() as clock:
        started = loop.time()
        with pytest.raises(TimeoutError):
            await drive(world, clock, asyncio.wait_for(reader.get_messages(ch.input_peer, limit=1), 30))
        assert 30 <= loop.time() - started < 35 and not world.stalls()
        with pytest.raises(RequestHung, match="messages.GetHistory"):  # Telethon alone waits for ever
            await drive(world, clock, reader.get_messages(ch.input_peer, limit=1), give_up_after=120)
    assert clock.offset >= 150


async def test_telethon_retries_a_server_error_on_the_loop_clock_without_waiting(world, reader):
    world.tolerate_telethon_warnings = True  # "Telegram is having internal issues", once per error
    ch = world.add_channel("busychan", "Busy")
    world.post(ch, "eventually")
    world.reset_requests()
    world.inject_error("messages.GetHistory", (500, "RPC_CALL_FAIL"), times=2)
    with LoopClock() as clock:
        [message] = await drive(world, clock, reader.get_messages(ch.input_peer, limit=1))
    assert message.message == "eventually" and world.requests["messages.GetHistory"] == 3
    assert clock.offset >= 2 * TELETHON_RETRY_DELAY


# --- what the faults found ------------------------------------------------------------------------


def paused_scheduler() -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    scheduler.start(paused=True)
    return scheduler


async def watched(db, world: World, *chans: SimChannel) -> None:
    """Channels stored as resolved and watched, as the daemon's start leaves them."""
    for ch in chans:
        channel = Channel(ch.id, ch.username, ch.title, ch.access_hash, watched=True)
        await db.transaction(store_resolved, channel, "ok", None, world.now.isoformat())


def bot_texts(world: World, user: SimUser, bot: SimUser) -> list[str]:
    return [e.text for e in world.chat_log(user, with_=bot) if e.sender_id == bot.id]


async def daemon_clients(world: World, settings: Settings) -> tuple[TelegramClient, TelegramClient]:
    """The daemon's two clients as `chanwatch run` makes them (bot.connect), on the simulator."""
    prepare = lambda client, kind: attach(world, client)  # noqa: E731
    return await connect_user(settings, prepare=prepare), await connect_bot(settings, prepare=prepare)


async def sim_settings(world: World, reader_account: SimUser, bot_account: SimUser, path: str,
                       **kwargs: object) -> Settings:
    session = await saved_session(world, reader_account)
    return Settings(db_path=Path(path), api_id=12345, api_hash=API_HASH, session=session,  # type: ignore[arg-type]
                    bot_token=bot_account.bot_token, **kwargs)


async def set_disk_full(service: Service, full: bool) -> None:
    """SQLite's own SQLITE_FULL: the daemon's connection may not grow the file past its size now. The
    file is compacted first (as a full disk leaves no slack), so the next page a write needs fails."""
    def pragma(conn: sqlite3.Connection) -> None:
        if full:
            conn.execute("VACUUM")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages if full else 1_000_000_000}")
    await service.db.run(pragma)


async def test_a_history_request_never_answered_fails_that_poll_after_the_timeout_and_the_next_reads_it(
        world, reader, db):
    ch, other = world.add_channel("quietchan", "Quiet"), world.add_channel("busychan", "Busy")
    await watched(db, world, ch, other)
    world.post(ch, "first")
    world.post(other, "second")
    world.inject_error("messages.GetHistory", "timeout", when=lambda r: r.peer.channel_id == ch.id)
    poller = Poller(db, reader, now=lambda: world.now)
    with LoopClock() as clock:
        report = await drive(world, clock, poller.poll_once())
        assert "no answer from Telegram to GetHistoryRequest within 60s" in report.by_id(ch.id).error
        assert report.by_id(other.id).new_messages == 1  # the other channel did not wait for it
        assert clock.offset == pytest.approx(REQUEST_TIMEOUT, abs=2)
        world.advance(3600)
        assert (await drive(world, clock, poller.poll_once())).by_id(ch.id).new_messages == 1


async def test_an_alert_send_never_answered_is_tried_again_and_reaches_the_chat_once(
        world, reader, bot_client, bot_account, alice, db, fake_sleep):
    ch = world.add_channel("wirechan", "Wire")
    await watched(db, world, ch)
    await db.transaction(seed_alert_chat, alice.id, ["sanctions"], world.now)
    world.say(alice, bot_account, "/start")  # the bot learns how to reach her
    await world.settle()
    world.post(ch, "New sanctions announced")
    await Poller(db, reader, now=lambda: world.now, after_ingest=Percolator()).poll_once()
    dispatcher = Dispatcher(db, bot_client, now=lambda: world.now, sleep=fake_sleep)
    world.inject_error("messages.SendMessage", "timeout")
    with LoopClock() as clock:
        assert await drive(world, clock, dispatcher.dispatch_instant()) == 0
        [alert] = await db.run(get_alerts, alice.id)
        assert alert.sent_at is None and "no answer from Telegram" in alert.last_error
        world.advance(60)
        assert await drive(world, clock, dispatcher.dispatch_instant()) == 1
    assert len([t for t in bot_texts(world, alice, bot_account) if "New sanctions" in t]) == 1


async def test_the_service_starts_though_telegram_never_answers_the_bot_menu(
        world, reader, bot_client, db, tmp_path, caplog):
    world.inject_error("bots.SetBotCommands", "timeout")
    service = Service(Settings(db_path=tmp_path / "archive.db"), db, reader, bot_client,
                      scheduler=paused_scheduler())
    with LoopClock() as clock:
        await drive(world, clock, service.start(), give_up_after=2 * REQUEST_TIMEOUT)
    assert service.scheduler.get_job("poll") is not None
    assert any("could not publish the bot's command menu: no answer" in r.getMessage()
               for r in caplog.records)
    await service.stop()


async def test_a_name_telegram_keeps_failing_to_resolve_gets_telegrams_error_and_the_others_resolve(
        world, reader_account, bot_account, db, caplog):
    world.tolerate_telethon_warnings = True  # Telethon warns at each of its retries
    world.add_channel("firstchan", "First")
    second = world.add_channel("secondchan", "Second")
    settings = await sim_settings(world, reader_account, bot_account, db.path,
                                  channels=("firstchan", "secondchan"))
    reader, bot = await daemon_clients(world, settings)  # as `chanwatch run` makes them
    world.inject_error("contacts.ResolveUsername", (500, "RPC_CALL_FAIL"), times=TELETHON_ATTEMPTS,
                       when=lambda r: r.username == "firstchan")
    service = Service(settings, db, reader, bot, scheduler=paused_scheduler(), now=lambda: world.now)
    with LoopClock() as clock:
        outcomes = await drive(world, clock, service.watchlist.resolve_configured())
    assert [o.status for o in outcomes] == ["error", "ok"]
    assert "RpcCallFailError" in outcomes[0].detail  # Telegram's error, not Telethon's bare ValueError
    assert rows(db.path, "SELECT id FROM channels WHERE username = 'secondchan'") == [(second.id,)]
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_configured_channel_that_got_no_answer_at_start_is_resolved_before_a_later_poll(
        world, reader, bot_client, db, tmp_path):
    ch = world.add_channel("latechan", "Late")
    world.post(ch, "worth the wait")
    world.inject_error("contacts.ResolveUsername", "timeout")
    service = Service(Settings(db_path=tmp_path / "archive.db", channels=("latechan",)), db, reader,
                      bot_client, scheduler=paused_scheduler(), now=lambda: world.now)
    with LoopClock() as clock:
        await drive(world, clock, service.start())
        [(status, retry_at)] = rows(db.path, "SELECT status, retry_at FROM channels"
                                             " WHERE username = 'latechan'")
        assert status == "error" and retry_at is not None  # on the watch list, backing off
        world.advance(3600)
        await drive(world, clock, service.poll_cycle())
    assert rows(db.path, "SELECT text FROM messages WHERE channel_id = ?", ch.id) == [("worth the wait",)]
    await service.stop()


async def test_a_full_disk_is_one_line_per_poll_cycle_and_the_first_poll_after_space_is_freed_reads_all(
        world, reader, bot_client, db, tmp_path, caplog):
    chans = [world.add_channel(f"fullchan{n}", f"Full {n}") for n in range(3)]
    await watched(db, world, *chans)
    service = Service(Settings(db_path=tmp_path / "archive.db"), db, reader, bot_client,
                      scheduler=paused_scheduler(), now=lambda: world.now)
    await service.poll_cycle()
    for ch in chans:
        for n in range(20):
            world.post(ch, f"{ch.title}: report number {n} with enough words to need new pages " * 3)
    world.advance(60)
    await set_disk_full(service, True)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await service.poll_cycle()
        await service.poll_cycle()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 2 and not any(r.exc_info for r in problems)  # one line per cycle
    assert all("the disk holding the archive" in r.getMessage() and "is full" in r.getMessage()
               and "3 channel(s) read but not stored" in r.getMessage() for r in problems)
    assert rows(db.path, "SELECT cursor, status, failures, retry_at FROM channels") == [
        (0, "ok", 0, None)] * 3
    assert rows(db.path, "SELECT count(*) FROM messages") == [(0,)]
    await set_disk_full(service, False)  # space freed
    await service.poll_cycle()
    assert rows(db.path, "SELECT count(*) FROM messages") == [(60,)]
    assert rows(db.path, "SELECT DISTINCT cursor FROM channels") == [(20,)]


async def test_an_alert_sent_while_the_archive_cannot_record_it_is_never_sent_again(
        world, reader, bot_client, bot_account, alice, db, fake_sleep, caplog):
    ch = world.add_channel("wirechan", "Wire")
    await watched(db, world, ch)
    await db.transaction(seed_alert_chat, alice.id, ["sanctions"], world.now)
    world.say(alice, bot_account, "/start")
    await world.settle()
    world.post(ch, "New sanctions announced")
    await Poller(db, reader, now=lambda: world.now, after_ingest=Percolator()).poll_once()
    dispatcher = Dispatcher(db, bot_client, now=lambda: world.now, sleep=fake_sleep)

    def read_only(on: bool) -> Callable[[sqlite3.Connection], None]:  # the disk remounted read-only
        return lambda conn: conn.execute(f"PRAGMA query_only = {int(on)}")

    await db.run(read_only(True))
    assert await dispatcher.dispatch_instant() == 0  # sent, but the mark could not be written
    assert await dispatcher.dispatch_instant() == 0  # nothing sent while it still cannot be
    [line, again] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "read-only" in line.getMessage() and "1 sent alert(s) are marked when it can be written" \
        in line.getMessage() and not line.exc_info and not again.exc_info
    await db.run(read_only(False))
    assert await dispatcher.dispatch_instant() == 0
    [alert] = await db.run(get_alerts, alice.id)
    assert alert.sent_at is not None
    assert len([t for t in bot_texts(world, alice, bot_account) if "New sanctions" in t]) == 1


async def test_a_connection_telethon_could_not_restore_is_made_again_by_the_next_poll_cycle(
        world, reader, bot_client, db, tmp_path, caplog):
    ch = world.add_channel("flakychan", "Flaky")
    await watched(db, world, ch)
    world.post(ch, "before the outage")
    world.inject_error("messages.GetHistory", OSError(101, "Network is unreachable"))
    service = Service(Settings(db_path=tmp_path / "archive.db"), db, reader, bot_client,
                      scheduler=paused_scheduler(), now=lambda: world.now)
    await service.poll_cycle()
    assert not reader.is_connected()  # Telethon's own reconnects failed: it gave up
    world.advance(3600)
    world.post(ch, "after the outage")
    await service.poll_cycle()
    assert reader.is_connected()
    assert [t for (t,) in rows(db.path, "SELECT text FROM messages ORDER BY message_id")] == [
        "before the outage", "after the outage"]
    assert any("reading account had lost its connection" in r.getMessage() for r in caplog.records)
