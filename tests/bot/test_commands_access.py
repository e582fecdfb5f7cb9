"""Access control of the bot's commands: strangers get one short, rate-limited refusal and never any
archive content (commands or buttons); admin commands (/watch, /unwatch, /allow, /deny)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.access import Access, Caller, RefusalLimiter
from bot.config import Settings
from storage.rules import add_rule, is_allowed, list_rules, set_allowed
from tests.bot.commands_support import NOW, Harness, buttons, fill, sanction_texts, statement_with_forwards

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


EVERY_COMMAND = [
    "/start", "/help", "/search sanctions", "/search@chanwatch_bot sanctions", "/subscribe sanctions",
    "/rules", "/unsubscribe 1", "/mode digest", "/pause", "/resume", "/channels", "/status",
    "/watch @rusembc", "/unwatch @MFARussia", "/allow 1", "/deny 1", "/frobnicate",
]
ARCHIVE_WORDS = ("sanctions", "Lavrov", "MFARussia", "rusembc", "Update", "posts", "Archive")


def archive(conn) -> None:
    statement_with_forwards(conn)
    fill(conn, sanction_texts(6))


async def test_a_stranger_gets_no_archive_content_from_any_command(h, world, alice, db, caplog) -> None:
    watched: list[str] = []

    async def watch(name: str) -> str:
        watched.append(name)
        return f"watching {name}"

    h.start(watch=watch, unwatch=watch)
    await db.run(archive)
    await db.run(add_rule, 555, "sanctions")  # someone else's rule: id 1
    with caplog.at_level(logging.INFO, logger="chanwatch.commands"):
        for command in EVERY_COMMAND:
            world.say(alice, h.bot_account, command)
        await h.settle()
    answers = [a.text for a in h.answers(alice)]
    assert len(answers) == 1, answers  # one refusal a minute, however many commands
    [refusal] = h.answers(alice)
    assert refusal.text.startswith("🔒 This bot is private.") and f"/allow {alice.id}" in refusal.text
    for word in ARCHIVE_WORDS:
        assert word not in refusal.text
    assert watched == [] and h.changes == []
    assert not await db.run(is_allowed, alice.id)  # no command created a subscriber for her
    assert [r.chat_id for r in await db.run(list_rules)] == [555]
    assert any(f"user {alice.id}" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)

    world.advance(61)
    again = await h.ask(alice, "/search sanctions")
    assert again.text.startswith("🔒")


async def test_a_denied_chat_loses_access_and_its_buttons_show_nothing(h, world, alice, db) -> None:
    admin = world.add_user("Admin")
    h.start(Settings(admins=frozenset({admin.id})))
    await db.run(fill, sanction_texts(7))
    await h.allow(alice)
    results = await h.ask(alice, "/search sanctions")
    await h.ask(alice, "/subscribe sanctions")
    denied = await h.ask(admin, f"/deny {alice.id}")
    assert denied.text == f"⛔ Chat {alice.id} is denied; its rules are off."
    assert [r.active for r in await db.run(list_rules, alice.id)] == [False]
    page_one = results.text
    answer = await h.click(alice, results, buttons(results)["Next »"])
    assert answer.message == "This chat is not allowed to use the bot."
    assert results.text == page_one
    assert (await h.ask(alice, "/search sanctions")).text.startswith("🔒")


async def test_admin_commands_are_refused_to_members_of_allowed_chats(h, world, alice, db) -> None:
    calls: list[str] = []

    async def watch(name: str) -> str:
        calls.append(name)
        return "ok"

    h.start(watch=watch, unwatch=watch)
    await h.allow(alice)
    answer = await h.ask(alice, "/watch @rusembc")
    assert answer.text == "🔒 This command is for admins."
    world.say(alice, h.bot_account, "/allow 42")
    world.say(alice, h.bot_account, "/unwatch @rusembc")
    await h.settle()
    assert len(h.answers(alice)) == 1  # refusals are rate-limited
    assert calls == [] and not await db.run(is_allowed, 42)


async def test_an_admin_watches_and_unwatches_through_the_hooks(h, world) -> None:
    admin = world.add_user("Admin")
    calls: list[tuple[str, str]] = []

    async def watch(name: str) -> str:
        calls.append(("watch", name))
        return f"@{name.lstrip('@')} is watched now <3 & polled every 60 s"

    async def unwatch(name: str) -> str:
        calls.append(("unwatch", name))
        return "no longer watched"

    h.start(Settings(admins=frozenset({admin.id})), watch=watch, unwatch=unwatch)
    answer = await h.ask(admin, "/watch @rusembc")
    assert answer.text == "@rusembc is watched now <3 & polled every 60 s"
    assert (await h.ask(admin, "/unwatch t.me/rusembc")).text == "no longer watched"
    assert calls == [("watch", "@rusembc"), ("unwatch", "t.me/rusembc")]
    assert "Usage: /watch @channel" in (await h.ask(admin, "/watch")).text


async def test_watch_without_a_hook_is_not_available(h, world) -> None:
    admin = world.add_user("Admin")
    h.start(Settings(admins=frozenset({admin.id})))
    assert (await h.ask(admin, "/watch @rusembc")).text == "/watch is not available in this setup."
    assert (await h.ask(admin, "/unwatch @rusembc")).text == "/unwatch is not available in this setup."


async def test_allow_and_deny_take_a_chat_id(h, world, alice, db) -> None:
    admin = world.add_user("Admin")
    h.start(Settings(admins=frozenset({admin.id}), alert_chat=-100777))
    assert (await h.ask(alice, "/status")).text.startswith("🔒")
    allowed = await h.ask(admin, f"/allow {alice.id}")
    assert allowed.text == f"✅ Chat {alice.id} may use the bot."
    assert await db.run(is_allowed, alice.id)
    assert h.changes == [alice.id]
    world.advance(61)
    assert (await h.ask(alice, "/status")).text.startswith("📊")
    for wrong in ("/allow", "/allow alice", "/deny 12x", "/allow 99999999999999999999"):
        assert "Usage: /" in (await h.ask(admin, wrong)).text
    note = await h.ask(admin, "/deny -100777")
    assert "stays allowed by the config" in note.text


async def test_the_alert_chat_and_admins_private_chats_are_allowed_by_config(h, world, alice, db) -> None:
    admin = world.add_user("Admin")
    h.start(Settings(admins=frozenset({admin.id}), alert_chat=alice.id))
    assert (await h.ask(alice, "/status")).text.startswith("📊")
    assert (await h.ask(admin, "/status")).text.startswith("📊")
    # config wins over a denial for the alert chat
    await db.run(set_allowed, alice.id, False)
    assert (await h.ask(alice, "/status")).text.startswith("📊")


# -- the access rules themselves --------------------------------------------------------------------


async def test_access_decisions(db) -> None:
    access = Access(Settings(admins=frozenset({1}), alert_chat=-500))
    await db.run(set_allowed, -600, True)
    await db.run(set_allowed, -700, False)
    cases = {
        Caller(1, 1, True): True,  # an admin's private chat
        Caller(1, -900, False): False,  # an admin in a group nobody allowed
        Caller(2, -500, False): True,  # the alert chat
        Caller(2, -600, False): True,  # allowed by an admin
        Caller(2, -700, False): False,  # denied
        Caller(2, 2, True): False,  # a stranger
        Caller(None, -900, False): False,
    }
    for caller, expected in cases.items():
        assert await db.run(access.chat_allowed, caller) is expected, caller


def test_refusals_are_one_per_user_per_interval_and_memory_is_bounded() -> None:
    now = [NOW]
    limiter = RefusalLimiter(lambda: now[0], timedelta(minutes=1), capacity=3)
    assert limiter.should_answer(1) and not limiter.should_answer(1)
    assert limiter.should_answer(2)
    now[0] += timedelta(seconds=59)
    assert not limiter.should_answer(1)
    now[0] += timedelta(seconds=1)
    assert limiter.should_answer(1)
    for user in range(10, 20):
        limiter.should_answer(user)
    assert len(limiter._last) == 3
