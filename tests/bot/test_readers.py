"""Several readers, one archive (issue #17): two daemons, each with its own Telegram account, share
one archive — a PostgreSQL server, or one SQLite file — and the simulator. The channels are split
between them with no overlap; one of them is killed in the middle of a poll; the survivor takes
its channels over within two lease periods; every post is archived once and every alert reaches
the chat once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telethon import TelegramClient

from bot.config import Settings
from bot.service import Service
from bot.simulator import World, connect_client
from bot.simulator.world import SimChannel, SimUser
from storage.database import Database
from storage.location import ServerUrl

LEASE_S = 60
EMBASSIES = ("rusembc", "RussianEmbassyUK", "RusEmbUSA", "rusembfr", "RusEmbassyJ")


def paused_scheduler() -> AsyncIOScheduler:
    """A started scheduler that runs nothing by itself: the test calls the job bodies."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    return scheduler


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_archive(request: pytest.FixtureRequest, tmp_path: Path) -> Path | ServerUrl:
    """Where both daemons keep the archive: one SQLite file, or one PostgreSQL schema."""
    if request.param == "sqlite":
        return tmp_path / "shared.db"
    return request.getfixturevalue("pg_url")


@dataclass
class Reader:
    """One daemon: its Telegram account and clients, its own connection to the archive, its Service."""

    name: str
    account: SimUser
    user: TelegramClient
    bot: TelegramClient
    db: Database
    service: Service


@pytest.fixture
async def readers(world: World, bot_account: SimUser, alice: SimUser, shared_archive: Path | ServerUrl,
                  fake_sleep: Any) -> AsyncIterator[list[Reader]]:
    """Two daemons ('a' then 'b') over the shared archive, not started."""
    world.per_account_access_hashes = True  # each account must read with its own hash, as on Telegram
    made: list[Reader] = []
    bots = [await connect_client(world, as_user=bot_account, bot=True, flood_sleep_threshold=0)
            for _ in range(2)]
    for name, bot in zip(("a", "b"), bots, strict=True):
        account = world.add_user(f"Reader {name}", username=f"reader_{name}")
        user = await connect_client(world, as_user=account, flood_sleep_threshold=0)
        db = await Database.open(shared_archive)
        settings = Settings(db_path=shared_archive, channels=("MFARussia", *EMBASSIES), alert_chat=alice.id,
                            keywords=("sanctions",), reader=name, lease_seconds=LEASE_S)
        service = Service(settings, db, user, bot, scheduler=paused_scheduler(), now=lambda: world.now,
                          sleep=fake_sleep)
        made.append(Reader(name, account, user, bot, db, service))
    yield made
    for reader in made:
        await reader.service.stop()
        await reader.db.close()


def ministry_world(world: World) -> tuple[SimChannel, list[SimChannel]]:
    mfa = world.add_channel("MFARussia", "МИД России")
    return mfa, [world.add_channel(name, f"Embassy {name}") for name in EMBASSIES]


async def elapse(world: World, readers: list[Reader], seconds: int) -> None:
    """Time passes as the scheduler's lease job would see it: the live readers claim every third of
    a lease period."""
    while seconds > 0:
        step = min(seconds, LEASE_S // 3)
        world.advance(step)
        seconds -= step
        for reader in readers:
            await reader.service.lease_cycle()


async def statement(world: World, readers: list[Reader], mfa: SimChannel, embassies: list[SimChannel],
                    text: str) -> None:
    """The ministry posts; every embassy forwards it a minute later."""
    post = world.post(mfa, text)
    await elapse(world, readers, 60)
    for embassy in embassies:
        world.forward(mfa, post.id, embassy)


async def rows(db: Database, sql: str) -> list[tuple]:
    return await db.run(lambda conn: [tuple(r) for r in conn.execute(sql).fetchall()])


STATEMENTS = ("New sanctions against Canada announced", "Further sanctions on timber exports")


def alerts_received(world: World, alice: SimUser, bot_account: SimUser) -> Counter[str]:
    """How many of the bot's messages to the alert chat carry each statement."""
    sent = [e.text for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id]
    return Counter(statement for text in sent for statement in STATEMENTS if statement in text)


async def test_two_readers_split_the_channels_and_the_survivor_of_a_kill_mid_poll_takes_them_over(
        world, readers, bot_account, alice):
    mfa, embassies = ministry_world(world)
    a, b = readers
    await a.service.start()
    await b.service.start()
    everything = {mfa.id, *(e.id for e in embassies)}
    assert a.service.leases.held == everything and not b.service.leases.held  # a was first
    assert a.service.leases.is_dispatcher() and not b.service.leases.is_dispatcher()
    assert not b.bot.is_connected()  # a standby keeps the bot's updates for the dispatcher
    world.say(alice, bot_account, "/start")  # only a's bot hears her: b's must find her in the archive
    await world.settle()

    await elapse(world, readers, LEASE_S // 3)  # a sees two readers and hands back half; b takes it
    held_a, held_b = a.service.leases.held, b.service.leases.held
    assert held_a | held_b == everything and not held_a & held_b and len(held_a) == len(held_b) == 3

    await statement(world, readers, mfa, embassies, STATEMENTS[0])
    world.reset_requests()
    await asyncio.gather(a.service.poll_cycle(), b.service.poll_cycle())  # both write the same post
    assert world.requests["messages.GetHistory"] == 6  # each channel read once, by its holder
    assert await a.service.dispatcher.dispatch_instant() == 1
    assert await b.service.dispatcher.dispatch_instant() == 0  # not the dispatcher

    # a is killed in the middle of a poll: its second channel's read never returns
    await elapse(world, readers, 60)
    await statement(world, readers, mfa, embassies, STATEMENTS[1])
    assert (a.service.leases.held, b.service.leases.held) == (held_a, held_b)  # the split holds
    second = sorted(held_a)[1]
    world.inject_error("messages.GetHistory", "timeout", when=lambda r: r.peer.channel_id == second)
    stalled = world.next_stall()
    polling = asyncio.create_task(a.service.poll_cycle())
    await stalled
    polling.cancel()
    await asyncio.gather(polling, return_exceptions=True)
    died = world.now
    await a.db.close()  # the process is gone: no release, no more claims
    await a.user.disconnect()
    await a.bot.disconnect()
    readers.remove(a)

    await b.service.poll_cycle()  # b goes on with its own share while a's leases have not lapsed
    assert b.service.leases.held == held_b
    taken_at = None
    for _ in range(2 * 3 + 1):  # claims a third of a period apart: two periods at most
        world.advance(LEASE_S // 3)
        await b.service.lease_cycle()
        if b.service.leases.held == everything and b.service.leases.is_dispatcher():
            taken_at = world.now
            break
    assert taken_at is not None and (taken_at - died).total_seconds() <= 2 * LEASE_S
    assert b.bot.is_connected()  # the survivor now runs the bot

    await b.service.poll_cycle()
    sent = await b.service.dispatcher.dispatch_instant()
    assert sent == 1

    messages = await rows(b.db, "SELECT channel_id, message_id, count(*) FROM messages "
                                "GROUP BY channel_id, message_id")
    assert len(messages) == 2 * len(everything) and all(n == 1 for *_, n in messages)
    posts = await rows(b.db, "SELECT count(*) FROM posts")
    assert posts == [(2,)]  # one post per ministry statement, however many forwards
    received = alerts_received(world, alice, bot_account)
    assert received == Counter(STATEMENTS)  # each once: one from a, one from b after the takeover
    assert await rows(b.db, "SELECT count(*) FROM alerts WHERE sent_at IS NULL") == [(0,)]


async def test_a_reader_that_stops_cleanly_hands_its_channels_over_at_once(world, readers):
    mfa, embassies = ministry_world(world)
    a, b = readers
    await a.service.start()
    await b.service.start()
    await elapse(world, readers, LEASE_S // 3)
    assert len(b.service.leases.held) == 3
    await a.service.stop()  # releases its leases and the role
    readers.remove(a)
    await a.db.close()
    world.advance(1)
    await b.service.lease_cycle()
    assert b.service.leases.held == {mfa.id, *(e.id for e in embassies)}
    assert b.service.leases.is_dispatcher()
