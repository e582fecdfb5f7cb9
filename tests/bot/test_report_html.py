"""`bot.report_html`: the three reports as HTML fragments with their figures and charts, archive text
escaped, and `page()` one self-contained document."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from bot.report_html import amplification_html, channel_html, page, query_html
from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.reports import QueryTimeline, amplification, channel_report, query_timeline
from storage.search import register_functions
from tests.storage.factories import EMBASSY, MFA, T0, batch, fwd, msg
from tests.storage.test_reports import amplification_story

HOSTILE = "<script>alert(1)</script> & more"


@pytest.fixture
def conn() -> sqlite3.Connection:
    """The reports' story, plus an MFA post with markup that the Canadian embassy forwards and one
    no one carries."""
    conn = connect_sync(":memory:")
    amplification_story(conn)
    ingest_batch(conn, batch(MFA, msg(MFA, 13, HOSTILE, minutes=3),
                             msg(MFA, 14, "Tag " + HOSTILE, minutes=4)), T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 503, MFA, 13, HOSTILE, minutes=9, origin_minutes=3)), T0)
    register_functions(conn)
    return conn


def tree(fragment: str) -> ET.Element:
    """The fragment parsed (it must be well-formed) and checked to be one report section."""
    root = ET.fromstring(fragment)
    assert root.tag == "section" and "report" in root.get("class", "").split()
    return root


def charts(root: ET.Element) -> list[str]:
    return [svg.find("title").text for svg in root.iter("svg")]


def cells(root: ET.Element) -> list[list[str]]:
    return [[td.text or "" for td in tr.iter("td")] for tr in root.iter("tr") if tr.find("td") is not None]


def assert_escaped(html: str) -> None:
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_the_amplification_fragment_has_its_tables_and_a_chart_each_for_matrix_delays_and_days(conn):
    fragment = amplification_html(amplification(conn))
    root = tree(fragment)
    assert "<html" not in fragment
    assert charts(root) == ["Share of each origin's posts each channel carried (%)",
                            "Carried posts by delay after the origin", "Messages per day per channel (UTC)"]
    rows = cells(root)
    assert ["MFARussia", "5", "3", "60%"] in rows
    assert ["rusembc", "3", "60%", "2", "1", "6m", "30m", "30m", "1", "1", "1"] in rows
    assert ["RussianEmbassyUK", "2", "40%", "2", "0", "2m", "1d 1h", "1d 1h", "0", "1", "1"] in rows
    headings = [h.text for h in root.iter("h3")]
    assert headings[-2:] == ["Most amplified posts", "Posts no one carried (latest)"]


def test_the_carry_matrix_has_a_cell_per_origin_and_amplifier_and_the_timeline_a_line_per_channel(conn):
    root = tree(amplification_html(amplification(conn)))
    matrix, delays, days = root.iter("svg")
    assert [c.find("title").text for c in matrix.iter("rect") if c.get("class") == "cell"] == [
        "MFARussia → rusembc: 60", "MFARussia → RussianEmbassyUK: 40"]
    assert len([r for r in delays.iter("rect") if r.get("class") == "segment"]) == 3
    assert [p.find("title").text for p in days.iter("polyline")] == [
        "MFARussia", "rusembc", "RussianEmbassyUK"]


def test_post_texts_in_the_amplification_report_appear_only_escaped(conn):
    fragment = amplification_html(amplification(conn))
    assert_escaped(fragment)
    texts = [row[-1] for row in cells(tree(fragment))]
    assert HOSTILE in texts and "Tag " + HOSTILE in texts  # carried, and no one carried


def test_a_long_post_text_is_clipped_in_the_table(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 15, "word " * 100, minutes=5)), T0)
    rows = cells(tree(amplification_html(amplification(conn))))
    [text] = [row[-1] for row in rows if row[-1].startswith("word")]
    assert len(text) <= 160 and text.endswith("…")


def test_an_empty_window_says_so_without_charts(conn):
    root = tree(amplification_html(amplification(conn, until=date(2025, 12, 1))))
    assert charts(root) == []
    empty = "No origin posts carried by another channel in this window."
    assert [p.text for p in root.iter("p")][-1] == empty


def test_the_channel_fragment_charts_days_hours_languages_and_hashtags_and_lists_sources(conn):
    root = tree(channel_html(channel_report(conn, EMBASSY.id)))
    assert charts(root) == ["Messages per day (UTC)", "Messages per hour of day (UTC)",
                            "Messages per language", "Messages per hashtag"]
    _, hours, _, _ = root.iter("svg")
    assert len([r for r in hours.iter("rect") if r.get("class") == "bar"]) == 24
    assert ["MFARussia", "2", "1"] in cells(root)


def test_the_query_fragment_charts_matches_per_day_per_channel_and_escapes_the_query(conn):
    root = tree(query_html(query_timeline(conn, "alert")))
    assert charts(root) == ["Messages with a match per day per channel (UTC)"]
    assert [p.find("title").text for p in root.iter("polyline")] == ["MFARussia", "rusembc"]
    assert ["2025-12-17", "rusembc", "1"] in cells(root)
    assert_escaped(query_html(QueryTimeline(HOSTILE, 0, ())))


def test_the_page_is_one_self_contained_document_around_the_fragment(conn):
    document = page("Amplification <report>", amplification_html(amplification(conn)))
    assert document.startswith("<!DOCTYPE html>") and document.count("<html") == 1
    for outside in ("http://", "https://", "src=", "href=", "<script", "<link", "url(", "@import"):
        assert outside not in document
    root = ET.fromstring(document.split("\n", 1)[1])
    assert root.find("head/title").text == "Amplification <report>"
    assert root.find("head/style") is not None and len(list(root.iter("svg"))) == 3
    assert_escaped(document)
