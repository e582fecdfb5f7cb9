"""Fixtures for tests that talk to the simulated Telegram (bot/simulator).

Typical use::

    async def test_something(world, reader, reader_account):
        ch = world.add_channel("somechannel", "Some channel")
        world.post(ch, "hello")
        [msg] = await reader.get_messages("somechannel", limit=1)

    async def test_command(world, bot_client, bot_account, alice):
        ...register handlers on bot_client...
        world.say(alice, bot_account, "/search foo")
        await world.settle()            # all updates processed, handlers finished
        assert world.chat_log(alice)[-1].text == "..."

Any test using ``world`` runs with the network disabled (``no_network``): a socket connect or
DNS lookup fails the test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telethon import TelegramClient

from bot.simulator import SimUser, World, connect_client
from storage.database import Database, connect_sync
from storage.location import ServerUrl
from tests.conftest import BACKENDS

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`chanwatch ARGV` in-process: (exit status, stdout, stderr)."""
    from bot.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class SeenInLog(logging.Handler):
    """Sets an event when a log message starts with `prefix` (a daemon test waits on it, not a sleep)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.event.set()


class NetworkAccessError(AssertionError):
    """A simulator test tried to open a connection or resolve a name."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every outgoing connection and DNS lookup fail, but those to 127.0.0.1 (the project's own
    local servers, such as the simulator's web preview); returns the list of refused attempts."""
    attempts: list[str] = []

    def loopback(host: object) -> bool:
        return host in _LOOPBACK

    def refuse(what: str, original):
        def _refuse(*args, **kwargs):
            target = args[1] if len(args) > 1 else kwargs.get("address", kwargs.get("host"))
            host = target[0] if isinstance(target, tuple) else (args[0] if what == "socket.getaddrinfo"
                                                                 else target)
            if what == "socket.create_connection":
                host = args[0][0] if args and isinstance(args[0], tuple) else None
            if loopback(host):
                return original(*args, **kwargs)
            attempts.append(f"{what}{args[1:] if what.startswith('socket.connect') else args}")
            raise NetworkAccessError(f"network access in a simulator test: {what} {args!r}")
        return _refuse

    def refuse_async(what: str, original):
        async def _refuse(*args, **kwargs):
            host = args[2] if len(args) > 2 and what != "loop.sock_connect" else kwargs.get("host")
            if what == "loop.sock_connect" and len(args) > 2 and isinstance(args[2], tuple):
                host = args[2][0]
            if what == "loop.getaddrinfo" and len(args) > 1:
                host = args[1]
            if loopback(host):
                return await original(*args, **kwargs)
            attempts.append(f"{what}{args[1:]}")
            raise NetworkAccessError(f"network access in a simulator test: {what} {args[1:]!r}")
        return _refuse

    for owner, name, label in ((socket.socket, "connect", "socket.connect"),
                               (socket.socket, "connect_ex", "socket.connect_ex"),
                               (socket, "create_connection", "socket.create_connection"),
                               (socket, "getaddrinfo", "socket.getaddrinfo")):
        monkeypatch.setattr(owner, name, refuse(label, getattr(owner, name)))
    loop_cls = asyncio.BaseEventLoop
    for name in ("create_connection", "sock_connect", "getaddrinfo"):
        monkeypatch.setattr(loop_cls, name, refuse_async(f"loop.{name}", getattr(loop_cls, name)))
    return attempts


@pytest.fixture
async def world(no_network: list[str], caplog: pytest.LogCaptureFixture) -> AsyncIterator[World]:
    """A fresh, empty World (clock at 2025-12-01 12:00 UTC). Clients made from it are
    disconnected at teardown. The test fails if anything tried to use the network, or if
    Telethon logged a warning or error — an exception raised inside an event handler is only
    *logged* by Telethon, as is an answer it cannot map. Opt out with
    ``world.tolerate_telethon_warnings = True``."""
    caplog.set_level(logging.WARNING, logger="telethon")
    w = World()
    yield w
    await w.close()
    assert not no_network, f"network access attempted: {no_network}"
    if not w.tolerate_telethon_warnings:
        records = caplog.get_records("setup") + caplog.get_records("call")
        noisy = [f"{r.name}: {r.getMessage()}" + (f"\n{r.exc_text or ''}" if r.exc_info else "")
                 for r in records if r.name.startswith("telethon") and r.levelno >= logging.WARNING]
        assert not noisy, "Telethon logged warnings/errors:\n" + "\n".join(noisy)


@pytest.fixture
def reader_account(world: World) -> SimUser:
    """The user account whose session reads channels (``@chanwatch_reader``)."""
    return world.add_user("Reader", username="chanwatch_reader")


@pytest.fixture
def bot_account(world: World) -> SimUser:
    """The bot account (``@chanwatch_bot``); ``bot_account.bot_token`` logs a client in."""
    return world.add_bot("chanwatch_bot", first_name="chanwatch")


@pytest.fixture
def alice(world: World) -> SimUser:
    """A simulated subscriber with no client of her own: she acts through ``world.say``/``world.click``."""
    return world.add_user("Alice", username="alice_sub")


@pytest.fixture
async def reader(world: World, reader_account: SimUser) -> TelegramClient:
    """A connected user client logged in as ``reader_account``; flood waits are raised, never slept."""
    return await connect_client(world, as_user=reader_account, flood_sleep_threshold=0)


@pytest.fixture
async def bot_client(world: World, bot_account: SimUser) -> TelegramClient:
    """A connected bot client logged in as ``bot_account``; flood waits are raised, never slept."""
    return await connect_client(world, as_user=bot_account, bot=True, flood_sleep_threshold=0)


class FakeSleep:
    """An injectable sleep that records the seconds asked for and never waits."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    """A sleep to pass to code under test: records waits, never waits."""
    return FakeSleep()


SERVERS: dict[str, ServerUrl] = {}
"""The PostgreSQL archives `db` opened, by the path they show (their redacted URL), for `rows`."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets `BOTH_BACKENDS = True` runs each test taking `db` on SQLite and PostgreSQL,
    except a test marked `sqlite_only` (it breaks the archive the way only SQLite can be broken)."""
    if ("db" in metafunc.fixturenames and getattr(metafunc.module, "BOTH_BACKENDS", False)
            and metafunc.definition.get_closest_marker("sqlite_only") is None):
        metafunc.parametrize("db", BACKENDS, indirect=True)


@pytest.fixture
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated archive: a file in the test's temporary directory, or (in a module with
    `BOTH_BACKENDS`) also a PostgreSQL schema of its own."""
    if getattr(request, "param", "sqlite") == "sqlite":
        database = await Database.open(tmp_path / "archive.db")
    else:
        url = request.getfixturevalue("pg_url")
        database = await Database.open(url)
        SERVERS[database.path] = url
    yield database
    await database.close()
    SERVERS.pop(database.path, None)


async def saved_session(world: World, account: SimUser) -> str:
    """A string session of `account` saved by a client that disconnects (what `chanwatch login` prints)."""
    client = await connect_client(world, as_user=account)
    saved = client.session.save()
    await client.disconnect()
    return saved


API_HASH = "0123456789abcdef0123456789abcdef"
"""A well-formed (fake) api_hash for settings in tests; tests grep logs for it."""


def rows(db_path: str | Path, sql: str, *args: object) -> list[tuple]:
    """Rows of `sql` read through a separate connection (what another process would see); `db_path`
    is a file, or the shown path of a PostgreSQL archive the `db` fixture opened."""
    if str(db_path) in SERVERS:
        server = connect_sync(SERVERS[str(db_path)])
        try:  # rows are tuples addressable by column name too (storage.pg.Row)
            return server.execute(sql, args).fetchall()
        finally:
            server.close()
    conn = sqlite3.connect(str(db_path))
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No chanwatch/Telegram variables from the caller's environment, and a cwd without a .env."""
    for name in list(os.environ):
        if name.startswith(("TG_", "CHANWATCH_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch
