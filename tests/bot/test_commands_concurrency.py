"""Commands run concurrently: a burst of searches is answered while a poll completes, a slow command
does not hold up the others, and a client with sequential updates still gets concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.config import Settings
from bot.poller import Poller
from bot.resolve import resolve_channels
from bot.simulator import connect_client
from storage.search import search
from tests.bot.commands_support import Harness, fill, sanction_texts, until
from tests.bot.conftest import FakeSleep

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


async def test_200_concurrent_searches_are_answered_while_a_poll_completes(h, world, db, reader) -> None:
    users = [world.add_user(f"User{i}") for i in range(20)]
    h.start()
    await h.allow(*users)
    await db.run(fill, sanction_texts(12))
    channel = world.add_channel("arcticnews", "Arctic News")
    for i in range(30):
        world.post(channel, f"Arctic shipping report {i}: ice is thinner this year in sector {i}")
    [outcome] = await resolve_channels(db, reader, ["@arcticnews"])
    assert outcome.status == "ok"
    poller = Poller(db, reader, now=lambda: world.now, sleep=FakeSleep())

    for i in range(200):
        world.say(users[i % len(users)], h.bot_account, f"/search sanctions {i % 12}")
    report, _ = await asyncio.gather(poller.poll_once(), world.settle())

    assert report.new_messages == 30
    answers = [a for u in users for a in h.answers(u)]
    assert len(answers) == 200
    assert all(a.text.startswith("🔎 1 post for sanctions") for a in answers)
    assert (await db.run(search, "arctic shipping")).total == 30


async def test_a_slow_command_does_not_hold_up_others(h, world, alice) -> None:
    admin = world.add_user("Admin")
    release = asyncio.Event()

    async def slow_watch(name: str) -> str:
        await release.wait()
        return "watching"

    h.start(Settings(admins=frozenset({admin.id})), watch=slow_watch)
    await h.allow(alice)
    world.say(admin, h.bot_account, "/watch @slowchannel")
    world.say(alice, h.bot_account, "/status")
    await until(lambda: len(h.answers(alice)) == 1)
    assert h.answers(admin) == []
    release.set()
    await h.settle()
    assert [a.text for a in h.answers(admin)] == ["watching"]


async def test_a_client_with_sequential_updates_still_runs_commands_concurrently(world, db, bot_account,
                                                                                 alice) -> None:
    client = await connect_client(world, as_user=bot_account, bot=True, flood_sleep_threshold=0,
                                  sequential_updates=True)
    h = Harness(world, db, client, bot_account)
    admin = world.add_user("Admin")
    release = asyncio.Event()

    async def slow_watch(name: str) -> str:
        await release.wait()
        return "watching"

    commands = h.start(Settings(admins=frozenset({admin.id})), watch=slow_watch)
    await h.allow(alice)
    world.say(admin, bot_account, "/watch @slowchannel")
    world.say(alice, bot_account, "/help")
    await until(lambda: len(h.answers(alice)) == 1)
    assert h.answers(admin) == []
    release.set()
    await commands.drain()
    await h.settle()
    assert [a.text for a in h.answers(admin)] == ["watching"]
    h.close()


async def test_unregister_cancels_commands_in_flight(world, db, bot_account, alice) -> None:
    client = await connect_client(world, as_user=bot_account, bot=True, flood_sleep_threshold=0,
                                  sequential_updates=True)
    h = Harness(world, db, client, bot_account)
    admin = world.add_user("Admin")
    started = asyncio.Event()

    async def stuck_watch(name: str) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    commands = h.start(Settings(admins=frozenset({admin.id})), watch=stuck_watch)
    world.say(admin, bot_account, "/watch @stuck")
    await until(started.is_set)
    commands.unregister()
    await commands.drain()
    await h.settle()
    assert h.answers(admin) == []
