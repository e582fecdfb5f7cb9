"""Instant alerts through the real bot client and the simulator: content, escaping, length, pacing,
flood waits, blocked chats, failures with backoff, and crash safety (no duplicate: random ids)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from telethon import helpers, types

from bot.alerts import Dispatcher
from bot.commands import Commands
from bot.config import Settings
from bot.formatting import LIMIT
from bot.poller import Poller
from bot.resolve import resolve_channels
from bot.simulator import SimUser, World
from storage.database import Database
from storage.ingest import ingest_batch
from storage.outbox import get_alerts
from storage.percolator import Percolator
from storage.records import Channel, iso
from storage.rules import USER_PAUSE, add_rule, get_subscriber, set_paused
from tests.bot.conftest import FakeSleep
from tests.storage.factories import EMBASSY, MFA, STATEMENT, batch, fwd, msg
from tests.storage.outbox_helpers import archive, queue_alert, statement_with_forwards

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

NOW = datetime(2025, 12, 17, 12, 0, tzinfo=UTC)
ORIGIN = "Russian MFA 🇷🇺 (@MFARussia)"  # the origin line is bold too


class Crash(BaseException):
    """Stands for the process dying at a given point (not an error the dispatcher may catch)."""


class Clock:
    """A settable clock for the dispatcher."""

    def __init__(self, now: datetime = NOW) -> None:
        self.value = now

    def __call__(self) -> datetime:
        return self.value


async def subscribe(world: World, bot_account: SimUser, user: SimUser) -> None:
    """The user writes /start to the bot, so the bot's session knows how to reach them."""
    world.say(user, bot_account, "/start")
    await world.settle()


def received(world: World, user: SimUser, bot_account: SimUser) -> list:
    """Messages the bot sent to `user`, oldest first."""
    return [e for e in world.chat_log(user, with_=bot_account) if e.sender_id == bot_account.id]


def bold(entry) -> list[str]:
    """The texts of the bold entities of a received message (offsets are UTF-16)."""
    text = helpers.add_surrogate(entry.text)
    return [helpers.del_surrogate(text[e.offset:e.offset + e.length]) for e in entry.entities
            if isinstance(e, types.MessageEntityBold)]


def links(entry) -> list[str]:
    return [e.url for e in entry.entities if isinstance(e, types.MessageEntityTextUrl)]


def dispatcher(db: Database, client, sleep: FakeSleep, now: Clock | None = None, **kw) -> Dispatcher:
    return Dispatcher(db, client, now=now or Clock(), sleep=sleep, **kw)


async def test_an_alert_names_the_rule_highlights_the_match_and_links_every_sighting(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)

    def setup(conn):
        post_id = statement_with_forwards(conn)
        rule, _ = add_rule(conn, alice.id, "sanctions canada")
        queue_alert(conn, alice.id, post_id, [rule.id])

    await db.run(setup)
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 1
    [entry] = received(world, alice, bot_account)
    assert "Matched rule: sanctions canada" in entry.text
    assert "Russian MFA 🇷🇺 (@MFARussia) · 2025-12-17 10:00 UTC" in entry.text
    assert "forwarded by rusembc, +1 more" in entry.text
    assert STATEMENT in entry.text
    assert {"sanctions", "Canada"} <= set(bold(entry))
    assert {"https://t.me/MFARussia/10", "https://t.me/rusembc/500",
            "https://t.me/RussianEmbassyUK/700"} <= set(links(entry))
    [alert] = await db.run(get_alerts)
    assert alert.sent_at == iso(NOW)


async def test_a_sent_alert_is_not_sent_again(world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    await db.run(lambda conn: queue_alert(conn, alice.id, statement_with_forwards(conn)))
    d = dispatcher(db, bot_client, fake_sleep)
    assert await d.dispatch_instant() == 1
    assert await d.dispatch_instant() == 0
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 0
    assert len(received(world, alice, bot_account)) == 1


async def test_post_text_with_markup_characters_arrives_as_that_text(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    text = "Use <b>bold</b> & *stars* _here_ about sanctions"

    def setup(conn):
        [post_id] = archive(conn, msg(MFA, 10, text))
        rule, _ = add_rule(conn, alice.id, "sanctions")
        queue_alert(conn, alice.id, post_id, [rule.id])

    await db.run(setup)
    await dispatcher(db, bot_client, fake_sleep).dispatch_instant()
    [entry] = received(world, alice, bot_account)
    assert text in entry.text
    assert bold(entry) == [ORIGIN, "sanctions"]


async def test_a_ten_thousand_character_post_gives_one_message_under_the_limit_with_the_match(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    text = ("filler words & more " * 250 + "the new SANCTIONS were announced " + "tail text " * 500)[:10_000]

    def setup(conn):
        [post_id] = archive(conn, msg(MFA, 10, text))
        rule, _ = add_rule(conn, alice.id, "sanctions")
        queue_alert(conn, alice.id, post_id, [rule.id])

    await db.run(setup)
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 1
    [entry] = received(world, alice, bot_account)
    assert len(entry.text) < LIMIT
    assert bold(entry) == [ORIGIN, "SANCTIONS"]
    assert "…" in entry.text  # cut at both ends, around the match


async def test_a_post_seen_in_many_channels_lists_some_sightings_and_counts_the_rest(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    embassies = [Channel(5000 + i, f"embassy{i:02d}", f"Embassy {i}", 5000 + i, watched=True)
                 for i in range(14)]

    def setup(conn):
        [post_id] = archive(conn, msg(MFA, 10, STATEMENT))
        for i, ch in enumerate(embassies):
            ingest_batch(conn, batch(ch, fwd(ch, 100 + i, MFA, 10, STATEMENT, minutes=5 + i)))
        queue_alert(conn, alice.id, post_id)

    await db.run(setup)
    await dispatcher(db, bot_client, fake_sleep).dispatch_instant()
    [entry] = received(world, alice, bot_account)
    assert "forwarded by embassy00, +13 more" in entry.text
    assert "+7 more" in entry.text  # 15 sightings, 8 linked
    assert len(links(entry)) == 1 + 8  # the original's date link and eight sightings


async def test_five_alerts_for_one_chat_are_paced_a_second_apart(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)

    def setup(conn):
        for post_id in archive(conn, *(msg(MFA, i, f"post number {i}") for i in range(1, 6))):
            queue_alert(conn, alice.id, post_id)

    await db.run(setup)
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 5
    assert fake_sleep.calls == pytest.approx([1.0] * 4)
    assert [e.text.split("\n")[2] for e in received(world, alice, bot_account)] == [
        f"post number {i}" for i in range(1, 6)]


async def test_two_chats_are_interleaved_so_neither_waits_for_the_other(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    bob = world.add_user("Bob", username="bob_sub")
    await subscribe(world, bot_account, alice)
    await subscribe(world, bot_account, bob)

    def setup(conn):
        ids = archive(conn, *(msg(MFA, i, f"post {i}") for i in range(1, 5)))
        for post_id in ids[:2]:
            queue_alert(conn, alice.id, post_id)
        for post_id in ids[2:]:
            queue_alert(conn, bob.id, post_id)

    await db.run(setup)
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 4
    # alice, bob (1/25 s apart overall), then alice again one second after her first message
    assert fake_sleep.calls == pytest.approx([0.04, 0.96, 0.04])


async def test_a_short_flood_wait_is_slept_through_and_the_alert_delivered(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    await db.run(lambda conn: queue_alert(conn, alice.id, statement_with_forwards(conn)))
    world.inject_flood("messages.SendMessage", 7)
    assert await dispatcher(db, bot_client, fake_sleep, flood_max_wait=60).dispatch_instant() == 1
    assert 7 in fake_sleep.calls
    assert len(received(world, alice, bot_account)) == 1


async def test_a_long_flood_wait_holds_the_alerts_until_telegram_allows_without_counting_a_failure(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)

    def setup(conn):
        for post_id in archive(conn, msg(MFA, 1, "one"), msg(MFA, 2, "two")):
            queue_alert(conn, alice.id, post_id)

    await db.run(setup)
    clock = Clock()
    d = dispatcher(db, bot_client, fake_sleep, clock, flood_max_wait=60)
    world.inject_flood("messages.SendMessage", 600)
    assert await d.dispatch_instant() == 0
    assert 600 not in fake_sleep.calls
    alerts = await db.run(get_alerts)
    assert {(a.attempts, a.next_try_at) for a in alerts} == {(0, iso(NOW + timedelta(seconds=600)))}
    sends = world.requests["messages.SendMessage"]
    clock.value = NOW + timedelta(seconds=300)
    assert await d.dispatch_instant() == 0
    assert world.requests["messages.SendMessage"] == sends  # held: not even a try
    clock.value = NOW + timedelta(seconds=601)
    assert await d.dispatch_instant() == 2
    assert len(received(world, alice, bot_account)) == 2


async def test_a_chat_that_blocked_the_bot_is_paused_with_a_reason_and_others_still_get_theirs(
        world, bot_client, bot_account, alice, db, fake_sleep, caplog) -> None:
    bob = world.add_user("Bob", username="bob_sub")
    await subscribe(world, bot_account, alice)
    await subscribe(world, bot_account, bob)

    def setup(conn):
        ids = archive(conn, msg(MFA, 1, "one"), msg(MFA, 2, "two"), msg(MFA, 3, "three"))
        queue_alert(conn, alice.id, ids[0])
        queue_alert(conn, alice.id, ids[1])
        queue_alert(conn, bob.id, ids[2])

    await db.run(setup)
    world.block(alice, bot_account)
    d = dispatcher(db, bot_client, fake_sleep)
    assert await d.dispatch_instant() == 1
    assert len(received(world, bob, bot_account)) == 1
    subscriber = await db.run(get_subscriber, alice.id)
    assert subscriber.paused and "blocked the bot" in (subscriber.paused_reason or "")
    assert any("paused" in r.getMessage() and str(alice.id) in r.getMessage() for r in caplog.records)
    alerts = await db.run(get_alerts, alice.id)
    assert [(a.sent_at, a.attempts) for a in alerts] == [(None, 0), (None, 0)]  # still queued
    sends = world.requests["messages.SendMessage"]
    assert await d.dispatch_instant() == 0
    assert world.requests["messages.SendMessage"] == sends  # never retried while paused


async def test_a_chat_the_bot_cannot_address_is_paused(
        world, bot_client, bot_account, db, fake_sleep) -> None:
    stranger = world.add_user("Stranger", username="never_wrote")
    await db.run(lambda conn: queue_alert(conn, stranger.id, statement_with_forwards(conn)))
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 0
    subscriber = await db.run(get_subscriber, stranger.id)
    assert subscriber.paused and "message the bot first" in (subscriber.paused_reason or "")


async def test_any_other_send_error_counts_an_attempt_with_backoff_and_nothing_raises(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)
    await db.run(lambda conn: queue_alert(conn, alice.id, statement_with_forwards(conn)))
    await bot_client.disconnect()
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 0
    [alert] = await db.run(get_alerts)
    assert alert.attempts == 1 and alert.sent_at is None and alert.last_error
    assert alert.next_try_at == iso(NOW + timedelta(seconds=30))
    assert not (await db.run(get_subscriber, alice.id)).paused


async def test_a_crash_between_send_and_mark_sends_no_alert_twice(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)

    def setup(conn):
        return [queue_alert(conn, alice.id, p)
                for p in archive(conn, msg(MFA, 1, "one"), msg(MFA, 2, "two"), msg(MFA, 3, "three"))]

    first, second, third = await db.run(setup)

    def crash_on_second(ids) -> None:
        if second in ids:
            raise Crash

    with pytest.raises(Crash):
        await dispatcher(db, bot_client, fake_sleep, before_mark=crash_on_second).dispatch_instant()
    assert [e.text.split("\n")[2] for e in received(world, alice, bot_account)] == ["one", "two"]
    restarted = dispatcher(db, bot_client, FakeSleep())  # a new process on the same archive
    assert await restarted.dispatch_instant() == 1  # "two" again: Telegram refuses its random_id
    assert await restarted.dispatch_instant() == 0
    texts = [e.text.split("\n")[2] for e in received(world, alice, bot_account)]
    assert texts == ["one", "two", "three"]
    assert all(a.sent_at for a in await db.run(get_alerts))


async def test_a_crash_before_a_send_loses_nothing(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await subscribe(world, bot_account, alice)

    def setup(conn):
        return [queue_alert(conn, alice.id, p) for p in archive(conn, msg(MFA, 1, "one"), msg(MFA, 2, "two"))]

    first, _ = await db.run(setup)

    def crash_first(ids) -> None:
        if first in ids:
            raise Crash

    with pytest.raises(Crash):
        await dispatcher(db, bot_client, fake_sleep, before_send=crash_first).dispatch_instant()
    assert received(world, alice, bot_account) == []
    assert await dispatcher(db, bot_client, FakeSleep()).dispatch_instant() == 2
    assert [e.text.split("\n")[2] for e in received(world, alice, bot_account)] == ["one", "two"]


async def test_a_database_error_while_marking_stops_the_cycle_without_raising(
        world, bot_client, bot_account, alice, db, fake_sleep, caplog) -> None:
    await subscribe(world, bot_account, alice)
    await db.run(lambda conn: [queue_alert(conn, alice.id, p)
                                       for p in archive(conn, msg(MFA, 1, "one"), msg(EMBASSY, 2, "two"))])

    def broken(ids) -> None:
        raise OSError("disk I/O error")

    assert await dispatcher(db, bot_client, fake_sleep, before_mark=broken).dispatch_instant() == 0
    assert len(received(world, alice, bot_account)) == 1  # stopped after the first unrecorded send
    assert any("stopped early" in r.getMessage() for r in caplog.records)


async def test_end_to_end_a_statement_forwarded_by_three_embassies_gives_alice_one_alert_naming_them(
        world, reader, bot_client, bot_account, alice, db, fake_sleep) -> None:
    mfa = world.add_channel("MFARussia", "Russian MFA")
    embassies = [world.add_channel(name, title) for name, title in (
        ("rusembc", "Russia in Canada"), ("RussianEmbassyUK", "Russian Embassy UK"),
        ("RusEmbUSA", "Russian Embassy USA"))]
    world.post(mfa, "Lunch menu of the week")
    original = world.post(mfa, STATEMENT)
    for embassy in embassies:
        world.advance(minutes=3)
        world.forward(mfa, original.id, embassy)
    await subscribe(world, bot_account, alice)
    await db.transaction(add_rule, alice.id, "sanctions canada", NOW)
    await resolve_channels(db, reader, ["MFARussia", *(e.username for e in embassies)])
    poller = Poller(db, reader, now=lambda: world.now, sleep=FakeSleep(), after_ingest=Percolator())
    await poller.poll_once()

    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 1
    [entry] = received(world, alice, bot_account)
    assert "Matched rule: sanctions canada" in entry.text
    assert "forwarded by " in entry.text and ", +2 more" in entry.text
    urls = set(links(entry))
    for embassy in embassies:
        assert any(u.startswith(f"https://t.me/{embassy.username}/") for u in urls), embassy.username
    assert f"https://t.me/MFARussia/{original.id}" in urls
    assert await dispatcher(db, bot_client, fake_sleep).dispatch_instant() == 0


async def write_to_the_bot(world: World, bot_client, bot_account: SimUser, user: SimUser,
                           db: Database) -> None:
    """`user` writes /start while the bot's commands run (the alert chat is `user`)."""
    commands = Commands(db, bot_client, Settings(alert_chat=user.id), now=lambda: NOW)
    commands.register()
    try:
        await subscribe(world, bot_account, user)
    finally:
        commands.unregister()


async def test_a_chat_paused_as_unreachable_resumes_when_it_writes_to_the_bot_and_gets_its_alert(
        world, bot_client, bot_account, alice, db, fake_sleep) -> None:
    await db.run(lambda conn: queue_alert(conn, alice.id, statement_with_forwards(conn)))
    send = dispatcher(db, bot_client, fake_sleep)
    assert await send.dispatch_instant() == 0  # alice never wrote: the bot cannot reach her
    assert (await db.run(get_subscriber, alice.id)).paused
    await write_to_the_bot(world, bot_client, bot_account, alice, db)
    assert not (await db.run(get_subscriber, alice.id)).paused
    assert await send.dispatch_instant() == 1
    assert any("Lavrov" in e.text for e in received(world, alice, bot_account))


async def test_a_chat_that_paused_itself_stays_paused_when_it_writes(
        world, bot_client, bot_account, alice, db) -> None:
    await db.run(set_paused, alice.id, True, USER_PAUSE)
    await write_to_the_bot(world, bot_client, bot_account, alice, db)
    assert (await db.run(get_subscriber, alice.id)).paused
