"""`chanwatch run` (the daemon) and `chanwatch login` (user session / bot token check).

`run` is the process around the daemon (`bot.daemon`): it sets up logging, turns SIGINT/SIGTERM
into a graceful stop, and prints a reason not to start as one line with its exit status.

`login` drives Telethon's own `client.start(phone=..., code_callback=..., password=...)` with
prompts on the terminal. A user session is written to TG_SESSION_FILE (created with mode 0600) or
printed as a string session for TG_SESSION; `login --bot` checks the bot token and prints the
bot's username.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from telethon import errors

from bot.cli.common import PROG, CliError, Command, settings_from_args
from bot.config import ConfigError, Settings, session_file_path
from bot.connect import ConnectError, Prepare, connect_bot, unreachable, user_client
from bot.daemon import connected, serve
from bot.logs import FORMATS, setup_logging, teardown_logging
from bot.telegram import private_file, redact
from bot.transport import UNREACHABLE, within_start

__all__ = ["COMMANDS", "login_bot", "login_user", "run_daemon"]

log = logging.getLogger("chanwatch.service")


# --- run -----------------------------------------------------------------------------------------


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="text (default) or json: one JSON object per line")


async def _run(args: argparse.Namespace) -> int:
    return await run_daemon(settings_from_args(args), log_format=args.log_format)


async def run_daemon(settings: Settings, *, log_format: str = "text", prepare: Prepare | None = None,
                     stop: asyncio.Event | None = None, install_logging: bool = True) -> int:
    """`chanwatch run`: serve until SIGINT/SIGTERM; returns the exit status.

    2 with one line on stderr for a setting the mode needs that is missing (with no Telegram
    credentials at all it reads by web preview: `bot.daemon`), a session that is not logged in, a bot
    token Telegram refuses, or an archive that cannot be opened; 1 when Telegram is out of reach.
    `prepare(client, "user"|"bot")` runs on each client before it connects (tests attach the
    simulator there); `stop` replaces the signal-driven event.
    """
    secrets = settings.secrets()
    handler = setup_logging(log_format, secrets=secrets) if install_logging else None
    try:
        async with connected(settings, prepare=prepare) as service:
            with _stop_on_signals(stop) as event:
                return await serve(service, event)
    except ConfigError as exc:
        return _fail(str(exc), secrets)
    except ConnectError as exc:
        return _fail(str(exc), secrets, exc.status)
    finally:
        if handler is not None:
            teardown_logging(handler)


def _fail(message: str, secrets: Sequence[str], status: int = 2) -> int:
    """One line on stderr; 2 for what the user must fix, 1 for what may pass (the network)."""
    print(f"{PROG}: {redact(message, secrets)}", file=sys.stderr)
    return status


@contextmanager
def _stop_on_signals(stop: asyncio.Event | None) -> Iterator[asyncio.Event]:
    """`stop`, or a new event that SIGINT and SIGTERM set (handlers removed on exit)."""
    if stop is not None:
        yield stop
        return
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _on_signal, event, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            pass
    try:
        yield event
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _on_signal(stop: asyncio.Event, sig: int) -> None:
    log.info("received %s: finishing the running job and stopping", signal.Signals(sig).name)
    stop.set()


# --- login ---------------------------------------------------------------------------------------


_LOGIN_ERRORS = (errors.RPCError, RuntimeError, ValueError, *UNREACHABLE)


async def login_user(
    settings: Settings,
    *,
    phone: str | None = None,
    ask: Callable[[str], str] = input,
    ask_secret: Callable[[str], str] = getpass.getpass,
    prepare: Prepare | None = None,
    out: TextIO | None = None,
) -> int:
    """Log the reading account in (phone, code, 2FA password) and save its session.

    With TG_SESSION_FILE the session goes to that file (mode 0600); otherwise the string session
    is printed for TG_SESSION. `ask`/`ask_secret` read answers (input/getpass by default);
    `prepare(client, "user")` runs before connecting (tests attach the simulator).
    """
    out = out or sys.stdout
    settings.require_api()
    target: Path | None = session_file_path(settings.session_file) if settings.session_file else None
    if target is not None:
        private_file(target)
    # A new session: TG_SESSION, if set, is the one being replaced.
    client = user_client(replace(settings, session=None), prepare=prepare, flood_sleep_threshold=5)
    secrets = settings.secrets()
    try:
        try:
            await within_start(client, client.connect())
        except UNREACHABLE as exc:
            raise unreachable(exc, client, settings) from None
        await client.start(
            phone=phone or (lambda: ask("Phone number (international format, e.g. +15551234567): ")),
            code_callback=lambda: ask("Login code (sent to your Telegram app): "),
            password=lambda: ask_secret("Two-step verification password: "),
        )
        me = await client.get_me()
        if target is not None:
            client.session.save()
            os.chmod(target, 0o600)
            print(f"logged in as {_who(me)}; session saved to {target} (mode 0600). "
                  f"Set TG_SESSION_FILE={settings.session_file} in .env.", file=out)
        else:
            print(f"logged in as {_who(me)}. Put this line in .env (it gives full access to the account; "
                  "keep it secret):", file=sys.stderr)
            print(f"TG_SESSION={client.session.save()}", file=out)
    except _LOGIN_ERRORS as exc:
        raise CliError(f"login failed: {redact(f'{type(exc).__name__}: {exc}', secrets)}") from None
    finally:
        await client.disconnect()
    return 0


async def login_bot(settings: Settings, *, prepare: Prepare | None = None, out: TextIO | None = None) -> int:
    """Check TG_BOT_TOKEN by logging the bot in; prints the bot's @username."""
    out = out or sys.stdout
    client = await connect_bot(settings, prepare=prepare)
    try:
        me = await client.get_me()
    except _LOGIN_ERRORS as exc:
        message = redact(f"{type(exc).__name__}: {exc}", settings.secrets())
        raise CliError(f"bot check failed: {message}") from None
    finally:
        await client.disconnect()
    print(f"bot token OK: @{me.username} (id {me.id})", file=out)
    return 0


def _who(me: object) -> str:
    username = getattr(me, "username", None)
    name = " ".join(p for p in (getattr(me, "first_name", None), getattr(me, "last_name", None)) if p)
    return f"{name or 'account'}" + (f" (@{username})" if username else "") + f", id {getattr(me, 'id', '?')}"


def _login_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bot", action="store_true", help="check TG_BOT_TOKEN instead and show the bot")
    parser.add_argument("--phone", metavar="NUMBER", help="the account's phone number (asked if not given)")


async def _login(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.bot:
        return await login_bot(settings)
    return await login_user(settings, phone=args.phone)


COMMANDS = (
    Command("run", "run the daemon: poll channels, send alerts, answer bot commands", _run, _run_arguments,
            "Poll the watched channels, send alerts and answer bot commands until SIGINT/SIGTERM. "
            "Needs TG_API_ID, TG_API_HASH, TG_SESSION (or TG_SESSION_FILE) and TG_BOT_TOKEN; "
            "see config.example.env."),
    Command("login", "log the reading account in (or check the bot token with --bot)", _login,
            _login_arguments,
            "Log in the user account that reads channels: phone number, the code Telegram sends, and the "
            "two-step password if set. The session is saved to TG_SESSION_FILE (mode 0600), or printed "
            "as TG_SESSION=... for .env. With --bot, check TG_BOT_TOKEN and print the bot's username."),
)
