"""/post through the real bot client and the simulator: the whole record of one post as HTML within
Telegram's limit — sightings with delays, word diffs, deletion intervals, sparklines — escaped, with the
access control of /search."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from telethon import helpers, types

from bot.simulator import ChatLogEntry
from storage.ingest import ingest_batch
from storage.records import Channel
from tests.bot.commands_support import Harness
from tests.storage.factories import MFA, STATEMENT, T0, batch, fwd, msg
from tests.storage.test_post_record import statement_story

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


def story(conn: sqlite3.Connection) -> int:
    post = statement_story(conn)
    conn.commit()
    return post


def entity_texts(entry: ChatLogEntry, kind: type) -> list[str]:
    text = helpers.add_surrogate(entry.text)
    return [helpers.del_surrogate(text[e.offset:e.offset + e.length]) for e in entry.entities
            if isinstance(e, kind)]


async def test_post_shows_sightings_with_delays_the_diff_the_deletion_and_the_curve(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    await db.run(story)
    answer = await h.ask(alice, "/post https://t.me/RussianEmbassyUK/700")
    text = answer.text
    assert "@MFARussia" in text and "3 sightings" in text
    assert "rusembc/500 · forward · +5 min" in text and "RussianEmbassyUK/700 · forward · +2 h 13 min" in text
    assert "illegal " in entity_texts(answer, types.MessageEntityUnderline)  # inserted words
    assert "2. edited 2025-12-17 10:30 UTC (now)" in text
    assert "deleted between 2025-12-17 14:00 UTC and 2025-12-17 15:00 UTC (sweep)" in text
    assert "100 → 500 views over 1 h (2 readings)" in text and "👍 12" in text
    assert "photo · 1000 B · queued" in text
    assert any(getattr(e, "url", None) == "https://t.me/rusembc/500" for e in answer.entities)


async def test_post_escapes_html_in_the_post_and_its_edits(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    body = "Statement <script>alert(1)</script> & <b>not bold</b> <a href='x'>z</a>"

    def write(conn: sqlite3.Connection) -> None:
        original = msg(MFA, 1, body)
        ingest_batch(conn, batch(MFA, original), T0)
        later = T0 + timedelta(hours=1)
        ingest_batch(conn, batch(MFA, replace(original, text=body.replace("alert(1)", "alert(2)"),
                                              edit_date=later)), later)

    await db.run(write)
    answer = await h.ask(alice, "/post @MFARussia/1")
    assert body in answer.text and "<script>alert(" in answer.text
    assert not any(getattr(e, "url", None) == "x" for e in answer.entities)
    assert "not bold" not in "".join(entity_texts(answer, types.MessageEntityBold))
    assert entity_texts(answer, types.MessageEntityStrike) == ["1"]  # removed words
    assert entity_texts(answer, types.MessageEntityUnderline) == ["2"]


async def test_a_long_record_fits_one_message_and_says_how_many_more(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    long = STATEMENT + " " + "Подробности заявления. " * 150

    def write(conn: sqlite3.Connection) -> None:
        ingest_batch(conn, batch(MFA, msg(MFA, 10, long)), T0)
        for n in range(40):
            channel = Channel(5000 + n, f"mirror{n}", f"Mirror {n}", 1, watched=True)
            ingest_batch(conn, batch(channel, fwd(channel, 1, MFA, 10, long, minutes=n)), T0)
        for n in range(1, 12):
            later = T0 + timedelta(hours=n)
            edited = msg(MFA, 10, long.replace("Подробности", f"Версия {n}", n), edit_date=later)
            ingest_batch(conn, batch(MFA, edited), later)

    await db.run(write)
    answer = await h.ask(alice, "/post @MFARussia/10")
    assert len(helpers.add_surrogate(answer.text)) <= 4096
    assert "41 sightings" in answer.text
    assert "more" in answer.text and "earlier version" in answer.text


@pytest.mark.parametrize(("ask", "says"), [
    ("/post 999", "the archive has no post 999"),
    ("/post @MFARussia/404", "the archive has no message 404 of @MFARussia"),
    ("/post canada", "not a post id or link"),
])
async def test_a_post_that_is_not_there_says_what_to_give(h, alice, db, ask, says) -> None:
    h.start()
    await h.allow(alice)
    await db.run(story)
    answer = await h.ask(alice, ask)
    assert says in answer.text and "https://t.me/c/1234567/5678" in answer.text
    assert "/post 1234" in answer.text


async def test_post_alone_shows_its_usage(h, alice) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, "/post")
    assert "Usage: /post ID" in answer.text and "/post https://t.me/MFARussia/5678" in answer.text


async def test_post_is_refused_to_a_chat_that_may_not_use_the_bot(h, world, alice, db) -> None:
    h.start()
    await db.run(story)
    stranger = world.add_user("Stranger")
    answer = await h.ask(stranger, "/post @MFARussia/10")
    assert "This bot is private" in answer.text and "MFARussia" not in answer.text
