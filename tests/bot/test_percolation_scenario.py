"""Alerts through the whole reading path: simulated Telegram -> Poller -> ingest -> Percolator -> outbox."""

from __future__ import annotations

import json

import pytest

from bot.resolve import resolve_channels
from bot.simulator import World
from storage.percolator import Percolator
from storage.rules import add_rule
from tests.bot.test_poller import make_poller, rows

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

MFA_POST = "МИД России: ответ на новые антироссийские санкций Канады последует незамедлительно"


def alert_rows(db) -> list[tuple[int, int, list[int]]]:
    return [(r["chat_id"], r["post_id"], json.loads(r["rule_ids"]))
            for r in rows(db.path, "SELECT * FROM alerts ORDER BY chat_id, post_id")]


def embassy_world(world: World):
    mfa = world.add_channel("MFARussia", "МИД России 🇷🇺")
    embassies = [world.add_channel(name, title) for name, title in (
        ("rusembc", "Russia in Canada"), ("RussianEmbassyUK", "Russian Embassy UK"),
        ("RusEmbUSA", "Russian Embassy USA"))]
    world.advance(60)
    post = world.post(mfa, MFA_POST)
    world.post(mfa, "Брифинг официального представителя")
    for embassy in embassies:
        world.advance(300)
        world.forward(mfa, post.id, embassy)
    return mfa, embassies, post


@pytest.mark.parametrize("original_first", [True, False])
async def test_a_post_forwarded_by_three_embassies_alerts_each_chat_once(world, reader, db, original_first):
    mfa, embassies, post = embassy_world(world)
    sanctions = (await db.transaction(add_rule, 1, "sanctions OR санкции"))[0].id
    canada = (await db.transaction(add_rule, 2, "канада"))[0].id
    briefing = (await db.transaction(add_rule, 2, "санкц* -брифинг"))[0].id
    poller = make_poller(db, reader, world, after_ingest=Percolator())
    order = [mfa, *embassies] if original_first else [*embassies, mfa]
    for channel in order:
        await resolve_channels(db, reader, [f"@{channel.username}"])
        report = await poller.poll_once()
        assert report.by_id(channel.id).status == "ok"

    [post_row] = rows(db.path, "SELECT id FROM posts WHERE origin_message_id = ?", post.id)
    assert alert_rows(db) == [(1, post_row["id"], [sanctions]), (2, post_row["id"], [canada, briefing])]
    sightings = rows(db.path, "SELECT channel_id, relation FROM messages WHERE post_id = ?", post_row["id"])
    assert len(sightings) == 4
    assert sorted(s["relation"] for s in sightings) == ["forward", "forward", "forward", "original"]


async def test_an_edit_seen_by_recheck_alerts_once(world, reader, db):
    mfa = world.add_channel("MFARussia", "МИД России 🇷🇺")
    quiet = world.post(mfa, "Брифинг официального представителя")
    arctic = (await db.transaction(add_rule, 1, "arctic OR арктика"))[0].id
    poller = make_poller(db, reader, world, after_ingest=Percolator())
    await resolve_channels(db, reader, ["@MFARussia"])
    await poller.poll_once()
    assert alert_rows(db) == []

    world.advance(600)
    world.edit(mfa, quiet.id, "Брифинг официального представителя: Арктика")
    await poller.recheck_once()
    [post_row] = rows(db.path, "SELECT id FROM posts")
    assert alert_rows(db) == [(1, post_row["id"], [arctic])]

    world.advance(600)
    world.edit(mfa, quiet.id, "Брифинг: Арктика и Антарктика")
    await poller.recheck_once()
    assert alert_rows(db) == [(1, post_row["id"], [arctic])]


async def test_a_rule_added_while_polling_applies_to_the_next_posts_only(world, reader, db):
    mfa = world.add_channel("MFARussia", "МИД России 🇷🇺")
    world.post(mfa, "Arctic council statement")
    poller = make_poller(db, reader, world, after_ingest=Percolator())
    await resolve_channels(db, reader, ["@MFARussia"])
    await poller.poll_once()
    rule = (await db.transaction(add_rule, 1, "arctic"))[0]
    world.advance(60)
    world.post(mfa, "Arctic shipping route")
    await poller.poll_once()
    [later] = rows(db.path, "SELECT id FROM posts WHERE text = 'Arctic shipping route'")
    assert alert_rows(db) == [(1, later["id"], [rule.id])]
