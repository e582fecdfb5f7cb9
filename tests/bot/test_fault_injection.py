"""The daemon through a simulated day of faults (issue #12): flood waits, transient RPC errors, dropped
connections and unanswered requests at random requests, and the archive's disk full for a while.

At the end every post the channels published is archived exactly once, every matching post alerted
exactly once, and the daemon still runs. Time moves only through `world.advance`, the service's sleep
(which advances the World) and the loop clock `drive` moves through each stall: nothing waits.
Before the day: the simulator's faults themselves, and one test for each thing the day found.

What "archived" means for a deleted message: a message still in its channel at the end must be in
the archive (one `messages` row); a message deleted before the daemon read it may be missing, since
Telegram no longer serves it; one the daemon did read stays archived, marked deleted by the recheck.
A statement (a post of the ministry or an embassy, with its forwards and header-less copies) is one
row of `posts` when any of its messages is archived, and none otherwise.

The copy desk copies statements as first published: a copy of an edited text made before the daemon
saw the edit (the recheck's job) is, until then, a statement of its own, and alerts on its own.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import heapq
import logging
import random
import re
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
from storage.outbox import claim_random_ids, get_alerts
from storage.percolator import Percolator
from storage.records import Channel
from storage.rules import add_rule, ensure_subscriber, seed_alert_chat, set_mode
from tests.bot.commands_support import Harness, until
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


async def test_a_reply_telegram_never_answers_frees_its_command_after_the_timeout(
        world, bot_client, bot_account, alice, db, caplog):
    harness = Harness(world, db, bot_client, bot_account)
    commands = harness.start()
    await harness.allow(alice)
    world.inject_error("messages.SendMessage", "timeout")
    with LoopClock() as clock:
        world.say(alice, bot_account, "/help")

        async def answered() -> None:
            await until(lambda: world.requests["messages.SendMessage"] > 0)  # the reply is on its way
            await commands.drain()

        await drive(world, clock, answered(), give_up_after=2 * REQUEST_TIMEOUT)
        assert clock.offset >= REQUEST_TIMEOUT  # the loop's clock passed the timeout; no real wait
    assert harness.answers(alice) == []
    [line] = [r for r in caplog.records if r.name == "chanwatch.commands"]
    assert "/help" in line.getMessage() and "no answer from Telegram" in line.getMessage()
    assert line.exc_info is None  # one line, no traceback
    assert "/search" in (await harness.ask(alice, "/help")).text  # the bot still answers
    harness.close()


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
    assert all("the next cycle tries again" in r.getMessage() and "run the command" not in r.getMessage()
               for r in problems)  # advice for a daemon, not for a command
    assert rows(db.path, "SELECT cursor, status, failures, retry_at FROM channels") == [
        (0, "ok", 0, None)] * 3
    assert rows(db.path, "SELECT count(*) FROM messages") == [(0,)]
    await set_disk_full(service, False)  # space freed
    await service.poll_cycle()
    assert rows(db.path, "SELECT count(*) FROM messages") == [(60,)]
    assert rows(db.path, "SELECT DISTINCT cursor FROM channels") == [(20,)]


async def one_alert_pending(world, reader, bot_client, bot_account, alice, db, fake_sleep) -> Dispatcher:
    """Alice's chat has one keyword alert queued for a post just polled; the dispatcher that sends it."""
    ch = world.add_channel("wirechan", "Wire")
    await watched(db, world, ch)
    await db.transaction(seed_alert_chat, alice.id, ["sanctions"], world.now)
    world.say(alice, bot_account, "/start")
    await world.settle()
    world.post(ch, "New sanctions announced")
    await Poller(db, reader, now=lambda: world.now, after_ingest=Percolator()).poll_once()
    return Dispatcher(db, bot_client, now=lambda: world.now, sleep=fake_sleep)


async def test_an_alert_sent_while_the_archive_cannot_record_it_is_never_sent_again(
        world, reader, bot_client, bot_account, alice, db, fake_sleep, caplog):
    dispatcher = await one_alert_pending(world, reader, bot_client, bot_account, alice, db, fake_sleep)

    def read_only(on: bool) -> Callable[[sqlite3.Connection], None]:  # the disk remounted read-only
        return lambda conn: conn.execute(f"PRAGMA query_only = {int(on)}")

    [pending] = await db.run(get_alerts, alice.id)
    await db.transaction(claim_random_ids, [pending.id])  # claimed by an earlier cycle (a flood wait)
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


async def test_an_alert_is_not_sent_while_the_archive_cannot_fix_its_random_id(
        world, reader, bot_client, bot_account, alice, db, fake_sleep, caplog):
    dispatcher = await one_alert_pending(world, reader, bot_client, bot_account, alice, db, fake_sleep)
    await db.run(lambda conn: conn.execute("PRAGMA query_only = 1"))
    assert await dispatcher.dispatch_instant() == 0  # a send without a stored random_id could repeat
    assert world.requests["messages.SendMessage"] == 0
    assert any("read-only" in r.getMessage() for r in caplog.records)
    await db.run(lambda conn: conn.execute("PRAGMA query_only = 0"))
    assert await dispatcher.dispatch_instant() == 1
    [alert] = await db.run(get_alerts, alice.id)
    assert alert.sent_at is not None and alert.random_id is not None


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


# --- a day of faults ------------------------------------------------------------------------------


DAY_START = dt.datetime(2025, 12, 2, 0, 0, tzinfo=dt.UTC)
POLL = 300  # CHANWATCH_POLL_INTERVAL of the simulated day
RECHECK = 3600
DIGEST_HOURS = (8, 20)
FULL_FROM, FULL_UNTIL = 14 * 3600, 14 * 3600 + 40 * 60  # the disk is full for 40 minutes
LAST_EVENT = 23 * 3600

WORDS = ("ministry", "statement", "regional", "partners", "council", "meeting", "cooperation", "border",
         "trade", "energy", "security", "talks", "delegation", "visit", "agenda", "summit", "press",
         "officials", "agreement", "forum", "dialogue", "northern", "southern", "program", "support")


@dataclass(eq=False)
class Statement:
    """One post as its author published it, with the forwards, copies, edit and deletion it gets."""

    ref: str
    origin: SimChannel
    text: str
    at: int
    edit: tuple[int, str] | None = None
    delete_at: int | None = None
    forwards: list[tuple[SimChannel, int]] = field(default_factory=list)
    copies: list[tuple[SimChannel, int]] = field(default_factory=list)
    #: (channel, message id) of every message that carries it, filled as the day runs.
    messages: list[tuple[SimChannel, int]] = field(default_factory=list)
    original: int | None = None

    @property
    def final_text(self) -> str:
        return self.edit[1] if self.edit else self.text


def sentence(rng: random.Random, ref: str, *, extra: str = "") -> str:
    words = rng.sample(WORDS, 11)
    if extra:
        words.insert(rng.randrange(len(words)), extra)
    return f"Statement {ref}: " + " ".join(words) + "."


def plan_day(rng: random.Random, ministry: SimChannel, embassies: list[SimChannel], copydesk: SimChannel,
             statements: int = 36) -> list[Statement]:
    """The day's statements: the ministry's (forwarded by embassies, copied by the copy desk, some
    edited, some deleted soon or late) and a few of the embassies' own."""
    out: list[Statement] = []

    def later(at: int, low: int, high: int) -> int:  # everything happens before the day ends
        return min(at + rng.randrange(low, high), LAST_EVENT)

    for n in range(statements):
        own = n % 6 == 5
        origin = embassies[n % len(embassies)] if own else ministry
        extra = rng.choice(("sanctions", "embargo", "", "", ""))
        st = Statement(f"ref{n:03d}", origin, sentence(rng, f"ref{n:03d}", extra=extra),
                       at=rng.randrange(0, 22 * 3600))
        roll = rng.random()
        if roll < 0.12:
            st.delete_at = later(st.at, 30, 200)  # likely gone before a poll sees it
        elif roll < 0.24:
            st.delete_at = later(st.at, 2 * 3600, 6 * 3600)
        elif roll < 0.42:
            added = "sanctions" if "sanctions" not in st.text else "updated"
            st.edit = (later(st.at, 600, 4 * 3600), st.text[:-1] + f" {added}.")
        if not own:
            for embassy in embassies:
                if rng.random() < 0.5:
                    st.forwards.append((embassy, later(st.at, 60, 3 * 3600)))
            if rng.random() < 0.25:
                st.copies.append((copydesk, later(st.at, 60, 3 * 3600)))
        out.append(st)
    # an alert waits to be sent when the disk fills (right after the poll that archived it), and a
    # statement and its forward come while it is full
    for n, at in ((statements, FULL_FROM - 120), (statements + 1, FULL_FROM + 600)):
        ref = f"ref{n:03d}"
        out.append(Statement(ref, ministry, sentence(rng, ref, extra="sanctions"), at=at))
    out[-1].forwards.append((embassies[0], FULL_FROM + 900))
    return out


def schedule(world: World, statements: list[Statement]) -> list[tuple[int, int, Callable[[], None]]]:
    """Heap of (seconds into the day, order, action) that publish, forward, copy, edit and delete."""
    events: list[tuple[int, int, Callable[[], None]]] = []

    def add(at: int, action: Callable[[], None]) -> None:
        heapq.heappush(events, (at, len(events), action))

    for st in statements:
        def publish(st: Statement = st) -> None:
            msg = world.post(st.origin, st.text)
            st.original = msg.id
            st.messages.append((st.origin, msg.id))

        add(st.at, publish)
        for dst, at in st.forwards:
            def forward(st: Statement = st, dst: SimChannel = dst) -> None:
                if st.original in st.origin.messages:
                    st.messages.append((dst, world.forward(st.origin, st.original, dst).id))
            add(at, forward)
        for dst, at in st.copies:
            def copy(st: Statement = st, dst: SimChannel = dst) -> None:
                if st.original in st.origin.messages:  # as first published (see the module docstring)
                    st.messages.append((dst, world.post(dst, st.text).id))
            add(at, copy)
        if st.edit:
            def edit(st: Statement = st) -> None:
                world.edit(st.origin, st.original, st.edit[1])
            add(st.edit[0], edit)
        if st.delete_at is not None:
            def delete(st: Statement = st) -> None:
                world.delete(st.origin, st.original)
            add(st.delete_at, delete)
    return events


async def run_day(world: World, service: Service, clock: LoopClock, events: list, *, bob: SimUser) -> None:
    """Polls every POLL seconds, rechecks every RECHECK, instant alerts after each poll, bob's digests
    at DIGEST_HOURS, and the disk full once, from FULL_FROM to FULL_UNTIL."""
    full = False
    for tick in range(0, 24 * 3600 + 1, POLL):
        while events and events[0][0] <= tick:
            at, _, action = heapq.heappop(events)
            world.now = max(world.now, DAY_START + dt.timedelta(seconds=at))
            action()
        world.now = max(world.now, DAY_START + dt.timedelta(seconds=tick))
        if full and tick >= FULL_UNTIL:
            full = False
            await set_disk_full(service, False)  # space freed
        await drive(world, clock, service.poll_cycle())
        if not full and FULL_FROM <= tick < FULL_UNTIL:
            full = True  # right after a poll: its alerts are sent on the full disk
            await set_disk_full(service, True)
        await drive(world, clock, service.dispatcher.dispatch_instant())
        if tick % RECHECK == 0:
            await drive(world, clock, service.recheck_cycle())
        if tick % 3600 == 0 and tick // 3600 in DIGEST_HOURS:
            await drive(world, clock, service.dispatcher.send_digest(bob.id))
    assert not events, "the day ended before all its events"


async def quiet_hours(world: World, service: Service, clock: LoopClock, bob: SimUser, hours: int = 3) -> None:
    """After the faults: enough clean cycles for every backoff and deferral to run out."""
    for tick in range(POLL, hours * 3600 + 1, POLL):
        world.advance(POLL)
        await drive(world, clock, service.poll_cycle())
        if tick % RECHECK == 0:
            await drive(world, clock, service.recheck_cycle())
        await drive(world, clock, service.dispatcher.dispatch_instant())
    await drive(world, clock, service.dispatcher.send_digest(bob.id))


def world_sleep(world: World) -> Callable[[float], Awaitable[None]]:
    """The daemon's sleep in simulated time: it moves the World's clock and waits for nothing."""
    async def sleep(seconds: float) -> None:
        world.advance(seconds)
        await asyncio.sleep(0)
    return sleep


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_day_of_faults_archives_every_post_once_alerts_each_match_once_and_keeps_running(
        seed, world, reader_account, bot_account, db, caplog):
    world.tolerate_telethon_warnings = True  # Telethon warns at each 500 it retries; counted below
    caplog.set_level(logging.INFO)
    world.now = DAY_START - dt.timedelta(hours=1)
    alice = world.add_user("Alice", username="alice_sub")
    bob = world.add_user("Bob", username="bob_sub")
    ministry = world.add_channel("mfa_sim", "Ministry")
    embassies = [world.add_channel(f"embassy_{n}", f"Embassy {n}") for n in ("one", "two")]
    copydesk = world.add_channel("copydesk", "Copy desk")
    channels = [ministry, *embassies, copydesk]
    statements = plan_day(random.Random(seed), ministry, embassies, copydesk)
    events = schedule(world, statements)
    settings = await sim_settings(world, reader_account, bot_account, db.path,
                                  channels=tuple(c.username for c in channels), alert_chat=alice.id,
                                  keywords=("sanctions",), poll_interval=POLL, recheck_interval=RECHECK)
    reader, bot = await daemon_clients(world, settings)
    service = Service(settings, db, reader, bot, scheduler=paused_scheduler(), now=lambda: world.now,
                      sleep=world_sleep(world))
    await db.transaction(ensure_subscriber, bob.id, world.now, allowed=True)
    await db.transaction(set_mode, bob.id, "digest", "0 8,20 * * *")
    await db.transaction(add_rule, bob.id, "embargo", world.now)
    # the bot sends few requests, and a recheck only when there is a window to read: more faults there
    chaos = world.chaos(rate=0.05, seed=seed, rates={
        "messages.SendMessage": 0.4, "channels.GetMessages": 0.15, "bots.SetBotCommands": 0.5},
        lost_share=0.25)

    with LoopClock() as clock:
        await drive(world, clock, service.start())  # resolving the channels meets the faults too
        chaos.active = False  # the bot's answers to commands are not under test here
        await drive(world, clock, service.poll_cycle())  # connected again, if a fault lost a connection
        for user in (alice, bob):
            world.say(user, bot_account, "/start")
        await world.settle()
        chaos.active = True
        before = {u.id: len(bot_texts(world, u, bot_account)) for u in (alice, bob)}
        await run_day(world, service, clock, events, bob=bob)
        chaos.stop()
        await quiet_hours(world, service, clock, bob)
        # -- the daemon still runs, and a clean poll works
        assert service.scheduler.running and reader.is_connected() and bot.is_connected()
        report = await drive(world, clock, service.poller.poll_once())
        assert all(r.error is None for r in report.channels), report
        assert not [s for s in world.stalls() if s.held], "a request is still waiting for an answer"
    assert set(chaos.injected) == {"flood", "rpc", "drop", "timeout"}, chaos.injected
    assert {f.request for f in chaos.faults} >= {"messages.GetHistory", "channels.GetMessages",
                                                 "messages.SendMessage"}
    assert world.reconnects[reader_account.id] >= 1

    # -- every message still published is archived once; archived ones deleted since are marked
    archived = {(c, m): gone for c, m, gone in rows(db.path, "SELECT channel_id, message_id, deleted_at"
                                                             " FROM messages")}
    published = {(ch.id, mid) for st in statements for ch, mid in st.messages}
    live = {(ch.id, mid) for ch in channels for mid in ch.messages}
    assert live <= set(archived), sorted(live - set(archived))
    assert set(archived) <= published
    for key, deleted_at in archived.items():
        assert (deleted_at is not None) == (key not in live), key

    # -- one post per statement that has an archived message
    posts = [t for (t,) in rows(db.path, "SELECT text FROM posts")]
    refs = collections.Counter(m for t in posts for m in re.findall(r"ref\d{3}", t))
    assert all(n == 1 for n in refs.values()), refs
    seen = {st.ref for st in statements if any((c.id, m) in archived for c, m in st.messages)}
    assert set(refs) == seen and len(posts) == len(seen)

    # -- alerts: each matching archived statement exactly once, nothing else
    for user, word in ((alice, "sanctions"), (bob, "embargo")):
        sent = bot_texts(world, user, bot_account)[before[user.id]:]
        got = collections.Counter(m for t in sent for m in set(re.findall(r"ref\d{3}", t)))
        expected = {st.ref for st in statements if st.ref in seen and word in st.final_text}
        assert set(got) == expected, (user.first_name, sorted(set(got) ^ expected))
        assert all(n == 1 for n in got.values()), got
    assert rows(db.path, "SELECT count(*) FROM alerts WHERE sent_at IS NULL") == [(0,)]

    # -- the log: the full disk said so, no traceback for these faults, a few lines for each
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("disk holding the archive" in r.getMessage() and "is full" in r.getMessage() for r in records)
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records if r.exc_info][:3]
    full_cycles = (FULL_UNTIL - FULL_FROM) // POLL + 1
    assert len(records) <= 3 * sum(chaos.injected.values()) + 2 * full_cycles, \
        collections.Counter(r.getMessage()[:50] for r in records).most_common(5)
    await service.stop()
