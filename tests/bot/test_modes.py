"""The daemon's modes: no Telegram credentials at all (web preview, alerts in the log), a bot only
(commands and alerts, no user login), and alerts logged once without a bot, then sent once a bot is
configured, the stale ones given up."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.cli.daemon import run_daemon
from bot.config import Settings
from bot.daemon import connected
from bot.service import Service
from bot.simulator import World, attach
from bot.simulator.web import WebPreviewServer
from storage.database import Database
from storage.ingest import ingest_batch
from storage.outbox import counts, get_alerts
from tests.bot.conftest import API_HASH, SeenInLog, rows
from tests.storage.factories import MFA, batch, msg


def paused_scheduler() -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    return scheduler


def no_credentials(tmp_path: Path, **kwargs: object) -> Settings:
    """Settings with no Telegram credentials at all (an unreachable web preview: nothing is read)."""
    return Settings(db_path=tmp_path / "archive.db", web_url="http://127.0.0.1:9", **kwargs)  # type: ignore[arg-type]


def with_bot(settings: Settings, token: str) -> Settings:
    return replace(settings, api_id=12345, api_hash=API_HASH, bot_token=token)


def job_ids(service: Service) -> set[str]:
    return {job.id for job in service.scheduler.get_jobs()}


def archive_post(db_path: Path, service: Service, message_id: int, text: str, when: datetime) -> None:
    """A post of @MFARussia stored at `when` as a reader would store it (the percolator queues its
    alerts in the same transaction)."""
    from storage.database import connect_sync

    conn = connect_sync(db_path)
    try:
        record = replace(msg(MFA, message_id, text), date=when - timedelta(minutes=1))
        ingest_batch(conn, batch(MFA, record), when, service.percolator)
    finally:
        conn.close()


async def test_run_with_no_credentials_starts_and_stops_without_connecting_to_telegram(
        tmp_path, no_network, caplog):
    caplog.set_level(logging.INFO)
    attached: list[str] = []
    stop = asyncio.Event()
    seen = SeenInLog("service started")
    logging.getLogger("chanwatch.service").addHandler(seen)
    try:
        daemon = asyncio.create_task(run_daemon(no_credentials(tmp_path), stop=stop, install_logging=False,
                                                prepare=lambda client, kind: attached.append(kind)))
        await asyncio.wait_for(seen.event.wait(), timeout=10)
        stop.set()
        status = await asyncio.wait_for(daemon, timeout=10)
    finally:
        logging.getLogger("chanwatch.service").removeHandler(seen)
    assert status == 0 and attached == [] and no_network == []
    assert "user none (no user session), bot none (alerts are printed in this log)" in caplog.text
    assert "no bot: alerts are printed in this log" in caplog.text


async def test_no_credentials_watch_the_configured_names_for_the_web_reader_and_run_no_account_job(
        tmp_path, no_network):
    settings = no_credentials(tmp_path, channels=("embassy",), stats_days=14)
    async with connected(settings, scheduler=paused_scheduler()) as service:
        await service.start()
        assert service.user is None and service.bot is None and service.web is not None
        assert service.web.base_url == "http://127.0.0.1:9"
        assert job_ids(service) == {"web", "web recheck", "outbox log", "leases"}  # no poll, sweep, media…
        assert [s.username for s in await service.web_states()] == ["embassy"]
        await service.stop()
        web = service.web
    assert web._client.is_closed
    assert rows(settings.db_path, "SELECT username, watched FROM channels") == [("embassy", 1)]
    assert no_network == []


async def test_a_bot_without_a_user_session_answers_commands_and_sends_alerts_with_no_user_login(
        world, bot_account, reader_account, alice, tmp_path):
    kinds: list[str] = []

    def prepare(client, kind):
        kinds.append(kind)
        attach(world, client)

    settings = with_bot(no_credentials(tmp_path, alert_chat=alice.id, keywords=("sanctions",),
                                       admins=frozenset({alice.id}), alert_max_age_hours=0),
                        bot_account.bot_token)
    async with connected(settings, prepare=prepare, scheduler=paused_scheduler()) as service:
        await service.start()
        assert kinds == ["bot"] and service.user is None and service.dispatcher is not None
        assert "poll" not in job_ids(service) and "outbox log" not in job_ids(service)
        world.say(alice, bot_account, "/watch newsroom")
        await world.settle()
        world.say(alice, bot_account, "/status")
        await world.settle()
        archive_post(settings.db_path, service, 7, "New sanctions announced", datetime.now(UTC))
        assert await service.dispatcher.dispatch_instant() == 1
        await service.stop()
    sent = [e.text for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id]
    assert any("watching @newsroom by its web preview" in text for text in sent)
    assert any("Read by: web preview 1" in text for text in sent)
    assert any("New sanctions announced" in text for text in sent)
    assert reader_account.id not in world.logins
    assert rows(settings.db_path, "SELECT username, watched FROM channels WHERE username = 'newsroom'") == [
        ("newsroom", 1)]


async def test_alerts_are_logged_once_without_a_bot_across_restarts_then_sent_once_a_bot_is_configured(
        world, bot_account, alice, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="chanwatch.service")
    settings = no_credentials(tmp_path, alert_chat=alice.id, keywords=("sanctions",), alert_max_age_hours=48)
    async with connected(settings, scheduler=paused_scheduler()) as service:
        await service.start()
        archive_post(settings.db_path, service, 5, "Canada announces new sanctions\nsecond line",
                     datetime.now(UTC))
        await service.outbox_log_cycle()
        await service.outbox_log_cycle()
        await service.stop()
    async with connected(settings, scheduler=paused_scheduler()) as service:  # a restart, still no bot
        await service.start()
        await service.outbox_log_cycle()
        await service.stop()
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert for chat")]
    assert logged == [f"alert for chat {alice.id}: https://t.me/MFARussia/5 · rules: sanctions · "
                      "Canada announces new sanctions"]

    async with connected(with_bot(settings, bot_account.bot_token), prepare=lambda c, k: attach(world, c),
                         scheduler=paused_scheduler()) as service:
        await service.start()
        world.say(alice, bot_account, "/start")  # a bot can write only to chats that wrote to it
        await world.settle()
        assert await service.dispatcher.dispatch_instant() == 1
        assert await service.dispatcher.dispatch_instant() == 0
        await service.stop()
    sent = [e.text for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id]
    assert sum("Canada announces new sanctions" in text for text in sent) == 1


async def test_a_bot_configured_later_gives_up_alerts_that_waited_longer_than_the_alert_max_age(
        world, bot_account, alice, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="chanwatch.service")
    settings = no_credentials(tmp_path, alert_chat=alice.id, keywords=("sanctions",), alert_max_age_hours=48)
    now = datetime.now(UTC)
    async with connected(settings, scheduler=paused_scheduler()) as service:
        await service.start()
        archive_post(settings.db_path, service, 5, "Old sanctions news", now - timedelta(hours=72))
        archive_post(settings.db_path, service, 6, "Fresh sanctions news", now - timedelta(hours=1))
        assert await service.alert_log.log_pending() == 2
        await service.stop()
    async with connected(with_bot(settings, bot_account.bot_token), prepare=lambda c, k: attach(world, c),
                         scheduler=paused_scheduler()) as service:
        await service.start()
        world.say(alice, bot_account, "/start")  # a bot can write only to chats that wrote to it
        await world.settle()
        assert await service.dispatcher.dispatch_instant() == 1
        await service.stop()
    sent = " ".join(e.text for e in world.chat_log(alice, with_=bot_account) if e.sender_id == bot_account.id)
    assert "Fresh sanctions news" in sent and "Old sanctions news" not in sent
    async with await_db(settings.db_path) as db:
        old = (await db.run(get_alerts))[0]
        assert "CHANWATCH_ALERT_MAX_AGE" in (old.last_error or "") and old.sent_at is None
        assert (await db.run(counts)) == {"pending": 0, "sent": 1, "failed": 1}
    assert ("1 alert(s) logged while no bot was configured are older than CHANWATCH_ALERT_MAX_AGE=48 h"
            in caplog.text)


class await_db:
    """The archive opened for a few reads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aenter__(self) -> Database:
        self.db = await Database.open(self.path)
        return self.db

    async def __aexit__(self, *exc: object) -> None:
        await self.db.close()


def test_stats_says_how_the_watched_channels_are_read_by_default_and_by_their_own_source(
        clean_env, tmp_path, capsys):
    from bot.cli import main
    from storage.database import connect_sync
    from storage.identity import set_source

    db = str(tmp_path / "archive.db")
    assert main(["--db", db, "channels", "add", "embassy", "newsroom"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "stats"]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert "watched channels read by" in last and last.endswith("web preview 2")  # no session: web
    conn = connect_sync(db)
    try:
        set_source(conn, "newsroom", "web")
    finally:
        conn.close()
    clean_env.setenv("TG_SESSION", "a-session")  # auto: the API for channels with no source of their own
    assert main(["--db", db, "stats"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("API 1 · web preview 1")


async def test_run_with_no_credentials_archives_the_preview_with_provenance_and_logs_the_alert_once(
        tmp_path, caplog):
    world = World()
    mfa, embassy = world.add_channel("mfa_web", "Ministry"), world.add_channel("embassy_web", "Embassy")
    statement = world.post(mfa, "Statement by the minister on the new sanctions against our country",
                           views=1234)
    forward = world.forward(mfa, statement.id, embassy)
    world.set_views(embassy, forward.id, 56)
    world.post(embassy, "A reception at the embassy")
    caplog.set_level(logging.INFO)
    async with WebPreviewServer(world) as server:
        settings = replace(no_credentials(tmp_path, channels=("embassy_web", "mfa_web"), alert_chat=555,
                                          keywords=("sanctions",), alert_max_age_hours=0),  # old World time
                           web_url=server.url)
        async with connected(settings, scheduler=paused_scheduler()) as service:
            await service.start()
            await service.web_cycle()
            await service.outbox_log_cycle()
            await service.outbox_log_cycle()
            await service.stop()
        assert set(server.requests) == {"/s/embassy_web", "/s/mfa_web"}  # t.me's pages, nothing else
    sightings = rows(settings.db_path, """SELECT c.username, m.relation, m.views, p.origin_username,
        p.origin_message_id FROM messages m JOIN channels c ON c.id = m.channel_id
        JOIN posts p ON p.id = m.post_id WHERE p.text LIKE '%sanctions%' ORDER BY c.username""")
    assert sightings == [("embassy_web", "forward", 56, "mfa_web", statement.id),
                         ("mfa_web", "original", 1200, "mfa_web", statement.id)]  # "1.2K": approximate
    assert rows(settings.db_path, "SELECT count(*) FROM posts") == [(2,)]  # the forward is no post of its own
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert for chat 555")]
    assert len(logged) == 1 and f"https://t.me/mfa_web/{statement.id}" in logged[0]
