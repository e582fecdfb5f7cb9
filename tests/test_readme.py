"""The README promises what the code does: the names it shows are the ones the code uses."""

from __future__ import annotations

from pathlib import Path

from bot import command_text

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_readme_names_the_search_page_buttons_the_bot_shows():
    search_line = README[README.index("/search QUERY"):].split("/subscribe")[0]
    assert command_text.PREVIOUS in search_line and command_text.NEXT in search_line
    assert "◀" not in README and "▶" not in README
