"""/report through the real bot client and the simulator: a summary with the archive's figures in
narrow tables, the whole report as an HTML document in the same chat, and the answers to a missing
argument, a window it cannot read, an unknown channel, a bad query and a chat not allowed."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from html import unescape

import pytest
from telethon import helpers, types

from bot.command_text import amplification_summary, short_delay
from bot.commands.base import MAX_INPUT
from bot.commands.report import WindowError, window
from bot.simulator import ChatLogEntry, SimUser, World
from storage.ingest import ingest_batch
from storage.reports import Amplification, AmplifierFigures, OriginFigures
from tests.bot.commands_support import Harness, code
from tests.storage.factories import EMBASSY, MFA, T0, batch, fwd, msg
from tests.storage.test_reports import amplification_story

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

SCRIPT = "<script>alert('x')</script> Statement on sanctions & visas"


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


@pytest.fixture
async def story(db) -> None:
    await db.run(amplification_story)


async def report(h: Harness, user: SimUser, command: str) -> list[ChatLogEntry]:
    """`user` sends `command`; the bot's new messages in their chat (the summary, then the file)."""
    before = len(h.answers(user))
    h.world.say(user, h.bot_account, command)
    await h.settle()
    return h.answers(user)[before:]


def document(world: World, entry: ChatLogEntry) -> tuple[str, str, str]:
    """A received document's file name, mime type and content (as text)."""
    assert isinstance(entry.media, types.MessageMediaDocument), entry.text
    doc = entry.media.document
    [name] = [a.file_name for a in doc.attributes if isinstance(a, types.DocumentAttributeFilename)]
    return name, doc.mime_type, world.files[doc.id].data.decode("utf-8")


def pre_lines(entry: ChatLogEntry) -> list[str]:
    """The lines of the message's <pre> blocks (entity offsets count UTF-16 units)."""
    text = helpers.add_surrogate(entry.text)
    return [line for e in entry.entities if isinstance(e, types.MessageEntityPre)
            for line in helpers.del_surrogate(text[e.offset:e.offset + e.length]).split("\n")]


# -- the amplification report -----------------------------------------------------------------


async def test_amplification_summary_shows_the_archives_figures_in_tables_a_phone_shows_whole(
        h, alice, story) -> None:
    h.start()
    await h.allow(alice)

    summary, _file = await report(h, alice, "/report amplification 7d")

    assert summary.text.startswith("📈 Amplification, posts of 2025-12-12 to 2025-12-18 (UTC)")
    lines = pre_lines(summary)
    assert "MFARussia      3        2    67%" in lines
    assert "rusembc                 2    67%      5m" in lines
    assert "RussianEmbassyUK        2    67%      2m" in lines
    assert max(len(line) for line in lines) <= 40
    assert "1. 2025-12-17 10:00 · MFARussia · 2 channels · 1,200 views" in summary.text
    assert re.search(r"/post \d+", summary.text) and "Posts no one carried: 1" in summary.text
    assert len(summary.text) <= 4096


async def test_the_report_arrives_as_an_html_document_named_for_the_day_with_its_charts(
        h, alice, story, world) -> None:
    h.start()
    await h.allow(alice)

    summary, file = await report(h, alice, "/report amplification")

    name, mime, html = document(world, file)
    assert (name, mime) == ("amplification-2025-12-18.html", "text/html")
    assert html.lstrip().lower().startswith("<!doctype html>")
    charts = re.findall(r"<svg\b[^>]*>", html)
    assert len(charts) >= 3 and all('role="img"' in tag for tag in charts)  # carry, delays, timeline
    assert "rusembc" in html and "RussianEmbassyUK" in html
    assert "<script" not in html.lower()
    assert file.reply_to is not None and file.reply_to.text == "/report amplification"


async def test_in_a_group_the_summary_and_the_file_go_to_the_group(h, world, alice, bot_account,
                                                                   story) -> None:
    group = world.add_group("Research", [alice, bot_account])
    h.start()
    await h.allow(group)

    world.say(alice, group, "/report@chanwatch_bot amplification 7d")
    await h.settle()

    summary, file = h.answers(group)
    assert summary.text.startswith("📈 Amplification") and file.is_group and file.peer_id == group.id
    assert document(world, file)[0] == "amplification-2025-12-18.html"
    assert h.answers(alice) == []  # nothing went to her private chat with the bot


async def test_an_origin_narrows_the_report_to_its_posts(h, alice, db, world) -> None:
    h.start()
    await h.allow(alice)

    def setup(conn: sqlite3.Connection) -> None:
        amplification_story(conn)  # the MFA's posts, carried by both embassies
        ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 900, "Embassy reception notes", minutes=70)), T0)
        ingest_batch(conn, batch(MFA, fwd(MFA, 90, EMBASSY, 900, "Embassy reception notes", minutes=80)), T0)

    await db.run(setup)
    everyone, _ = await report(h, alice, "/report amplification")
    only_mfa, file = await report(h, alice, "/report amplification @MFARussia 30d")

    assert any(line.startswith("rusembc ") for line in pre_lines(everyone)[:3])  # rusembc is an origin too
    assert not any(line.startswith("rusembc ") for line in pre_lines(only_mfa)[:2])
    assert "posts of 2025-11-19 to 2025-12-18" in only_mfa.text
    assert document(world, file)[0] == "amplification-2025-12-18.html"


async def test_a_window_with_nothing_carried_says_so_and_sends_no_file(h, alice, story) -> None:
    h.start()
    await h.allow(alice)
    [answer] = await report(h, alice, "/report amplification 2025-01-01..2025-01-31")
    assert "No origin's post was carried by another channel in this window" in answer.text
    assert answer.media is None


# -- channel and query reports ---------------------------------------------------------------


async def test_channel_report_gives_its_days_and_sources_and_a_document_named_for_it(
        h, alice, story, world) -> None:
    h.start()
    await h.allow(alice)

    summary, file = await report(h, alice, "/report channel @rusembc")

    assert summary.text.startswith("📡 rusembc: 3 messages, 2025-12-12 to 2025-12-18 (UTC)")
    assert "2025-12-17    1    1     1" in pre_lines(summary)  # its own, a forward, a copy
    assert "MFARussia    1     1" in pre_lines(summary)  # one forward, one copy of the MFA
    name, _, html = document(world, file)
    assert name == "channel-rusembc-2025-12-18.html" and "<svg" in html


async def test_query_report_counts_matches_per_channel_and_day(h, alice, story, world) -> None:
    h.start()
    await h.allow(alice)

    summary, file = await report(h, alice, "/report query canada")

    assert summary.text.startswith("🔎 1 post matches canada")
    lines = pre_lines(summary)
    assert {"MFARussia                1", "rusembc                  1", "RussianEmbassyUK         1",
            "2025-12-17         3"} <= set(lines)
    assert document(world, file)[0] == "query-2025-12-18.html"


async def test_a_report_query_longer_than_the_bot_reads_is_cut_and_says_so(h, alice, story, world) -> None:
    h.start()
    await h.allow(alice)
    [summary] = await report(h, alice, "/report query canada " + "x" * 10_000)  # matches none: no file
    assert summary.text.startswith(f"(your query was cut to {MAX_INPUT} characters)")
    assert len(summary.text) < 4096


async def test_report_query_with_a_bad_query_answers_the_syntax_error_and_an_example(h, alice, story) -> None:
    h.start()
    await h.allow(alice)
    [answer] = await report(h, alice, "/report query canada (visa")
    assert answer.text.startswith("❌ Bad query:")
    assert "canada (visa\n" in answer.text and "^" in answer.text
    assert "/report query canada sanctions -visa" in code(answer)
    assert answer.media is None


# -- escaping -----------------------------------------------------------------------------------


async def test_a_script_in_a_post_comes_out_escaped_in_the_summary_and_the_document(
        h, alice, db, world) -> None:
    h.start()
    await h.allow(alice)

    def setup(conn: sqlite3.Connection) -> None:
        ingest_batch(conn, batch(MFA, msg(MFA, 10, SCRIPT)), T0)
        ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 500, MFA, 10, SCRIPT, minutes=3)), T0)

    await db.run(setup)
    summary, file = await report(h, alice, "/report amplification")

    assert SCRIPT in summary.text  # shown as text: the HTML it was sent as had it escaped
    _, _, html = document(world, file)
    assert "<script" not in html.lower() and "&lt;script&gt;" in html


# -- usage, errors, access -------------------------------------------------------------------


async def test_report_alone_answers_the_usage_with_an_example_of_each_report(h, alice) -> None:
    h.start()
    await h.allow(alice)
    [answer] = await report(h, alice, "/report")
    for example in ("/report amplification 7d @MFARussia", "/report channel @rusembc 30d",
                    "/report query canada sanctions -visa", "2025-12-01..2025-12-31"):
        assert example in code(answer)
    for command in ("/report channel", "/report channel @rusembc @MFARussia"):
        [answer] = await report(h, alice, command)
        assert answer.text.startswith("Name one channel: /report channel @rusembc\n📈 /report")
    [unknown] = await report(h, alice, "/report weather 7d")
    assert unknown.text.startswith("I don't know the report weather.") and "/report channel" in unknown.text


async def test_a_window_it_cannot_read_gets_the_accepted_forms(h, alice, story) -> None:
    h.start()
    await h.allow(alice)
    for command, shown in (("/report amplification lastweek", "lastweek"),
                           ("/report channel @rusembc 2025-12-31..2025-12-01", "2025-12-31..2025-12-01"),
                           ("/report amplification 7d 30d", "30d")):
        [answer] = await report(h, alice, command)
        assert answer.text.startswith(f"❌ I can't read the window {shown}"), answer.text
        assert "24h" in code(answer) and "2025-12-01..2025-12-31" in code(answer)
    [swapped] = await report(h, alice, "/report channel @rusembc 2025-12-31..2025-12-01")
    assert "the first day is after the last; swap them" in swapped.text
    [bare] = await report(h, alice, "/report amplification MFARussia")
    assert "window MFARussia; for a channel, write @MFARussia." in bare.text


async def test_a_newline_may_separate_the_report_from_its_arguments(h, alice, story) -> None:
    h.start()
    await h.allow(alice)
    summary, _file = await report(h, alice, "/report channel\n@rusembc")
    assert summary.text.startswith("📡 rusembc: 3 messages")


async def test_an_unknown_channel_is_named_in_the_answer(h, alice, story) -> None:
    h.start()
    await h.allow(alice)
    for command in ("/report channel @nosuchchannel", "/report amplification @nosuchchannel"):
        [answer] = await report(h, alice, command)
        assert answer.text.startswith("❌ The archive knows no channel @nosuchchannel.")
        assert "/channels" in answer.text and answer.media is None


async def test_a_chat_not_allowed_is_refused_and_gets_neither_summary_nor_file(h, world, story) -> None:
    h.start()
    stranger = world.add_user("Stranger")
    [answer] = await report(h, stranger, "/report amplification")
    assert answer.text.startswith("🔒 This bot is private.") and answer.media is None
    assert "MFARussia" not in answer.text


async def test_help_and_the_published_menu_list_report(h, alice, bot_account) -> None:
    commands = h.start()
    await h.allow(alice)
    [answer] = await report(h, alice, "/help")
    assert "/report amplification|channel|query" in answer.text
    assert "/report amplification 7d @MFARussia" in code(answer)
    assert await commands.publish_menu()
    assert "report" in [c.command for c in bot_account.bot_commands]


# -- windows ------------------------------------------------------------------------------------

NOW = datetime(2025, 12, 18, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(("token", "days"), [
    ("7d", (date(2025, 12, 12), date(2025, 12, 18))),
    ("1d", (date(2025, 12, 18), date(2025, 12, 18))),
    ("24h", (date(2025, 12, 17), date(2025, 12, 18))),
    ("6H", (date(2025, 12, 18), date(2025, 12, 18))),
    ("2025-12-01..2025-12-31", (date(2025, 12, 1), date(2025, 12, 31))),
])
def test_a_window_names_the_utc_days_it_covers(token: str, days: tuple[date, date]) -> None:
    assert window(token, NOW) == days


@pytest.mark.parametrize("token", ["0d", "99999d", "7w", "2025-02-30..2025-03-01", "2025-12-31..2025-12-01",
                                   "yesterday", ""])
def test_a_window_naming_no_days_is_refused(token: str) -> None:
    with pytest.raises(WindowError):
        window(token, NOW)


# -- narrow tables ----------------------------------------------------------------------------------


def test_names_too_long_for_a_phone_are_cut_in_the_middle_so_siblings_stay_apart() -> None:
    amplifiers = tuple(AmplifierFigures(1, i, f"freedonia_in_{country}", 5, 5 / 11, 5, 0, 3900, 3900, 3900, 0,
                                        0, 0) for i, country in enumerate(("canada", "kenya_and_uganda"), 2))
    origins = (OriginFigures(1, "mfa_freedonia", 11, 8),)
    report = Amplification("2025-12-01", "2025-12-07", origins, amplifiers, (), (), (), ())

    summary = amplification_summary(report)

    assert "\nfreedoni…_canada        5    45%    1h5m\nfreedoni…_uganda        5    45%    1h5m</pre>" \
        in unescape(summary)


@pytest.mark.parametrize(("seconds", "shown"), [(45, "45s"), (300, "5m"), (3900, "1h5m"), (7200, "2h"),
                                                (90000, "1d1h"), (86400 * 12 + 3600 * 23, "12d23h")])
def test_a_delay_fits_six_characters(seconds: int, shown: str) -> None:
    assert short_delay(seconds) == shown
