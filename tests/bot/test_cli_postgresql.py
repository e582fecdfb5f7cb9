"""The commands on a PostgreSQL archive (issue #17): `--db postgresql://…` runs them as on a file, and
the same archive answers the same on both backends — the sample imported into each, then every
offline command's output compared (the archive's name aside)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.location import ServerUrl
from tests.bot.conftest import run_cli as run

COMMANDS = [
    ("search", "санкции"),
    ("search", "arctic OR арктик*", "--json"),
    ("search", "from:MFARussia sort:rank"),
    ("search", "is:edited", "--limit", "0"),
    ("show", "1"),
    ("channels", "list"),
    ("rules", "list"),
    ("export", "--format", "csv"),
    ("export", "--format", "jsonl"),
]


@pytest.fixture
def both(pg_url: ServerUrl, clean_env, capsys, tmp_path: Path) -> dict[str, str]:
    """The bundled sample imported into an SQLite file and into a PostgreSQL archive, a rule and a
    watched channel added to each: their `--db` values by backend."""
    archives = {"sqlite": str(tmp_path / "archive.db"), "postgresql": pg_url.url}
    for db in archives.values():
        for argv in (("import", "--sample", "--no-progress"), ("rules", "add", "санкции", "--chat", "42"),
                     ("channels", "add", "rusembc")):
            code, _, err = run(capsys, "--db", db, *argv)
            assert code == 0, err
    return archives


def shown(capsys, db: str, *argv: str) -> str:
    """The command's output, with the times of the import (when the archive first saw a post, a
    second apart on the two backends) masked."""
    code, out, err = run(capsys, "--db", db, *argv)
    assert code == 0, err
    today = datetime.now(UTC).date().isoformat()
    return re.sub(rf"{today}[T ]\d\d:\d\d(:\d\d)?(\+00:00)?", "<now>", out)


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_a_command_answers_the_same_on_postgresql_as_on_sqlite(both, capsys, argv):
    on_sqlite = shown(capsys, both["sqlite"], *argv)
    on_server = shown(capsys, both["postgresql"], *argv)
    assert on_server == on_sqlite
    assert on_sqlite.strip()  # something was compared


def test_stats_count_the_same_and_name_the_server_without_its_password(both, capsys, pg_url):
    counts = {name: json.loads(shown(capsys, db, "stats", "--json")) for name, db in both.items()}
    for table in counts.values():
        table.pop("database bytes")
    assert counts["postgresql"] == counts["sqlite"] and counts["sqlite"]["posts"] > 0
    text = shown(capsys, both["postgresql"], "stats")
    assert f"archive: {pg_url.redacted}" in text
    if ":" in pg_url.url.split("@")[0].split("//")[1]:  # the test server's URL has a password
        assert pg_url.url not in text


def test_check_on_postgresql_checks_the_search_index(both, capsys):
    out = shown(capsys, both["postgresql"], "check")
    assert out.startswith("ok: ") and "search index" in out


@pytest.mark.parametrize("argv", [("serve",), ("demo", "--speed", "max")])
def test_the_commands_that_read_sqlite_files_only_refuse_a_server_saying_what_to_do(
        pg_url, clean_env, capsys, argv):
    code, _, err = run(capsys, "--db", pg_url.url, *argv)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "SQLite" in err and "migrate-db" in err
