"""chanwatch's pages in Datasette answer with the figures of a known archive, through the project's
own search, post record and reports; user text is escaped everywhere."""

from __future__ import annotations

import html
import re
import sqlite3

from storage.database import connect_readonly
from storage.post_record import find_post, post_record
from storage.reports import amplification
from tests.serve.archive import (
    ARCTIC_MANY,
    EDITED_POST_ORIGIN,
    PHOTO_BYTES,
    PHOTO_SHA,
    SANCTIONS_CAPS,
    SANCTIONS_INSTR,
    SCRIPT,
)


def _text(page: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _conn(archive) -> sqlite3.Connection:
    return connect_readonly(archive[0])


async def test_home_lists_each_channel_with_its_message_count_and_the_totals(client):
    page = await client.get("/")
    assert page.status_code == 200
    text = _text(page.text)
    assert "@MFARussia" in text and "@rusembc" in text and "@RussianEmbassyUK" in text
    uk_row = re.search(r"@RussianEmbassyUK Russian Embassy UK (\d+)", text)
    assert uk_row is not None and int(uk_row.group(1)) == 2 + ARCTIC_MANY
    assert '<form class="inline" action="/-/chanwatch/search"' in page.text


async def test_search_finds_stemmed_russian_words_in_any_case(client):
    page = await client.get("/-/chanwatch/search", params={"q": "санкция"})
    assert page.status_code == 200
    text = _text(page.text)
    assert SANCTIONS_INSTR in text  # санкциями
    assert SANCTIONS_CAPS in text  # САНКЦИИ
    assert "новых санкций" in text  # the MFA's statement, edited or not
    assert "<mark>санкциями</mark>" in page.text and "<mark>САНКЦИИ</mark>" in page.text


async def test_search_results_are_paged_twenty_at_a_time(client):
    first = await client.get("/-/chanwatch/search", params={"q": "arctic update"})
    assert f"{ARCTIC_MANY} posts match" in _text(first.text)
    assert first.text.count('class="result"') == 20 and 'rel="next"' in first.text
    second = await client.get("/-/chanwatch/search", params={"q": "arctic update", "page": 2})
    assert second.text.count('class="result"') == ARCTIC_MANY - 20 and 'rel="next"' not in second.text
    assert "Arctic update number 0" in _text(second.text)  # oldest last


async def test_a_bad_query_shows_the_syntax_error_where_it_is_and_an_example(client):
    page = await client.get("/-/chanwatch/search", params={"q": 'sanctions "canada'})
    assert page.status_code == 400
    text = _text(page.text)
    assert "Bad query:" in text and "position 10" in text
    assert "Example: canada sanctions -visa since:2025-12-01" in text
    assert 'id="results"' not in page.text


async def test_script_in_a_message_is_escaped_on_the_search_and_post_pages(client, archive):
    found = await client.get("/-/chanwatch/search", params={"q": "visit"})
    assert "&lt;script&gt;alert(" in found.text and "<script>alert(" not in found.text
    with _conn(archive) as conn:
        post_id = find_post(conn, "@MFARussia/20")
    page = await client.get(f"/-/chanwatch/post/{post_id}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(" in page.text and "<script>alert(" not in page.text
    assert SCRIPT in _text(page.text)


async def test_script_in_a_query_is_escaped_in_the_box_and_the_answer(client):
    for query in ("<script>alert(1)</script>", '"<script>alert(1)'):
        page = await client.get("/-/chanwatch/search", params={"q": query})
        assert "<script>alert(1)" not in page.text
        assert "&lt;script&gt;alert(1)" in page.text


async def test_a_post_page_shows_every_sighting_with_its_delay_and_link_and_the_edit_as_a_word_diff(
        client, archive):
    with _conn(archive) as conn:
        post_id = find_post(conn, f"@MFARussia/{EDITED_POST_ORIGIN}")
        record = post_record(conn, post_id)
    assert record is not None and len(record.sightings) == 3
    page = await client.get(f"/-/chanwatch/post/{post_id}")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="sighting">(.*?)</tr>', page.text, re.S)
    assert len(rows) == 3
    cells = [_text(row) for row in rows]
    assert cells[0].startswith("@MFARussia/11 original") and "+0 s" in cells[0]
    assert cells[1].startswith("@rusembc/501 copy") and "+30 min" in cells[1]
    assert cells[2].startswith("@RussianEmbassyUK/701 forward") and "+1 d 1 h" in cells[2]
    assert 'href="https://t.me/rusembc/501"' in page.text
    assert "<ins> (обновлено)</ins>" in page.text
    assert "@rusembc/501 (copy) reads" in _text(page.text)  # the copy kept the text before the edit
    assert re.search(r'<figure id="carry-graph"><svg[^>]*role="img"', page.text)


async def test_a_post_page_shows_deletions_and_a_downloaded_photo(client, archive):
    with _conn(archive) as conn:
        deleted = find_post(conn, "@MFARussia/10")
        photo = find_post(conn, "@MFARussia/22")
    page = await client.get(f"/-/chanwatch/post/{deleted}")
    assert re.search(r'<ul id="deletions"><li>@MFARussia/10: deleted (by|between) ', page.text)
    page = await client.get(f"/-/chanwatch/post/{photo}")
    assert f'<img class="media" src="/-/chanwatch/media/{PHOTO_SHA}"' in page.text
    image = await client.get(f"/-/chanwatch/media/{PHOTO_SHA}")
    assert image.status_code == 200 and image.content == PHOTO_BYTES
    assert image.headers["content-type"] == "image/png"
    assert "sandbox" in image.headers["content-security-policy"]


async def test_media_the_archive_does_not_record_is_not_served(client):
    unknown = "0" * 64
    assert (await client.get(f"/-/chanwatch/media/{unknown}")).status_code == 404
    escaped = await client.get("/-/chanwatch/media/..%2F..%2Fetc%2Fpasswd", follow_redirects=True)
    assert escaped.status_code == 404 and "root:" not in escaped.text


async def test_a_missing_post_is_a_404_page(client):
    page = await client.get("/-/chanwatch/post/999999")
    assert page.status_code == 404 and "The archive has no post 999999." in _text(page.text)


async def test_the_channel_page_shows_its_report(client):
    page = await client.get("/-/chanwatch/channel/rusembc")
    assert page.status_code == 200
    assert '<section class="report' in page.text and "<svg" in page.text
    assert "rusembc" in _text(page.text)
    assert (await client.get("/-/chanwatch/channel/nosuchchannel")).status_code == 404


async def test_the_amplification_page_draws_the_report_of_the_archive(client, archive):
    with _conn(archive) as conn:
        report = amplification(conn)
    page = await client.get("/-/chanwatch/reports")
    assert page.status_code == 200
    text = _text(page.text)
    for amplifier in report.amplifiers:
        assert amplifier.name in text
    assert page.text.count("<svg") >= 2
    assert re.search(r"<svg[^>]*>.*<(rect|polyline|circle|path)\b", page.text, re.S)
    for post in report.top_posts:  # each most amplified post links to its page
        assert f'href="/-/chanwatch/post/{post.post_id}"' in page.text


async def test_the_amplification_page_says_what_is_wrong_with_its_fields(client):
    page = await client.get("/-/chanwatch/reports", params={"since": "yesterday"})
    assert page.status_code == 400 and "since: not a date: 'yesterday'" in _text(page.text)
    page = await client.get("/-/chanwatch/reports", params={"origin": "<b>nobody</b>"})
    assert page.status_code == 400 and "&lt;b&gt;nobody" in page.text and "<b>nobody" not in page.text


async def test_the_origin_field_narrows_the_report_to_one_origin(client):
    page = await client.get("/-/chanwatch/reports", params={"origin": "MFARussia", "since": "2025-12-17",
                                                            "until": "2025-12-18"})
    assert page.status_code == 200 and 'value="MFARussia"' in page.text


async def test_the_timeline_page_charts_a_querys_matches_per_day_per_channel(client):
    page = await client.get("/-/chanwatch/timeline", params={"q": "arctic update"})
    assert page.status_code == 200
    assert f"{ARCTIC_MANY} posts match the query." in _text(page.text)
    assert re.search(r"<svg[^>]*>.*<polyline", page.text, re.S)
    bad = await client.get("/-/chanwatch/timeline", params={"q": "<i>x</i> OR"})
    assert bad.status_code == 400 and "Bad query:" in bad.text and "<i>x</i>" not in bad.text


async def test_the_posts_tables_search_box_is_chanwatchs_search(client):
    page = await client.get("/archive/posts", params={"_search": "санкция"})
    assert page.status_code == 302
    assert page.headers["location"] == "/-/chanwatch/search?q=%D1%81%D0%B0%D0%BD%D0%BA%D1%86%D0%B8%D1%8F"
