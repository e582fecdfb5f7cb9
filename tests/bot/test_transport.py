"""Reconnection bounded (bot/transport.py): a real Telethon client against servers on 127.0.0.1
that are not Telegram. At start chanwatch gives up after a few connections with one line naming the
server; while running it backs off, doubling up to a cap, with one log line per step."""

from __future__ import annotations

import asyncio
import gc
import logging
import os

import pytest
from telethon.crypto import AuthKey
from telethon.sessions import SQLiteSession, StringSession

from bot.cli import main
from bot.cli.daemon import run_daemon
from bot.config import Settings
from bot.connect import connect_bot
from bot.telegram import make_user_client
from bot.transport import BACKOFF_CAP, START_ATTEMPTS, started, watch_of, within_start
from tests.bot.conftest import API_HASH
from tests.bot.not_telegram import not_telegram, not_telegram_thread


def logged_in_session(host: str, port: int) -> str:
    """A string session that already holds an auth key (so Telethon skips the handshake and goes
    straight to requests, as a logged-in `chanwatch run` does)."""
    session = StringSession()
    session.set_dc(2, host, port)
    session.auth_key = AuthKey(os.urandom(256))
    return session.save()


def settings_at(tmp_path, host: str, port: int, **kwargs: object) -> Settings:
    return Settings(db_path=tmp_path / "a.db", api_id=12345, api_hash=API_HASH,
                    session=logged_in_session(host, port), bot_token="123456:" + "B" * 35,
                    server=(host, port), **kwargs)  # type: ignore[arg-type]


async def test_run_against_a_proxy_with_a_logged_in_session_exits_1_with_one_line_naming_the_server(
        tmp_path, capsys, caplog):
    async with not_telegram("http") as server:
        status = await run_daemon(settings_at(tmp_path, server.host, server.port))
    gc.collect()  # a future whose error nobody read would be reported now
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert [line for line in err if line.startswith("chanwatch:")] == err[-1:]
    assert err[-1].startswith("chanwatch: cannot reach Telegram")
    assert f"{server.host}:{server.port}" in err[-1] and "not Telegram" in err[-1]
    assert len(err) <= 3 and "Traceback" not in "\n".join(err), err  # the log: where it connects
    assert server.connections <= START_ATTEMPTS + 1
    assert not [r for r in caplog.records if r.name == "asyncio"]


async def test_the_bot_against_a_proxy_is_a_network_problem_not_the_tokens(tmp_path):
    async with not_telegram("http") as server:
        settings = settings_at(tmp_path, server.host, server.port)
        try:
            await connect_bot(settings)
        except Exception as exc:  # noqa: BLE001 - the test inspects what came out
            error = exc
    assert type(error).__name__ == "ConnectError" and error.status == 1
    assert "cannot reach Telegram for the bot" in str(error) and "TG_BOT_TOKEN" not in str(error)
    assert server.connections <= START_ATTEMPTS + 1


async def test_a_server_that_never_answers_gives_up_at_the_start_timeout():
    async with not_telegram("silent") as server:
        client = make_user_client(api_id=1, api_hash=API_HASH,
                                  session=logged_in_session(server.host, server.port))
        watch = watch_of(client)
        assert watch is not None
        watch.start_timeout = 0.05
        try:
            await within_start(client, client.connect())
        except ConnectionError as exc:
            error = exc
        finally:
            await client.disconnect()
    assert "no answer from" in str(error) and str(server.port) in str(error)


async def test_a_running_client_backs_off_doubling_to_a_cap_with_one_warning_per_step(caplog):
    delays: list[float] = []
    enough = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) >= 9:
            enough.set()
            await asyncio.Event().wait()  # hold the reconnect loop here until the client disconnects

    caplog.set_level(logging.WARNING)
    async with not_telegram("http") as server:
        client = make_user_client(api_id=1, api_hash=API_HASH,
                                  session=logged_in_session(server.host, server.port))
        watch = watch_of(client)
        assert watch is not None
        watch.sleep = fake_sleep
        started(client)  # as after a good start: from now on it backs off instead of giving up
        connecting = asyncio.ensure_future(client.connect())
        await enough.wait()
        connecting.cancel()
        await client.disconnect()
        await asyncio.wait({connecting})
    assert delays == [1, 2, 4, 8, 16, 32, 64, BACKOFF_CAP, BACKOFF_CAP]
    ours = [r for r in caplog.records if r.name == "chanwatch.transport"]
    assert len(ours) == len(delays)
    assert f"{server.host}:{server.port}" in ours[0].getMessage()
    assert len([r for r in caplog.records if r.name.startswith("telethon")]) <= 2 * len(delays)


def logged_in_session_file(path, host: str, port: int) -> None:
    """A Telethon session file holding an auth key, as `chanwatch login` leaves it."""
    session = SQLiteSession(str(path))
    session.set_dc(2, host, port)
    session.auth_key = AuthKey(os.urandom(256))
    session.save()
    session.close()


@pytest.mark.parametrize("argv", [["login", "--phone", "+15550000000"], ["login", "--bot"],
                                  ["backfill", "rusembc", "--no-progress"]], ids=" ".join)
def test_login_and_backfill_against_a_proxy_are_one_line_naming_the_server(clean_env, tmp_path, capsys,
                                                                           argv):
    with not_telegram_thread() as server:
        logged_in_session_file(tmp_path / "user.session", server.host, server.port)
        (tmp_path / ".env").write_text(
            f"TG_API_ID=12345\nTG_API_HASH={API_HASH}\nTG_SESSION_FILE={tmp_path / 'user.session'}\n"
            f"TG_BOT_TOKEN=123456:{'B' * 35}\nTG_SERVER={server.host}:{server.port}\n")
        status = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith("chanwatch: cannot reach Telegram") and f":{server.port}" in err[0]
    assert "TG_BOT_TOKEN" not in err[0] and "B" * 35 not in err[0]
    assert server.connections <= START_ATTEMPTS + 1
