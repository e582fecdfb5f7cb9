"""`storage.reports`: exact figures of the amplification, query and channel reports on a small archive
with known delays, the same on SQLite and PostgreSQL (the `archive` fixture); SQLite's query plans."""

from __future__ import annotations

import re
import sqlite3
from datetime import date, timedelta

import pytest

from storage.database import connect_readonly, connect_sync
from storage.ingest import ingest_batch
from storage.query import QueryError
from storage.records import Batch
from storage.reports import (
    ChannelDay,
    DayCount,
    DelayDistribution,
    Source,
    amplification,
    channel_report,
    query_timeline,
)
from storage.search import register_functions, search
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, STATEMENT_RU, T0, batch, fwd, msg

ARCTIC = "Arctic council meets in Tromsø"
DAY = 24 * 60


def amplification_story(conn: sqlite3.Connection) -> None:
    """The MFA posts three statements; the Canadian embassy forwards the first after 5 min, copies
    the second after 30 min and posts one of its own; the UK embassy forwards the first after 2 min
    and the second after 25 h. The MFA later edits the second and deletes the first."""
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT, views=1000), msg(MFA, 11, STATEMENT_RU, minutes=1),
                             msg(MFA, 12, ARCTIC, minutes=2)), T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 500, MFA, 10, STATEMENT, views=200),
                             msg(EMBASSY, 501, STATEMENT_RU, minutes=31),
                             msg(EMBASSY, 502, "Reception at the embassy tonight", minutes=60)), T0)
    ingest_batch(conn, batch(EMBASSY_UK, fwd(EMBASSY_UK, 700, MFA, 10, STATEMENT, minutes=2)), T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 11, STATEMENT_RU + " (обновлено)", minutes=1,
                                      edit_date=T0 + timedelta(hours=1))), T0 + timedelta(hours=1))
    ingest_batch(conn, batch(EMBASSY_UK, fwd(EMBASSY_UK, 701, MFA, 11, STATEMENT_RU, minutes=1 + 25 * 60,
                                             origin_minutes=1)), T0 + timedelta(days=1, hours=2))
    ingest_batch(conn, Batch(MFA, deleted_ids=(10,), seen_at=T0 + timedelta(days=2)), T0 + timedelta(days=2))


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """The story, once on SQLite and once on PostgreSQL."""
    amplification_story(archive)
    return archive


@pytest.fixture
def lite() -> sqlite3.Connection:
    """The story on SQLite only: for its query plans and temporary tables."""
    conn = connect_sync(":memory:")
    amplification_story(conn)
    return conn


def test_an_origin_counts_its_posts_in_the_window_and_those_another_channel_carried(conn):
    report = amplification(conn)
    assert [(o.name, o.posts, o.carried) for o in report.origins] == [("MFARussia", 3, 2)]
    assert report.origins[0].share == pytest.approx(2 / 3)


def test_each_amplifier_has_its_share_relations_delays_own_posts_and_later_edits_and_deletions(conn):
    canada, uk = amplification(conn).amplifiers
    assert (canada.name, canada.carried, canada.forwards, canada.copies) == ("rusembc", 2, 1, 1)
    assert canada.share == pytest.approx(2 / 3)
    assert (canada.median_delay_s, canada.p90_delay_s, canada.max_delay_s) == (300, 1800, 1800)
    assert (canada.own_posts, canada.carried_edited, canada.carried_deleted) == (1, 1, 1)
    assert (uk.name, uk.carried, uk.forwards, uk.copies) == ("RussianEmbassyUK", 2, 2, 0)
    assert (uk.median_delay_s, uk.p90_delay_s, uk.max_delay_s) == (120, 90000, 90000)
    assert (uk.own_posts, uk.carried_edited, uk.carried_deleted) == (0, 1, 1)


def test_most_amplified_posts_rank_by_channels_then_sightings_then_views_and_uncarried_are_listed(conn):
    report = amplification(conn)
    assert [(p.origin_message_id, p.sightings, p.channels, p.views) for p in report.top_posts] == [
        (10, 3, 2, 1200), (11, 3, 2, None)]
    assert [(p.origin_message_id, p.text) for p in report.uncarried_posts] == [(12, ARCTIC)]


def test_the_timeline_counts_each_channels_messages_per_day(conn):
    assert amplification(conn).timeline == (
        DayCount(MFA.id, "MFARussia", "2025-12-17", 3), DayCount(EMBASSY.id, "rusembc", "2025-12-17", 3),
        DayCount(EMBASSY_UK.id, "RussianEmbassyUK", "2025-12-17", 1),
        DayCount(EMBASSY_UK.id, "RussianEmbassyUK", "2025-12-18", 1))


def test_the_delay_distribution_buckets_each_carried_post_by_its_first_sighting(conn):
    assert amplification(conn).delays == (
        DelayDistribution(MFA.id, EMBASSY.id, (0, 2, 0, 0, 0)),
        DelayDistribution(MFA.id, EMBASSY_UK.id, (1, 0, 0, 0, 1)))


def test_the_window_is_on_the_posts_date_in_whole_utc_days(conn):
    assert amplification(conn, until=date(2025, 12, 17)).origins[0].posts == 3
    later = amplification(conn, since=date(2025, 12, 18))
    assert (later.origins, later.amplifiers, later.top_posts, later.timeline) == ((), (), (), ())
    assert amplification(conn, until=date(2025, 12, 16)).origins == ()


def test_a_named_origin_is_reported_even_when_no_one_carried_it(conn):
    report = amplification(conn, origin=EMBASSY.id)
    assert [(o.name, o.posts, o.carried) for o in report.origins] == [("rusembc", 1, 0)]
    assert report.amplifiers == ()
    assert [p.origin_message_id for p in report.uncarried_posts] == [502]
    assert report.top_posts == ()
    assert report.timeline == (DayCount(EMBASSY.id, "rusembc", "2025-12-17", 3),)


def test_an_amplifiers_own_posts_are_counted_in_the_window_only(conn):
    [canada, _] = amplification(conn, since=date(2025, 12, 17), until=date(2025, 12, 17)).amplifiers
    assert canada.own_posts == 1
    conn.execute("UPDATE posts SET date = '2025-12-20T10:00:00+00:00' WHERE origin_channel_id = ?",
                 (EMBASSY.id,))
    [canada, _] = amplification(conn, until=date(2025, 12, 17)).amplifiers
    assert canada.own_posts == 0


class Planned:
    """A connection that records the query plan of every statement before running it (of a
    CREATE ... AS, its SELECT's), while the temporary tables it reads still exist."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.plans = conn, []  # type: sqlite3.Connection, list[str]

    def execute(self, sql: str, params=()):
        query = re.split(r"\bAS\s+(?=WITH|SELECT)", sql, maxsplit=1)[1] if sql.lstrip().startswith(
            "CREATE TEMP TABLE") else sql
        if query.lstrip().upper().startswith(("SELECT", "WITH")):
            self.plans += [row[3] for row in self.conn.execute("EXPLAIN QUERY PLAN " + query, params)]
        return self.conn.execute(sql, params)


def test_the_amplification_report_reads_posts_and_messages_through_indexes_only_and_leaves_nothing(lite):
    conn = lite
    planned = Planned(conn)
    amplification(planned)
    plans = planned.plans
    assert plans and not [p for p in plans if p.startswith("SCAN") and p.split()[1] in ("p", "q", "m", "d",
                                                                                         "posts", "messages")]
    assert any("COVERING INDEX messages_post" in p for p in plans)
    assert any("posts_origin" in p for p in plans)
    assert any("COVERING INDEX messages_channel_day" in p for p in plans)  # the timeline
    assert conn.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 0


def test_the_amplification_report_runs_on_a_read_only_connection(tmp_path):
    path = tmp_path / "archive.db"
    writer = connect_sync(path)
    amplification_story(writer)
    writer.close()
    reader = connect_readonly(path)
    assert [(a.name, a.median_delay_s, a.p90_delay_s) for a in amplification(reader).amplifiers] == [
        ("rusembc", 300, 1800), ("RussianEmbassyUK", 120, 90000)]


def test_most_amplified_posts_tied_on_channels_rank_by_sightings_then_views_beyond_the_cut(archive):
    conn = archive
    texts = [f"Statement number {i} on the Arctic council and its many working groups" for i in range(4)]
    ingest_batch(conn, batch(MFA, *(msg(MFA, 10 + i, t, minutes=i, views=100 * i)
                                    for i, t in enumerate(texts))), T0)
    ingest_batch(conn, batch(EMBASSY, *(fwd(EMBASSY, 500 + i, MFA, 10 + i, t, minutes=10 + i, views=1)
                                        for i, t in enumerate(texts))), T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 600, MFA, 11, texts[1], minutes=30)), T0)  # twice
    report = amplification(conn, top=2)
    assert [(p.origin_message_id, p.channels, p.sightings) for p in report.top_posts] == [
        (11, 1, 3), (13, 1, 2)]  # all four carried by one channel: 11 seen most, then 13 viewed most


def test_a_query_timeline_counts_each_channels_matching_messages_per_day(conn):
    register_functions(conn)
    timeline = query_timeline(conn, "санкций")
    assert (timeline.query, timeline.posts) == ("санкций", 1)
    assert timeline.days == (
        DayCount(MFA.id, "MFARussia", "2025-12-17", 1), DayCount(EMBASSY.id, "rusembc", "2025-12-17", 1),
        DayCount(EMBASSY_UK.id, "RussianEmbassyUK", "2025-12-18", 1))


def test_a_query_timeline_takes_the_search_filters_and_finds_what_search_finds(conn):
    register_functions(conn)
    query = "sanctions OR arctic -channel:rusembc"
    timeline = query_timeline(conn, query)
    assert timeline.posts == search(conn, query).total == 2
    assert query_timeline(conn, "nothingmatcheshere").days == ()


def test_a_malformed_query_is_the_query_languages_error(conn):
    with pytest.raises(QueryError):
        query_timeline(conn, "-visa")


def test_a_channel_report_counts_days_by_relation_hours_languages_hashtags_and_sources(conn):
    report = channel_report(conn, EMBASSY.id)
    assert (report.name, report.messages) == ("rusembc", 3)
    assert report.days == (ChannelDay("2025-12-17", 1, 1, 1),)
    assert report.hours[10:12] == (2, 1) and sum(report.hours) == 3 and len(report.hours) == 24
    assert report.languages == (("en", 2), ("ru", 1))
    assert report.hashtags == (("mfa", 1), ("мид", 1))
    assert report.sources == (Source(MFA.id, "MFARussia", 1, 1),)


def test_a_channel_reports_top_hashtags_rank_by_messages_and_its_window_is_on_message_dates(conn):
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 503, "Visa news #Canada #visa", minutes=DAY),
                             msg(EMBASSY, 504, "More #canada", minutes=DAY + 1)), T0 + timedelta(days=1))
    report = channel_report(conn, EMBASSY.id, top=2)
    assert report.hashtags == (("canada", 2), ("mfa", 1))
    later = channel_report(conn, EMBASSY.id, since=date(2025, 12, 18))
    assert later.days == (ChannelDay("2025-12-18", 2, 0, 0),)
    uk = channel_report(conn, EMBASSY_UK.id, until=date(2025, 12, 17))
    assert (uk.messages, uk.sources) == (1, (Source(MFA.id, "MFARussia", 1, 0),))
