"""The chanwatch CLI: every command through `main(argv)`; bad input is one line and exit 2."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bot
from bot.cli import main
from bot.cli.app import COMMANDS, build_parser
from bot.cli.common import Command, archive_path
from bot.cli.exchange import sample_files
from tests.bot.conftest import run_cli as run
from tests.real_fixtures import real

REAL = real("desktop_export")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "archive.db")


@pytest.fixture
def sample_db(db: str, capsys) -> str:
    assert main(["--db", db, "import", "--sample", "--no-progress"]) == 0
    capsys.readouterr()
    return db


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]


def stats(capsys, db: str) -> dict[str, int]:
    code, out, _ = run(capsys, "--db", db, "stats", "--json")
    assert code == 0
    return json.loads(out)


# --- help and dispatch ------------------------------------------------------------------------------


def test_python_dash_m_bot_help_runs_in_a_real_process():
    done = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for name in ("import", "export", "search", "stats", "--db"):
        assert name in done.stdout


def test_no_command_prints_help_and_exits_2(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "usage: chanwatch" in err


def test_unknown_command_and_bad_numbers_are_usage_errors(capsys, db):
    assert run(capsys, "frobnicate")[0] == 2
    code, _, err = run(capsys, "--db", db, "search", "x", "--limit", "-1")
    assert code == 2 and "must be 0 or more" in err and "Traceback" not in err


def test_sync_and_async_commands_are_dispatched_with_their_exit_status(capsys):
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("word")

    def echo(args: argparse.Namespace) -> int:
        print(args.word, args.db)
        return 3

    async def later(args: argparse.Namespace) -> None:
        print("awaited")

    commands = (*COMMANDS, Command("echo", "say a word", echo, add),
                Command("later", "an async command", later))
    assert main(["--db", "x.db", "echo", "hi"], commands) == 3
    assert main(["later"], commands) == 0
    assert capsys.readouterr() == ("hi x.db\nawaited\n", "")
    assert "echo" in build_parser(commands).format_help()


def test_db_and_env_file_may_come_before_or_after_the_command(clean_env, tmp_path):
    assert archive_path(build_parser().parse_args(["stats"])) == Path("chanwatch.db")
    for argv in (["--db", "a.db", "stats"], ["stats", "--db", "a.db"]):
        assert archive_path(build_parser().parse_args(argv)) == Path("a.db")
    for argv in (["--env-file", "x.env", "stats"], ["stats", "--env-file", "x.env"]):
        assert build_parser().parse_args(argv).env_file == "x.env"


# --- configuration: every command finds the archive the same way ------------------------------------


@pytest.fixture
def env_archive(clean_env, tmp_path, capsys) -> Path:
    """The sample archive at sub/env.db, named only by CHANWATCH_DB in ./.env, next to a malformed
    setting no offline command needs."""
    path = tmp_path / "sub" / "env.db"
    assert main(["--db", str(path), "import", "--sample", "--no-progress"]) == 0
    assert main(["--db", str(path), "rules", "add", "sanctions", "--chat", "42"]) == 0
    assert main(["--db", str(path), "channels", "add", "mfarussia"]) == 0
    (tmp_path / ".env").write_text("CHANWATCH_DB=sub/env.db\nTG_API_ID=not-a-number\n", encoding="utf-8")
    capsys.readouterr()
    return path


@pytest.mark.parametrize("argv, expected", [
    (["stats"], "archive: sub/env.db"),
    (["search", "sanctions"], "posts for 'sanctions'"),
    (["channels", "list"], "@mfarussia"),
    (["export"], '"post_id"'),
    (["rules", "list"], "sanctions"),
    (["rules", "test", "sanctions"], "archived posts match"),
])
def test_offline_commands_use_chanwatch_db_from_dot_env(env_archive, capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert expected in out


def test_import_writes_to_the_archive_named_in_dot_env(env_archive, capsys, tmp_path):
    code, out, err = run(capsys, "import", "--sample", "--no-progress")
    assert code == 0, err
    assert out.count("0 new,") == 2  # the same archive: nothing new
    assert not (tmp_path / "chanwatch.db").exists()


def test_an_explicit_db_wins_over_dot_env(env_archive, capsys, tmp_path):
    for argv in (["--db", "other.db", "stats"], ["stats", "--db", "other.db"]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "no archive at other.db")


def test_the_environment_wins_over_dot_env(env_archive, capsys, clean_env, tmp_path):
    clean_env.setenv("CHANWATCH_DB", str(tmp_path / "from-env.db"))
    code, _, err = run(capsys, "stats")
    assert_one_line_error(code, err, "no archive at", "from-env.db")


@pytest.mark.parametrize("how", ["--db", "CHANWATCH_DB"])
def test_a_postgresql_url_is_a_server_and_one_that_does_not_answer_is_one_line_without_the_password(
        clean_env, capsys, tmp_path, how):
    url = "postgresql://alice:s3cret@127.0.0.1:1/chanwatch"  # nothing listens on port 1
    argv = ["--db", url] if how == "--db" else []
    if how == "CHANWATCH_DB":
        clean_env.setenv("CHANWATCH_DB", url)
    code, _, err = run(capsys, *argv, "import", "--sample", "--no-progress")
    assert_one_line_error(code, err, "cannot reach the PostgreSQL server of "
                          "postgresql://alice:***@127.0.0.1:1/chanwatch", "refused")
    assert "s3cret" not in err
    assert list(tmp_path.iterdir()) == []  # before #17: a directory `postgresql:` holding an SQLite file


def test_a_url_of_an_unknown_scheme_names_the_scheme_and_the_forms_that_work(clean_env, capsys, tmp_path):
    code, _, err = run(capsys, "--db", "postgresq://alice:s3cret@db.example/cw", "rules", "add", "x",
                       "--chat", "42")
    assert_one_line_error(code, err, "'postgresq://'", "sqlite:///archive.db")
    assert "s3cret" not in err
    assert list(tmp_path.iterdir()) == []


def test_an_sqlite_url_names_the_file_after_its_three_slashes(clean_env, capsys, tmp_path):
    code, _, err = run(capsys, "--db", "sqlite:///sub.db", "import", "--sample", "--no-progress")
    assert code == 0, err
    code, _, err = run(capsys, "--db", f"sqlite:///{tmp_path}/sub.db", "stats")  # the same file, absolute
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == ["sub.db"]


def test_env_file_names_another_file_before_or_after_the_command(env_archive, capsys, tmp_path):
    (tmp_path / "other.env").write_text("CHANWATCH_DB=other.db\n", encoding="utf-8")
    for argv in (["--env-file", "other.env", "stats"], ["stats", "--env-file", "other.env"]):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "no archive at other.db")
    code, _, err = run(capsys, "--env-file", "missing.env", "stats")
    assert_one_line_error(code, err, "--env-file", "missing.env")


def test_rules_add_takes_the_alert_chat_from_the_env_file(env_archive, capsys, tmp_path):
    (tmp_path / "chat.env").write_text("CHANWATCH_DB=sub/env.db\nCHANWATCH_ALERT_CHAT=-100777\n",
                                       encoding="utf-8")
    code, out, err = run(capsys, "rules", "add", "arctic", "--env-file", "chat.env")
    assert code == 0, err
    assert out.strip().endswith("for chat -100777: arctic")
    (tmp_path / "bad.env").write_text("CHANWATCH_ALERT_CHAT=my-group\n", encoding="utf-8")
    code, _, err = run(capsys, "--env-file", "bad.env", "rules", "add", "arctic")
    assert_one_line_error(code, err, "CHANWATCH_ALERT_CHAT", "numeric chat id")


# --- import -----------------------------------------------------------------------------------------


def test_import_sample_dedups_forwards_and_is_idempotent(capsys, db):
    code, out, err = run(capsys, "--db", db, "import", "--sample", "--no-progress")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert any("Foreign Ministry (sample)" in line and "12 messages" in line for line in lines)
    assert any("Embassy in Canada (sample)" in line and "10 messages" in line for line in lines)
    counts = stats(capsys, db)
    assert counts["posts"] == 16 and counts["messages (sightings)"] == 22
    assert counts["posts"] < counts["messages (sightings)"]
    assert counts["forwards"] == 6 and counts["duplicates avoided"] == 6
    assert counts["FTS rows"] == 16 and counts["channels"] == 2
    code, out, _ = run(capsys, "--db", db, "import", "--sample", "--no-progress")
    assert code == 0 and out.count("0 new,") == 2 and out.count(", 0 new posts") == 2
    assert stats(capsys, db) == counts | {"database bytes": stats(capsys, db)["database bytes"]}


def test_stats_tell_posts_marked_edited_from_earlier_versions_kept(capsys, sample_db):
    """The sample is a Desktop export: one message is marked edited, and no earlier text came with it."""
    counts = stats(capsys, sample_db)
    assert (counts["edited posts"], counts["edits (versions kept)"], counts["edited messages"]) == (1, 0, 0)
    code, out, _ = run(capsys, "--db", sample_db, "search", "is:edited", "--limit", "0")
    assert code == 0 and out == "1 post matches 'is:edited'\n"
    code, out, _ = run(capsys, "--db", sample_db, "stats")
    lines = {line.rsplit("  ", 1)[0].strip(): line.rsplit(" ", 1)[1] for line in out.splitlines()[1:]}
    assert lines["posts marked edited (is:edited)"] == "1"
    assert lines["earlier versions kept"] == lines["messages with earlier versions kept"] == "0"


def test_sample_content_is_marked_fictional():
    folder = Path(bot.__file__).parent / "sample"
    assert "fictional" in (folder / "README.md").read_text(encoding="utf-8").lower()
    for name in sample_files():
        data = json.loads((folder / name).read_text(encoding="utf-8"))
        assert "Fictional" in data["note"] and "(sample)" in data["name"]


def test_import_real_desktop_export_prints_a_summary(capsys, db):
    code, out, _ = run(capsys, "--db", db, "import", "--no-progress", str(REAL / "pachumarchive_result.json"))
    assert code == 0
    assert "desktop export of" in out and "6 messages (6 new" in out and "1 new post" in out  # one album


def test_import_missing_or_bad_files_exit_2_with_one_line_each(capsys, db, tmp_path):
    code, _, err = run(capsys, "--db", db, "import", str(tmp_path / "missing.json"))
    assert_one_line_error(code, err, "missing.json", "no such file")
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    code, _, err = run(capsys, "--db", db, "import", str(binary))
    assert_one_line_error(code, err, "photo.jpg", "expected")
    listing = tmp_path / "list.json"
    listing.write_text("[]", encoding="utf-8")
    code, _, err = run(capsys, "--db", db, "import", str(listing))
    assert_one_line_error(code, err, "list.json", "JSON list")
    code, _, err = run(capsys, "--db", db, "import")
    assert_one_line_error(code, err, "--sample")


def test_one_bad_file_does_not_stop_the_others(capsys, db, tmp_path):
    code, out, err = run(capsys, "--db", db, "import", "--no-progress", str(tmp_path / "missing.json"),
                         str(REAL / "pachumarchive_result.json"))
    assert code == 2 and "1 new post" in out and "no such file" in err


def test_unusable_archive_paths_exit_2_with_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "--db", str(tmp_path), "import", "--sample")
    assert_one_line_error(code, err, "directory")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database, just some text" * 100)
    code, _, err = run(capsys, "--db", str(garbage), "stats")
    assert_one_line_error(code, err, "cannot open the archive", "garbage.db", "not an SQLite database")
    code, _, err = run(capsys, "--db", str(tmp_path / "none.db"), "stats")
    assert_one_line_error(code, err, "no archive at")
    assert not (tmp_path / "none.db").exists()


# --- export -----------------------------------------------------------------------------------------


def test_export_jsonl_to_stdout_round_trips_through_import(capsys, sample_db, tmp_path):
    code, out, _ = run(capsys, "--db", sample_db, "export")
    assert code == 0
    posts = [json.loads(line) for line in out.splitlines()]
    assert len(posts) == 16
    forwarded = [p for p in posts if len(p["sightings"]) == 2]
    assert len(forwarded) == 6
    assert all(p["origin"]["title"] == "Foreign Ministry (sample)" for p in forwarded)
    dump = tmp_path / "dump.jsonl"
    dump.write_text(out, encoding="utf-8")
    fresh = str(tmp_path / "fresh.db")
    assert run(capsys, "--db", fresh, "import", "--no-progress", str(dump))[0] == 0
    assert run(capsys, "--db", fresh, "export")[1] == out


def test_export_csv_to_a_file(capsys, sample_db, tmp_path):
    target = tmp_path / "posts.csv"
    code, out, err = run(capsys, "--db", sample_db, "export", "--format", "csv", "--out", str(target))
    assert code == 0 and out == "" and "exported 16 posts" in err
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 16
    assert sum(r["sightings"].count("forward") for r in rows) == 6


def test_export_to_an_unwritable_place_exits_2(capsys, sample_db, tmp_path):
    target = tmp_path / "no" / "such" / "x.jsonl"
    code, _, err = run(capsys, "--db", sample_db, "export", "--out", str(target))
    assert_one_line_error(code, err, "cannot write")


# --- search ----------------------------------------------------------------------------------------


def test_search_shows_forwarded_by_and_links(capsys, sample_db):
    code, out, err = run(capsys, "--db", sample_db, "search", "санкции OR sanctions")
    assert code == 0, err
    assert "forwarded by Embassy in Canada (sample)" in out
    assert "Foreign Ministry (sample)" in out
    assert "https://t.me/c/9000000001/101" in out


def test_search_json_lines(capsys, sample_db):
    code, out, _ = run(capsys, "--db", sample_db, "search", "sanctions", "--json", "--limit", "50")
    assert code == 0
    posts = [json.loads(line) for line in out.splitlines()]
    assert posts
    for post in posts:
        assert {"post_id", "text", "origin", "sightings"} <= set(post)
        assert {"channel_id", "username", "title", "message_id", "date"} <= set(post["origin"])
        for s in post["sightings"]:
            assert {"channel_id", "username", "message_id", "date", "relation", "url"} <= set(s)
    statement = next(p for p in posts if p["origin"]["message_id"] == 101)
    assert [(s["channel_id"], s["relation"]) for s in statement["sightings"]] == [
        (9000000001, "original"), (9000000002, "forward"),
    ]


def test_search_paging(capsys, sample_db):
    _, everything, _ = run(capsys, "--db", sample_db, "search", "санкции OR sanctions", "--json")
    ids = [json.loads(line)["post_id"] for line in everything.splitlines()]
    _, page, _ = run(capsys, "--db", sample_db, "search", "санкции OR sanctions", "--json",
                     "--limit", "2", "--offset", "1")
    assert [json.loads(line)["post_id"] for line in page.splitlines()] == ids[1:3]


def test_search_prints_the_total_and_exact_counts_every_match(capsys, sample_db):
    code, out, _ = run(capsys, "--db", sample_db, "search", "санкции OR sanctions", "--limit", "1")
    assert code == 0
    total = out.split(" posts for ")[0]
    code, exact, _ = run(capsys, "--db", sample_db, "search", "санкции OR sanctions", "--limit", "1",
                         "--exact")
    assert code == 0 and exact.split(" posts for ")[0] == total and total.isdigit() and int(total) > 1


@pytest.mark.parametrize(("argv", "expected"), [
    (["--limit", "0"], "3 posts match 'canada'"),
    (["--limit", "0", "--offset", "5"], "3 posts match 'canada'"),
    (["--offset", "3"], "3 posts match 'canada'; --offset 3 skips them all: lower --offset"),
    (["--offset", "9", "--limit", "1"], "3 posts match 'canada'; --offset 9 skips them all: lower --offset"),
    (["--offset", "1", "--limit", "1"], "3 posts for 'canada'; showing 2-2"),
])
def test_the_first_line_says_how_many_match_and_which_follow_for_any_limit_and_offset(
        capsys, sample_db, argv, expected):
    code, out, err = run(capsys, "--db", sample_db, "search", "canada", *argv)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == expected
    assert ("more: --offset 2" in out) is (argv == ["--offset", "1", "--limit", "1"])


def test_limit_zero_prints_the_count_alone(capsys, sample_db):
    code, out, _ = run(capsys, "--db", sample_db, "search", "canada", "--limit", "0")
    assert code == 0 and out == "3 posts match 'canada'\n"
    code, out, _ = run(capsys, "--db", sample_db, "search", "zzzz", "--limit", "0")
    assert code == 0 and out == "no posts found for 'zzzz'\n"


def test_one_of_anything_is_counted_in_the_singular(capsys, sample_db, tmp_path):
    query = "sanctions since:2025-12-17"
    code, out, _ = run(capsys, "--db", sample_db, "search", query)
    assert code == 0 and out.startswith(f"1 post for {query!r}; showing 1-1")
    code, _, err = run(capsys, "--db", sample_db, "export", query, "--out", str(tmp_path / "one.jsonl"))
    assert code == 0 and err.strip() == f"exported 1 post to {tmp_path / 'one.jsonl'}"
    code, out, _ = run(capsys, "--db", sample_db, "search", query, "--offset", "1")
    assert out.strip() == f"1 post matches {query!r}; --offset 1 skips it: lower --offset"
    one = tmp_path / "one_result.json"
    one.write_text(json.dumps({"name": "Lone", "type": "public_channel", "id": 777, "messages": [
        {"id": 1, "type": "message", "date": "2025-12-17T10:00:00", "date_unixtime": "1765965600",
         "text": "alone", "text_entities": [{"type": "plain", "text": "alone"}]}]}), encoding="utf-8")
    code, out, _ = run(capsys, "--db", sample_db, "import", "--no-progress", str(one))
    assert code == 0
    assert out.strip() == (f"{one}: desktop export of Lone: 1 message (1 new, 0 updated, 0 unchanged), "
                           "1 new post")


def test_bad_query_exits_2_with_position_hint_and_example(capsys, sample_db):
    code, out, err = run(capsys, "--db", sample_db, "search", "canada AND (")
    assert code == 2 and out == ""
    assert "Traceback" not in err and "bad query" in err and "example: chanwatch search" in err
    assert "position 11" in err and "\n  canada AND (\n             ^\n" in err


def test_emoji_beside_words_are_ignored_and_emoji_alone_is_a_query_error(capsys, sample_db):
    _, plain, _ = run(capsys, "--db", sample_db, "search", "sanctions", "--json")
    code, out, err = run(capsys, "--db", sample_db, "search", "🎙 sanctions 🇨🇦", "--json")
    assert code == 0 and err == "" and out == plain and plain
    code, out, err = run(capsys, "--db", sample_db, "search", "🎙 🇨🇦")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "bad query: nothing to search for in '🎙'" in err and "symbols and emoji" in err
    assert "\n  🎙 🇨🇦\n  ^\n" in err and "example: chanwatch search" in err


@pytest.mark.parametrize("argv", [
    ["search", "-canada"], ["export", "-canada"], ["search", "--limit", "3", "-canada"],
    ["search", "-hamas"], ["export", "-hamas"]])
def test_a_query_starting_with_a_dash_gets_the_query_languages_error_not_a_usage_error(
        capsys, sample_db, argv):
    code, out, err = run(capsys, "--db", sample_db, *argv)
    assert code == 2 and out == "" and "usage:" not in err and "Traceback" not in err
    assert err.startswith("chanwatch: bad query: the query only excludes at position 0: add something")
    assert f"\n  {argv[-1]}\n  ^\n" in err and "example: chanwatch search" in err


@pytest.mark.parametrize("query", ["-canada\tsanctions", "-hamas sanctions"])
def test_a_query_starting_with_a_dash_is_searched(capsys, sample_db, query):
    _, expected, _ = run(capsys, "--db", sample_db, "search", "sanctions " + query.split()[0], "--json")
    code, out, err = run(capsys, "--db", sample_db, "search", query, "--json")
    assert code == 0 and err == "" and out == expected and expected  # `-h...` is not the help


def test_leftover_arguments_stay_a_usage_error_and_unquoted_queries_are_told_to_quote(capsys, sample_db):
    code, _, err = run(capsys, "--db", sample_db, "search", "canada", "-visa")
    assert code == 2 and "unrecognized arguments: -visa; put a query of several words in quotes" in err
    code, _, err = run(capsys, "--db", sample_db, "search", "--limt")  # a mistyped option is no query
    assert code == 2 and "unrecognized arguments: --limt" in err and "quotes" not in err
    code, _, err = run(capsys, "--db", sample_db, "stats", "-x")
    assert code == 2 and "unrecognized arguments: -x" in err and "quotes" not in err
    code, out, err = run(capsys, "--db", sample_db, "search")
    assert code == 2 and out == ""
    assert err == "chanwatch: search: give a query, e.g. chanwatch search 'canada sanctions'\n"


def test_export_with_a_query(capsys, sample_db):
    code, out, _ = run(capsys, "--db", sample_db, "export", "#RussiaCanada")
    assert code == 0
    posts = [json.loads(line) for line in out.splitlines()]
    assert posts and all("#RussiaCanada" in p["text"] for p in posts)
    code, _, err = run(capsys, "--db", sample_db, "export", '"unclosed')
    assert code == 2 and "Traceback" not in err


def test_a_post_archived_already_edited_reads_edited_and_is_found_by_is_edited(db, capsys):
    from datetime import timedelta

    from storage.database import connect_sync
    from storage.ingest import ingest_batch
    from tests.storage.factories import MFA, STATEMENT, T0, batch, msg

    conn = connect_sync(db)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT, edit_date=T0 + timedelta(hours=1)),
                             msg(MFA, 11, "Briefing on the Arctic council")))
    conn.close()
    code, out, _ = run(capsys, "--db", db, "search", "is:edited")
    assert code == 0 and out.startswith("1 post for 'is:edited'") and "[edited]" in out
    code, out, _ = run(capsys, "--db", db, "search", "arctic", "--json")
    assert code == 0 and json.loads(out)["edited"] is False
    code, out, _ = run(capsys, "--db", db, "search", "is:edited", "--json")
    assert json.loads(out)["edited"] is True and json.loads(out)["edited_at"] is None
