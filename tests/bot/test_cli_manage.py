"""`chanwatch channels`, `rules` and `backfill`: what they store, print and refuse."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.backfill import BACKFILL_MAX_WAIT, backfill_channels
from bot.config import Settings
from bot.connect import ConnectError
from bot.poller import Poller
from bot.resolve import resolve_channels
from bot.simulator import attach, connect_client
from bot.telegram import FloodPolicy
from storage.database import Database
from tests.bot.conftest import API_HASH, rows, saved_session


@pytest.fixture(autouse=True)
def _every_test_has_a_clean_env(clean_env):
    """Every test here runs without the caller's chanwatch/Telegram settings (see conftest)."""
    return clean_env


def cli(db: Path, *argv: str) -> int:
    return main(["--db", str(db), *argv])


# --- channels -----------------------------------------------------------------------------------


def test_channels_add_stores_watched_placeholders_and_list_shows_them_pending(tmp_path, capsys):
    db = tmp_path / "a.db"
    assert cli(db, "channels", "add", "@MFARussia", "https://t.me/rusembc") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["@MFARussia: added (the daemon resolves it when it starts)",
                   "@rusembc: added (the daemon resolves it when it starts)"]
    assert sorted(rows(db, "SELECT username, watched, access_hash FROM channels")) == [
        ("MFARussia", 1, None), ("rusembc", 1, None)]
    assert all(r[0] < 0 for r in rows(db, "SELECT id FROM channels"))
    assert cli(db, "channels", "add", "mfarussia") == 0
    assert capsys.readouterr().out.strip() == "@mfarussia: already watched"
    assert cli(db, "channels", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and all("pending" in line and "0 msgs" in line for line in listed)


def test_channels_add_with_a_source_reads_it_that_way_and_list_shows_it(tmp_path, capsys):
    db = tmp_path / "a.db"
    assert cli(db, "channels", "add", "@rusembc", "--source", "web") == 0
    assert capsys.readouterr().out.strip() == (
        "@rusembc: added, read through the web preview (the daemon resolves it when it starts)")
    assert cli(db, "channels", "add", "MFARussia") == 0
    assert rows(db, "SELECT username, source, watched FROM channels ORDER BY username") == [
        ("MFARussia", None, 1), ("rusembc", "web", 1)]
    assert cli(db, "channels", "add", "mfarussia", "--source", "api") == 0
    capsys.readouterr()
    assert cli(db, "channels", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.rsplit("  ", 1)[-1] for line in listed] == ["via api", "via web"]
    assert cli(db, "channels", "list", "--json") == 0
    assert [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()] == ["api", "web"]
    assert cli(db, "channels", "add", "other_name", "--source", "telegram") == 2


def test_channels_add_with_a_bad_name_changes_nothing(tmp_path, capsys):
    db = tmp_path / "a.db"
    assert cli(db, "channels", "add", "goodname", "t.me/+invitecode") == 2
    err = capsys.readouterr().err
    assert "invite link" in err and len(err.strip().splitlines()) == 1
    assert not db.exists() or rows(db, "SELECT count(*) FROM channels") == [(0,)]


def test_channels_remove_unwatches_and_refuses_unknown_names(tmp_path, capsys):
    db = tmp_path / "a.db"
    cli(db, "channels", "add", "somechannel")
    capsys.readouterr()
    assert cli(db, "channels", "remove", "@somechannel") == 0
    assert "no longer watched" in capsys.readouterr().out
    assert rows(db, "SELECT count(*) FROM channels") == [(0,)]  # a placeholder has nothing to keep
    assert cli(db, "channels", "remove", "somechannel") == 2
    assert "@somechannel is not watched" in capsys.readouterr().err


def test_channels_remove_needs_an_existing_archive(tmp_path, capsys):
    assert cli(tmp_path / "none.db", "channels", "remove", "somechannel") == 2
    assert "no archive at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


async def test_channels_list_shows_status_messages_last_post_and_last_poll(world, reader, tmp_path, capsys):
    path = tmp_path / "polled.db"
    ch = world.add_channel("polledchan", "Polled")
    world.add_channel("gonechan", "Gone")
    world.post(ch, "one")
    world.advance(3600)
    world.post(ch, "two")
    async with await Database.open(path) as db:
        await resolve_channels(db, reader, ["polledchan", "gonechan"])
        world.make_private(world.resolve("gonechan"))
        await Poller(db, reader, FloodPolicy(max_wait=0), now=lambda: world.now).poll_once()
    assert cli(path, "channels", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    gone = next(line for line in lines if line.startswith("@gonechan"))
    polled = next(line for line in lines if line.startswith("@polledchan"))
    assert " private " in gone
    assert " ok " in polled and "2 msgs" in polled and "last post 2025-12-01 13:00" in polled
    assert "last poll 2025-12-01 13:00" in polled
    assert cli(path, "channels", "list", "--json") == 0
    data = {d["username"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert data["polledchan"]["messages"] == 2 and data["polledchan"]["status"] == "ok"
    assert data["polledchan"]["id"] == ch.id and data["gonechan"]["status"] == "private"


# --- rules --------------------------------------------------------------------------------------


def test_rules_add_list_remove_for_a_chat(tmp_path, capsys):
    db = tmp_path / "r.db"
    assert cli(db, "rules", "add", "canada sanctions -visa", "--chat", "-1001234") == 0
    assert capsys.readouterr().out.strip() == "rule 1 added for chat -1001234: canada sanctions -visa"
    assert cli(db, "rules", "add", "canada sanctions -visa", "--chat", "-1001234") == 0
    assert "already there" in capsys.readouterr().out
    assert cli(db, "rules", "add", "#RussiaCanada", "--chat", "42") == 0
    capsys.readouterr()
    assert cli(db, "rules", "list", "--chat", "42") == 0
    assert capsys.readouterr().out.split() == ["2", "chat", "42", "#RussiaCanada"]
    assert cli(db, "rules", "list", "--json") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["chat_id"], r["query"]) for r in listed] == [
        (1, -1001234, "canada sanctions -visa"), (2, 42, "#RussiaCanada")]
    assert cli(db, "rules", "remove", "1", "--chat", "42") == 2
    assert "no rule with id 1 in this chat" in capsys.readouterr().err
    assert cli(db, "rules", "remove", "1") == 0
    assert "rule 1 removed from chat -1001234" in capsys.readouterr().out
    assert rows(db, "SELECT id FROM rules") == [(2,)]


def test_rules_add_defaults_to_the_alert_chat_and_needs_one(tmp_path, capsys, clean_env):
    db = tmp_path / "r.db"
    assert cli(db, "rules", "add", "arctic") == 2
    assert "--chat" in capsys.readouterr().err
    clean_env.setenv("CHANWATCH_ALERT_CHAT", "-100777")
    assert cli(db, "rules", "add", "arctic") == 0
    assert rows(db, "SELECT chat_id, query FROM rules") == [(-100777, "arctic")]


def test_rules_add_with_a_bad_query_points_at_it_and_stores_nothing(tmp_path, capsys):
    db = tmp_path / "r.db"
    assert cli(db, "rules", "add", "canada (sanctions", "--chat", "1") == 2
    err = capsys.readouterr().err
    assert err.startswith("chanwatch: bad query") and "^" in err
    assert not db.exists() or rows(db, "SELECT count(*) FROM rules") == [(0,)]


def test_a_rule_with_emoji_beside_its_words_is_stored_as_typed_and_matches_as_the_words(tmp_path, capsys):
    db = tmp_path / "sample.db"
    assert cli(db, "import", "--sample", "--no-progress") == 0
    assert cli(db, "rules", "add", "🎙 sanctions", "--chat", "1") == 0
    assert rows(db, "SELECT query FROM rules") == [("🎙 sanctions",)]
    capsys.readouterr()
    assert cli(db, "rules", "test", "🎙 sanctions") == 0
    assert capsys.readouterr().out.startswith("4 archived posts match '🎙 sanctions'")


@pytest.mark.parametrize("action", ["add", "test"])
def test_a_rule_starting_with_a_dash_gets_the_query_languages_error(tmp_path, capsys, action):
    db = tmp_path / "r.db"
    assert cli(db, "import", "--sample", "--no-progress") == 0
    capsys.readouterr()
    assert cli(db, "rules", action, "-visa", "--chat" if action == "add" else "--limit", "1") == 2
    err = capsys.readouterr().err
    assert err.startswith("chanwatch: bad query: the query only excludes") and "usage:" not in err
    assert "\n  -visa\n  ^\n" in err
    assert rows(db, "SELECT count(*) FROM rules") == [(0,)]
    assert cli(db, "rules", action) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"chanwatch: rules {action}: give a query, e.g. chanwatch rules {action} 'canada")


def test_rules_test_counts_and_shows_the_archived_posts_a_rule_matches(tmp_path, capsys):
    db = tmp_path / "sample.db"
    assert cli(db, "import", "--sample", "--no-progress") == 0
    capsys.readouterr()
    assert cli(db, "rules", "test", "sanctions", "--limit", "1") == 0
    out = capsys.readouterr().out
    assert out.startswith("4 archived posts match 'sanctions'")
    assert "… and 3 more" in out and "https://t.me/" in out
    assert cli(db, "rules", "test", "sanctions", "--since", "2025-12-17") == 0
    assert capsys.readouterr().out.startswith("1 archived post matches 'sanctions' since 2025-12-17")
    assert cli(db, "rules", "test", "zzzunknownword") == 0
    assert capsys.readouterr().out.startswith("0 archived posts match")


def test_rules_test_rejects_a_bad_date(tmp_path, capsys):
    assert cli(tmp_path / "x.db", "rules", "test", "canada", "--since", "17.12.2025") == 2
    assert "not a date" in capsys.readouterr().err


# --- backfill -----------------------------------------------------------------------------------



def _settings(tmp_path: Path, session: str) -> Settings:
    return Settings(db_path=tmp_path / "bf.db", api_id=1, api_hash=API_HASH, session=session)


async def test_backfill_archives_history_and_reports_one_line_per_channel(world, reader_account, tmp_path,
                                                                         capsys):
    ch = world.add_channel("historic", "Historic")
    for i in range(150):
        world.advance(60)
        world.post(ch, f"old post {i + 1}")
    settings = _settings(tmp_path, await saved_session(world, reader_account))
    status = await backfill_channels(settings, ["@historic"], limit=120, progress=False,
                                     prepare=lambda client, kind: attach(world, client))
    assert status == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("@historic: 120 messages (120 new)") and "stopped by limit" in out
    assert "resumable below id 31" in out
    status = await backfill_channels(settings, ["historic"], progress=False,
                                     prepare=lambda client, kind: attach(world, client))
    assert status == 0
    second = capsys.readouterr().out
    assert "30 messages (30 new)" in second and second.strip().endswith("complete")
    assert rows(settings.db_path, "SELECT count(*), min(message_id), max(message_id) FROM messages") == [
        (150, 1, 150)]


async def test_backfill_since_a_date_stops_there(world, reader_account, tmp_path, capsys):
    ch = world.add_channel("dated", "Dated")
    for _ in range(5):
        world.advance(days=1)
        world.post(ch, f"day {world.now.date()}")
    settings = _settings(tmp_path, await saved_session(world, reader_account))
    status = await backfill_channels(settings, ["dated"], since=date(2025, 12, 4), progress=False,
                                     prepare=lambda client, kind: attach(world, client))
    assert status == 0 and "stopped by since" in capsys.readouterr().out
    assert [r[0] for r in rows(settings.db_path, "SELECT text FROM messages ORDER BY message_id")] == [
        "day 2025-12-04", "day 2025-12-05", "day 2025-12-06"]


async def test_backfill_failures_are_one_line_each_and_exit_2_while_the_others_go_on(
        world, reader_account, tmp_path, capsys):
    ok = world.add_channel("fineone", "Fine")
    world.post(ok, "hello")
    world.add_channel("floodchan", "Flood")
    settings = _settings(tmp_path, await saved_session(world, reader_account))
    world.inject_flood("messages.GetHistory", int(BACKFILL_MAX_WAIT) + 1)
    status = await backfill_channels(settings, ["nosuchname", "floodchan", "fineone"], progress=False,
                                     prepare=lambda client, kind: attach(world, client))
    out, err = capsys.readouterr()
    assert status == 2
    errors = err.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("chanwatch: backfill nosuchname: cannot backfill @nosuchname: not_found")
    assert errors[1].startswith("chanwatch: backfill floodchan: flood wait of 301s")
    assert out.startswith("@fineone: 1 message (1 new), 1 page, ")


async def test_backfill_with_a_logged_out_session_is_one_clear_line(world, reader_account, tmp_path):
    client = await connect_client(world, as_user=reader_account)
    session = client.session.save()
    await client.log_out()
    with pytest.raises(ConnectError, match=r"^TG_SESSION: the user session is not logged in .*login`"):
        await backfill_channels(_settings(tmp_path, session), ["x"], progress=False,
                                prepare=lambda client, kind: attach(world, client))
    assert not (tmp_path / "bf.db").exists()


async def test_backfill_when_something_else_answers_instead_of_telegram_is_one_line_and_exit_1(
        world, reader_account, tmp_path):
    session = await saved_session(world, reader_account)

    async def a_proxy_answers(*args: object, **kwargs: object) -> None:
        raise asyncio.IncompleteReadError(b"HTTP/1.1 403", 1347703872)  # what Telethon meets then

    def prepare(client, kind):
        attach(world, client)
        client.connect = a_proxy_answers

    with pytest.raises(ConnectError) as caught:
        await backfill_channels(_settings(tmp_path, session), ["x"], progress=False, prepare=prepare)
    assert caught.value.status == 1  # not a configuration mistake: it may pass
    message = str(caught.value)
    assert message.startswith("cannot reach Telegram") and "IncompleteReadError" in message
    assert session not in message and not (tmp_path / "bf.db").exists()


def test_backfill_without_credentials_exits_2_naming_the_variable(tmp_path, capsys):
    assert cli(tmp_path / "bf.db", "backfill", "somechannel", "--env-file", str(_empty_env(tmp_path))) == 2
    assert "TG_API_ID" in capsys.readouterr().err


def _empty_env(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path
