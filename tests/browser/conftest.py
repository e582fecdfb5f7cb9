"""A real browser against a real `chanwatch serve`: Debian's Chromium (/usr/bin/chromium), headless,
driven by Playwright's sync API; the server is a subprocess on a free port (tests/serve/server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.serve.archive import build_archive
from tests.serve.server import served

CHROMIUM = os.environ.get("CHANWATCH_CHROMIUM", "/usr/bin/chromium")
INSTALL = "apt-get install -y chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Headless without a sandbox (CI runs as root), and nothing that reaches out to the network."""


def chromium_path() -> str:
    """The Chromium to drive; a missing one fails the test with the command that installs it."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's with `{INSTALL}` (.ci/run does) or point "
                    "CHANWATCH_CHROMIUM at one", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser")
    db = build_archive(root / "archive.db", root / "media")
    with served(db) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()
