"""`chanwatch report amplification`: text, JSON, CSV and HTML of the same figures, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from storage.database import connect_sync
from tests.bot.conftest import run_cli as run
from tests.storage.test_reports import amplification_story


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "archive.db"
    conn = connect_sync(path)
    amplification_story(conn)
    conn.commit()
    conn.close()
    return str(path)


def test_text_shows_each_section_as_a_table_within_100_columns(capsys, db) -> None:
    code, out, err = run(capsys, "--db", db, "report", "amplification")
    assert (code, err) == (0, "")
    assert max(len(line) for line in out.splitlines()) <= 100
    lines = out.splitlines()
    assert "  MFARussia │     3 │       2 │   67%" in lines
    assert ("  rusembc          │       2 │   67% │   1 │    1 │     5m │   30m │   30m │   1 │      1 │"
            "       1") in lines
    assert ("  RussianEmbassyUK │       2 │   67% │   2 │    0 │     2m │ 1d 1h │ 1d 1h │   0 │      1 │"
            "       1") in lines
    assert "  MFARussia │ RussianEmbassyUK │      1 │    0 │    0 │    0 │     1" in lines
    assert "  2025-12-17 10:02 │ MFARussia │ Arctic council meets in Tromsø" in lines
    assert any(line.startswith("  2025-12-17 10:00 │ MFARussia │        2 │         3 │ 1,200 │ Statement")
               and line.endswith("…") for line in lines)  # the text clipped to the width
    assert "  2025-12-18 │ RussianEmbassyUK │        1" in lines
    assert "\x1b" not in out  # no colour or terminal codes in a pipe


def test_json_is_the_report_tree_with_shares_and_bucket_names(capsys, db) -> None:
    code, out, _ = run(capsys, "--db", db, "report", "amplification", "--format", "json")
    tree = json.loads(out)
    assert code == 0 and tree["delay_buckets"] == ["<5 min", "<1 h", "<6 h", "<1 d", ">=1 d"]
    assert [(o["name"], o["posts"], o["carried"], round(o["share"], 3)) for o in tree["origins"]] == [
        ("MFARussia", 3, 2, 0.667)]
    assert [(a["name"], a["median_delay_s"], a["p90_delay_s"]) for a in tree["amplifiers"]] == [
        ("rusembc", 300, 1800), ("RussianEmbassyUK", 120, 90000)]
    assert [p["origin_message_id"] for p in tree["uncarried_posts"]] == [12]


def test_csv_is_the_amplifier_table_with_its_origin_on_each_row(capsys, db) -> None:
    code, out, _ = run(capsys, "--db", db, "report", "amplification", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [(r["origin"], r["origin_posts"], r["channel"], r["forwards"], r["copies"], r["max_delay_s"])
            for r in rows] == [("MFARussia", "3", "rusembc", "1", "1", "1800"),
                               ("MFARussia", "3", "RussianEmbassyUK", "2", "0", "90000")]


def test_out_writes_the_report_to_a_file_and_leaves_the_archive_unchanged(capsys, db, tmp_path) -> None:
    before = Path(db).read_bytes()
    target = tmp_path / "amp.csv"
    code, out, err = run(capsys, "--db", db, "report", "amplification", "--format", "csv",
                         "--out", str(target))
    assert (code, out, err) == (0, "", "")
    assert target.read_text(encoding="utf-8").startswith("origin,origin_posts,channel,")
    assert Path(db).read_bytes() == before


def test_origin_and_window_narrow_the_report(capsys, db) -> None:
    code, out, _ = run(capsys, "--db", db, "report", "amplification", "--origin", "@rusembc",
                       "--since", "2025-12-17", "--until", "2025-12-17", "--format", "json")
    tree = json.loads(out)
    assert code == 0 and (tree["since"], tree["until"]) == ("2025-12-17", "2025-12-17")
    assert [(o["name"], o["posts"], o["carried"]) for o in tree["origins"]] == [("rusembc", 1, 0)]
    assert tree["amplifiers"] == [] and tree["top_posts"] == []


@pytest.mark.parametrize(("argv", "message"), [
    (("--origin", "nobody"), "chanwatch: no channel @nobody in the archive; "),
    (("--since", "2025-13-01"), "chanwatch: --since: not a date: '2025-13-01'; give a day as YYYY-MM-DD"),
    (("--until", "yesterday"), "chanwatch: --until: not a date: 'yesterday'"),
    (("--since", "2025-12-18", "--until", "2025-12-17"), "chanwatch: --since 2025-12-18 is after --until"),
    (("--out", "/nonexistent/dir/amp.txt"), "chanwatch: cannot write /nonexistent/dir/amp.txt: "),
])
def test_a_bad_channel_date_or_output_is_one_line_and_exit_2(capsys, db, argv, message) -> None:
    code, out, err = run(capsys, "--db", db, "report", "amplification", *argv)
    assert (code, out) == (2, "")
    assert err.startswith(message) and err.count("\n") == 1


def test_an_empty_window_says_so(capsys, db) -> None:
    code, out, _ = run(capsys, "--db", db, "report", "amplification", "--since", "2026-01-01")
    assert code == 0 and "No origin posts carried by another channel in this window." in out


def test_report_query_counts_matching_messages_per_day_per_channel(capsys, db) -> None:
    code, out, err = run(capsys, "--db", db, "report", "query", "санкций")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "1 post matches 'санкций'", "", "Messages per day",
        "  day        │ channel          │ messages",
        "  ───────────┼──────────────────┼─────────",
        "  2025-12-17 │ MFARussia        │        1",
        "  2025-12-17 │ rusembc          │        1",
        "  2025-12-18 │ RussianEmbassyUK │        1"]


def test_report_query_as_csv_and_json(capsys, db) -> None:
    _, out, _ = run(capsys, "--db", db, "report", "query", "sanctions", "--format", "csv")
    assert out.splitlines()[:2] == ["day,channel_id,channel,messages", "2025-12-17,1001,MFARussia,1"]
    _, out, _ = run(capsys, "--db", db, "report", "query", "sanctions", "--format", "json")
    tree = json.loads(out)
    assert (tree["query"], tree["posts"], len(tree["days"])) == ("sanctions", 1, 3)


def test_report_query_with_a_bad_or_missing_query_says_why_and_exits_2(capsys, db) -> None:
    code, out, err = run(capsys, "--db", db, "report", "query", "-visa")
    assert (code, out) == (2, "") and err.startswith("chanwatch: bad query: the query only excludes")
    assert "Traceback" not in err
    code, _, err = run(capsys, "--db", db, "report", "query")
    assert (code, err) == (2, "chanwatch: report query: give a query, e.g. "
                               "chanwatch report query 'canada sanctions'\n")


def test_report_channel_shows_days_hours_languages_hashtags_and_sources(capsys, db) -> None:
    code, out, err = run(capsys, "--db", db, "report", "channel", "@rusembc")
    lines = out.splitlines()
    assert (code, err) == (0, "") and max(len(line) for line in lines) <= 100
    assert lines[0] == "Channel rusembc: 3 messages from the first message to the last (UTC)"
    assert "  2025-12-17 │   1 │        1 │      1" in lines
    assert "  10   │        2 │ " + "█" * 40 in lines and "  11   │        1 │ " + "█" * 20 in lines
    assert "  #mfa    │        1" in lines
    assert "  MFARussia │        1 │      1" in lines


def test_report_channel_csv_is_the_days_table_and_json_the_tree(capsys, db) -> None:
    _, out, _ = run(capsys, "--db", db, "report", "channel", "RussianEmbassyUK", "--format", "csv")
    assert out.splitlines() == ["day,originals,forwards,copies", "2025-12-17,0,1,0", "2025-12-18,0,1,0"]
    _, out, _ = run(capsys, "--db", db, "report", "channel", "RussianEmbassyUK", "--since", "2025-12-18",
                    "--format", "json")
    tree = json.loads(out)
    assert (tree["messages"], tree["since"], tree["sources"]) == (
        1, "2025-12-18", [{"channel_id": 1001, "name": "MFARussia", "forwards": 1, "copies": 0}])


@pytest.mark.parametrize(("argv", "message"), [
    (("nobody",), "chanwatch: no channel @nobody in the archive; "),
    (("rusembc", "--until", "17.12.2025"), "chanwatch: --until: not a date: '17.12.2025'"),
])
def test_report_channel_with_an_unknown_channel_or_bad_date_is_one_line_and_exit_2(capsys, db, argv,
                                                                                   message) -> None:
    code, out, err = run(capsys, "--db", db, "report", "channel", *argv)
    assert (code, out) == (2, "") and err.startswith(message) and err.count("\n") == 1


def test_html_amplification_is_written_to_out_as_one_page_with_its_three_charts(capsys, db, tmp_path) -> None:
    target = tmp_path / "amplification.html"
    code, out, err = run(capsys, "--db", db, "report", "amplification", "--format", "html",
                         "--out", str(target))
    assert (code, out, err) == (0, "", "")
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1 and page.count("<svg") == 3
    assert "<title>chanwatch: amplification report</title>" in page and "<td>RussianEmbassyUK</td>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


@pytest.mark.parametrize(("argv", "title", "charts"), [
    (("channel", "@rusembc"), "chanwatch: channel rusembc", 4),
    (("query", "санкций"), "chanwatch: query санкций", 1),
])
def test_html_channel_and_query_reports_go_to_standard_output(capsys, db, argv, title, charts) -> None:
    code, out, err = run(capsys, "--db", db, "report", *argv, "--format", "html")
    assert (code, err) == (0, "")
    assert out.count("<html") == 1 and f"<title>{title}</title>" in out and out.count("<svg") == charts
