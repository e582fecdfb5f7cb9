"""The served archive in headless Chromium: a stemmed Russian search, a post with three sightings and
an edit, the amplification report with its charts drawn; a screenshot of each page."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.serve.archive import EDITED_POST_ORIGIN, PHOTO_SIZE, SANCTIONS_CAPS, SANCTIONS_INSTR

MIN_PNG = 10_000  # bytes: a page with text and charts, not a blank frame


def _screenshot(page: Page, folder: Path, name: str) -> Path:
    shot = folder / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > MIN_PNG
    return shot


def test_searching_a_russian_word_in_the_box_shows_its_stemmed_matches_in_any_case(page, address, tmp_path):
    page.goto(address)
    page.fill("input[name=q]", "санкция")
    page.click("input[type=submit]")
    page.wait_for_url("**/-/chanwatch/search?q=*")
    results = page.locator("#results .result")
    texts = results.all_inner_texts()
    assert any(SANCTIONS_INSTR in t for t in texts)  # санкциями
    assert any(SANCTIONS_CAPS in t for t in texts)  # САНКЦИИ
    marks = page.locator("#results mark").all_inner_texts()
    assert "санкциями" in marks and "САНКЦИИ" in marks
    _screenshot(page, tmp_path, "search")


def test_a_post_shows_its_three_sightings_and_the_edit_as_a_diff(page, address, tmp_path):
    page.goto(address + "-/chanwatch/search?q=" + "обновлено")
    page.locator("#results .result a").first.click()
    page.wait_for_url("**/-/chanwatch/post/*")
    rows = page.locator("#sightings tr.sighting")
    assert rows.count() == 3
    names = [rows.nth(i).locator("td").first.inner_text() for i in range(3)]
    assert names == [f"@MFARussia/{EDITED_POST_ORIGIN}", "@rusembc/501", "@RussianEmbassyUK/701"]
    assert page.locator(".versions ins").first.inner_text().strip() == "(обновлено)"
    assert page.locator("#carry-graph svg").count() == 1
    _screenshot(page, tmp_path, "post")


def test_the_amplification_report_draws_its_charts(page, address, tmp_path):
    page.goto(address)
    page.click("text=amplification")
    page.wait_for_url("**/-/chanwatch/reports")
    charts = page.locator("section.report svg")
    assert charts.count() >= 2
    for index in range(charts.count()):
        chart = charts.nth(index)
        assert chart.locator("rect, polyline, circle, path, line").count() > 0
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50
    _screenshot(page, tmp_path, "amplification")


def test_a_downloaded_photo_is_shown_on_its_post_page(page, address, tmp_path):
    page.goto(address + "-/chanwatch/search?q=" + "фото")
    page.locator("#results .result a").first.click()
    page.wait_for_url("**/-/chanwatch/post/*")
    image = page.locator("#files img.media")
    image.wait_for()
    assert image.evaluate("img => img.complete && img.naturalWidth") == PHOTO_SIZE[0]
    _screenshot(page, tmp_path, "photo")
