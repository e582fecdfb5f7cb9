"""A deletion is shown as the interval in which it happened (last seen present .. first seen missing),
or as its exact time when a live update told us: in Telegram replies, the CLI, and exports, and an
export imported back keeps it."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bot.cli import main
from bot.formatting import render_post
from storage.database import connect_sync
from storage.exchange import export_posts, import_file
from storage.ingest import ingest_batch
from tests.bot.test_formatting import ORIGINAL, make_post
from tests.storage.factories import EMBASSY, MFA, STATEMENT, T0, batch, msg

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

SEEN = T0 + timedelta(hours=1)
GONE = T0 + timedelta(hours=3)


def archive(path: Path) -> str:
    """MFA's statement deleted between SEEN and GONE (a sweep saw it), EMBASSY's copy by a live update."""
    conn = connect_sync(str(path))
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT)), now=T0)
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 7, STATEMENT, minutes=5)), now=T0)
    ingest_batch(conn, batch(MFA, seen_at=SEEN, present_ids=(1,)), now=SEEN)
    ingest_batch(conn, batch(MFA, deleted_ids=(1,), seen_at=GONE, deleted_via="sweep"), now=GONE)
    ingest_batch(conn, batch(EMBASSY, deleted_ids=(7,), seen_at=GONE, deleted_via="update"), now=GONE)
    conn.close()
    return str(path)


def test_a_reply_shows_the_interval_or_the_exact_live_time():
    deleted = replace(ORIGINAL, last_seen="2025-12-17T10:00:00+00:00", deleted_at="2025-12-17T11:15:00+00:00",
                      deleted_via="recheck")
    html = render_post(make_post("x", (deleted,)))
    assert "deleted between 2025-12-17 10:00 and 2025-12-17 11:15 UTC" in html
    live = replace(deleted, deleted_via="update")
    assert "deleted at 2025-12-17 11:15 UTC (live update)" in render_post(make_post("x", (live,)))


def test_cli_search_shows_the_interval_and_json_carries_its_ends(capsys, tmp_path):
    db = archive(tmp_path / "a.db")
    assert main(["--db", db, "search", "is:deleted"]) == 0
    out = capsys.readouterr().out
    assert f"deleted between {SEEN:%Y-%m-%d %H:%M} and {GONE:%Y-%m-%d %H:%M} UTC" in out
    assert f"deleted at {GONE:%Y-%m-%d %H:%M} UTC (live update)" in out
    assert main(["--db", db, "search", "is:deleted", "--json"]) == 0
    [post] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ends = {(s["message_id"], s["last_seen"], s["deleted_at"], s["deleted_via"]) for s in post["sightings"]}
    assert ends == {(1, SEEN.isoformat(), GONE.isoformat(), "sweep"),
                    (7, T0.isoformat(), GONE.isoformat(), "update")}


def interval(conn: sqlite3.Connection) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        "SELECT message_id, last_seen, deleted_at, deleted_via FROM messages ORDER BY message_id")]


def test_exports_carry_the_interval_and_a_jsonl_import_restores_it(tmp_path):
    conn = connect_sync(archive(tmp_path / "a.db"))
    out = io.StringIO()
    export_posts(conn, None, "csv", out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert f"deleted between {SEEN:%Y-%m-%d %H:%M} and" in row["sightings"]
    out = io.StringIO()
    export_posts(conn, None, "jsonl", out)
    [post] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {s["deleted_via"] for s in post["sightings"]} == {"sweep", "update"}
    target = tmp_path / "export.jsonl"
    target.write_text(out.getvalue())
    fresh = connect_sync(str(tmp_path / "b.db"))
    import_file(fresh, target, now=GONE + timedelta(days=1))
    assert interval(fresh) == interval(conn) == [
        (1, SEEN.isoformat(), GONE.isoformat(), "sweep"), (7, T0.isoformat(), GONE.isoformat(), "update")]
