"""`chanwatch migrate-db SOURCE TARGET`: an archive copied to PostgreSQL and back exports the same;
whatever stops it is one line on stderr, exit 2, never a password."""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.cli import main
from storage.database import SCHEMA_VERSION
from tests.bot.conftest import run_cli as run
from tests.bot.test_cli_archive_faults import archive_at_version, user_version
from tests.bot.test_cli_progress import Terminal


@pytest.fixture
def sample_db(tmp_path: Path, capsys) -> str:
    db = str(tmp_path / "archive.db")
    assert main(["--db", db, "import", "--sample", "--no-progress"]) == 0
    capsys.readouterr()
    return db


def one_line_error(code: int, err: str) -> str:
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def password(url: str) -> str:
    userinfo = url.partition("://")[2].partition("@")[0]
    return userinfo.partition(":")[2]


def test_an_archive_copied_to_postgresql_and_back_exports_the_same(capsys, sample_db, pg_url, tmp_path):
    back = str(tmp_path / "back.db")
    code, out, err = run(capsys, "migrate-db", sample_db, pg_url.url, "--batch-rows", "7", "--no-progress")
    assert code == 0, err
    assert re.match(r"copied 96 rows of \d+ tables from ", out) and pg_url.redacted in out
    code, out, err = run(capsys, "migrate-db", pg_url.url, f"sqlite:///{back}")
    assert code == 0, err
    secret = password(pg_url.url)
    assert not secret or secret not in out + err
    exports = [run(capsys, "--db", db, "export", "--format", "jsonl")[1] for db in (sample_db, back)]
    assert exports[0].count("\n") == 16 and exports[1] == exports[0]
    code, _, err = run(capsys, "--db", back, "search", "sanctions", "--limit", "0")
    assert code == 0 and "Traceback" not in err


def test_a_second_copy_into_the_same_target_is_refused_naming_an_empty_one(capsys, sample_db, tmp_path):
    target = str(tmp_path / "copy.db")
    assert run(capsys, "migrate-db", sample_db, target)[0] == 0
    line = one_line_error(*run(capsys, "migrate-db", sample_db, target)[::2])
    assert f"{target} is not empty" in line and "give a new file or an empty PostgreSQL database" in line


@pytest.mark.parametrize(("source", "target", "says"), [
    ("{db}", "{dir}/./archive.db", "SOURCE and TARGET are the same archive"),
    ("{dir}/missing.db", "{dir}/new.db", "no archive at {dir}/missing.db (SOURCE)"),
    ("{db}", "mysql://me:pw@host/db", "TARGET: 'mysql://' is not a kind of archive"),
    ("{db}", "{dir}", "TARGET {dir} is a directory"),
    ("{db}", "postgresql://me:s3cret@127.0.0.1:1/x", "cannot reach the PostgreSQL server of "
                                                      "postgresql://me:***@127.0.0.1:1/x"),
])
def test_what_stops_a_copy_is_one_line_naming_it_without_a_password(capsys, sample_db, tmp_path, source,
                                                                     target, says):
    names = {"db": sample_db, "dir": str(tmp_path)}
    code, _, err = run(capsys, "migrate-db", source.format(**names), target.format(**names))
    line = one_line_error(code, err)
    assert says.format(**names) in line and "s3cret" not in line and not (tmp_path / "new.db").exists()


def test_a_postgresql_database_that_cannot_hold_an_archive_names_that_end(capsys, sample_db, pg_url):
    nowhere = pg_url.url.replace("search_path%3D", "search_path%3Dno_such_schema_", 1)
    line = one_line_error(*run(capsys, "migrate-db", sample_db, nowhere)[::2])
    assert line.startswith("chanwatch: cannot open TARGET: ") and "no schema" in line
    assert pg_url.redacted.split("?")[0] in line
    secret = password(pg_url.url)
    assert not secret or secret not in line


def test_an_older_source_is_upgraded_first_then_copied(capsys, tmp_path):
    old = archive_at_version(tmp_path / "old.db", 9)
    raw = sqlite3.connect(old)
    raw.execute("INSERT INTO channels (id, username, title) VALUES (5000000123, 'old_one', 'Старый канал')")
    raw.commit()
    raw.close()
    code, out, err = run(capsys, "migrate-db", str(old), str(tmp_path / "new.db"))
    assert code == 0, err
    assert user_version(old) == SCHEMA_VERSION and re.match(r"copied 1 row of \d+ tables", out)
    code, out, _ = run(capsys, "--db", str(tmp_path / "new.db"), "channels", "list", "--all")
    assert code == 0 and "old_one" in out


def test_a_terminal_sees_a_bar_of_the_rows_copied_out_of_the_source_s(sample_db, tmp_path, monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert main(["migrate-db", sample_db, str(tmp_path / "copy.db"), "--batch-rows", "10"]) == 0
    assert "rows:" in screen.getvalue() and "/96" in screen.getvalue()


def test_migrate_db_is_listed_in_the_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "migrate-db" in out
