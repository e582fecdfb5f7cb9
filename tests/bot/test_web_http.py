"""The web-preview client (bot/web/http.py) against the simulator's real HTTP server on 127.0.0.1
(bot/simulator/web.py): paging, the overall rate, 429 and Retry-After, retries, time bounds, no
public preview, one kept-alive connection; and the server's pages carrying t.me's markup."""

from __future__ import annotations

import asyncio
import email.utils
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from telethon.tl import types

from bot.simulator import LoopClock, World, media
from bot.simulator.web import WebPreviewServer, compact_count, entities_html
from bot.web.http import USER_AGENT, WebClient, WebDeferred, WebNotFound, WebUnavailable, parse_retry_after

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class FakeTime:
    """The injected clock and sleep: sleeping moves the clock, and no test waits for real."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def world() -> World:
    w = World(now=START)
    channel = w.add_channel("newsroom", "Newsroom")
    for n in range(1, 46):
        w.post(channel, f"post number {n}", views=n * 1000)
    return w


@pytest.fixture
async def server(world, time) -> AsyncIterator[WebPreviewServer]:
    async with WebPreviewServer(world, clock=time.clock) as srv:
        yield srv


def client(server: WebPreviewServer, time: FakeTime, **kwargs) -> WebClient:
    return WebClient(server.url, now=time.clock, sleep=time.sleep, **kwargs)


def post_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-post="[^/"]+/(\d+)"', page)]


def request_times(server: WebPreviewServer) -> list[float]:
    return [(when - START).total_seconds() for when, _ in server.log]


async def test_pages_back_with_before_from_the_newest_to_the_first_post(server, time):
    async with client(server, time) as web:
        seen: list[int] = []
        before = None
        while True:
            page = await web.channel_page("newsroom", before=before)
            ids = post_ids(page)
            assert ids == sorted(ids) and len(ids) <= 20  # oldest first, 20 at most, as t.me
            seen = ids + seen
            more = re.search(r'data-before="(\d+)"', page)
            if more is None:
                break
            before = int(more.group(1))
            assert before == ids[0]
    assert seen == list(range(1, 46))
    assert [target for _, target in server.log] == ["/s/newsroom", "/s/newsroom?before=26",
                                                     "/s/newsroom?before=6"]
    assert server.requests["/s/newsroom"] == 3


async def test_after_gives_the_posts_just_above_an_id_with_a_link_to_newer_ones(server, time):
    async with client(server, time) as web:
        page = await web.get("/s/newsroom", {"after": "10"})
    assert post_ids(page) == list(range(11, 31))
    assert re.search(r'data-after="(\d+)"', page).group(1) == "30"


async def test_requests_are_spaced_by_the_overall_rate_on_the_injected_clock(world, server, time):
    world.add_channel("other", "Other")
    async with client(server, time, rate=0.5) as web:  # one request every 2 s, whatever the channel
        await asyncio.gather(web.channel_page("newsroom"), web.channel_page("other"),
                             web.channel_page("newsroom", before=26), web.embed("other", 1))
    times = request_times(server)
    assert len(times) == 4
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [2.0, 2.0, 2.0]


async def test_the_default_rate_is_one_request_a_second(server, time):
    async with client(server, time) as web:
        for _ in range(3):
            await web.channel_page("newsroom")
    assert request_times(server) == [0.0, 1.0, 2.0]


async def test_a_429_is_waited_out_for_its_retry_after_then_retried(server, time):
    server.throttle(1, retry_after=7)
    async with client(server, time) as web:
        page = await web.channel_page("newsroom")
    assert post_ids(page)[-1] == 45
    assert request_times(server) == [0.0, 7.0]
    assert server.requests["/s/newsroom"] == 2


async def test_a_retry_after_given_as_an_http_date_is_honoured(server, time):
    server.throttle(1, retry_after=email.utils.format_datetime(START + timedelta(seconds=20), usegmt=True))
    async with client(server, time) as web:
        await web.channel_page("newsroom")
    assert request_times(server) == [0.0, 20.0]


async def test_a_429_without_retry_after_backs_off_doubling(server, time):
    server.throttle(2, retry_after=None)
    async with client(server, time, backoff=2.0) as web:
        await web.channel_page("newsroom")
    assert request_times(server) == [0.0, 2.0, 6.0]


async def test_a_long_retry_after_defers_and_no_request_is_sent_until_then(server, time):
    server.throttle(1, retry_after=3600)
    async with client(server, time, max_wait=60) as web:
        with pytest.raises(WebDeferred) as caught:
            await web.channel_page("newsroom")
        assert caught.value.retry_at == START + timedelta(seconds=3600)
        with pytest.raises(WebDeferred):  # another channel: the whole client waits
            await web.embed("newsroom", 3)
        assert len(server.log) == 1
        time.now = START + timedelta(seconds=3600)
        assert post_ids(await web.embed("newsroom", 3)) == [3]
    assert len(server.log) == 2


async def test_a_500_is_retried_with_doubling_backoff_then_the_page_comes(server, time):
    server.fail(2, status=500)
    async with client(server, time, backoff=2.0) as web:
        page = await web.channel_page("newsroom")
    assert post_ids(page)[-1] == 45
    assert request_times(server) == [0.0, 2.0, 6.0]


async def test_500s_past_the_retries_give_up_as_unavailable(server, time):
    server.fail(10, status=503)
    async with client(server, time, retries=3) as web:
        with pytest.raises(WebUnavailable) as caught:
            await web.channel_page("newsroom")
    assert caught.value.attempts == 4 and "503" in str(caught.value)
    assert len(server.log) == 4


async def test_a_body_cut_short_is_retried_and_the_whole_page_returned(server, time):
    server.truncate(1)
    async with client(server, time) as web:
        page = await web.channel_page("newsroom")
    assert page.rstrip().endswith("</html>") and post_ids(page)[-1] == 45
    assert len(server.log) == 2
    assert server.connections == 2  # the cut answer closed its connection


async def test_a_connection_dropped_without_an_answer_is_retried_on_a_new_one(server, time):
    server.drop(1)
    async with client(server, time) as web:
        page = await web.channel_page("newsroom")
    assert post_ids(page)[-1] == 45
    assert len(server.log) == 2 and server.connections == 2


async def test_a_slow_answer_is_bounded_by_the_timeout_then_retried(server, time):
    server.slow(1, seconds=3600)
    with LoopClock() as loop_clock:
        async with client(server, time, timeout=30) as web:
            task = asyncio.create_task(web.channel_page("newsroom"))
            await server.held.wait()
            loop_clock.advance(31)  # past the client's bound, far short of the server's hour
            page = await task
    assert post_ids(page)[-1] == 45
    assert len(server.log) == 2


async def test_a_channel_without_public_preview_is_not_found_without_retrying(world, time):
    world.add_channel("closed", "Closed", private=True)
    world.add_channel("hidden", "No preview")
    world.add_user("Alice", username="alice_user")
    async with WebPreviewServer(world, no_preview=["hidden"], clock=time.clock) as srv:
        async with client(srv, time) as web:
            for name in ("closed", "hidden", "alice_user", "nobody_here"):
                with pytest.raises(WebNotFound, match="redirected"):
                    await web.channel_page(name)
        assert len(srv.log) == 4  # one request each: the redirect is neither followed nor retried
        assert srv.requests["/hidden"] == 0


async def test_one_tcp_connection_is_kept_alive_across_requests(server, time):
    async with client(server, time) as web:
        for before in (None, 40, 30, 20, 10):
            await web.channel_page("newsroom", before=before)
        await web.embed("newsroom", 5)
    assert len(server.log) == 6 and server.connections == 1


async def test_the_user_agent_names_chanwatch_its_version_and_that_it_archives(server, time):
    async with client(server, time) as web:
        await web.channel_page("newsroom")
    assert server.user_agents == [USER_AGENT]
    assert re.match(r"chanwatch/\S+ \(archiver", USER_AGENT)


def test_retry_after_reads_seconds_and_http_dates_and_ignores_nonsense():
    assert parse_retry_after("120", START) == 120.0
    assert parse_retry_after("Sun, 01 Mar 2026 09:01:30 GMT", START) == 90.0
    assert parse_retry_after("Sun, 01 Mar 2026 08:00:00 GMT", START) == 0.0
    assert parse_retry_after("soon", START) is None and parse_retry_after(None, START) is None


# -- the server's markup -------------------------------------------------------------------------

VOID = {"meta", "link", "br", "img", "input", "hr"}


class Elements(HTMLParser):
    """Every element's tag and attributes, and whether each opened tag was closed in order."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.open: list[str] = []
        self.misnested: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.misnested.append(tag)

    def having(self, cls: str) -> list[dict[str, str]]:
        return [a for _, a in self.found if cls in a.get("class", "").split()]


@pytest.fixture
def rich_world() -> World:
    w = World(now=START)
    origin = w.add_channel("origin_news", "Origin News")
    w.service(origin, types.MessageActionChannelCreate(title="Origin News"))
    original = w.post(origin, "Breaking: the bridge is open", views=51_734, post_author="Ivan Petrov")
    feed = w.add_channel("feed", "The Feed", about="All the news")
    w.forward(origin, original.id, feed)                                                    # 1
    w.forward_hidden(feed, "Hidden Person", "a hidden sender's words", orig_date=START)    # 2
    w.album(feed, [("two pictures", w.photo(b"p" * 100)), ("", media.video(duration=75))])  # 3, 4
    w.post(feed, "the report", media=media.document(file_name="report.pdf", size=1_234_567))  # 5
    w.post(feed, "", media=media.poll("Open the bridge?", ["Yes", "No"]))                    # 6
    w.post(feed, "a reply", reply_to=5)                                                      # 7
    w.edit(feed, 7, "a reply, reworded")
    return w


async def test_a_channel_page_carries_t_me_structure_for_every_kind_of_post(rich_world, time):
    async with WebPreviewServer(rich_world, clock=time.clock) as srv, client(srv, time) as web:
        page = await web.channel_page("feed")
        origin_page = await web.channel_page("origin_news")
    doc = Elements(page)
    assert doc.misnested == [] and doc.open == []
    posts = doc.having("tgme_widget_message")
    assert [p["data-post"] for p in posts] == ["feed/1", "feed/2", "feed/3", "feed/5", "feed/6", "feed/7"]
    assert [a["datetime"] for t, a in doc.found if t == "time" and "datetime" in a][0] == \
        "2026-03-01T09:00:00+00:00"
    [linked, hidden] = doc.having("tgme_widget_message_forwarded_from_name")
    assert linked["href"] == "https://t.me/origin_news/2" and "href" not in hidden
    assert [a["href"] for a in doc.having("grouped_media_wrap")] == ["https://t.me/feed/3?single",
                                                                     "https://t.me/feed/4?single"]
    assert "1.2 MB" in page and ">report.pdf<" in page and ">Open the bridge?<" in page
    assert doc.having("tgme_widget_message_reply")[0]["href"] == "https://t.me/feed/5"
    assert page.count("edited &nbsp;") == 1 and ">1:15<" in page
    assert doc.having("tgme_channel_info_counter") and "All the news" in page

    origin = Elements(origin_page)
    assert origin.having("service_message")[0]["data-post"] == "origin_news/1"
    assert ">51.7K<" in origin_page and ">Ivan Petrov<" in origin_page
    assert origin.having("tgme_widget_message_from_author")


async def test_an_embed_page_shows_one_post_and_a_missing_one_says_not_found(rich_world, time):
    async with WebPreviewServer(rich_world, clock=time.clock) as srv, client(srv, time) as web:
        album = await web.embed("feed", 3)
        missing = await web.embed("feed", 99)
    assert post_ids(album) == [3] and "two pictures" in album and "?single" in album
    assert post_ids(missing) == [] and "tgme_widget_message_error" in missing


async def test_changed_markup_keeps_the_text_but_drops_the_class_names(server, time):
    server.change_markup(1)
    async with client(server, time) as web:
        changed = await web.channel_page("newsroom")
        normal = await web.channel_page("newsroom")
    assert post_ids(changed) == [] and "post number 45" in changed
    assert post_ids(normal)[-1] == 45


# Class names real t.me pages use that no fixture holds (documents, signatures, a missing post's
# embed): seen in public scrapers of t.me/s pages.
NOT_IN_FIXTURES = {"tgme_widget_message_document_wrap", "tgme_widget_message_document_icon",
                   "tgme_widget_message_document", "tgme_widget_message_document_title",
                   "tgme_widget_message_document_extra", "tgme_widget_message_from_author",
                   "tgme_widget_message_error"}


async def test_the_server_uses_only_class_names_real_pages_use(rich_world, time, real_web_preview_classes):
    async with WebPreviewServer(rich_world, clock=time.clock) as srv, client(srv, time) as web:
        pages = [await web.channel_page("feed"), await web.channel_page("origin_news"),
                 await web.embed("feed", 3), await web.embed("feed", 99)]
    used = {c for page in pages for _, a in Elements(page).found for c in a.get("class", "").split()}
    assert used - real_web_preview_classes == NOT_IN_FIXTURES


@pytest.fixture(scope="module")
def real_web_preview_classes() -> set[str]:
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "web_preview"
    return {c for f in folder.glob("*.html") for _, a in Elements(f.read_text(errors="replace")).found
            for c in a.get("class", "").split()}


def test_counts_are_shown_as_t_me_shows_them_cut_not_rounded():
    assert [compact_count(n) for n in (999, 1000, 1_199, 51_799, 109_900, 1_560_000)] == \
        ["999", "1.0K", "1.1K", "51.7K", "109K", "1.5M"]


def test_entities_become_t_me_html_at_utf16_offsets():
    text = "😀 bold #tag and link\nend <b>"
    entities = [types.MessageEntityBold(offset=3, length=4), types.MessageEntityHashtag(offset=8, length=4),
                types.MessageEntityTextUrl(offset=17, length=4, url="https://example.com/?a=1&b=2"),
                types.MessageEntityItalic(offset=17, length=2)]
    assert entities_html(text, entities) == (
        '😀 <b>bold</b> <a href="?q=%23tag">#tag</a> and <a href="https://example.com/?a=1&amp;b=2"'
        ' target="_blank" rel="noopener" onclick="return confirm(\'Open this link?\\n\\n\'+this.href);">'
        "<i>li</i>nk</a><br/>end &lt;b&gt;")
