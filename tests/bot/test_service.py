"""The daemon against the simulator: start/poll/stop, graceful shutdown mid-poll, start-up failures
with one line and exit 2, and no secret in any log line or output."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.cli import main
from bot.cli.daemon import run_daemon
from bot.config import Settings
from bot.connect import connect_bot
from bot.daemon import connected
from bot.service import Service
from bot.simulator import attach, connect_client
from storage.channels import add_watch_name
from storage.database import Database
from storage.rules import get_subscriber, is_allowed, list_rules
from tests.bot.conftest import API_HASH, SeenInLog, rows, saved_session
from tests.bot.not_telegram import not_telegram_thread

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)


def paused_scheduler() -> AsyncIOScheduler:
    """A started scheduler that runs nothing by itself: the test calls the job bodies."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    return scheduler


def settings_for(tmp_path: Path, **kwargs: object) -> Settings:
    return Settings(db_path=tmp_path / "archive.db", **kwargs)  # type: ignore[arg-type]


async def test_start_seeds_the_alert_chat_resolves_channels_and_a_poll_archives_new_posts(
        world, reader, bot_client, alice, db, tmp_path):
    ch = world.add_channel("embassy", "The Embassy")
    world.post(ch, "before start")
    settings = settings_for(tmp_path, channels=("embassy",), alert_chat=alice.id,
                            keywords=("canada sanctions", "arctic OR ice"))
    service = Service(settings, db, reader, bot_client, scheduler=paused_scheduler(), now=lambda: world.now)
    await service.start()
    assert await db.run(is_allowed, alice.id)
    assert [r.query for r in await db.run(list_rules, alice.id)] == ["canada sanctions", "arctic OR ice"]
    assert rows(db.path, "SELECT username, watched FROM channels WHERE id = ?", ch.id) == [("embassy", 1)]

    world.advance(60)
    world.post(ch, "Canada announces new sanctions")
    await service.poll_cycle()
    texts = [r[0] for r in rows(db.path, "SELECT text FROM messages WHERE channel_id = ? ORDER BY message_id",
                                ch.id)]
    assert texts == ["before start", "Canada announces new sanctions"]
    assert rows(db.path, "SELECT cursor FROM channels WHERE id = ?", ch.id) == [(2,)]
    await service.stop()
    assert not service.scheduler.running


async def test_a_keyword_post_reaches_the_alert_chat_through_percolator_and_dispatcher(
        world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep):
    ch = world.add_channel("wirechan", "Wire")
    world.say(alice, bot_account, "/start")  # the bot learns how to reach the alert chat
    await world.settle()
    settings = settings_for(tmp_path, channels=("wirechan",), alert_chat=alice.id, keywords=("sanctions",))
    service = Service(settings, db, reader, bot_client, scheduler=paused_scheduler(), now=lambda: world.now,
                      sleep=fake_sleep)
    await service.start()
    assert service.poller.after_ingest is service.percolator
    world.advance(60)
    world.post(ch, "New sanctions announced today")
    world.post(ch, "Weather report")
    await service.poll_cycle()
    assert rows(db.path, "SELECT count(*) FROM alerts WHERE chat_id = ?", alice.id) == [(1,)]
    assert await service.dispatcher.dispatch_instant() == 1
    sent = [e for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id]
    assert len(sent) == 1 and "New sanctions announced today" in sent[0].text
    await service.stop()


async def test_an_admin_watches_a_channel_and_switches_to_digests_through_the_bot(
        world, reader, bot_client, bot_account, alice, db, tmp_path, fake_sleep):
    fresh = world.add_channel("freshchan", "Fresh")
    world.post(fresh, "first news")
    settings = settings_for(tmp_path, admins=frozenset({alice.id}), alert_chat=alice.id)
    service = Service(settings, db, reader, bot_client, scheduler=paused_scheduler(), now=lambda: world.now,
                      sleep=fake_sleep)
    await service.start()
    world.say(alice, bot_account, "/watch @freshchan")
    await world.settle()
    replies = [e.text for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id]
    assert replies and replies[-1].startswith("watching @freshchan (Fresh)")
    await service.poll_cycle()
    assert rows(db.path, "SELECT text FROM messages WHERE channel_id = ?", fresh.id) == [("first news",)]

    assert service.scheduler.get_job(f"digest:{alice.id}") is None
    world.say(alice, bot_account, "/mode digest 0 9 * * *")
    await world.settle()
    assert service.scheduler.get_job(f"digest:{alice.id}") is not None
    await service.stop()
    answered = len([e for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id])
    world.say(alice, bot_account, "/help")  # after stop the commands are unregistered
    await world.settle()
    assert len([e for e in world.chat_log(alice, with_=bot_account)
                if e.sender_id == bot_account.id]) == answered


async def test_seeding_again_at_the_next_start_adds_no_duplicate_rules(world, reader, bot_client, alice, db,
                                                                       tmp_path):
    settings = settings_for(tmp_path, alert_chat=alice.id, keywords=("canada",))
    for _ in range(2):
        service = Service(settings, db, reader, bot_client, scheduler=paused_scheduler())
        await service.start()
        await service.stop()
    assert [r.query for r in await db.run(list_rules, alice.id)] == ["canada"]
    assert (await db.run(get_subscriber, alice.id)).mode == "instant"


async def test_jobs_are_single_instance_coalesced_and_scaled_by_time_scale(world, reader, bot_client, db,
                                                                           tmp_path):
    settings = settings_for(tmp_path, poll_interval=60, recheck_interval=900)
    service = Service(settings, db, reader, bot_client, scheduler=paused_scheduler(), time_scale=60)
    await service.start()
    poll, recheck = service.scheduler.get_job("poll"), service.scheduler.get_job("recheck")
    assert poll.trigger.interval == timedelta(seconds=1)
    assert recheck.trigger.interval == timedelta(seconds=15)
    for job in (poll, recheck):
        assert job.max_instances == 1 and job.coalesce is True and job.misfire_grace_time >= 1
    await service.stop()


async def test_stop_during_a_poll_lets_it_finish_so_nothing_is_lost(world, reader, bot_client, db, tmp_path):
    ch = world.add_channel("slowchan", "Slow")
    for i in range(3):
        world.advance(60)
        world.post(ch, f"post {i + 1}")
    entered, release = asyncio.Event(), asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        """The poll's flood wait: parks the running job until the test releases it."""
        entered.set()
        await release.wait()

    world.inject_flood("messages.GetHistory", 5)
    settings = settings_for(tmp_path, channels=("slowchan",))
    service = Service(settings, db, reader, bot_client, now=lambda: world.now, sleep=held_sleep)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run_until(stop))
    await asyncio.wait_for(entered.wait(), timeout=10)  # the scheduler's first poll is in its flood wait
    stop.set()
    for _ in range(50):
        await asyncio.sleep(0)
    assert not running.done(), "stop must wait for the running poll"
    assert rows(db.path, "SELECT count(*) FROM messages") == [(0,)]
    release.set()
    await asyncio.wait_for(running, timeout=10)
    assert rows(db.path, "SELECT message_id FROM messages ORDER BY message_id") == [(1,), (2,), (3,)]
    assert rows(db.path, "SELECT cursor, status FROM channels WHERE id = ?", ch.id) == [(3, "ok")]
    assert not service.scheduler.running
    assert running.exception() is None


async def test_a_failing_cycle_is_logged_and_the_daemon_goes_on(world, reader, bot_client, tmp_path, caplog):
    database = await Database.open(tmp_path / "gone.db")
    service = Service(settings_for(tmp_path), database, reader, bot_client, scheduler=paused_scheduler())
    await service.start()
    await database.close()  # every storage call now fails
    with caplog.at_level(logging.ERROR, logger="chanwatch.service"):
        await service.poll_cycle()
        await service.recheck_cycle()
    messages = [r.getMessage() for r in caplog.records if r.name == "chanwatch.service"]
    assert any("poll cycle failed" in m for m in messages)
    assert any("recheck cycle failed" in m for m in messages)
    await service.stop()


async def test_a_name_added_offline_is_resolved_at_start_and_its_placeholder_replaced(
        world, reader, bot_client, db, tmp_path):
    ch = world.add_channel("addedlater", "Added later")
    world.post(ch, "hello")
    await db.transaction(add_watch_name, "addedlater", world.now)
    await db.transaction(add_watch_name, "nosuchchannel", world.now)
    assert rows(db.path, "SELECT count(*) FROM channels WHERE id < 0") == [(2,)]
    service = Service(settings_for(tmp_path), db, reader, bot_client, scheduler=paused_scheduler(),
                      now=lambda: world.now)
    await service.start()
    assert rows(db.path, "SELECT id, watched FROM channels WHERE username = 'addedlater'") == [(ch.id, 1)]
    [(status, retry_at)] = rows(db.path,
                                "SELECT status, retry_at FROM channels WHERE username = 'nosuchchannel'")
    assert status == "not_found" and retry_at > world.now.isoformat()
    world.reset_requests()
    await service.poll_cycle()  # the missing name backs off: no new lookup
    assert world.requests["contacts.ResolveUsername"] == 0
    assert rows(db.path, "SELECT text FROM messages WHERE channel_id = ?", ch.id) == [("hello",)]
    await service.stop()


async def test_watch_and_unwatch_hooks_resolve_through_the_user_client(world, reader, bot_client, db,
                                                                       tmp_path):
    ch = world.add_channel("hooked", "Hooked")
    service = Service(settings_for(tmp_path), db, reader, bot_client, scheduler=paused_scheduler(),
                      now=lambda: world.now)
    await service.start()
    assert (await service.watchlist.watch("@hooked")).startswith("watching @hooked (Hooked)")
    assert rows(db.path, "SELECT watched FROM channels WHERE id = ?", ch.id) == [(1,)]
    assert "not_found" in await service.watchlist.watch("@nobodyhere")
    assert "invite link" in await service.watchlist.watch("https://t.me/+abcdef")
    assert await service.watchlist.unwatch("hooked") == "stopped watching @hooked"
    assert await service.watchlist.unwatch("hooked") == "@hooked is not watched"
    assert rows(db.path, "SELECT watched FROM channels WHERE id = ?", ch.id) == [(0,)]
    await service.stop()


# --- `chanwatch run` ------------------------------------------------------------------------------


def test_run_with_a_missing_variable_exits_2_naming_it_and_creates_no_archive(clean_env, tmp_path, capsys):
    env_file = tmp_path / "bot.env"
    env_file.write_text(f"CHANWATCH_DB=archive.db\nTG_BOT_TOKEN=123456:{'B' * 35}\n")
    assert main(["run", "--env-file", str(env_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TG_API_ID" in err[0] and "my.telegram.org" in err[0]
    assert "the bot (TG_BOT_TOKEN) needs it" in err[0]
    assert not (tmp_path / "archive.db").exists()


def test_run_with_source_api_and_no_session_exits_2_naming_the_session_and_login(clean_env, tmp_path, capsys):
    env_file = tmp_path / "api.env"
    env_file.write_text("CHANWATCH_DB=archive.db\nCHANWATCH_SOURCE=api\n")
    assert main(["run", "--env-file", str(env_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chanwatch: TG_SESSION:")
    assert "TG_SESSION_FILE" in err[0] and "chanwatch login" in err[0]
    assert not (tmp_path / "archive.db").exists()


def test_run_with_a_bad_keyword_query_exits_2_naming_it_before_connecting(clean_env, tmp_path, capsys):
    with not_telegram_thread() as server:
        (tmp_path / ".env").write_text(
            f"TG_API_ID=12345\nTG_API_HASH={API_HASH}\nTG_SESSION_FILE=user.session\n"
            f"TG_BOT_TOKEN=123456:{'B' * 35}\nTG_SERVER={server.host}:{server.port}\n"
            "CHANWATCH_DB=archive.db\nCHANWATCH_KEYWORDS=canada sanctions; visa AND\n")
        assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("chanwatch: CHANWATCH_KEYWORDS: query 2 of 2, 'visa AND'")
    assert "position 5" in err[0] and "e.g." in err[0]
    assert server.connections == 0 and not (tmp_path / "archive.db").exists()


async def test_keywords_given_in_code_are_checked_before_connecting(world, reader_account, bot_account,
                                                                   tmp_path, capsys):
    session = await saved_session(world, reader_account)
    attached: list[str] = []
    settings = daemon_settings(tmp_path, session, bot_account.bot_token, keywords=("(unclosed",))
    status = await run_daemon(settings, prepare=lambda client, kind: attached.append(kind))
    assert status == 2 and attached == []
    assert "CHANWATCH_KEYWORDS" in capsys.readouterr().err


def test_an_explicit_db_option_wins_over_the_env_file(clean_env, tmp_path):
    from bot.cli.app import build_parser
    from bot.cli.common import settings_from_args

    env_file = tmp_path / "daemon.env"
    env_file.write_text("CHANWATCH_DB=from-env-file.db\n")
    plain = build_parser().parse_args(["run", "--env-file", str(env_file)])
    assert settings_from_args(plain).db_path == Path("from-env-file.db")
    given = str(tmp_path / "given.db")
    explicit = build_parser().parse_args(["--db", given, "run", "--env-file", str(env_file)])
    assert settings_from_args(explicit).db_path == tmp_path / "given.db"


def test_run_with_a_bad_log_format_is_refused_by_the_parser(clean_env, capsys):
    assert main(["run", "--log-format", "xml"]) == 2
    assert "invalid choice" in capsys.readouterr().err



def daemon_settings(tmp_path: Path, session: str, token: str, **kwargs: object) -> Settings:
    return Settings(db_path=tmp_path / "daemon.db", api_id=12345, api_hash=API_HASH, session=session,
                    bot_token=token, **kwargs)  # type: ignore[arg-type]


async def test_run_serves_until_sigterm_exits_0_and_never_logs_a_secret(
        world, reader_account, bot_account, alice, tmp_path, capsys, caplog):
    ch = world.add_channel("newsroom", "Newsroom")
    world.post(ch, "first post")
    session = await saved_session(world, reader_account)
    settings = daemon_settings(tmp_path, session, bot_account.bot_token, channels=("newsroom",),
                               alert_chat=alice.id, keywords=("first",))
    caplog.set_level(logging.DEBUG)
    seen = SeenInLog("poll cycle")
    logging.getLogger("chanwatch.poller").addHandler(seen)
    try:
        daemon = asyncio.create_task(run_daemon(settings, log_format="json",
                                         prepare=lambda client, kind: attach(world, client)))
        await asyncio.wait_for(seen.event.wait(), timeout=10)
        os.kill(os.getpid(), signal.SIGTERM)
        status = await asyncio.wait_for(daemon, timeout=10)
    finally:
        logging.getLogger("chanwatch.poller").removeHandler(seen)
    assert status == 0
    assert rows(settings.db_path, "SELECT text FROM messages") == [("first post",)]
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("poll @newsroom: 1 new") for line in lines)
    assert any("SIGTERM" in line["message"] for line in lines)
    everything = out + err + caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (API_HASH, session, bot_account.bot_token, bot_account.bot_token.split(":")[1]):
        assert secret not in everything


async def test_run_with_a_logged_out_session_exits_2_with_one_line(world, reader_account, bot_account,
                                                                   tmp_path, capsys):
    client = await connect_client(world, as_user=reader_account)
    session = client.session.save()
    await client.log_out()  # the session is revoked server-side
    settings = daemon_settings(tmp_path, session, bot_account.bot_token)
    status = await run_daemon(settings, prepare=lambda client, kind: attach(world, client))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert [line for line in err if line.startswith("chanwatch:")] == err[-1:]
    assert "TG_SESSION" in err[-1] and "chanwatch login" in err[-1]
    assert session not in "\n".join(err)



async def test_run_when_something_else_answers_instead_of_telegram_exits_1_with_one_line(
        world, reader_account, bot_account, tmp_path, capsys):
    session = await saved_session(world, reader_account)

    async def a_proxy_answers(*args: object, **kwargs: object) -> None:
        raise asyncio.IncompleteReadError(b"HTTP/1.1 403", 1347703872)  # what Telethon meets then

    def prepare(client, kind):
        attach(world, client)
        if kind == "user":
            client.connect = a_proxy_answers

    status = await run_daemon(daemon_settings(tmp_path, session, bot_account.bot_token), prepare=prepare)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1  # not a configuration mistake: systemd may restart it
    assert len(err) == 1 and err[0].startswith("chanwatch: cannot reach Telegram")
    assert "IncompleteReadError" in err[0] and session not in err[0]

async def test_run_when_the_bot_cannot_reach_telegram_exits_1_and_does_not_blame_the_token(
        world, reader_account, bot_account, tmp_path, capsys):
    session = await saved_session(world, reader_account)

    async def a_proxy_answers(*args: object, **kwargs: object) -> None:
        raise asyncio.IncompleteReadError(b"HTTP/1.1 403", 1347703872)

    def prepare(client, kind):
        attach(world, client)
        if kind == "bot":
            client.connect = a_proxy_answers

    status = await run_daemon(daemon_settings(tmp_path, session, bot_account.bot_token), prepare=prepare)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err[-1].startswith("chanwatch: cannot reach Telegram for the bot")
    assert "IncompleteReadError" in err[-1]
    assert "TG_BOT_TOKEN" not in err[-1] and bot_account.bot_token not in "\n".join(err)


async def test_run_with_a_revoked_bot_token_exits_2_without_printing_it(world, reader_account, tmp_path,
                                                                        capsys):
    session = await saved_session(world, reader_account)
    token = "123456:" + "A" * 35
    status = await run_daemon(daemon_settings(tmp_path, session, token),
                       prepare=lambda client, kind: attach(world, client))
    err = capsys.readouterr().err
    assert status == 2
    last = err.strip().splitlines()[-1]
    assert "TG_BOT_TOKEN" in last and "AccessTokenInvalidError" in last
    assert token not in err and "A" * 35 not in err


async def test_run_with_an_unopenable_archive_exits_2_before_connecting(world, reader_account, bot_account,
                                                                        tmp_path, capsys):
    session = await saved_session(world, reader_account)
    world.reset_requests()
    settings = replace(daemon_settings(tmp_path, session, bot_account.bot_token), db_path=tmp_path)
    status = await run_daemon(settings, prepare=lambda client, kind: attach(world, client))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert "CHANWATCH_DB" in err[-1] and "cannot open the archive" in err[-1] and "directory" in err[-1]
    assert sum(world.requests.values()) == 0


async def test_run_with_a_file_that_is_not_an_archive_exits_2_with_one_line_and_leaves_it_alone(
        world, reader_account, bot_account, tmp_path, capsys):
    session = await saved_session(world, reader_account)
    world.reset_requests()
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"not an archive, some notes\n" * 500)
    settings = replace(daemon_settings(tmp_path, session, bot_account.bot_token), db_path=garbage)
    status = await run_daemon(settings, prepare=lambda client, kind: attach(world, client))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("chanwatch: CHANWATCH_DB: cannot open the archive") and "not an SQLite" in err[0]
    assert garbage.read_bytes() == b"not an archive, some notes\n" * 500
    assert sum(world.requests.values()) == 0


# --- logs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_never_carry_a_secret_even_in_tracebacks_and_extra_fields(log_format):
    from io import StringIO

    from bot.logs import setup_logging, teardown_logging

    token = "123456:" + "S" * 35
    stream = StringIO()
    handler = setup_logging(log_format, secrets=[token, API_HASH], stream=stream)
    try:
        logger = logging.getLogger("chanwatch.test")
        logger.info("connecting with %s", token, extra={"channel": "@news", "hash": API_HASH})
        try:
            raise RuntimeError(f"server said no to {token}")
        except RuntimeError:
            logger.exception("login failed")
    finally:
        teardown_logging(handler)
    text = stream.getvalue()
    assert token not in text and "S" * 35 not in text and API_HASH not in text
    assert text.count("[redacted]") >= (3 if log_format == "json" else 2) and "RuntimeError" in text
    if log_format == "json":
        first, second = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
        assert first["channel"] == "@news" and first["logger"] == "chanwatch.test"
        assert first["level"] == "INFO"
        assert second["level"] == "ERROR" and "Traceback" in second["exc"]
    assert handler not in logging.getLogger().handlers


async def test_start_publishes_the_subscriber_commands_as_the_bots_menu(
        world, reader, bot_client, bot_account, db, tmp_path):
    service = Service(settings_for(tmp_path), db, reader, bot_client, scheduler=paused_scheduler())
    await service.start()
    await service.stop()
    names = [c.command for c in bot_account.bot_commands]
    assert names[:3] == ["search", "subscribe", "rules"] and "help" in names
    assert "allow" not in names and "watch" not in names  # admin commands stay out of everyone's menu


async def test_a_restarted_daemon_alerts_a_known_chat_without_it_writing_again_or_a_new_bot_login(
        world, reader_account, bot_account, alice, tmp_path, fake_sleep):
    world.accept_empty_access_hash_from_bots = False  # a server that wants the chat's real access hash
    ch = world.add_channel("wirechan", "Wire")
    session = await saved_session(world, reader_account)
    settings = daemon_settings(tmp_path, session, bot_account.bot_token, channels=("wirechan",),
                               alert_chat=alice.id, keywords=("sanctions",),
                               alert_max_age_hours=0)  # the world's clock is not the daemon's
    world.reset_requests()

    def prepare(client, kind):
        attach(world, client)

    async with connected(settings, prepare=prepare, scheduler=paused_scheduler()) as service:
        await service.start()
        world.say(alice, bot_account, "/start")  # the only time alice ever writes to the bot
        await world.settle()
        # on disk at once (not a minute later, as Telethon would): a crash now still remembers her
        assert rows(settings.bot_session_path, "SELECT hash FROM entities WHERE id = ?", alice.id) == [
            (alice.access_hash,)]
        await service.stop()
    assert world.logins[bot_account.id] == 1
    world.advance(60)
    world.post(ch, "New sanctions announced today")

    async with connected(settings, prepare=prepare, scheduler=paused_scheduler()) as service:
        await service.start()
        await service.poll_cycle()
        assert await service.dispatcher.dispatch_instant() == 1
        await service.stop()
    assert world.logins[bot_account.id] == 1  # the second start used the saved session
    sent = [e.text for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id]
    assert any("New sanctions announced today" in text for text in sent)
    assert oct(settings.bot_session_path.stat().st_mode & 0o777) == "0o600"


async def test_a_saved_session_of_another_bot_is_logged_out_and_the_new_token_logs_in(
        world, reader_account, bot_account, tmp_path):
    other = world.add_bot("older_bot")
    session = await saved_session(world, reader_account)
    settings = daemon_settings(tmp_path, session, other.bot_token)
    prepare = lambda client, kind: attach(world, client)  # noqa: E731
    client = await connect_bot(settings, prepare=prepare)
    await client.disconnect()
    client = await connect_bot(replace(settings, bot_token=bot_account.bot_token), prepare=prepare)
    try:
        assert (await client.get_me()).id == bot_account.id
    finally:
        await client.disconnect()
    assert world.logins[other.id] == 1 and world.logins[bot_account.id] == 1
    assert world.requests["auth.LogOut"] == 1
