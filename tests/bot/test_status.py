"""`chanwatch status` and the readers block of /status: who reads the archive, alive or not, with how
many channels, who dispatches the alerts, and every channel's lease (held, lapsed, free)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from storage.channels import upsert_channel
from storage.database import connect_sync, run_in_transaction
from storage.leases import DISPATCHER, can_read, claim, release, take_role
from storage.records import Channel, iso
from tests.bot.commands_support import NOW, Harness
from tests.bot.conftest import run_cli

ALICE, BOB = 501, 502  # reading accounts
PERIOD = timedelta(minutes=10)  # the lease period of these tests (CHANWATCH_LEASE_SECONDS=600)


def shared_archive(path: Path, now: datetime) -> None:
    """Two public channels, a private one only BOB's account reads, one nobody can read; reader
    'bob-reader' last claimed 30 minutes before `now` (dead), 'alice-reader' 2 minutes before (alive,
    the dispatcher): alice holds the public two, bob's private lease lapsed, the unreadable one is free."""
    conn = connect_sync(path)
    try:
        for n, username in enumerate(("chan0", "chan1", None, None)):
            upsert_channel(conn, Channel(100 + n, username, f"Channel {n}", 1, watched=True), iso(now))
        run_in_transaction(conn, can_read, BOB, 102)
        run_in_transaction(conn, claim, "bob-reader", BOB, now - timedelta(minutes=30), PERIOD)
        run_in_transaction(conn, claim, "alice-reader", ALICE, now - timedelta(minutes=2), PERIOD)
        run_in_transaction(conn, take_role, DISPATCHER, "alice-reader", now - timedelta(minutes=2), PERIOD)
    finally:
        conn.close()


@pytest.fixture
def archive_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    clean_env.setenv("CHANWATCH_LEASE_SECONDS", str(int(PERIOD.total_seconds())))
    return tmp_path / "shared.db"


def cells(lines: list[str]) -> dict[str, list[str]]:
    """The table rows among `lines`, by their first cell: each row's cells, stripped."""
    rows = [[c.strip() for c in line.split("│")] for line in lines if "│" in line]
    return {row[0]: row[1:] for row in rows}


def test_status_lists_the_readers_and_every_channels_lease(capsys, archive_file) -> None:
    shared_archive(archive_file, datetime.now(UTC))
    code, out, err = run_cli(capsys, "--db", str(archive_file), "status")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[:2] == [f"archive: {archive_file}", "readers: 2, 1 alive (seen within 10m)"]
    split = lines.index("leases: 4 channel(s), 2 held")
    readers, leases = cells(lines[:split]), cells(lines[split:])
    assert readers["alice-reader"][0] == str(ALICE) and readers["alice-reader"][2:] == [
        "2m ago", "yes", "2", "dispatcher"]
    assert readers["bob-reader"][2:] == ["30m ago", "no", "0", "-"]
    assert leases == {"channel": ["holder", "age", "state"], "chan0": ["alice-reader", "2m", "held"],
                      "chan1": ["alice-reader", "2m", "held"], "Channel 2": ["bob-reader", "30m", "lapsed"],
                      "Channel 3": ["-", "-", "free"]}


def test_status_json_gives_each_reader_and_lease_with_ages_and_states(capsys, archive_file) -> None:
    shared_archive(archive_file, datetime.now(UTC))
    code, out, _ = run_cli(capsys, "--db", str(archive_file), "status", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["lease_seconds"] == 600
    readers = {r["name"]: r for r in data["readers"]}
    assert readers["alice-reader"]["alive"] and readers["alice-reader"]["roles"] == [DISPATCHER]
    assert readers["alice-reader"]["channels"] == 2 and readers["alice-reader"]["account_id"] == ALICE
    assert not readers["bob-reader"]["alive"] and readers["bob-reader"]["seen_seconds_ago"] >= 1800
    assert [(lease["channel_id"], lease["reader"], lease["state"]) for lease in data["leases"]] == [
        (100, "alice-reader", "held"), (101, "alice-reader", "held"), (102, "bob-reader", "lapsed"),
        (103, None, "free")]
    assert 1800 <= data["leases"][2]["age_seconds"] < 3600 and data["leases"][3]["age_seconds"] is None


def test_the_lease_period_setting_decides_who_counts_alive(capsys, archive_file, clean_env) -> None:
    shared_archive(archive_file, datetime.now(UTC))
    clean_env.setenv("CHANWATCH_LEASE_SECONDS", "3600")
    _, out, _ = run_cli(capsys, "--db", str(archive_file), "status", "--format", "json")
    assert all(r["alive"] for r in json.loads(out)["readers"])  # bob, seen 30 min ago, within an hour
    clean_env.delenv("CHANWATCH_LEASE_SECONDS")
    _, out, _ = run_cli(capsys, "--db", str(archive_file), "status", "--format", "json")
    assert [r["alive"] for r in json.loads(out)["readers"]] == [False, False]  # the default: 60 s
    clean_env.setenv("CHANWATCH_LEASE_SECONDS", "5")
    code, out, err = run_cli(capsys, "--db", str(archive_file), "status")
    assert code == 2 and out == ""
    assert err.strip() == "chanwatch: CHANWATCH_LEASE_SECONDS: must be a whole number of seconds, " \
                          "at least 10; got '5'"


def test_an_archive_no_reader_ran_on_says_so_plainly(capsys, archive_file) -> None:
    connect_sync(archive_file).close()
    code, out, err = run_cli(capsys, "--db", str(archive_file), "status")
    assert (code, out, err) == (0, f"archive: {archive_file}\nno readers have run on this archive\n", "")
    _, out, _ = run_cli(capsys, "--db", str(archive_file), "status", "--format", "json")
    assert json.loads(out)["readers"] == [] and json.loads(out)["leases"] == []


def test_after_every_reader_stopped_cleanly_status_says_none_runs_and_leases_are_free(
        capsys, archive_file) -> None:
    shared_archive(archive_file, datetime.now(UTC))
    conn = connect_sync(archive_file)
    for reader in ("alice-reader", "bob-reader"):
        run_in_transaction(conn, release, reader)
    conn.close()
    _, out, _ = run_cli(capsys, "--db", str(archive_file), "status")
    assert out.splitlines()[1] == "no reader is running on this archive now (the last ones stopped); " \
                                  "every lease is free"


def test_status_of_a_missing_archive_is_one_line_with_what_to_do(capsys, tmp_path, clean_env) -> None:
    code, out, err = run_cli(capsys, "--db", str(tmp_path / "none.db"), "status")
    assert code == 2 and out == "" and err.startswith("chanwatch: no archive at") and err.count("\n") == 1


# -- /status ---------------------------------------------------------------------------------------


@pytest.fixture
async def h(world, db, bot_client, bot_account) -> AsyncIterator[Harness]:
    harness = Harness(world, db, bot_client, bot_account)
    yield harness
    harness.close()


async def test_bot_status_shows_the_readers_their_channels_and_who_sends_alerts(h, alice, db) -> None:
    h.start(Settings(lease_seconds=int(PERIOD.total_seconds())))
    await h.allow(alice)
    await db.run(lambda conn: shared_archive(Path(db.path), NOW))
    answer = (await h.ask(alice, "/status")).text
    block = answer[answer.index("👥 Readers"):].splitlines()
    assert block == ["👥 Readers: 1 of 2 alive", "🟢 alice-reader: 2 channels · alive",
                     "🔴 bob-reader: 0 channels · not seen", "Alerts sent by: alice-reader"]


async def test_bot_status_has_no_readers_block_when_no_reader_ran(h, alice) -> None:
    h.start()
    await h.allow(alice)
    assert "Readers" not in (await h.ask(alice, "/status")).text
