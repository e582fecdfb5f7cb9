"""`chanwatch show POST`: the whole record of one post as text (origin, sightings with delays, version
diffs, deletion intervals, sparklines, files) or one JSON object; a bad POST is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.database import connect_sync
from tests.bot.conftest import run_cli as run
from tests.storage.test_post_record import EDITED, statement_story


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "archive.db"
    conn = connect_sync(path)
    statement_story(conn)
    conn.commit()
    conn.close()
    return str(path)


def test_show_prints_origin_sightings_with_delays_diffs_deletions_and_engagement(capsys, db) -> None:
    code, out, err = run(capsys, "--db", db, "show", "https://t.me/rusembc/500")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("post ") and "first posted by @MFARussia (Russian MFA 🇷🇺)" in lines[0]
    assert lines[1] == "https://t.me/MFARussia/10"
    assert "3 sightings:" in out
    table = {line.split()[0]: line for line in lines if line.startswith("  @")}
    assert "+0 s" in table["@MFARussia/10"] and "900" in table["@MFARussia/10"]
    assert "+5 min" in table["@rusembc/500"] and "deleted" in table["@rusembc/500"]
    assert "+2 h 13 min" in table["@RussianEmbassyUK/700"]
    assert "2 versions:" in out
    assert "2. edited 2025-12-17 10:30 UTC (now)" in out and "new {+illegal +}sanctions" in out
    assert "\x1b[" not in out  # no colours into a pipe
    assert "deleted between 2025-12-17 14:00 UTC and 2025-12-17 15:00 UTC (sweep)" in out
    assert ("100 → 500 views over 1 h (2 readings) · now 900 views · 👍 12 · custom emoji 7 · ❤ 5 (+2 more)"
            in out)
    assert "files (1):" in out and "photo · 1000 B · queued" in out


def test_show_json_is_the_whole_tree_with_diffs(capsys, db) -> None:
    code, out, _ = run(capsys, "--db", db, "show", "@MFARussia/10", "--json")
    assert code == 0
    record = json.loads(out)
    original, embassy, _ = record["sightings"]
    first, now = original["versions"]
    assert (first["text"], now["text"]) == (embassy["versions"][0]["text"], EDITED)
    assert first["diff"] is None and ["insert", "illegal "] in now["diff"]
    assert [r["views"] for r in original["readings"]] == [100, 500]
    assert (embassy["delay_s"], embassy["deleted_via"]) == (300.0, "sweep")
    assert record["files"][0]["file_id"] == 555


@pytest.mark.parametrize("ref", ["12345", "@MFARussia/99", "canada sanctions"])
def test_a_bad_post_is_one_line_with_the_accepted_forms(capsys, db, ref) -> None:
    code, out, err = run(capsys, "--db", db, "show", ref)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("chanwatch: show: ") and "https://t.me/c/1234567/5678" in err


def test_show_needs_an_archive(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "--db", str(tmp_path / "none.db"), "show", "1")
    assert code == 2 and "no archive at" in err


def test_diffs_are_coloured_on_a_terminal_unless_no_color(capsys, db, monkeypatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    _, out, _ = run(capsys, "--db", db, "show", "@MFARussia/10")
    assert "\x1b[32m{+illegal +}\x1b[0m" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = run(capsys, "--db", db, "show", "@MFARussia/10")
    assert "\x1b[" not in out and "{+illegal +}" in out
