"""No alert sent twice when two dispatchers send one archive's outbox (two processes of the same bot,
as during a takeover), on SQLite and PostgreSQL: each row's random_id makes Telegram (the simulator)
refuse the second copy, and the row is marked sent. Also after a crash between send and mark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.alerts import Dispatcher
from bot.simulator import SimUser, World, connect_client
from storage.database import Database
from storage.outbox import get_alerts
from storage.rules import set_mode
from tests.bot.conftest import FakeSleep
from tests.conftest import BACKENDS
from tests.storage.factories import EMBASSY, MFA, T0, msg
from tests.storage.outbox_helpers import archive, queue_alert

T = TypeVar("T")


class Crash(BaseException):
    """Stands for the process dying at a given point (not an error the dispatcher may catch)."""


Opener = Callable[[], Awaitable[Any]]


@pytest.fixture(params=BACKENDS)
async def open_archive(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens one more connection to one shared archive (a process of its own), on each backend."""
    opened: list[Database] = []
    where = tmp_path / "archive.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")

    async def opener() -> Database:
        opened.append(await Database.open(where))
        return opened[-1]
    yield opener
    for db in opened:
        await db.close()


async def bot_processes(world: World, bot: SimUser, user: SimUser, count: int = 2) -> list[Any]:
    """`count` connected clients of the same bot that all know how to reach `user` (she wrote /start)."""
    clients = [await connect_client(world, as_user=bot, bot=True, flood_sleep_threshold=0)
               for _ in range(count)]
    world.say(user, bot, "/start")
    await world.settle()
    return clients


def received(world: World, user: SimUser, bot: SimUser) -> list[str]:
    """The texts the bot sent to `user`, oldest first."""
    return [e.text for e in world.chat_log(user, with_=bot) if e.sender_id == bot.id]


def posts_and_alerts(chat_id: int, words: list[str]) -> Callable[[Any], list[int]]:
    def setup(conn: Any) -> list[int]:
        channels = [MFA, EMBASSY]
        posts = archive(conn, *(msg(channels[n % 2], n + 1, f"post {word}") for n, word in enumerate(words)))
        return [queue_alert(conn, chat_id, p) for p in posts]
    return setup


def dispatcher(db: Any, client: Any, **kw: Any) -> Dispatcher:
    return Dispatcher(db, client, now=lambda: T0, sleep=kw.pop("sleep", FakeSleep()), **kw)


class Rendezvous:
    """A sleep for two dispatchers' pacers where each waits for the other (no time passes): given
    to both, and their pacers made to wait before the first message, both have read and claimed the
    same pending rows before either sends one."""

    def __init__(self, parties: int = 2) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_here = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.all_here.set()
        await self.all_here.wait()


async def racing(chat_id: int, *pairs: tuple[Any, Any]) -> list[Dispatcher]:
    """Dispatchers (one per (archive, bot client) pair) that meet before their first send to `chat_id`."""
    meet = Rendezvous(len(pairs))
    out = [dispatcher(db, client, sleep=meet) for db, client in pairs]
    for d in out:
        await d.pacer.wait(chat_id)  # as if one message went just now: the next one waits, at `meet`
    return out


WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]


async def test_two_dispatchers_sending_the_same_rows_at_once_deliver_each_alert_once(
        world, bot_account, alice, open_archive) -> None:
    first_bot, second_bot = await bot_processes(world, bot_account, alice)
    first_db, second_db = await open_archive(), await open_archive()
    await first_db.run(posts_and_alerts(alice.id, WORDS))
    one, two = await racing(alice.id, (first_db, first_bot), (second_db, second_bot))
    sent = await asyncio.gather(one.dispatch_instant(), two.dispatch_instant())
    texts = received(world, alice, bot_account)
    assert sorted(t for t in texts if t.startswith("post ") or "\npost " in t) == sorted(texts)
    assert sorted(word for t in texts for word in WORDS if f"post {word}" in t) == sorted(WORDS)
    assert sum(sent) == len(WORDS)  # the refused copies are not counted as sent
    assert world.requests["messages.SendMessage"] == 2 * len(WORDS)  # both did send every row
    assert all(a.sent_at for a in await second_db.run(get_alerts, alice.id))
    assert await one.dispatch_instant() == 0 and await two.dispatch_instant() == 0


async def test_a_crash_between_send_and_mark_then_a_new_dispatcher_sends_no_second_message(
        world, bot_account, alice, open_archive) -> None:
    old_bot, new_bot = await bot_processes(world, bot_account, alice)
    old_db = await open_archive()
    first, second, third = await old_db.run(posts_and_alerts(alice.id, WORDS[:3]))

    def crash_on_second(ids) -> None:
        if second in ids:
            raise Crash

    with pytest.raises(Crash):
        await dispatcher(old_db, old_bot, before_mark=crash_on_second).dispatch_instant()
    assert [t for t in received(world, alice, bot_account) if "post bravo" in t]  # sent, never marked
    new_db = await open_archive()
    assert not [a for a in await new_db.run(get_alerts, alice.id) if a.id == second and a.sent_at]
    assert await dispatcher(new_db, new_bot).dispatch_instant() == 1  # charlie; bravo refused as a repeat
    texts = received(world, alice, bot_account)
    assert [word for t in texts for word in WORDS if f"post {word}" in t] == ["alpha", "bravo", "charlie"]
    assert all(a.sent_at for a in await new_db.run(get_alerts, alice.id))


async def test_two_dispatchers_sending_one_digest_at_once_deliver_it_once(
        world, bot_account, alice, open_archive) -> None:
    first_bot, second_bot = await bot_processes(world, bot_account, alice)
    first_db, second_db = await open_archive(), await open_archive()
    await first_db.run(posts_and_alerts(alice.id, WORDS[:3]))
    await first_db.transaction(set_mode, alice.id, "digest")
    one, two = await racing(alice.id, (first_db, first_bot), (second_db, second_bot))
    sent = await asyncio.gather(one.send_digest(alice.id), two.send_digest(alice.id))
    [digest] = received(world, alice, bot_account)
    assert "3 posts" in digest and all(f"post {w}" in digest for w in WORDS[:3])
    assert sorted(sent) == [0, 1] and world.requests["messages.SendMessage"] == 2
    assert all(a.sent_at for a in await first_db.run(get_alerts, alice.id))


async def test_a_digest_crashed_before_its_mark_is_not_sent_again_by_the_next_dispatcher(
        world, bot_account, alice, open_archive) -> None:
    old_bot, new_bot = await bot_processes(world, bot_account, alice)
    old_db = await open_archive()
    await old_db.run(posts_and_alerts(alice.id, WORDS[:2]))
    await old_db.transaction(set_mode, alice.id, "digest")

    def crash(ids) -> None:
        raise Crash

    with pytest.raises(Crash):
        await dispatcher(old_db, old_bot, before_mark=crash).send_digest(alice.id)
    assert await dispatcher(await open_archive(), new_bot).send_digest(alice.id) == 0
    assert len(received(world, alice, bot_account)) == 1
    assert all(a.sent_at for a in await old_db.run(get_alerts, alice.id))
