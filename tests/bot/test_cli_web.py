"""`chanwatch fetch LINK` and `chanwatch backfill --source web` against the simulator's World: the web
preview served on 127.0.0.1 (bot/simulator/web.py) and, for the API path, the simulated Telegram."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli.backfill import backfill_channels
from bot.cli.common import CliError
from bot.cli.fetch import fetch_link
from bot.config import Settings
from bot.names import parse_post_link
from bot.simulator import World, attach
from bot.simulator.web import WebPreviewServer
from tests.bot.conftest import API_HASH, rows, saved_session

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    return World(now=START)


@pytest.fixture
async def server(world: World) -> AsyncIterator[WebPreviewServer]:
    async with WebPreviewServer(world) as srv:
        yield srv


def web_settings(tmp_path: Path, server: WebPreviewServer, **kwargs: object) -> Settings:
    """No Telegram credentials at all: the web preview only (at its fastest allowed rate)."""
    return Settings(db_path=tmp_path / "w.db", web_url=server.url, web_rate=10, **kwargs)  # type: ignore[arg-type]


def origin_and_feed(world: World) -> tuple[int, int]:
    origin = world.add_channel("origin_news", "Origin News")
    original = world.post(origin, "Breaking: the bridge is open")
    feed = world.add_channel("feed_chan", "The Feed")
    world.post(feed, "unrelated")
    world.forward(origin, original.id, feed)
    return origin.id, original.id


def test_post_links_are_read_in_every_form_and_private_links_refused():
    assert parse_post_link("https://t.me/feed_chan/12") == ("feed_chan", 12)
    assert parse_post_link("t.me/s/feed_chan/12?single") == ("feed_chan", 12)
    assert parse_post_link("@feed_chan/3") == ("feed_chan", 3)
    with pytest.raises(ValueError, match="private channel"):
        parse_post_link("https://t.me/c/1234567/4")
    with pytest.raises(ValueError, match="not a post link"):
        parse_post_link("https://t.me/feed_chan")


async def test_fetch_without_a_session_reads_the_embed_page_and_keeps_the_forwards_origin(
        world, server, tmp_path):
    _, original_id = origin_and_feed(world)
    out = io.StringIO()
    settings = web_settings(tmp_path, server)
    assert await fetch_link(settings, "https://t.me/feed_chan/2", out=out) == 0
    assert out.getvalue().startswith("https://t.me/feed_chan/2: archived, 1 new message(s)")
    assert server.requests["/feed_chan/2"] == 1
    assert rows(settings.db_path, "SELECT p.origin_message_id, c.username FROM posts p"
                                  " JOIN channels c ON c.id = p.origin_channel_id") == [
        (original_id, "origin_news")]
    assert await fetch_link(settings, "@feed_chan/2", out=out) == 0
    assert out.getvalue().splitlines()[-1] == "https://t.me/feed_chan/2: already archived, unchanged"


async def test_fetch_of_a_missing_post_is_a_one_line_user_error(world, server, tmp_path):
    origin_and_feed(world)
    with pytest.raises(CliError, match="feed_chan/99"):
        await fetch_link(web_settings(tmp_path, server), "https://t.me/feed_chan/99")


async def test_fetch_with_a_session_reads_the_post_through_the_api_with_its_provenance(
        world, server, tmp_path):
    origin_id, original_id = origin_and_feed(world)
    account = world.add_user("Reader", username="chanwatch_reader")
    settings = web_settings(tmp_path, server, api_id=1, api_hash=API_HASH,
                            session=await saved_session(world, account))
    out = io.StringIO()
    status = await fetch_link(settings, "t.me/feed_chan/2", out=out,
                              prepare=lambda client, kind: attach(world, client))
    assert status == 0 and "archived, 1 new message(s)" in out.getvalue()
    assert sum(server.requests.values()) == 0  # the web preview was not asked
    assert rows(settings.db_path, "SELECT origin_channel_id, origin_message_id FROM posts") == [
        (origin_id, original_id)]
    assert rows(settings.db_path, "SELECT watched FROM channels WHERE username = 'feed_chan'") == [(0,)]


async def test_backfill_source_web_reads_the_history_without_any_credentials(world, server, tmp_path):
    feed = world.add_channel("historic", "Historic")
    for i in range(45):
        world.post(feed, f"old post {i + 1}")
    settings = web_settings(tmp_path, server)
    out = io.StringIO()
    assert await backfill_channels(settings, ["@historic"], limit=30, progress=False, out=out,
                                   source="web") == 0
    first = out.getvalue()
    assert first.startswith("@historic: 30 messages (30 new)") and "resumable below id 16" in first
    by_config = web_settings(tmp_path, server, source="web")  # CHANWATCH_SOURCE=web
    assert await backfill_channels(by_config, ["historic"], progress=False, out=out) == 0
    assert out.getvalue().splitlines()[-1].endswith("complete")
    assert rows(settings.db_path, "SELECT count(*), min(message_id), max(message_id) FROM messages") == [
        (45, 1, 45)]


async def test_backfill_source_web_of_a_name_without_preview_fails_that_channel_only(world, server, tmp_path):
    feed = world.add_channel("fineone", "Fine")
    world.post(feed, "hello")
    settings = web_settings(tmp_path, server)
    out = io.StringIO()
    assert await backfill_channels(settings, ["nosuchname", "fineone"], progress=False, out=out,
                                   source="web") == 2
    assert out.getvalue().startswith("@fineone: 1 message (1 new)")
