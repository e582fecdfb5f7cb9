"""/start, /help and /search through the real bot client and the simulator: result pages, buttons,
groups, bad queries, escaping, and errors answered instead of raised."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.commands import COMMAND, EXPIRED, FAILED, MAX_INPUT
from bot.config import Settings
from storage.ingest import ingest_batch
from tests.bot.commands_support import (
    Harness,
    bold,
    buttons,
    chat_id_of,
    code,
    fill,
    sanction_texts,
    statement_with_forwards,
)
from tests.storage.factories import MFA, batch, msg

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


# -- help ---------------------------------------------------------------------------------------


async def test_start_and_help_list_every_command_with_an_example_and_the_syntax(h, alice) -> None:
    h.start()
    await h.allow(alice)
    for command in ("/start", "/help"):
        answer = await h.ask(alice, command)
        for name in ("search", "subscribe", "rules", "unsubscribe", "mode", "pause", "resume", "channels",
                     "status"):
            assert f"/{name}" in answer.text
        assert "/search canada sanctions" in code(answer)
        assert "/search@chanwatch_bot canada" in answer.text
        assert "from:MFARussia" in answer.text and "since:2025-12-01" in answer.text
        assert "/watch" not in answer.text  # admin commands are shown to admins only
        assert len(answer.text) < 4096


async def test_help_shows_admin_commands_to_admins(h, world) -> None:
    admin = world.add_user("Admin")
    h.start(Settings(admins=frozenset({admin.id})))
    answer = await h.ask(admin, "/help")
    assert "/watch @channel" in answer.text and "/allow CHAT_ID" in answer.text


async def test_an_unknown_command_gets_a_short_help(h, alice) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, "/frobnicate now")
    assert "/frobnicate" in answer.text and "/help" in answer.text
    assert len(answer.text) < 200


# -- search ---------------------------------------------------------------------------------------


async def test_search_shows_five_highlighted_results_with_origin_forwarders_and_links(h, alice, db) -> None:
    h.start()
    await h.allow(alice)

    def setup(conn):
        statement_with_forwards(conn)
        fill(conn, sanction_texts(11))

    await db.run(setup)
    answer = await h.ask(alice, "/search sanctions")
    assert answer.text.startswith("🔎 12 posts for sanctions · page 1/3")
    assert [line.split(".")[0] for line in answer.text.split("\n\n")[1:]] == ["1", "2", "3", "4", "5"]
    assert "sanctions" in bold(answer)
    assert "Update 10: new sanctions list number 10" in answer.text  # newest first
    assert "Russian MFA 🇷🇺 (@MFARussia)" in answer.text
    assert answer.reply_to is not None and answer.reply_to.text == "/search sanctions"
    assert set(buttons(answer)) == {"Next »"}
    # The statement (oldest) is on the last page, with its forwarders and links to every sighting.
    last = await h.ask(alice, "/search sanctions canada")
    assert "forwarded by rusembc, +1 more" in last.text
    urls = [e.url for e in last.entities if hasattr(e, "url")]
    assert {"https://t.me/MFARussia/10", "https://t.me/rusembc/500",
            "https://t.me/RussianEmbassyUK/700"} <= set(urls)
    assert buttons(last) == {}


async def test_next_then_previous_gives_the_first_page_again(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    await db.run(fill, sanction_texts(12))
    first = await h.ask(alice, "/search sanctions")
    first_text = first.text
    answer = await h.click(alice, first, buttons(first)["Next »"])
    assert answer.message is None  # a silent answer: the message itself changed
    assert first.text.startswith("🔎 12 posts for sanctions · page 2/3")
    assert first.text.split("\n\n")[1].startswith("6.")
    assert set(buttons(first)) == {"« Previous", "Next »"}
    await h.click(alice, first, buttons(first)["Next »"])
    assert "page 3/3" in first.text and first.text.split("\n\n")[1].startswith("11.")
    assert set(buttons(first)) == {"« Previous"}
    await h.click(alice, first, buttons(first)["« Previous"])
    await h.click(alice, first, buttons(first)["« Previous"])
    assert first.text == first_text
    assert set(buttons(first)) == {"Next »"}
    for data in buttons(first).values():
        assert len(data) < 64


async def test_callback_data_stays_short_whatever_the_query(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    await db.run(fill, sanction_texts(6))
    long_query = "sanctions " + " ".join(f"-word{i}" for i in range(150))
    answer = await h.ask(alice, "/search " + long_query)
    assert "6 posts" in answer.text
    [data] = buttons(answer).values()
    assert len(data) < 64 and b"sanctions" not in data


async def test_a_search_in_a_channel_the_archive_does_not_know_names_it(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    await db.run(fill, sanction_texts(3))
    answer = await h.ask(alice, "/search sanctions channel:rusembcc")
    assert answer.text.startswith("🔎 No posts match")
    assert "knows no channel rusembcc" in answer.text and "/channels" in answer.text


async def test_an_expired_search_answers_politely(h, alice, db) -> None:
    h.start(page_cache_size=1)
    await h.allow(alice)
    await db.run(fill, sanction_texts(7))
    old = await h.ask(alice, "/search sanctions")
    await h.ask(alice, "/search ministry")  # pushes the first search out of the cache
    before = old.text
    answer = await h.click(alice, old, buttons(old)["Next »"])
    assert answer.message == EXPIRED and answer.alert
    assert old.text == before


async def test_a_button_cannot_turn_another_chats_search(h, alice, world, db) -> None:
    bob = world.add_user("Bob")
    h.start()
    await h.allow(alice, bob)
    await db.run(fill, sanction_texts(7))
    alices = await h.ask(alice, "/search sanctions")
    bobs = await h.ask(bob, "/search ministry")
    stolen = buttons(alices)["Next »"]
    answer = await h.click(bob, bobs, stolen)
    assert answer.message == EXPIRED
    assert "page 1/2" in bobs.text


async def test_forged_page_offsets_expire_instead_of_failing(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    await db.run(fill, sanction_texts(7))
    first = await h.ask(alice, "/search sanctions")
    token = buttons(first)["Next »"].split(b":")[1]
    assert (await h.click(alice, first, b"pg:" + token + b":3")).message == EXPIRED
    assert (await h.click(alice, first, b"pg:%%%")).message == "This button no longer works."
    beyond = await h.click(alice, first, b"pg:" + token + b":500")
    assert beyond.message is None and "No more results" in first.text


async def test_search_alone_shows_usage_and_the_syntax(h, alice) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, "/search")
    assert "Usage: /search QUERY" in answer.text and "Query syntax" in answer.text


async def test_no_results_says_so_and_suggests_what_to_try(h, alice) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, "/search nothinglikethis")
    assert answer.text.startswith("🔎 No posts match nothinglikethis")
    assert buttons(answer) == {}


async def test_a_bad_query_shows_the_position_the_hint_and_an_example(h, alice) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, '/search canada "foreign minister')
    assert answer.text.startswith("❌ Bad query: unbalanced quote")
    [shown, *rest] = code(answer)
    line, caret = shown.split("\n")
    assert line == 'canada "foreign minister' and caret == " " * 7 + "^"
    assert 'close the phrase with "' in answer.text
    assert "Example: /search canada sanctions -visa" in answer.text
    assert "Traceback" not in answer.text


async def test_the_caret_follows_a_long_query_window(h, alice) -> None:
    h.start()
    await h.allow(alice)
    query = "word " * 40 + "since:2025-13-01"
    answer = await h.ask(alice, "/search " + query)
    line, caret = code(answer)[0].split("\n")
    position = query.index("2025-13")
    assert line.startswith("…") and line[len(caret) - 1:].startswith("2025-13-01")
    assert caret.strip() == "^" and len(line) < 70
    assert position > 60


async def test_html_and_markdown_in_a_post_are_shown_as_text(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    body = "Sanctions <b>not bold</b> & *not italic* _x_ `y` <a href='x'>z</a> &amp;"
    await db.run(lambda conn: ingest_batch(conn, batch(MFA, msg(MFA, 1, body))))
    answer = await h.ask(alice, "/search sanctions")
    assert body in answer.text
    assert "Sanctions" in bold(answer) and not any("not bold" in b for b in bold(answer))
    assert not any(getattr(e, "url", None) == "x" for e in answer.entities)


async def test_special_characters_and_odd_unicode_in_a_query_are_echoed_safely(h, alice) -> None:
    h.start()
    await h.allow(alice)
    answer = await h.ask(alice, "/search <b>&amp; Кана\u0301да 🇷🇺 \u202e")
    assert "<b>&amp;" in answer.text
    assert all(not hasattr(e, "url") for e in answer.entities)


async def test_a_very_long_query_is_cut_and_says_so(h, alice, db) -> None:
    h.start()
    await h.allow(alice)
    await db.run(fill, sanction_texts(2))
    answer = await h.ask(alice, "/search sanctions " + "x" * 10_000)
    assert f"(your query was cut to {MAX_INPUT} characters)" in answer.text
    assert len(answer.text) < 4096


# -- groups ---------------------------------------------------------------------------------------


async def test_search_in_an_allowed_group_addressed_to_the_bot(h, world, alice, bot_account, db) -> None:
    bob = world.add_user("Bob")
    group = world.add_group("Team", [alice, bob, bot_account])
    h.start()
    await h.allow(group)
    await db.run(fill, sanction_texts(6))
    answer = await h.ask(bob, "/search@chanwatch_bot sanctions", where=group)
    assert answer.text.startswith("🔎 6 posts for sanctions · page 1/2")
    assert answer.reply_to is not None and answer.reply_to.sender_id == bob.id
    await h.click(alice, answer, buttons(answer)["Next »"])
    assert "page 2/2" in answer.text
    # a command for another bot, and an unaddressed unknown command, are left alone
    world.say(bob, group, "/search@other_bot sanctions")
    world.say(bob, group, "/weather")
    await h.settle()
    assert len(h.answers(group)) == 1


async def test_a_group_that_is_not_allowed_gets_only_a_refusal(h, world, alice, bot_account, db) -> None:
    admin = world.add_user("Admin")
    group = world.add_group("Strangers", [alice, admin, bot_account])
    h.start(Settings(admins=frozenset({admin.id})))
    await db.run(fill, sanction_texts(3))
    answer = await h.ask(admin, "/search sanctions", where=group)  # an admin's presence is not enough
    assert answer.text.endswith(f"An admin can let this chat in with /allow {chat_id_of(group)}.")
    allowed = await h.ask(admin, "/allow", where=group)
    assert "may use the bot" in allowed.text
    found = await h.ask(alice, "/search sanctions", where=group)
    assert "3 posts" in found.text
    assert "/watch" not in (await h.ask(admin, "/help", where=group)).text  # admin help stays private


# -- robustness -----------------------------------------------------------------------------------


async def test_a_failing_handler_answers_something_went_wrong_and_logs(h, world, caplog) -> None:
    admin = world.add_user("Admin")

    async def broken(name: str) -> str:
        raise RuntimeError("the resolver exploded")

    h.start(Settings(admins=frozenset({admin.id})), watch=broken)
    with caplog.at_level(logging.ERROR, logger="chanwatch.commands"):
        answer = await h.ask(admin, "/watch @rusembc")
    assert answer.text == FAILED
    assert "the resolver exploded" not in answer.text
    assert any("/watch" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_unregister_stops_answering(h, alice) -> None:
    commands = h.start()
    await h.allow(alice)
    await h.ask(alice, "/help")
    commands.unregister()
    h.world.say(alice, h.bot_account, "/help")
    await h.settle()
    assert len(h.answers(alice)) == 1


def test_the_command_pattern_reads_name_target_and_arguments() -> None:
    m = COMMAND.match("/search@ChanWatch_Bot canada\nsanctions")
    assert m is not None and m.groups() == ("search", "ChanWatch_Bot", "canada\nsanctions")
    assert COMMAND.match("/rules").groups() == ("rules", None, None)
    assert COMMAND.match("hello /search x") is None


# -- the answers' text ----------------------------------------------------------------------------


def test_a_page_of_huge_posts_still_fits_one_message() -> None:
    from bot.command_text import results_page
    from bot.formatting import LIMIT, utf16_len
    from storage.records import Post, Sighting

    text_ = "sanctions & <b> " * 400  # escaping makes this several times longer
    sightings = tuple(Sighting(i, "c" * 30, "t", 10_000 + i, "2025-12-17T10:00:00+00:00", "forward")
                      for i in range(20))
    posts = [Post(i, f"k{i}", text_, (), "2025-12-17T10:00:00+00:00", None, None, 1, "o" * 30, "Origin", i,
                  None, "2025-12-17T10:00:00+00:00", None, sightings) for i in range(5)]
    page = results_page("sanctions", posts, [[(0, 9)]] * 5, 40, 0)
    assert utf16_len(page) <= LIMIT
    assert all(f"<b>{n}.</b>" in page for n in range(1, 6))


def test_a_page_past_the_count_limit_says_at_least_and_shows_no_page_count() -> None:
    from bot.command_text import results_page
    from storage.records import Post

    posts = [Post(i, f"k{i}", "sanctions", (), "2025-12-17T10:00:00+00:00", None, None, 1, "mfa", "MFA", i,
                  None, "2025-12-17T10:00:00+00:00", None, ()) for i in range(5)]
    spans = [[(0, 9)]] * 5
    assert "10,000+ posts</b>" in results_page("sanctions", posts, spans, 10_000, 5, total_exact=False)
    assert "· page 2\n" in results_page("sanctions", posts, spans, 10_000, 5, total_exact=False)
    assert "· page 2/3\n" in results_page("sanctions", posts, spans, 12, 5)


def test_caret_lines_point_at_the_culprit_in_short_long_and_multiline_queries() -> None:
    from bot.command_text import caret_lines

    assert caret_lines("a (b", 2) == ("a (b", "  ^")
    assert caret_lines("a\nb\t(", 4) == ("a b (", "    ^")
    assert caret_lines("ab", 2) == ("ab", "  ^")  # the end of the query
    line, caret = caret_lines("x" * 100 + "!" + "y" * 100, 100, width=20)
    assert line.startswith("…") and line.endswith("…") and line[len(caret) - 1] == "!"
