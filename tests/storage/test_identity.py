"""Channels known by username (placeholders) and their adoption when the name resolves.

The property: an origin channel and two forwarding channels, each read by web (records filed under
`channel_for_username`, forward headers naming the origin by username and post id, no original date,
edits seen later) or by API (real ids, full headers), in any order, with each name resolved (adopted)
at any point, give the same posts and sightings as reading everything by API.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import channels, identity
from storage.database import connect_sync, run_in_transaction
from storage.dialect import dialect_of
from storage.ingest import ingest_batch
from storage.records import Batch, Channel, ForwardHeader, Media, MessageRecord
from storage.search import search
from tests.storage.factories import STATEMENT, T0, msg
from tests.storage.test_dedup_properties import (
    CHANNELS,
    NOW,
    Archive,
    canonical,
    polled,
    worlds,
)

HOUR = timedelta(hours=1)
ORIGIN_REAL = Channel(1001, "MFARussia", "Russian MFA", access_hash=111, watched=True)


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """An empty archive, once on SQLite and once on PostgreSQL."""
    return archive


def no_dangling_keys(conn: sqlite3.Connection) -> bool:
    """No row references a missing one. PostgreSQL checked that at the adoption's commit (its foreign
    keys are deferred, not off); SQLite's deferred keys are checked here."""
    return not dialect_of(conn).is_sqlite or conn.execute("PRAGMA foreign_key_check").fetchall() == []


def tx(conn: sqlite3.Connection, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a storage function on its own transaction, as the daemon's `Database.transaction` does."""
    return run_in_transaction(conn, lambda c: fn(c, *args))


def placeholder(conn: sqlite3.Connection, username: str) -> int:
    return tx(conn, identity.channel_for_username, username, NOW)


def web_batch(conn: sqlite3.Connection, api: Batch) -> Batch:
    """The batch as the web reader would store it: the channel by username (its id as the archive
    files that name now), forwards naming the origin by username and post id without the original's
    date, and an edit seen an hour after it was made (the preview shows no edit date)."""
    channel = api.channel
    assert channel.username
    cid = placeholder(conn, channel.username)
    records = []
    for r in api.messages:
        fwd = r.forward
        if fwd is not None:
            origin = next(c for c in CHANNELS if c.id == fwd.from_peer_id)
            assert origin.username
            fwd = ForwardHeader(from_peer_type="channel", from_peer_id=placeholder(conn, origin.username),
                                channel_post=fwd.channel_post, origin_username=origin.username,
                                origin_title=origin.title)
        edit = r.edit_date + HOUR if r.edit_date else None
        records.append(replace(r, channel_id=cid, forward=fwd, edit_date=edit))
    return Batch(Channel(cid, channel.username, channel.title), tuple(records), cursor=api.cursor,
                 seen_at=api.seen_at)


def resolve(conn: sqlite3.Connection, channel: Channel) -> None:
    """What the resolver does when a name resolves: the real row, then adoption (bot/resolve.py)."""
    def run(c: sqlite3.Connection) -> None:
        channels.store_resolved(c, replace(channel, access_hash=channel.id * 7), "ok", None, NOW.isoformat())
        identity.adopt_username(c, channel, NOW)
    run_in_transaction(conn, run)


def read(archive: Archive, web: tuple[bool, ...], order: list[int], resolve_at: list[int]
         ) -> sqlite3.Connection:
    """Ingest the archive's batches (channel `c` by web if web[c]) in `order`, resolving channel `c`'s
    name after `resolve_at[c]` batches; every name is resolved at the end at the latest."""
    conn = connect_sync(":memory:")
    queues = [list(archive.pages[c]) + (list(archive.edits) if c == 0 else []) for c in range(3)]
    done = set()
    for step, c in enumerate([*order, None]):
        for n in range(3):
            if n not in done and resolve_at[n] <= step:
                resolve(conn, CHANNELS[n])
                done.add(n)
        if c is None:
            break
        api = queues[c].pop(0)
        ingest_batch(conn, web_batch(conn, api) if web[c] else api, NOW)
    for n in range(3):
        if n not in done:
            resolve(conn, CHANNELS[n])
    return conn


def versions(conn: sqlite3.Connection) -> list[tuple]:
    return sorted(tuple(r) for r in conn.execute("SELECT channel_id, message_id, text FROM message_versions"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.integers(1, 3), st.tuples(st.booleans(), st.booleans(), st.booleans()), st.data())
def test_web_and_api_readings_in_any_order_give_the_posts_reading_all_by_api_gives(world, page, web, data):
    # No header-less copies: a web forward has no original date, so it states its text at its own
    # date (dedup.stated) and can link a copy the API's header would place outside the copy window.
    archive = polled(replace(world, copies=()), page)
    everything = [c for c in range(3) for _ in archive.pages[c]] + [0] * len(archive.edits)
    expected_conn = read(archive, (False, False, False), sorted(everything), [0, 0, 0])
    expected = canonical(expected_conn)
    for _ in range(3):
        order = data.draw(st.permutations(everything))
        resolve_at = data.draw(st.lists(st.integers(0, len(order) + 1), min_size=3, max_size=3))
        conn = read(archive, web, order, resolve_at)
        assert canonical(conn) == expected, (web, order, resolve_at)
        assert conn.execute("SELECT count(*) FROM channels WHERE id < 0").fetchone()[0] == 0
        assert {r[0] for r in conn.execute("SELECT channel_id FROM messages")} <= {c.id for c in CHANNELS}
        assert conn.execute("SELECT count(*) FROM post_keys WHERE key LIKE '%:-%'").fetchone()[0] == 0
        assert versions(conn) == versions(expected_conn)
        conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('integrity-check')")  # the index follows
        assert no_dangling_keys(conn)


# --- placeholders ------------------------------------------------------------------------------


def test_a_known_username_gives_the_real_id_in_any_case_and_an_unknown_one_a_lasting_placeholder(conn):
    ingest_batch(conn, Batch(ORIGIN_REAL, (msg(ORIGIN_REAL, 1, "hello"),), cursor=1))
    assert placeholder(conn, "mfarussia") == 1001
    assert placeholder(conn, "@MFARussia") == 1001
    first = placeholder(conn, "SomeOrigin")
    assert first < 0
    assert placeholder(conn, "someorigin") == first
    assert placeholder(conn, "Other") == first - 1
    row = conn.execute("SELECT username, watched, access_hash FROM channels WHERE id = ?", (first,))
    assert tuple(row.fetchone()) == ("SomeOrigin", 0, None)


def test_a_watched_placeholder_keeps_the_negative_id_scheme_add_watch_name_uses(conn):
    tx(conn, channels.add_watch_name, "watchedname", NOW)
    made = placeholder(conn, "web_only")
    assert made == -2
    assert placeholder(conn, "WatchedName") == -1


def test_the_source_is_stored_per_channel_and_shown_in_listing_and_state(conn):
    ingest_batch(conn, Batch(ORIGIN_REAL, (msg(ORIGIN_REAL, 1, "hello"),), cursor=1))
    tx(conn, identity.set_source, "mfarussia", "web")
    placeholder_id = tx(conn, identity.set_source, "NotYetKnown", "api")
    assert placeholder_id < 0
    tx(conn, channels.set_watched, placeholder_id)
    listing = {c.username: c.source for c in channels.channel_listing(conn, include_unwatched=True)}
    assert listing == {"MFARussia": "web", "NotYetKnown": "api"}
    state = channels.load_channel(conn, username="mfarussia")
    assert state is not None and state.source == "web"
    tx(conn, identity.set_source, 1001, None)
    assert channels.load_channel(conn, channel_id=1001).source is None
    with pytest.raises(ValueError, match="source"):
        tx(conn, identity.set_source, 1001, "rss")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE channels SET source = 'rss' WHERE id = 1001")


# --- adoption ------------------------------------------------------------------------------------


def _web_origin(conn: sqlite3.Connection) -> tuple[int, Channel]:
    """The origin read by web: post 10 (edited, viewed twice, a photo), post 11; an alert on post 10."""
    pid = placeholder(conn, "MFARussia")
    web = Channel(pid, "MFARussia", "Russian MFA")
    photo = Media(kind="photo", file_id=555, dc_id=2)
    ingest_batch(conn, Batch(web, (
        MessageRecord(pid, 10, T0, "first words", views=100, media=photo),
        MessageRecord(pid, 11, T0 + HOUR, STATEMENT, views=50),
    ), cursor=11, seen_at=T0 + HOUR), T0 + HOUR)
    ingest_batch(conn, Batch(web, (
        MessageRecord(pid, 10, T0, "second words", edit_date=T0 + 2 * HOUR, views=300, media=photo),
    ), seen_at=T0 + 3 * HOUR), T0 + 3 * HOUR)
    post = conn.execute("SELECT post_id FROM messages WHERE channel_id = ? AND message_id = 10",
                        (pid,)).fetchone()[0]
    conn.execute("INSERT INTO subscribers (chat_id, created_at) VALUES (7, ?)", (NOW.isoformat(),))
    conn.execute("INSERT INTO alerts (chat_id, post_id, rule_ids, created_at) VALUES (7, ?, '[1]', ?)",
                 (post, NOW.isoformat()))
    return pid, web


def test_adoption_moves_versions_readings_media_links_files_and_alerts_to_the_real_id(conn):
    pid, _ = _web_origin(conn)
    result = tx(conn, identity.adopt, pid, ORIGIN_REAL, NOW)
    assert result.messages == 2
    assert conn.execute("SELECT count(*) FROM channels WHERE id = ?", (pid,)).fetchone()[0] == 0
    for table in ("messages", "message_versions", "message_stats", "message_media", "tg_files"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE channel_id = ?", (pid,)).fetchone()[0] == 0
    assert [tuple(r) for r in conn.execute(
        "SELECT message_id, text FROM message_versions WHERE channel_id = 1001")] == [(10, "first words")]
    assert [tuple(r) for r in conn.execute(
        "SELECT message_id, views FROM message_stats WHERE channel_id = 1001 ORDER BY at, message_id")] == [
        (10, 100), (11, 50), (10, 300)]
    assert [tuple(r) for r in conn.execute("SELECT channel_id, message_id, file_id FROM message_media")] == [
        (1001, 10, 555)]
    assert tuple(conn.execute("SELECT channel_id, message_id FROM tg_files").fetchone()) == (1001, 10)
    post = conn.execute(
        "SELECT p.id, p.key, p.origin_channel_id, p.origin_username, p.edited FROM posts p"
        " JOIN alerts a ON a.post_id = p.id").fetchone()
    assert tuple(post)[1:] == ("tg:1001:10", 1001, "MFARussia", 1)
    assert conn.execute("SELECT key FROM post_keys WHERE key LIKE 'tg:-%'").fetchall() == []
    assert no_dangling_keys(conn)


def test_adopting_twice_changes_nothing(conn):
    pid, _ = _web_origin(conn)
    tx(conn, identity.adopt, pid, ORIGIN_REAL, NOW)
    before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
              for t in ("channels", "posts", "post_keys", "messages", "message_versions", "message_stats",
                        "message_media", "alerts")}
    assert tx(conn, identity.adopt, pid, ORIGIN_REAL, NOW) == identity.Adopted()
    assert tx(conn, identity.adopt_username, ORIGIN_REAL, NOW) == identity.Adopted()
    after = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in before}
    assert [list(map(tuple, after[t])) for t in before] == [list(map(tuple, before[t])) for t in before]


def test_a_message_read_by_web_and_by_api_is_kept_once_with_the_later_edit_and_both_readings(conn):
    pid, _ = _web_origin(conn)  # web: 10 edited to "second words" (seen at +3h), 11
    ingest_batch(conn, Batch(ORIGIN_REAL, (  # the API read 10 before the edit, with exact views
        MessageRecord(1001, 10, T0, "first words", views=123, forwards=4),
        MessageRecord(1001, 12, T0 + 4 * HOUR, "api only"),
    ), cursor=12, seen_at=T0 + 90 * timedelta(minutes=1)), T0 + 2 * HOUR)
    tx(conn, identity.adopt, pid, ORIGIN_REAL, NOW)
    row = conn.execute("SELECT text, views, forwards, edit_date FROM messages WHERE channel_id = 1001"
                       " AND message_id = 10").fetchone()
    assert (row["text"], row["views"], row["forwards"]) == ("second words", 123, 4)
    assert [r[0] for r in conn.execute("SELECT text FROM message_versions WHERE message_id = 10")] == [
        "first words"]
    assert conn.execute("SELECT count(*) FROM message_stats WHERE message_id = 10").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
    alerted = conn.execute("SELECT p.text FROM alerts a JOIN posts p ON p.id = a.post_id").fetchall()
    assert [r[0] for r in alerted] == ["second words"]
    assert channels.load_channel(conn, channel_id=1001).cursor == 12


@pytest.mark.parametrize(("web_ids", "api_cursor", "expected"), [
    ((5, 6, 7), 4, 7),     # the web reading starts right after the API's cursor: no gap
    ((50, 51), 4, 4),      # ids 5..49 read by nobody: the poller reads on from 4
    ((1, 2), 4, 4),        # the API is ahead
    ((50, 51), 0, 51),     # the real row was never polled
])
def test_the_adopted_cursor_is_the_higher_only_without_a_gap(conn, web_ids, api_cursor, expected):
    pid = placeholder(conn, "MFARussia")
    web = Channel(pid, "MFARussia")
    ingest_batch(conn, Batch(web, tuple(MessageRecord(pid, i, T0, f"m{i}") for i in web_ids),
                             cursor=max(web_ids)))
    api_ids = tuple(range(1, api_cursor + 1))
    ingest_batch(conn, Batch(ORIGIN_REAL, tuple(MessageRecord(1001, i, T0, f"m{i}") for i in api_ids),
                             cursor=api_cursor or None))
    tx(conn, identity.adopt, pid, ORIGIN_REAL, NOW)
    assert channels.load_channel(conn, channel_id=1001).cursor == expected


def test_adoption_carries_the_placeholders_watch_source_and_backfill(conn):
    tx(conn, channels.add_watch_name, "MFARussia", NOW)
    pid = placeholder(conn, "MFARussia")
    tx(conn, identity.set_source, pid, "web")
    tx(conn, channels.record_backfill_page, pid, 3, 9, True)
    tx(conn, identity.adopt, pid, replace(ORIGIN_REAL, watched=False), NOW)
    state = channels.load_channel(conn, channel_id=1001)
    assert (state.watched, state.source, state.backfill_before, state.backfill_done) == (True, "web", 3, True)


def test_a_web_forward_meets_the_api_original_when_the_origin_name_resolves(conn):
    embassy = Channel(2002, "rusembc", "Russia in Canada", 222, watched=True)
    origin = placeholder(conn, "MFARussia")
    header = ForwardHeader(from_peer_type="channel", from_peer_id=origin, channel_post=10,
                           origin_username="MFARussia", origin_title="Russian MFA")
    short = "Briefing at noon"  # too short to meet as a copy: only the ids can join them
    ingest_batch(conn, Batch(embassy, (MessageRecord(2002, 500, T0 + HOUR, short, forward=header),)))
    ingest_batch(conn, Batch(ORIGIN_REAL, (MessageRecord(1001, 10, T0, short),), cursor=10))
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 2  # not met yet: two ids
    result = tx(conn, identity.adopt_username, ORIGIN_REAL, NOW)
    assert result.merged_posts == 1
    post = conn.execute("SELECT id, key, origin_channel_id, date FROM posts").fetchall()
    assert [tuple(p)[1:] for p in post] == [("tg:1001:10", 1001, T0.isoformat())]
    assert conn.execute("SELECT fwd_from_id FROM messages WHERE channel_id = 2002").fetchone()[0] == 1001


# --- forwards without a link, and origins never resolved --------------------------------------


def _hidden(channel: Channel, message_id: int, *, web: bool) -> MessageRecord:
    """A forward of a hidden sender's message (name only): by web without the original's date."""
    header = ForwardHeader(from_name="Anonymous Source", date=None if web else T0)
    return MessageRecord(channel.id, message_id, T0 + HOUR, STATEMENT, forward=header)


def test_web_forwards_from_a_hidden_sender_meet_each_other_and_the_api_ones_as_id_less_forwards_do(conn):
    a = Channel(placeholder(conn, "web_a"), "web_a")
    b = Channel(placeholder(conn, "web_b"), "web_b")
    api = Channel(3003, "RussianEmbassyUK", "Russian Embassy UK", 333)
    ingest_batch(conn, Batch(a, (_hidden(a, 1, web=True),)))
    ingest_batch(conn, Batch(b, (_hidden(b, 2, web=True),)))
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 1  # one sender, one text
    ingest_batch(conn, Batch(api, (_hidden(api, 3, web=False),)))
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 1  # a copy within the window
    tx(conn, identity.adopt, a.id, Channel(4004, "web_a"), NOW)
    sightings = conn.execute("SELECT channel_id, relation FROM messages ORDER BY channel_id").fetchall()
    assert [tuple(s) for s in sightings] == [(b.id, "forward"), (3003, "forward"), (4004, "forward")]
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 1


def test_a_forward_origin_never_resolved_stays_a_placeholder_searchable_by_its_username(conn):
    embassy = Channel(2002, "rusembc", "Russia in Canada", 222, watched=True)
    origin = placeholder(conn, "HiddenOrigin")
    header = ForwardHeader(from_peer_type="channel", from_peer_id=origin, channel_post=77,
                           origin_username="HiddenOrigin", origin_title="Hidden Origin")
    ingest_batch(conn, Batch(embassy, (MessageRecord(2002, 500, T0, STATEMENT, forward=header),)))
    tx(conn, identity.adopt_username, ORIGIN_REAL, NOW)  # another name resolving leaves it alone
    tx(conn, channels.forget_placeholder, "HiddenOrigin")  # it holds no messages, only names a post
    kept = conn.execute("SELECT username FROM channels WHERE id = ?", (origin,)).fetchone()
    assert kept[0] == "HiddenOrigin"
    assert [p.text for p in search(conn, "from:hiddenorigin").posts] == [STATEMENT]
    assert [p.text for p in search(conn, "from:@HiddenOrigin").posts] == [STATEMENT]


def test_forget_placeholder_keeps_a_placeholder_holding_messages_for_adoption(conn):
    pid, _ = _web_origin(conn)
    tx(conn, channels.forget_placeholder, "mfarussia")
    assert conn.execute("SELECT count(*) FROM channels WHERE id = ?", (pid,)).fetchone()[0] == 1
    empty = placeholder(conn, "EmptyOne")
    tx(conn, channels.forget_placeholder, "emptyone")
    assert conn.execute("SELECT count(*) FROM channels WHERE id = ?", (empty,)).fetchone()[0] == 0


def test_adopt_refuses_anything_but_a_placeholder_to_a_real_id(conn):
    with pytest.raises(ValueError, match="placeholder"):
        identity.adopt(conn, 1001, ORIGIN_REAL)
    with pytest.raises(ValueError, match="placeholder"):
        identity.adopt(conn, -1, Channel(-2, "x"))



def test_a_web_forward_naming_the_origin_without_a_post_id_meets_its_text_once_adopted(conn):
    embassy = Channel(2002, "rusembc", "Russia in Canada", 222, watched=True)
    origin = placeholder(conn, "MFARussia")
    short = "Briefing at noon"  # too short for a copy: only the text key of the origin links them
    header = ForwardHeader(from_peer_type="channel", from_peer_id=origin, origin_username="MFARussia")
    ingest_batch(conn, Batch(ORIGIN_REAL, (MessageRecord(1001, 10, T0, short),), cursor=10))
    ingest_batch(conn, Batch(embassy, (MessageRecord(2002, 500, T0 + HOUR, short, forward=header),)))
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 2
    tx(conn, identity.adopt_username, ORIGIN_REAL, NOW)
    sightings = conn.execute("SELECT channel_id, relation FROM messages ORDER BY channel_id").fetchall()
    assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 1
    assert [tuple(s) for s in sightings] == [(1001, "original"), (2002, "forward")]


def test_unwatching_a_placeholder_read_by_web_keeps_its_archive_under_it(conn):
    pid, _ = _web_origin(conn)
    tx(conn, channels.set_watched, pid)
    assert tx(conn, channels.unwatch_name, "mfarussia") == 1
    row = conn.execute("SELECT watched FROM channels WHERE id = ?", (pid,)).fetchone()
    assert row[0] == 0
    assert conn.execute("SELECT count(*) FROM messages WHERE channel_id = ?", (pid,)).fetchone()[0] == 2


def test_a_resolved_name_in_the_resolvers_outcomes_adopts_its_placeholder(conn):
    from bot.resolve import ResolveOutcome, record_outcomes  # the resolver's few lines that call adopt

    pid, _ = _web_origin(conn)
    tx(conn, channels.store_resolved, ORIGIN_REAL, "ok", None, NOW.isoformat())
    outcome = ResolveOutcome("MFARussia", "ok", username="MFARussia", channel_id=1001, title="Russian MFA")
    tx(conn, record_outcomes, [outcome], NOW)
    assert conn.execute("SELECT count(*) FROM channels WHERE id = ?", (pid,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM messages WHERE channel_id = 1001").fetchone()[0] == 2
