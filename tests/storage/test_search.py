"""Search over an archive filled through ingest: inflections, filters, order, paging, snippets, loaders."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.database import Database, connect_sync
from storage.dialect import dialect_of
from storage.ingest import ingest, ingest_batch
from storage.query import QueryError, parse
from storage.records import Batch, MessageRecord
from storage.search import (
    _runs,
    count,
    highlight_spans,
    id_pages,
    load_docs,
    load_posts,
    register_functions,
    search,
    snippet,
    walk,
)
from storage.text import stem, words
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, STATEMENT_RU, T0, batch, fwd, msg

TEXTS = {
    # MFA originals, one per minute from T0
    10: "Канада ввела новые санкции против России",
    11: "Посол России в Канаде вручил ноту протеста",
    12: "Из Канады поступил ответ: санкций не будет",
    13: "Новая санкция затронула банки",
    14: "Canada announced new sanctions",
    15: "The sanction was lifted",
    16: "Companies sanctioned by Ottawa #Sanctions",
    17: STATEMENT,
    18: STATEMENT_RU,
}


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """The archive of TEXTS and a few forwards, once on SQLite and once on PostgreSQL."""
    return filled(archive)


@pytest.fixture
def lite() -> sqlite3.Connection:
    """The same archive on SQLite only: for what only SQLite has (its Python functions in SQL, its
    statements as run)."""
    return filled(connect_sync(":memory:"))


def filled(conn: sqlite3.Connection) -> sqlite3.Connection:
    ingest_batch(conn, batch(MFA, *(msg(MFA, i, t, minutes=i) for i, t in TEXTS.items())))
    ingest_batch(conn, batch(
        EMBASSY,
        fwd(EMBASSY, 500, MFA, 17, STATEMENT, minutes=60, origin_minutes=17),
        msg(EMBASSY, 501, "Консульский приём 20 декабря не проводится", minutes=61),
    ))
    ingest_batch(conn, batch(
        EMBASSY_UK,
        fwd(EMBASSY_UK, 70, MFA, 17, STATEMENT, minutes=62, origin_minutes=17),
        msg(EMBASSY_UK, 71, "Arctic council: statement on cooperation", minutes=63),
    ))
    return conn


def post_id(conn: sqlite3.Connection, channel_id: int, message_id: int) -> int:
    return conn.execute(
        "SELECT post_id FROM messages WHERE channel_id = ? AND message_id = ?", (channel_id, message_id)
    ).fetchone()[0]


def found(conn: sqlite3.Connection, query: str) -> set[int]:
    """(channel, message) of the MFA originals / first sightings found by `query`."""
    page = search(conn, query, limit=1000)
    assert page.total == len(page.posts)
    return {p.sightings[0].message_id for p in page.posts}


@pytest.mark.parametrize("word", ["Канада", "Канаде", "Канады", "канаду"])
def test_russian_inflections_of_canada(conn, word):
    assert found(conn, word) >= {10, 11, 12}
    assert found(conn, word) == {10, 11, 12, 18}  # 18: "Канадой"


@pytest.mark.parametrize("word", ["санкция", "санкции", "санкций"])
def test_russian_inflections_of_sanction(conn, word):
    assert found(conn, word) == {10, 12, 13, 18}


@pytest.mark.parametrize("word", ["sanction", "sanctions", "sanctioned", "SANCTIONS"])
def test_english_inflections_of_sanction(conn, word):
    assert found(conn, word) == {14, 15, 16, 17}


def test_phrase_is_exact_and_not_stemmed(conn):
    assert found(conn, '"new sanctions"') == {14, 17}
    assert found(conn, '"new sanction"') == set()
    assert found(conn, '"foreign minister"') == {17}


def test_prefix_and_hashtag(conn):
    assert found(conn, "sanct*") == {14, 15, 16, 17}
    assert found(conn, "санкц*") == {10, 12, 13, 18}
    assert found(conn, "#sanctions") == {16}
    assert found(conn, "#МИД") == {18}


def test_boolean_operators(conn):
    assert found(conn, "canada sanctions") == {14, 17}
    assert found(conn, "canada OR arctic") == {14, 17, 71}
    assert found(conn, "sanctions -canada") == {15, 16}
    assert found(conn, "sanctions NOT (canada OR ottawa)") == {15}


def test_channel_filter_sees_every_sighting(conn):
    statement = post_id(conn, MFA.id, 17)
    assert {p.id for p in search(conn, "channel:rusembc").posts} == {
        statement, post_id(conn, EMBASSY.id, 501)
    }
    assert found(conn, "statement channel:RussianEmbassyUK") == {17, 71}
    assert found(conn, f"statement channel:-100{EMBASSY_UK.id}") == {17, 71}
    assert found(conn, "statement -channel:rusembc") == {71}


def test_from_filter(conn):
    assert found(conn, "statement from:mfarussia") == {17}
    assert found(conn, 'statement from:"Russian MFA"') == {17}
    assert found(conn, 'statement from:"russian — mfa!"') == {17}  # the title's folded words
    assert found(conn, f"statement from:{MFA.id}") == {17}
    assert found(conn, "statement -from:@MFARussia") == {71}
    assert found(conn, 'statement -from:"RUSSIAN MFA 🇷🇺"') == {71}


def test_from_finds_a_title_whoever_wrote_it(conn):
    """A title written by SQL, not by ingest (a copy of the archive, a merge), is found by its words:
    on PostgreSQL a trigger lists it and the next search on a writable connection names it."""
    conn.execute("UPDATE posts SET origin_username = NULL, origin_title = 'Ёлка Café News' WHERE id = ?",
                 (post_id(conn, MFA.id, 17),))
    assert found(conn, 'from:"елка cafe news"') == {17}
    assert found(conn, 'statement from:"Russian MFA"') == set()


def test_date_filters_are_inclusive_days(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 30, "canada tomorrow", minutes=24 * 60)))
    assert found(conn, "canada until:2025-12-17") == {14, 17}
    assert found(conn, "canada since:2025-12-18") == {30}
    assert found(conn, "canada since:2025-12-17 until:2025-12-18") == {14, 17, 30}


def test_lang_and_is_filters(conn):
    assert found(conn, "statement lang:en") == {17, 71}
    assert found(conn, "канада lang:en") == set()
    assert found(conn, "statement is:forward") == {17}
    assert found(conn, "statement -is:forward") == {71}
    assert found(conn, "statement is:original") == {17, 71}


def test_edited_and_deleted(conn):
    edited = msg(MFA, 15, "The sanction was extended", minutes=15, edit_date=T0 + timedelta(hours=2))
    ingest_batch(conn, batch(MFA, edited))
    ingest_batch(conn, Batch(channel=MFA, deleted_ids=(13,)))
    assert found(conn, "extended is:edited") == {15}
    assert found(conn, "lifted") == set()
    assert found(conn, "sanction is:edited") == {15}
    assert found(conn, "санкция is:deleted") == {13}
    assert found(conn, "санкция -is:deleted") == {10, 12, 18}


def hide_edit(record: MessageRecord) -> MessageRecord:
    """The message as Telethon hands over an edit Telegram does not show (`edit_hide`)."""
    return replace(record, raw={**(record.raw or {}), "edit_hide": True})


def test_is_edited_finds_posts_edited_before_and_after_they_were_archived(conn):
    shown = msg(MFA, 19, "Arctic council: corrected agenda", minutes=19, edit_date=T0 + timedelta(hours=1))
    hidden = hide_edit(msg(MFA, 20, "Arctic council: the agenda", minutes=20,
                           edit_date=T0 + timedelta(hours=1)))  # a link preview refreshed, say
    ingest_batch(conn, batch(MFA, shown, hidden))
    ingest_batch(conn, batch(MFA, msg(MFA, 15, "The sanction was extended", minutes=15,
                                      edit_date=T0 + timedelta(hours=2))))
    assert found(conn, "is:edited") == {15, 19}
    assert found(conn, "arctic -is:edited") == {20, 71}
    ids = [r[0] for r in conn.execute("SELECT id FROM posts ORDER BY id")]
    assert {d.post_id for d in load_docs(conn, ids) if parse("is:edited").matches(d)} == {
        post_id(conn, MFA.id, 15), post_id(conn, MFA.id, 19),
    }


def test_a_later_edit_telegram_hides_does_not_make_a_post_edited(conn):
    hidden = hide_edit(msg(MFA, 14, TEXTS[14], minutes=14, edit_date=T0 + timedelta(hours=3)))
    assert ingest_batch(conn, batch(MFA, hidden)).messages_updated == 1
    assert found(conn, "is:edited") == set()
    ingest_batch(conn, batch(MFA, msg(MFA, 14, TEXTS[14], minutes=14, edit_date=T0 + timedelta(hours=4))))
    assert found(conn, "is:edited") == {14}  # the same text, now shown edited (e.g. a new photo)


def test_newest_first_paging_and_total(conn):
    page = search(conn, "sanctions OR санкции", limit=3)
    assert page.total == 8
    minutes = [p.sightings[0].message_id for p in page.posts]
    assert minutes == [18, 17, 16]
    second = search(conn, "sanctions OR санкции", limit=3, offset=3)
    assert [p.sightings[0].message_id for p in second.posts] == [15, 14, 13]
    assert second.total == 8


def test_sort_rank_orders_by_bm25(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 40, "arctic arctic arctic arctic", minutes=1)))
    page = search(conn, "arctic sort:rank")
    assert [p.sightings[0].message_id for p in page.posts] == [40, 71]
    assert [p.sightings[0].message_id for p in search(conn, "arctic").posts] == [71, 40]
    # no positive text to rank by: falls back to date
    assert [p.sightings[0].message_id for p in search(conn, "channel:rusembc sort:rank").posts] == [501, 17]


def test_search_accepts_a_parsed_query_and_raises_query_errors(conn):
    q = parse("canada")
    assert search(conn, q).query is q
    with pytest.raises(QueryError):
        search(conn, 'canada "oops')
    with pytest.raises(ValueError):
        search(conn, "canada", limit=-1)


def test_post_has_sightings_and_snippet(conn):
    page = search(conn, '"foreign minister"')
    (post,) = page.posts
    assert post.text == STATEMENT
    assert [(s.channel_id, s.message_id, s.relation) for s in post.sightings] == [
        (MFA.id, 17, "original"), (EMBASSY.id, 500, "forward"), (EMBASSY_UK.id, 70, "forward")
    ]
    assert post.sightings[1].url == "https://t.me/rusembc/500"
    assert post.snippet == STATEMENT


def test_load_posts_keeps_order_and_skips_unknown(conn):
    a, b = post_id(conn, MFA.id, 10), post_id(conn, MFA.id, 17)
    assert [p.id for p in load_posts(conn, [b, 999_999, a, b])] == [b, a]


def test_load_docs(conn):
    (doc,) = load_docs(conn, [post_id(conn, MFA.id, 17)])
    assert doc.words[:4] == ("statement", "by", "foreign", "minister")
    assert doc.stems[3] == "minist"
    assert doc.tags == {"mfa"}
    assert doc.origin == {"mfarussia", str(MFA.id), "russian mfa"}
    assert doc.channels == {
        "mfarussia", str(MFA.id), "rusembc", str(EMBASSY.id), "russianembassyuk", str(EMBASSY_UK.id)
    }
    assert doc.relations == {"original", "forward"}
    assert (doc.edited, doc.deleted, doc.lang) == (False, False, "en")


def test_register_functions_is_idempotent(lite):
    conn = lite
    register_functions(conn)
    register_functions(conn)
    row = conn.execute("SELECT chanwatch_fold('ЁЛКА Café'), chanwatch_name('Russian MFA 🇷🇺')").fetchone()
    assert tuple(row) == ("елка cafe", "russian mfa")


def test_highlight_spans():
    q = parse('канада sanction* "foreign minister" #MFA -visa')
    text = "Foreign Minister: Канаде, Sanctions! visa #MFA"
    spans = highlight_spans(text, q)
    assert [text[a:b] for a, b in spans] == ["Foreign Minister", "Канаде", "Sanctions", "#MFA"]


FOLDING = "aZ ёЁйÉé\u0301ßİﬁK½_-#Канада,."
"""Characters that fold one for one, into several, into none, or not at all."""


def _runs_one_run_at_a_time(text: str) -> list[tuple[int, int, str, str]]:
    """The reference: fold each run of the original text on its own."""
    return [(m.start(), m.end(), word, stem(word))
            for m in re.finditer(r"[^\W_]+", text) for word in words(m.group())]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(FOLDING)), max_size=30) | st.text(max_size=30))
def test_highlight_folds_a_text_once_with_the_same_tokens_and_offsets(text):
    assert _runs(text) == _runs_one_run_at_a_time(text)


def test_snippet_window():
    text = "word " * 100 + "target here " + "tail " * 100
    q = parse("target")
    cut = snippet(text, highlight_spans(text, q))
    assert cut.startswith("…") and cut.endswith("…")
    assert "target here" in cut
    assert len(cut) <= 202
    assert snippet("short", []) == "short"
    assert snippet("x " * 200, []).endswith("…")


async def test_runs_through_database_run():
    db = await Database.open(":memory:")
    try:
        await db.transaction(ingest, batch(MFA, msg(MFA, 1, "Canada")))
        page = await db.run(search, "canada")
        assert page.total == 1
    finally:
        await db.close()


@pytest.mark.parametrize(
    "query", ["санкция", "canada OR канада", "sanctions channel:rusembc", "statement -arctic", "is:forward"]
)
def test_walking_the_date_index_gives_the_same_pages_as_sorting(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    import storage.search as module

    sorted_pages = [[p.id for p in search(conn, query, limit=2, offset=o).posts] for o in (0, 2, 4)]
    monkeypatch.setattr(module, "WALK_THRESHOLD", -1)
    walked_pages = [[p.id for p in search(conn, query, limit=2, offset=o).posts] for o in (0, 2, 4)]
    assert walked_pages == sorted_pages
    assert any(sorted_pages)


# -- bounded totals: exact up to a count limit, a true lower bound past it -------------------------

SANCTIONS = "sanctions OR санкции"  # 8 posts in the fixture archive


def ids(page) -> list[int]:
    return [p.id for p in page.posts]


def test_a_total_past_the_count_limit_is_a_lower_bound_with_the_same_page(conn):
    exact = search(conn, SANCTIONS, limit=3)
    capped = search(conn, SANCTIONS, limit=3, count_limit=5)
    assert (exact.total, exact.total_exact, exact.total_text) == (8, True, "8")
    assert ids(capped) == ids(exact)
    assert not capped.total_exact and 5 <= capped.total <= 8
    assert capped.total_text == f"{capped.total}+"


def test_a_walk_that_reaches_the_oldest_post_knows_the_total(conn):
    page = search(conn, SANCTIONS, limit=20, count_limit=5)
    assert (page.total, page.total_exact) == (8, True)
    assert len(page.posts) == 8


def test_a_filtered_query_over_many_word_matches_counts_what_the_walk_found(conn):
    query = "(sanctions OR санкции) is:original"
    truth = search(conn, query, limit=50)
    page = search(conn, query, limit=2, count_limit=3)
    assert ids(page) == ids(truth)[:2]
    assert not page.total_exact and 3 <= page.total <= truth.total


def test_exact_total_counts_everything_whatever_the_limit(conn):
    page = search(conn, SANCTIONS, limit=1, count_limit=2, exact_total=True)
    assert (page.total, page.total_exact) == (8, True)


def test_sort_rank_past_the_count_limit_ranks_the_most_recently_archived_matches(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 40, "arctic arctic arctic arctic", minutes=1)))
    ingest_batch(conn, batch(MFA, msg(MFA, 41, "arctic news", minutes=2)))
    everything = search(conn, "arctic sort:rank")
    assert [p.sightings[0].message_id for p in everything.posts] == [40, 41, 71]
    newest = search(conn, "arctic sort:rank", count_limit=1)
    assert [p.sightings[0].message_id for p in newest.posts] == [41]
    assert (newest.total, newest.total_exact) == (1, False)
    assert ids(search(conn, "arctic sort:rank", count_limit=1, exact_total=True)) == ids(everything)


def test_a_date_range_walk_starts_at_until_and_stops_at_since(conn):
    query = parse("санкции since:2025-12-17 until:2025-12-17")
    since, until = query.date_range()
    assert (since, until) == ("2025-12-17", "2025-12-18")
    walked = [i for hits in walk(conn, query, first_step=1) for i in hits]
    assert walked == ids(search(conn, query, limit=50))


def test_id_pages_stream_every_match_in_search_order(conn):
    expected = ids(search(conn, SANCTIONS, limit=50))
    pages = list(id_pages(conn, SANCTIONS, 3))
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for page in pages for i in page] == expected
    ranked = ids(search(conn, SANCTIONS + " sort:rank", limit=50))
    assert [i for page in id_pages(conn, SANCTIONS + " sort:rank", 5) for i in page] == ranked


def test_count_is_none_only_when_filters_sit_on_too_many_word_matches(conn):
    assert count(conn, parse(SANCTIONS), limit=5) == 6  # "more than 5"
    assert count(conn, parse(f"({SANCTIONS}) is:original"), limit=5) is None
    assert count(conn, parse(f"({SANCTIONS}) is:original"), exact=True) == 8
    assert count(conn, parse("lang:ru"), limit=3) == 4


def test_filtered_sort_rank_past_the_limit_ranks_recent_word_matches_or_falls_back_to_all(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 40, "arctic arctic arctic arctic", minutes=1)))
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 600, "arctic news", minutes=64)))
    everything = search(conn, "arctic lang:en sort:rank")
    assert [p.sightings[0].message_id for p in everything.posts] == [40, 600, 71]
    # the two most recently archived posts with the word (40, 600) pass the filter: ranked, "2+"
    recent = search(conn, "arctic lang:en sort:rank", limit=1, count_limit=2)
    assert [p.sightings[0].message_id for p in recent.posts] == [40]
    assert (recent.total, recent.total_exact) == (2, False)
    # the window cannot fill the page: every match is ranked, with the exact total
    full = search(conn, "arctic lang:en sort:rank", limit=3, count_limit=2)
    assert ids(full) == ids(everything) and (full.total, full.total_exact) == (3, True)


def test_channel_filter_reads_the_same_in_a_walk_step_and_over_the_archive(conn):
    query, dialect = parse("statement channel:rusembc"), dialect_of(conn)
    whole_sql, whole_params = query.to_sql(dialect=dialect)
    whole = [r[0] for r in conn.execute(f"SELECT p.id FROM posts p WHERE {whole_sql}", whole_params)]
    step_sql, step_params = query.to_sql((1, 100), dialect)
    assert "EXISTS" in step_sql and "EXISTS" not in whole_sql
    assert [r[0] for r in conn.execute(f"SELECT p.id FROM posts p WHERE {step_sql}", step_params)] == whole
    assert whole


def test_a_channel_the_archive_does_not_know_finds_nothing_at_once_and_is_named(conn):
    page = search(conn, "statement channel:rusembcc")
    assert (page.total, page.total_exact, page.posts) == (0, True, [])
    assert page.unknown_channels == ("rusembcc",)
    assert count(conn, parse("statement channel:rusembcc"), exact=True) == 0
    either = search(conn, "statement (channel:rusembc OR channel:nosuch)")
    assert either.total > 0 and either.unknown_channels == ()  # only empty pages carry the hint
    assert search(conn, "nothingatall channel:nosuch OR alsonothing").unknown_channels == ("nosuch",)


def test_a_query_requiring_a_sparse_fact_is_counted_exactly_from_its_short_list(conn):
    ingest_batch(conn, batch(MFA, deleted_ids=(13,)))
    query = parse(f"({SANCTIONS}) is:deleted")
    assert count(conn, query, limit=2) == 1  # not None: the list of deleted posts is short
    assert count(conn, parse(f"({SANCTIONS}) is:original"), limit=2) is None
    # SQLite reads posts from the first list: the short one
    assert query.to_sql()[0].startswith("p.id IN (SELECT m.post_id FROM messages m WHERE m.deleted_at")


def test_a_dated_count_of_a_frequent_word_reads_the_dates_stretch_and_agrees(lite, monkeypatch):
    conn = lite
    import storage.search as module

    query = parse(f"({SANCTIONS}) since:2025-12-17 until:2025-12-17")
    expected = count(conn, query, exact=True)
    plans: list[str] = []
    conn.set_trace_callback(plans.append)
    monkeypatch.setattr(module, "WALK_THRESHOLD", 2)  # "many" posts hold the words
    assert count(conn, query, exact=True) == expected > 0
    conn.set_trace_callback(None)
    assert any("INDEXED BY posts_date" in sql and "count(*)" in sql for sql in plans)


@pytest.mark.parametrize("query", ["canada sanctions", "statement -arctic", "санкции OR arctic lang:en"])
def test_a_walk_step_on_postgresql_tests_each_post_s_own_index_column_reading_posts_once(pg_conn, query):
    """A step used to ask `p.id IN (SELECT id FROM posts ... WHERE fts @@ ...)`, a second read of
    posts that PostgreSQL ran once per candidate post (99 ms a step at 1M posts); the words are now
    tested on `p.fts` itself, and find the same posts."""
    conn = filled(pg_conn)
    parsed = parse(query)
    step_sql, step_params = parsed.to_sql((1, 100), dialect_of(conn))
    sql = f"SELECT p.id FROM posts p WHERE p.id BETWEEN 1 AND 100 AND ({step_sql}) ORDER BY p.id"
    plan = json.dumps(conn.execute("EXPLAIN (FORMAT JSON) " + sql, step_params).fetchone()[0])
    assert plan.count('"Relation Name": "posts"') == 1
    assert [r[0] for r in conn.execute(sql, step_params)] == sorted(p.id for p in search(conn, query).posts)
    assert search(conn, query).posts
