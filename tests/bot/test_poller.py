"""The poll cycle through the simulator: provenance, crash safety, request counts, failures, floods."""

from __future__ import annotations

import itertools
import logging
import sqlite3
from datetime import timedelta

import pytest
from telethon import errors

from bot.poller import Poller
from bot.resolve import resolve_channels
from bot.simulator import World
from bot.telegram import FloodPolicy, classify_error
from storage.channels import backoff
from storage.database import Database
from storage.identity import set_source
from tests.bot.conftest import SERVERS, FakeSleep
from tests.bot.conftest import rows as server_rows

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

# --- helpers shared with test_backfill / test_recheck -------------------------------------------





def make_poller(db, reader, world: World, sleep=None, **kwargs) -> Poller:
    """A poller on the World's clock; flood waits up to 60 s are slept (through `sleep`)."""
    kwargs.setdefault("flood", FloodPolicy(max_wait=60))
    return Poller(db, reader, now=lambda: world.now, sleep=sleep or FakeSleep(), **kwargs)


def rows(db_path, sql: str, *args) -> list[sqlite3.Row]:
    """Read the archive with a separate synchronous connection (rows addressable by column name)."""
    if str(db_path) in SERVERS:
        return server_rows(db_path, sql, *args)
    conn = sqlite3.connect(str(db_path))
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def channel_row(db, channel_id: int) -> sqlite3.Row:
    return rows(db.path, "SELECT * FROM channels WHERE id = ?", channel_id)[0]


def message_ids(db, channel_id: int) -> list[int]:
    return [r[0] for r in rows(db.path, "SELECT message_id FROM messages WHERE channel_id = ? "
                                        "ORDER BY message_id", channel_id)]


def snapshot(db) -> dict:
    """What a poll leaves behind, independent of row ids and timestamps."""
    return {
        "messages": [tuple(r) for r in rows(
            db.path, "SELECT channel_id, message_id, relation, text, fwd_from_id, fwd_channel_post "
                     "FROM messages ORDER BY channel_id, message_id")],
        "posts": sorted(tuple(r) for r in rows(
            db.path, "SELECT key, text, origin_channel_id, origin_message_id FROM posts")),
        "cursors": [tuple(r) for r in rows(db.path, "SELECT id, cursor FROM channels WHERE watched = 1 "
                                                    "ORDER BY id")],
    }


def fill(world: World, channel, n: int, prefix: str = "post") -> list:
    out = []
    for i in range(n):
        world.advance(60)
        out.append(world.post(channel, f"{prefix} {channel.username} {i + 1}"))
    return out


# --- names and helpers ----------------------------------------------------------------------------


def test_backoff_doubles_and_caps():
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    assert backoff(7) == timedelta(hours=1)
    assert backoff(10_000) == timedelta(hours=1)


def test_classify_error():
    assert classify_error(errors.ChannelPrivateError(None))[0] == "private"
    assert classify_error(errors.ChannelInvalidError(None))[0] == "not_found"
    assert classify_error(errors.ChannelBannedError(None))[0] == "banned"
    assert classify_error(OSError("down"))[0] == "error"


# --- the MFA / embassy scenario -------------------------------------------------------------------


def mfa_world(world: World):
    mfa = world.add_channel("MFARussia", "МИД России 🇷🇺")
    emb = world.add_channel("rusembc", "Russia in Canada")
    third = world.add_channel("RussianEmbassyUK", "Russian Embassy UK")
    world.advance(60)
    a = world.post(mfa, "Statement by Foreign Minister Sergey Lavrov on the new sanctions #MFA")
    world.advance(60)
    b = world.post(mfa, "Заявление МИД России в связи с введением Канадой новых санкций")
    world.advance(600)
    world.forward(mfa, a.id, emb)
    world.forward(mfa, b.id, emb)
    world.advance(60)
    c = world.post(emb, "The Embassy's own comment on the sanctions")
    world.advance(60)
    world.forward(mfa, a.id, third)
    return mfa, emb, third, a, b, c


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_mfa_embassy_scenario_in_every_order(world, reader, db, order):
    mfa, emb, third, a, b, c = mfa_world(world)
    channels = [mfa, emb, third]
    poller = make_poller(db, reader, world)
    for index in order:
        [outcome] = await resolve_channels(db, reader, [f"@{channels[index].username}"])
        assert outcome.status == "ok"
        report = await poller.poll_once()
        assert report.by_id(channels[index].id).status == "ok"

    posts = rows(db.path, "SELECT * FROM posts ORDER BY origin_message_id")
    assert len(posts) == 3
    by_text = {p["text"]: p for p in posts}
    post_a, post_b, post_c = by_text[a.message], by_text[b.message], by_text[c.message]
    for post, msg in ((post_a, a), (post_b, b)):
        assert (post["origin_channel_id"], post["origin_message_id"]) == (mfa.id, msg.id)
        assert (post["origin_username"], post["origin_title"]) == ("MFARussia", "МИД России 🇷🇺")
        assert post["key"] == f"tg:{mfa.id}:{msg.id}"
    assert (post_c["origin_channel_id"], post_c["origin_username"]) == (emb.id, "rusembc")

    sightings = rows(db.path, "SELECT * FROM messages WHERE post_id = ? ORDER BY channel_id", post_a["id"])
    assert len(sightings) == 3
    assert {(s["channel_id"], s["relation"]) for s in sightings} == {
        (mfa.id, "original"), (emb.id, "forward"), (third.id, "forward")}
    assert len(rows(db.path, "SELECT * FROM messages WHERE post_id = ?", post_b["id"])) == 2

    forwards = rows(db.path, "SELECT * FROM messages WHERE relation = 'forward'")
    assert len(forwards) == 3
    for fwd in forwards:
        origin = a if fwd["fwd_channel_post"] == a.id else b
        assert fwd["fwd_from_type"] == "channel"
        assert fwd["fwd_from_id"] == mfa.id
        assert fwd["fwd_channel_post"] == origin.id
        assert fwd["fwd_date"] == origin.date.isoformat()
    # The origin channel is known by name even when it was polled last (from the answers' chats).
    origin_row = channel_row(db, mfa.id)
    assert (origin_row["username"], origin_row["title"]) == ("MFARussia", "МИД России 🇷🇺")
    for ch in channels:
        row = channel_row(db, ch.id)
        assert row["cursor"] == max(ch.messages)
        assert row["status"] == "ok" and row["failures"] == 0 and row["last_success"] is not None


# --- request counts -------------------------------------------------------------------------------


async def test_poll_sends_no_resolve_and_picks_up_new_posts(world, reader, db):
    chans = [world.add_channel(f"chan{i}", f"Channel {i}") for i in range(3)]
    for ch in chans:
        fill(world, ch, 2)
    outcomes = await resolve_channels(db, reader, [f"t.me/{c.username}" for c in chans])
    assert [o.requested for o in outcomes] == [True] * 3
    assert world.requests["contacts.ResolveUsername"] == 3
    # Resolving again reuses the stored rows: no request.
    again = await resolve_channels(db, reader, ["@chan0", "CHAN1"])
    assert [o.requested for o in again] == [False, False]
    assert [o.channel_id for o in again] == [chans[0].id, chans[1].id]
    world.reset_requests()
    poller = make_poller(db, reader, world)
    first = await poller.poll_once()
    assert first.new_messages == 6
    assert world.requests["contacts.ResolveUsername"] == 0
    assert world.requests["messages.GetHistory"] == 3
    world.rename(chans[0], "chan0_renamed")
    fill(world, chans[0], 2, "later")
    fill(world, chans[2], 1, "later")
    world.reset_requests()
    second = await poller.poll_once()
    assert (second.by_id(chans[0].id).new_messages, second.by_id(chans[1].id).new_messages,
            second.by_id(chans[2].id).new_messages) == (2, 0, 1)
    assert world.requests["contacts.ResolveUsername"] == 0
    assert world.requests["messages.GetHistory"] == 3
    assert channel_row(db, chans[0].id)["username"] == "chan0_renamed"  # renamed: still polled by id
    assert message_ids(db, chans[0].id) == [1, 2, 3, 4]


async def test_joined_change_detection_costs_dialogs_plus_changed(world, reader, reader_account, db):
    chans = [world.add_channel(f"joined{i:03d}", f"Joined {i}") for i in range(150)]
    for ch in chans:
        world.post(ch, f"hello from {ch.username}")
    await resolve_channels(db, reader, [c.username for c in chans[:120]], join=True)
    assert all(reader_account.id in c.members for c in chans[:120])
    assert world.requests["channels.JoinChannel"] == 120
    # The rest are watched without being joined: the poller joins them when dialogs lack them.
    await resolve_channels(db, reader, [c.username for c in chans[120:]])
    poller = make_poller(db, reader, world, join=True)
    world.reset_requests()
    first = await poller.poll_once()
    assert first.new_messages == 150
    assert world.requests["channels.JoinChannel"] == 30
    assert world.requests["messages.GetPeerDialogs"] == 2
    world.reset_requests()
    idle = await poller.poll_once()
    assert idle.new_messages == 0 and idle.requests == 2
    assert dict(world.requests) == {"messages.GetPeerDialogs": 2}
    for ch in chans[::30]:
        world.post(ch, "news")
    world.reset_requests()
    busy = await poller.poll_once()
    assert busy.new_messages == 5
    assert world.requests["messages.GetPeerDialogs"] == 2
    assert world.requests["messages.GetHistory"] == 5
    assert world.requests["contacts.ResolveUsername"] == 0
    # The same cycle without join: one history request per channel.
    plain = make_poller(db, reader, world, join=False)
    world.reset_requests()
    await plain.poll_once()
    assert dict(world.requests) == {"messages.GetHistory": 150}


async def test_resolve_not_found_private_and_not_a_channel(world, reader, db, caplog):
    caplog.set_level(logging.WARNING, logger="chanwatch.poller")
    world.add_channel("secretchan", "Secret", private=True)
    outcomes = await resolve_channels(db, reader, ["@nosuchchannel", "@secretchan", "chanwatch_reader",
                                                   "t.me/+invite"])
    assert [o.status for o in outcomes] == ["not_found", "private", "not_channel", "invalid"]
    assert [tuple(r) for r in rows(db.path, "SELECT username, status FROM channels")] == [
        ("secretchan", "private")]
    assert "nosuchchannel" in caplog.text


# --- pages and crash safety -----------------------------------------------------------------------


async def paged_world(world, reader, db, n_new: int = 250):
    """Two channels, polled once (cursor 3), then `n_new` more posts each: 3 pages each."""
    chans = [world.add_channel("pagedone", "One"), world.add_channel("pagedtwo", "Two")]
    for ch in chans:
        fill(world, ch, 3)
    await resolve_channels(db, reader, [c.username for c in chans])
    await make_poller(db, reader, world).poll_once()
    for ch in chans:
        fill(world, ch, n_new, "new")
    world.forward(chans[0], 10, chans[1])
    return chans


async def test_pages_down_to_the_cursor(world, reader, db):
    chans = await paged_world(world, reader, db)
    world.reset_requests()
    report = await make_poller(db, reader, world).poll_once()
    assert report.by_id(chans[0].id).pages == 3 and report.by_id(chans[1].id).pages == 3
    assert world.requests["messages.GetHistory"] == 6
    assert message_ids(db, chans[0].id) == list(range(1, 254))
    assert message_ids(db, chans[1].id) == list(range(1, 255))
    assert channel_row(db, chans[1].id)["cursor"] == 254


async def test_never_polled_channel_gets_only_its_newest_page(world, reader, db):
    ch = world.add_channel("bigchannel", "Big")
    fill(world, ch, 230)
    await resolve_channels(db, reader, ["bigchannel"])
    world.reset_requests()
    await make_poller(db, reader, world).poll_once()
    assert world.requests["messages.GetHistory"] == 1
    assert message_ids(db, ch.id) == list(range(131, 231))
    assert channel_row(db, ch.id)["cursor"] == 230


async def _clean_run(tmp_path) -> dict:
    """The reference: the same world polled without incidents."""
    from bot.simulator import connect_client
    world = World()
    reader_account = world.add_user("Reader", username="chanwatch_reader")
    reader = await connect_client(world, as_user=reader_account, flood_sleep_threshold=0)
    db = await Database.open(tmp_path / "clean.db")
    try:
        await paged_world(world, reader, db)
        await make_poller(db, reader, world).poll_once()
        return snapshot(db)
    finally:
        await db.close()
        await world.close()


async def test_crash_inside_ingest_repeats_work_without_gaps(world, reader, db, tmp_path):
    chans = await paged_world(world, reader, db)
    calls = []

    def hook(conn, result):
        calls.append(result)
        if len(calls) == 2:  # the second page of the first channel polled
            raise RuntimeError("crash inside the ingest transaction")

    poller = make_poller(db, reader, world, after_ingest=hook, concurrency=1)
    report = await poller.poll_once()
    failed = [c for c in report.channels if c.status == "error"]
    assert len(failed) == 1 and "crash inside" in failed[0].error
    row = channel_row(db, failed[0].channel_id)
    assert row["cursor"] == 3  # the cursor did not move past the gap
    assert row["failures"] == 1 and row["retry_at"] is not None
    # The page before the crash was kept; the crashed page was rolled back.
    assert len(message_ids(db, failed[0].channel_id)) == 3 + 100
    world.advance(backoff(1).total_seconds() + 1)
    again = await poller.poll_once()
    assert all(c.status == "ok" for c in again.channels)
    assert snapshot(db) == await _clean_run(tmp_path)
    assert channel_row(db, failed[0].channel_id)["failures"] == 0
    assert {c.id for c in chans} == {c.channel_id for c in again.channels}


async def test_rpc_error_between_pages_repeats_work_without_gaps(world, reader, db, tmp_path):
    chans = await paged_world(world, reader, db)
    # The first page asked below the newest (the first channel's 2nd page) fails; a 400, so
    # Telethon does not retry it.
    world.inject_error("messages.GetHistory", (400, "PAGE_BROKEN_SIM"), when=lambda req: req.offset_id != 0)
    poller = make_poller(db, reader, world, concurrency=1)
    report = await poller.poll_once()
    assert [c.status for c in report.channels] == ["error", "ok"]
    assert channel_row(db, chans[0].id)["cursor"] == 3
    assert channel_row(db, chans[1].id)["cursor"] == 254
    world.advance(3600)
    await poller.poll_once()
    assert snapshot(db) == await _clean_run(tmp_path)


# --- failures and floods --------------------------------------------------------------------------


async def test_short_flood_is_slept_through_the_injected_sleep(world, reader, db, fake_sleep):
    ch = world.add_channel("floody", "Floody")
    fill(world, ch, 3)
    await resolve_channels(db, reader, ["floody"])
    world.inject_flood("messages.GetHistory", 7, times=2)
    poller = make_poller(db, reader, world, sleep=fake_sleep)
    report = await poller.poll_once()
    assert fake_sleep.calls == [7, 7]
    assert report.flood_slept == 14 and report.by_id(ch.id).flood_slept == 14
    assert report.by_id(ch.id).new_messages == 3
    assert world.requests["messages.GetHistory"] == 3


async def test_long_flood_defers_one_channel_and_polls_the_others(world, reader, db, fake_sleep):
    chans = [world.add_channel(f"chanf{i}", f"F{i}") for i in range(3)]
    for ch in chans:
        fill(world, ch, 2)
    await resolve_channels(db, reader, [c.username for c in chans])
    world.inject_flood("messages.GetHistory", 3600)
    poller = make_poller(db, reader, world, sleep=fake_sleep, concurrency=1)
    report = await poller.poll_once()
    deferred = [c for c in report.channels if c.deferred_until is not None]
    assert len(deferred) == 1 and fake_sleep.calls == []
    assert deferred[0].deferred_until == world.now + timedelta(seconds=3600)
    assert sum(c.new_messages for c in report.channels) == 4
    row = channel_row(db, deferred[0].channel_id)
    assert row["status"] == "ok" and row["failures"] == 0 and row["cursor"] == 0
    # Before the wait is over the channel is skipped (no request); afterwards it is polled.
    world.reset_requests()
    world.advance(1800)
    skipped = await poller.poll_once()
    assert skipped.by_id(deferred[0].channel_id).skipped
    assert world.requests["messages.GetHistory"] == 2
    world.advance(1801)
    later = await poller.poll_once()
    assert later.by_id(deferred[0].channel_id).new_messages == 2


async def test_private_channel_is_marked_and_retried_after_backoff(world, reader, db):
    chans = [world.add_channel(f"chanp{i}", f"P{i}") for i in range(3)]
    for ch in chans:
        fill(world, ch, 2)
    await resolve_channels(db, reader, [c.username for c in chans])
    world.make_private(chans[1])
    poller = make_poller(db, reader, world)
    report = await poller.poll_once()
    assert [c.status for c in report.channels] == ["ok", "private", "ok"]
    row = channel_row(db, chans[1].id)
    assert (row["status"], row["failures"]) == ("private", 1)
    assert "ChannelPrivate" in row["status_detail"]
    world.reset_requests()
    world.advance(30)
    await poller.poll_once()  # inside the backoff: no request for it
    assert world.requests["messages.GetHistory"] == 2
    world.advance(60)
    again = await poller.poll_once()  # retried, still private: failures 2, backoff doubled
    assert channel_row(db, chans[1].id)["failures"] == 2
    assert again.by_id(chans[1].id).retry_at == world.now + timedelta(minutes=2)
    world.make_public(chans[1], "chanp1_back")
    world.advance(121)
    back = await poller.poll_once()
    assert back.by_id(chans[1].id).status == "ok"
    row = channel_row(db, chans[1].id)
    assert (row["status"], row["failures"], row["retry_at"]) == ("ok", 0, None)


async def test_joined_private_channel_is_bisected_out_of_peer_dialogs(world, reader, reader_account, db):
    chans = [world.add_channel(f"chanq{i}", f"Q{i}") for i in range(6)]
    for ch in chans:
        fill(world, ch, 1)
    await resolve_channels(db, reader, [c.username for c in chans], join=True)
    poller = make_poller(db, reader, world, join=True)
    await poller.poll_once()
    chans[4].members.discard(reader_account.id)  # kicked out ...
    world.make_private(chans[4])  # ... of a channel that went private
    fill(world, chans[0], 1, "news")
    world.reset_requests()
    report = await poller.poll_once()
    assert report.by_id(chans[4].id).status == "private"
    assert report.by_id(chans[0].id).new_messages == 1
    assert {c.status for c in report.channels if c.channel_id != chans[4].id} == {"ok"}
    assert world.requests["messages.GetHistory"] == 1


async def test_banned_and_invalid_access_hash(world, reader, db):
    chans = [world.add_channel(f"chanb{i}", f"B{i}") for i in range(2)]
    for ch in chans:
        fill(world, ch, 1)
    await resolve_channels(db, reader, [c.username for c in chans])
    world.inject_error("messages.GetHistory", (400, "CHANNEL_BANNED"),
                       when=lambda req: req.peer.channel_id == chans[0].id)
    chans[1].access_hash += 1  # the stored hash no longer works: CHANNEL_INVALID
    report = await make_poller(db, reader, world).poll_once()
    assert [c.status for c in report.channels] == ["banned", "not_found"]


async def test_resolve_with_join_joins_only_channels_not_joined(world, reader, reader_account, db):
    chans = [world.add_channel(f"chanj{i}", f"J{i}") for i in range(4)]
    world.join(chans[0], reader_account)
    await resolve_channels(db, reader, [c.username for c in chans[:2]])  # stored, not joined by us
    world.reset_requests()
    outcomes = await resolve_channels(db, reader, [c.username for c in chans], join=True)
    assert [o.joined for o in outcomes] == [False, True, True, True]
    assert world.requests["channels.GetChannels"] == 1  # membership of the two stored ones
    assert world.requests["channels.JoinChannel"] == 3
    assert world.requests["contacts.ResolveUsername"] == 2
    world.reset_requests()
    again = await resolve_channels(db, reader, [c.username for c in chans], join=True)
    assert not any(o.joined for o in again)
    assert dict(world.requests) == {"channels.GetChannels": 1}


async def test_one_log_line_per_channel_per_cycle(world, reader, db, caplog):
    caplog.set_level(logging.INFO, logger="chanwatch.poller")
    chans = [world.add_channel(f"chanl{i}", f"L{i}") for i in range(3)]
    for ch in chans:
        fill(world, ch, 2)
    await resolve_channels(db, reader, [c.username for c in chans], join=True)
    world.make_private(chans[2])
    chans[2].members.clear()
    caplog.clear()
    await make_poller(db, reader, world, join=True).poll_once()
    lines = [r.getMessage() for r in caplog.records if r.name == "chanwatch.poller"]
    per_channel = [line for line in lines if line.startswith("poll ") and not line.startswith("poll cycle")]
    assert len(per_channel) == 3
    assert any("@chanl0: 2 new" in line for line in per_channel)
    assert any("private" in line for line in per_channel)
    assert any(line.startswith("poll cycle: 3 channels, 4 new messages") for line in lines)


async def test_channels_read_by_their_web_preview_are_left_to_the_web_reader(world, reader, db):
    api, web = world.add_channel("apichan", "By API"), world.add_channel("webchan", "By web")
    fill(world, api, 3)
    fill(world, web, 3)
    await resolve_channels(db, reader, ["@apichan", "@webchan"])
    await db.transaction(set_source, "webchan", "web")
    poller = make_poller(db, reader, world, reads=lambda state: state.source != "web")
    report = await poller.poll_once()
    recheck = await poller.recheck_once()
    assert [r.channel_id for r in report.channels] == [api.id] == [r.channel_id for r in recheck.channels]
    assert message_ids(db, web.id) == [] and channel_row(db, web.id)["status"] == "ok"
