"""The subscriber's commands (/subscribe, /rules, /unsubscribe, /mode, /pause, /resume) and the
archive overviews (/channels, /status) through the real bot client and the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.commands import MAX_INPUT, with_since
from bot.config import Settings
from storage.query import parse
from storage.records import iso
from storage.rules import add_rule, get_subscriber, list_rules
from storage.search import search
from tests.bot.commands_support import NOW, Harness, bold, fill
from tests.storage.factories import EMBASSY, MFA, T0
from tests.storage.outbox_helpers import queue_alert

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


def recent_and_old(conn) -> None:
    """Two recent posts (canada, arctic) and one from October (canada)."""
    fill(conn, ["Canada extends the sanctions regime", "Arctic council meets in Tromsø"])
    fill(conn, ["Canada old news from the autumn"], first_id=10, start=T0 - timedelta(days=77))


# -- /subscribe ---------------------------------------------------------------------------------


async def test_subscribe_saves_the_rule_and_counts_recent_matches_keeping_or_intact(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    await db.run(recent_and_old)
    answer = await h.ask(alice, "/subscribe canada OR arctic")
    [rule] = await db.run(list_rules, alice.id)
    assert rule.query == "canada OR arctic"
    assert answer.text.startswith(f"✅ Saved rule {rule.id}: canada OR arctic")
    # 2, not 3: the date bound applies to the whole query, not only to its last OR operand
    assert "It would have matched 2 archived posts in the last 30 days." in answer.text
    assert f"/unsubscribe {rule.id}" in answer.text
    assert h.changes == [alice.id]
    again = await h.ask(alice, "/subscribe canada OR arctic")
    assert again.text.startswith(f"✅ You already have rule {rule.id}")
    assert len(await db.run(list_rules, alice.id)) == 1


async def test_with_since_bounds_the_whole_query(db) -> None:
    await db.run(recent_and_old)
    query = parse("canada OR arctic")
    all_time = await db.run(search, query)
    recent = await db.run(search, with_since(query, (NOW - timedelta(days=30)).date().isoformat()))
    assert (all_time.total, recent.total) == (3, 2)
    both = parse("canada sanctions")
    assert (await db.run(search, with_since(both, "2025-12-01"))).total == 1


async def test_subscribe_rejects_a_bad_query_with_the_caret_and_saves_nothing(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, "/subscribe canada since:2025-02-30")
    assert answer.text.startswith("❌ Bad query: no such day")
    assert "Example: /subscribe canada sanctions -visa" in answer.text
    assert await db.run(list_rules, alice.id) == []
    assert h.changes == []


async def test_subscribe_without_a_query_or_with_a_huge_one_explains(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    assert "Usage: /subscribe QUERY" in (await h.ask(alice, "/subscribe")).text
    huge = await h.ask(alice, "/subscribe " + "canada " * 300)
    assert f"at most {MAX_INPUT} characters" in huge.text
    assert await db.run(list_rules, alice.id) == []


# -- /rules, /unsubscribe -------------------------------------------------------------------------


async def test_rules_lists_ids_and_unsubscribe_removes_only_own_rules(h, alice, world, db) -> None:
    bob = world.add_user("Bob")
    h.start()
    await h.allow(alice, bob)
    assert (await h.ask(alice, "/rules")).text.startswith("You have no rules yet.")
    await h.ask(alice, "/subscribe canada sanctions")
    await h.ask(alice, "/subscribe lavrov <b>x</b>&co")
    bobs_rule, _ = await db.run(add_rule, bob.id, "arctic")
    first, second = await db.run(list_rules, alice.id)
    listing = await h.ask(alice, "/rules")
    assert listing.text.startswith("📋 2 rules · Alerts: instant")
    assert f"{first.id} · canada sanctions" in listing.text
    assert f"{second.id} · lavrov <b>x</b>&co" in listing.text
    assert "arctic" not in listing.text
    h.changes.clear()

    refused = await h.ask(alice, f"/unsubscribe {bobs_rule.id}")
    assert refused.text == f"This chat has no rule {bobs_rule.id}. /rules lists them."
    assert [r.id for r in await db.run(list_rules, bob.id)] == [bobs_rule.id]
    assert h.changes == []
    removed = await h.ask(alice, f"/unsubscribe #{first.id}")
    assert removed.text == f"🗑 Removed rule {first.id}: canada sanctions"
    assert [r.id for r in await db.run(list_rules, alice.id)] == [second.id]
    assert h.changes == [alice.id]
    assert "Usage: /unsubscribe ID" in (await h.ask(alice, "/unsubscribe canada")).text


# -- /mode, /pause, /resume -----------------------------------------------------------------------


async def test_mode_switches_to_a_validated_digest_schedule_and_back(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, "/mode digest 30 7 * * mon-fri")
    assert answer.text == "✅ Alerts: digest at 30 7 * * mon-fri (UTC)"
    sub = await db.run(get_subscriber, alice.id)
    assert (sub.mode, sub.digest_schedule) == ("digest", "30 7 * * mon-fri")
    assert h.changes == [alice.id]

    bad = await h.ask(alice, "/mode digest 61 8 * * *")
    assert bad.text.startswith("❌ Bad schedule 61 8 * * *")
    assert "/mode digest 0 8 * * *" in bad.text
    assert (await db.run(get_subscriber, alice.id)).digest_schedule == "30 7 * * mon-fri"
    assert h.changes == [alice.id]

    default = await h.ask(alice, "/mode digest")
    assert default.text == "✅ Alerts: digest at 0 8 * * * (UTC)"  # CHANWATCH_DIGEST_SCHEDULE
    instant = await h.ask(alice, "/mode INSTANT")
    assert instant.text == "✅ Alerts: instant"
    assert (await db.run(get_subscriber, alice.id)).mode == "instant"
    for wrong in ("/mode", "/mode weekly", "/mode instant 0 8 * * *"):
        assert "Usage: /mode instant|digest [cron [time zone]]" in (await h.ask(alice, wrong)).text


async def test_mode_takes_a_time_zone_and_otherwise_shows_the_configured_one(h, alice, db) -> None:
    h.start(Settings(timezone="America/Toronto"))
    await h.allow(alice)
    assert (await h.ask(alice, "/mode digest")).text == "✅ Alerts: digest at 0 8 * * * (America/Toronto)"
    answer = await h.ask(alice, "/mode digest 0 9 * * 1-5 Europe/Moscow")
    assert answer.text == "✅ Alerts: digest at 0 9 * * 1-5 (Europe/Moscow)"
    assert (await db.run(get_subscriber, alice.id)).timezone == "Europe/Moscow"
    bad = await h.ask(alice, "/mode digest 0 9 * * * Mars/Olympus")
    assert bad.text.startswith("❌ Bad schedule") and "unknown time zone" in bad.text
    assert (await db.run(get_subscriber, alice.id)).timezone == "Europe/Moscow"


async def test_pause_and_resume_hold_and_release_alerts(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    paused = await h.ask(alice, "/pause")
    assert paused.text.startswith("⏸ Alerts paused")
    assert (await db.run(get_subscriber, alice.id)).paused
    assert "paused" in (await h.ask(alice, "/rules")).text
    resumed = await h.ask(alice, "/resume")
    assert resumed.text == "▶️ Alerts resumed."
    assert not (await db.run(get_subscriber, alice.id)).paused
    assert h.changes == [alice.id, alice.id]


# -- /channels, /status ---------------------------------------------------------------------------


def two_channels(conn) -> None:
    fill(conn, ["Canada extends the sanctions regime", "Arctic council meets"], channel=MFA)
    fill(conn, ["Embassy statement on the <visa> & *rules*"], channel=EMBASSY, first_id=500)
    conn.execute("UPDATE channels SET last_success = ?, last_poll = ? WHERE id = ?",
                 (iso(NOW), iso(NOW), MFA.id))
    conn.execute("UPDATE channels SET status = 'private', status_detail = 'ChannelPrivateError' WHERE id = ?",
                 (EMBASSY.id,))


async def test_channels_shows_status_last_post_and_last_successful_poll(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    assert (await h.ask(alice, "/channels")).text.startswith("No channels are watched yet.")
    await db.run(two_channels)
    answer = await h.ask(alice, "/channels")
    lines = answer.text.split("\n")
    assert lines[0] == "📡 2 watched channels"
    assert lines[1] == "✅ @MFARussia · ok · last post 2025-12-17 10:01 UTC · polled 2025-12-18 10:00 UTC"
    assert lines[2] == ("⚠️ @rusembc · private (ChannelPrivateError) · last post 2025-12-17 10:00 UTC"
                        " · polled never")


async def test_status_counts_posts_sightings_today_pending_alerts_and_errors(h, alice, world, db) -> None:
    h.start()
    await h.allow(alice)
    world.now = T0 + timedelta(hours=1)  # the same day as the posts

    def setup(conn):
        two_channels(conn)
        [post_id] = [r[0] for r in conn.execute("SELECT id FROM posts LIMIT 1")]
        queue_alert(conn, alice.id, post_id)

    await db.run(setup)
    answer = await h.ask(alice, "/status")
    assert answer.text.split("\n") == [
        "📊 Archive",
        "3 posts, 3 sightings",
        "New posts today (UTC): 3",
        "Alerts pending: 1",
        "Last poll: 2025-12-18 10:00 UTC",
        "Watched channels: 2",
        "Read by: web preview 2",  # no user session in these settings: the web preview by default
        "Media: 0 stored (0 B) · 0 queued · 0 skipped · 0 failed",
        "⚠️ Channels with errors: 1 — @rusembc",
    ]
    assert bold(answer) == ["Archive"]
