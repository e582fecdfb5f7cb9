"""The web reader (bot/web/reader.py) against the simulator's World served as t.me pages by a real
HTTP server on 127.0.0.1: poll, paging back, edits, deletions, albums, faults, fetch by link, origins."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.poller import Poller
from bot.resolve import record_outcomes, resolve_channels
from bot.simulator import World, connect_client, media
from bot.simulator.web import WebPreviewServer
from bot.web.http import WebClient
from bot.web.reader import WebReader, source_of
from storage import channels, identity
from storage.database import Database
from storage.percolator import Percolator
from storage.records import ChannelState
from storage.rules import add_rule
from tests.bot.conftest import FakeSleep

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class FakeTime:
    """The injected clock and sleep: sleeping moves the clock; no test waits for real."""

    def __init__(self) -> None:
        self.now = START

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def world(time: FakeTime) -> World:
    return World(now=START)


@pytest.fixture
async def server(world: World, time: FakeTime) -> AsyncIterator[WebPreviewServer]:
    async with WebPreviewServer(world, clock=time.clock) as srv:
        yield srv


@pytest.fixture
async def web(server: WebPreviewServer, time: FakeTime) -> AsyncIterator[WebClient]:
    async with WebClient(server.url, now=time.clock, sleep=time.sleep, timeout=5) as client:
        yield client


async def watch(db: Database, name: str, time: FakeTime) -> ChannelState:
    """Watch `name` by web, as `channels add NAME --source web` does: a placeholder until resolved."""
    def add(conn):
        channels.add_watch_name(conn, name, time.now)
        identity.set_source(conn, name, "web", time.now)
    await db.transaction(add)
    return await state_of(db, name)


async def state_of(db: Database, name: str) -> ChannelState:
    return next(s for s in await db.run(channels.load_watched) if (s.username or "").lower() == name.lower())


async def rows(db: Database, sql: str, *args) -> list[tuple]:
    return [tuple(r) for r in await db.run(lambda c: c.execute(sql, args).fetchall())]


async def test_a_poll_archives_text_views_and_a_forward_naming_its_origin_by_username_and_id(
        db, world, web, time):
    origin = world.add_channel("origin_news", "Origin News")
    original = world.post(origin, "Breaking: the bridge is open", views=51_734)
    feed = world.add_channel("feed", "The Feed")
    world.forward(origin, original.id, feed)
    world.post(feed, "our own words", views=51_734)
    reader = WebReader(db, web, now=time.clock)
    [result] = await reader.poll_once([await watch(db, "feed", time)])
    assert result.status == "ok" and result.new_messages == 2 and result.cursor == 2
    [fwd, own] = await rows(db, "SELECT m.text, m.fwd_from_id, m.fwd_channel_post, m.views, m.raw"
                                " FROM messages m JOIN channels c ON c.id = m.channel_id"
                                " WHERE c.username = 'feed' ORDER BY m.message_id")
    origin_id = await db.run(channels.channel_by_username, "origin_news")
    assert fwd[:3] == ("Breaking: the bridge is open", origin_id, original.id)
    assert own[0] == "our own words" and json.loads(own[4])["_"] == "WebPost"
    assert own[3] == 51_700 and json.loads(own[4])["views_text"] == "51.7K"  # the precision shown
    [post] = await rows(db, "SELECT origin_channel_id, origin_message_id FROM posts"
                            " WHERE text LIKE 'Breaking%'")
    assert post == (origin_id, original.id)
    assert await rows(db, "SELECT title, subscribers FROM channels WHERE username = 'feed'") == [
        ("The Feed", len(feed.members))]


async def test_a_later_poll_pages_back_with_before_down_to_the_cursor_and_no_further(
        db, world, server, web, time):
    feed = world.add_channel("feed", "The Feed")
    world.post(feed, "first")
    reader = WebReader(db, web, now=time.clock)
    await reader.poll_once([await watch(db, "feed", time)])
    for n in range(45):
        world.post(feed, f"post {n}")
    server.log.clear()
    [result] = await reader.poll_once([await state_of(db, "feed")])
    assert result.new_messages == 45 and result.cursor == 46 and result.pages == 3
    assert [t for _, t in server.log] == ["/s/feed", "/s/feed?before=27", "/s/feed?before=7"]
    [(count,)] = await rows(db, "SELECT count(*) FROM messages")
    assert count == 46


async def test_a_post_the_page_marks_edited_is_found_edited_without_a_version(db, world, web, time):
    feed = world.add_channel("feed", "The Feed")
    world.post(feed, "the bridge is closed")
    world.post(feed, "untouched")
    world.edit(feed, 1, "the bridge is open")
    await WebReader(db, web, now=time.clock).poll_once([await watch(db, "feed", time)])
    assert await rows(db, "SELECT text, edited FROM posts ORDER BY id") == [
        ("the bridge is open", 1), ("untouched", 0)]
    assert await rows(db, "SELECT count(*) FROM message_versions") == [(0,)]


async def test_a_never_polled_channel_gets_its_newest_page_only(
        db, world, server, web, time):
    feed = world.add_channel("feed", "The Feed")
    for n in range(30):
        world.post(feed, f"post {n}")
    [result] = await WebReader(db, web, now=time.clock).poll_once([await watch(db, "feed", time)])
    assert result.pages == 1 and result.new_messages == 20 and result.cursor == 30


async def test_a_reworded_post_becomes_a_version_and_an_unchanged_reread_writes_nothing(db, world, web, time):
    feed = world.add_channel("feed", "The Feed")
    world.post(feed, "the bridge is open")
    world.post(feed, "another post")
    reader = WebReader(db, web, now=time.clock)
    await reader.poll_once([await watch(db, "feed", time)])
    [quiet] = await reader.recheck_once([await state_of(db, "feed")], 200)
    assert (quiet.checked, quiet.edited, quiet.deleted) == (2, 0, 0)
    time.now += timedelta(minutes=5)
    world.edit(feed, 1, "the bridge is closed")
    [check] = await reader.recheck_once([await state_of(db, "feed")], 200)
    assert check.edited == 1 and check.edited_post_ids
    assert await rows(db, "SELECT text FROM message_versions") == [("the bridge is open",)]
    [(text, edit_date)] = await rows(db, "SELECT text, edit_date FROM messages WHERE message_id = 1")
    assert text == "the bridge is closed" and edit_date.startswith("2026-03-01T09:05")  # when it was seen
    [again] = await reader.recheck_once([await state_of(db, "feed")], 200)
    assert again.edited == 0 and len(await rows(db, "SELECT * FROM message_versions")) == 1
    assert await rows(db, "SELECT edited FROM posts WHERE text LIKE '%closed'") == [(1,)]


async def test_a_post_deleted_in_the_middle_is_deleted_with_its_interval_and_the_rest_seen(
        db, world, web, time):
    feed = world.add_channel("feed", "The Feed")
    for n in range(5):
        world.post(feed, f"post {n}")
    reader = WebReader(db, web, now=time.clock)
    await reader.poll_once([await watch(db, "feed", time)])
    time.now += timedelta(minutes=10)
    world.delete(feed, 3)
    [check] = await reader.recheck_once([await state_of(db, "feed")], 200)
    assert check.deleted == 1
    assert await rows(db, "SELECT message_id, deleted_at, deleted_via, last_seen FROM messages"
                          " WHERE deleted_at IS NOT NULL") == [
        (3, "2026-03-01T09:10:00+00:00", "recheck", "2026-03-01T09:00:00+00:00")]
    assert await rows(db, "SELECT count(*) FROM messages"
                          " WHERE last_seen = '2026-03-01T09:10:00+00:00'") == [(4,)]


async def test_an_album_is_one_post_with_its_parts_sharing_a_group(db, world, web, time):
    feed = world.add_channel("feed", "The Feed")
    world.album(feed, [("two pictures", world.photo(b"p" * 100)), ("", media.video(duration=75))])
    await WebReader(db, web, now=time.clock).poll_once([await watch(db, "feed", time)])
    parts = await rows(db, "SELECT message_id, grouped_id, post_id FROM messages ORDER BY message_id")
    assert [p[0] for p in parts] == [1, 2] and parts[0][1] == parts[1][1] == 1
    assert parts[0][2] == parts[1][2]
    assert await rows(db, "SELECT count(*) FROM posts") == [(1,)]


async def test_failures_are_recorded_per_channel_and_the_others_are_read(db, world, server, web, time):
    for name in ("alpha_ch", "bravo_ch", "charlie_ch"):
        world.add_channel(name, name.upper())
        world.post(world.resolve(name), f"hello from {name}")
    states = [await watch(db, n, time) for n in ("alpha_ch", "bravo_ch", "charlie_ch")]
    server.change_markup(1)  # alpha_ch's page: nothing the parser knows
    reader = WebReader(db, web, now=time.clock)
    results = await reader.poll_once(states)
    assert [r.status for r in results] == ["error", "ok", "ok"]
    assert "markup" in (results[0].error or "") and results[0].retry_at is not None
    assert await rows(db, "SELECT count(*) FROM messages") == [(2,)]
    [alpha] = [s for s in await db.run(channels.load_watched) if s.username == "alpha_ch"]
    assert alpha.status == "error" and alpha.failures == 1 and alpha.cursor == 0


async def test_a_500_and_a_cut_short_answer_are_retried_and_the_page_stored_whole(
        db, world, server, web, time):
    feed = world.add_channel("feed", "The Feed")
    for n in range(3):
        world.post(feed, f"post {n}")
    server.fail(1)
    server.truncate(1)
    [result] = await WebReader(db, web, now=time.clock).poll_once([await watch(db, "feed", time)])
    assert result.status == "ok" and result.new_messages == 3
    assert time.now > START  # it backed off on the injected clock


async def test_a_long_429_defers_the_channel_without_a_failure(
        db, world, server, web, time):
    feed = world.add_channel("feed", "The Feed")
    world.post(feed, "x")
    server.throttle(1, retry_after=3600)
    [result] = await WebReader(db, web, now=time.clock).poll_once([await watch(db, "feed", time)])
    assert result.deferred_until is not None and result.deferred_until >= START + timedelta(hours=1)
    state = await state_of(db, "feed")
    assert state.failures == 0 and state.retry_at == result.deferred_until
    assert await rows(db, "SELECT count(*) FROM messages") == [(0,)]


async def test_a_channel_without_public_preview_is_not_found(db, world, web, time):
    [result] = await WebReader(db, web, now=time.clock).poll_once([await watch(db, "nosuch", time)])
    assert result.status == "not_found" and (await state_of(db, "nosuch")).status == "not_found"


async def test_fetch_post_archives_one_post_from_its_embed_page_with_provenance(db, world, web, time):
    origin = world.add_channel("origin_news", "Origin News")
    original = world.post(origin, "Breaking: the bridge is open")
    feed = world.add_channel("feed", "The Feed")
    world.post(feed, "unrelated")
    world.forward(origin, original.id, feed)
    world.album(feed, [("two pictures", world.photo(b"p" * 100)), ("", media.video(duration=75))])  # 3, 4
    reader = WebReader(db, web, now=time.clock)
    result = await reader.fetch_post("feed", 2)
    assert result.messages_new == 1
    origin_id = await db.run(channels.channel_by_username, "origin_news")
    assert await rows(db, "SELECT message_id, fwd_from_id, fwd_channel_post FROM messages") == [
        (2, origin_id, original.id)]
    album = await reader.fetch_post("@feed", 4)  # a part's link: the whole album, one post
    assert album.messages_new == 2 and len(album.new_post_ids) == 1


async def test_fetch_origins_fetches_an_unwatched_origins_post_once_and_it_joins_the_forward(
        db, world, server, web, time):
    origin = world.add_channel("origin_news", "Origin News")
    original = world.post(origin, "Breaking: the bridge is open")
    feed = world.add_channel("feed", "The Feed")
    world.forward(origin, original.id, feed)
    reader = WebReader(db, web, now=time.clock, fetch_origins=True)
    await reader.poll_once([await watch(db, "feed", time)])
    world.forward(origin, original.id, feed)
    await reader.poll_once([await state_of(db, "feed")])
    assert server.requests[f"/origin_news/{original.id}"] == 1
    [(posts,)] = await rows(db, "SELECT count(*) FROM posts")
    assert posts == 1
    assert await rows(db, "SELECT count(*) FROM messages WHERE relation = 'original'") == [(1,)]


def test_source_of_takes_the_channels_own_setting_before_the_default():
    def state(source):
        return ChannelState(1, "x", None, None, source=source)
    assert source_of(state("web"), "api") == "web"
    assert source_of(state("api"), "web") == "api"
    assert source_of(state(None), "web") == "web"
    assert source_of(state(None), "api") == "api"


async def resolve(db: Database, client, name: str, world: World) -> None:
    """Resolve a name through the API and record it, as the daemon's watch list does (adopting what
    the web reader stored under the name)."""
    outcomes = await resolve_channels(db, client, [name])
    await db.transaction(record_outcomes, outcomes, world.now)


async def api_client(world: World):
    account = world.add_user("Reader", username="chanwatch_reader")
    return await connect_client(world, as_user=account, flood_sleep_threshold=0)


@pytest.mark.parametrize("origin_first", [True, False])
async def test_an_origin_read_by_api_and_its_forward_read_by_web_are_one_post_and_one_alert(
        db, world, web, time, origin_first):
    client = await api_client(world)
    mfa = world.add_channel("MFARussia", "MFA")
    embassy = world.add_channel("rusembc", "Russia in Canada")
    post = world.post(mfa, "Statement on the sanctions")
    world.forward(mfa, post.id, embassy)
    await db.transaction(add_rule, 1, "sanctions")
    poller = Poller(db, client, now=lambda: world.now, sleep=FakeSleep(), after_ingest=Percolator())
    by_web = WebReader(db, web, now=time.clock, after_ingest=Percolator())

    async def read_api() -> None:
        await resolve(db, client, "@MFARussia", world)
        assert (await poller.poll_once()).by_id(mfa.id).status == "ok"

    async def read_web() -> None:
        [result] = await by_web.poll_once([await watch(db, "rusembc", time)])
        assert result.status == "ok"

    for step in (read_api, read_web) if origin_first else (read_web, read_api):
        await step()
    [(post_id,)] = await rows(db, "SELECT id FROM posts")
    assert await rows(db, "SELECT relation FROM messages WHERE post_id = ? ORDER BY relation", post_id) == [
        ("forward",), ("original",)]
    assert await rows(db, "SELECT chat_id, post_id FROM alerts") == [(1, post_id)]
    assert await rows(db, "SELECT origin_channel_id, origin_message_id FROM posts") == [(mfa.id, post.id)]
    await client.disconnect()


async def test_a_web_read_channel_switched_to_the_api_continues_without_duplicates(db, world, web, time):
    client = await api_client(world)
    feed = world.add_channel("feed", "The Feed")
    for n in range(3):
        world.post(feed, f"post {n}")
    await WebReader(db, web, now=time.clock).poll_once([await watch(db, "feed", time)])
    world.edit(feed, 2, "post 1, reworded")
    world.post(feed, "post 3")
    await db.transaction(identity.set_source, "feed", "api")
    await resolve(db, client, "@feed", world)
    report = await Poller(db, client, now=lambda: world.now, sleep=FakeSleep()).poll_once()
    assert report.by_id(feed.id).status == "ok" and report.by_id(feed.id).new_messages == 1
    assert await rows(db, "SELECT channel_id, message_id FROM messages ORDER BY message_id") == [
        (feed.id, 1), (feed.id, 2), (feed.id, 3), (feed.id, 4)]
    assert await rows(db, "SELECT count(*) FROM posts") == [(4,)]
    assert await rows(db, "SELECT count(*) FROM channels WHERE id < 0") == [(0,)]
    await client.disconnect()


async def test_backfill_pages_back_to_the_start_resumably_and_does_not_alert(db, world, server, web, time):
    feed = world.add_channel("feed", "The Feed")
    for n in range(50):
        world.post(feed, f"sanctions {n}")
    await db.transaction(add_rule, 1, "sanctions")
    reader = WebReader(db, web, now=time.clock, after_ingest=Percolator())
    first = await reader.backfill("@feed", limit=25)
    assert (first.messages, first.stopped_by, first.done) == (25, "limit", False)
    assert first.backfill_before == 26
    server.log.clear()
    second = await reader.backfill("feed")
    assert (second.messages, second.stopped_by, second.done) == (25, "start", True)
    assert [t for _, t in server.log][0] == "/s/feed?before=26"
    assert await rows(db, "SELECT count(*), min(message_id), max(message_id) FROM messages") == [(50, 1, 50)]
    assert await rows(db, "SELECT count(*) FROM alerts") == [(0,)]
    again = await reader.backfill("feed")
    assert again.stopped_by == "done" and again.pages == 0


async def test_backfill_since_a_day_stops_at_older_posts(db, world, web, time):
    feed = world.add_channel("feed", "The Feed")
    for n in range(30):
        world.post(feed, f"post {n}")
        world.advance(3600 * 6)
    since = (START + timedelta(days=5)).date()
    report = await WebReader(db, web, now=time.clock).backfill("feed", since=since)
    assert report.stopped_by == "since" and report.done
    [(oldest,)] = await rows(db, "SELECT min(date) FROM messages")
    assert oldest == "2026-03-06T03:00:00+00:00" and report.messages == 11  # from 03:00 of the 6th


async def test_a_page_naming_its_channel_id_files_posts_under_the_real_id_and_adopts_the_placeholder(
        db, world, time):
    origin = world.add_channel("origin_news", "Origin News")
    original = world.post(origin, "Breaking: the bridge is open")
    feed = world.add_channel("feed", "The Feed")
    world.post(feed, "first")
    world.forward(origin, original.id, feed)
    async with WebPreviewServer(world, clock=time.clock, peer_ids=["feed"]) as srv, \
            WebClient(srv.url, now=time.clock, sleep=time.sleep) as client:
        [result] = await WebReader(db, client, now=time.clock).poll_once([await watch(db, "feed", time)])
    assert result.status == "ok" and result.channel_id == feed.id
    assert await rows(db, "SELECT DISTINCT channel_id FROM messages") == [(feed.id,)]
    assert await rows(db, "SELECT id, watched, source, cursor, title FROM channels"
                          " WHERE username = 'feed'") == [(feed.id, 1, "web", 2, "The Feed")]
    # the origin's page carries no id: it stays a placeholder, named by the forward
    [(origin_row,)] = await rows(db, "SELECT fwd_from_id FROM messages WHERE message_id = 2")
    assert origin_row < 0
