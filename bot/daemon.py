"""The daemon's lifecycle: check the configuration, open the archive, connect both clients, serve
until asked to stop, close everything.

`chanwatch run` (`bot.cli.daemon`, which owns logging and signal handling) does::

    async with connected(settings) as service:     # checks, opens, connects; or raises
        status = await serve(service, stop)        # until `stop` is set

A reason not to start — a missing or bad setting, an archive that cannot be opened, a session that
is not logged in, a refused bot token, Telegram out of reach — is raised as `ConfigError` or
`StartFailure` before anything is served; the checks run in that order, so a bad configuration
never creates the archive file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from telethon import TelegramClient
from telethon.errors import InvalidBufferError, SecurityError, TypeNotFoundError

from bot.config import ConfigError, Settings
from bot.service import Service
from bot.telegram import BotLoginError, describe_client, make_bot_client, make_user_client, start_bot
from storage.database import Database, StorageError

__all__ = ["UNREACHABLE", "Prepare", "StartFailure", "connected", "serve"]

log = logging.getLogger("chanwatch.service")

Prepare = Callable[[TelegramClient, str], None]
"""Called as `prepare(client, "user" | "bot")` on each client before it connects (tests attach the
simulator there)."""

UNREACHABLE = (OSError, EOFError, InvalidBufferError, SecurityError, TypeNotFoundError)
"""What connecting raises when Telegram cannot be reached or something else answers (a proxy, a
captive portal): EOFError covers asyncio.IncompleteReadError; OSError covers timeouts."""


class StartFailure(Exception):
    """The daemon cannot start: the message names the problem; `status` is the exit status
    (2: the user must fix something, 1: it may pass, e.g. the network)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


@asynccontextmanager
async def connected(settings: Settings, *, prepare: Prepare | None = None) -> AsyncIterator[Service]:
    """The daemon ready to serve: configuration checked, archive open, both clients connected and
    authorised. Raises `ConfigError` or `StartFailure` if it cannot start; on exit the clients
    disconnect and the archive closes."""
    user: TelegramClient | None = None
    bot: TelegramClient | None = None
    db: Database | None = None
    served = False
    try:
        settings.require_telegram()
        assert settings.api_id is not None and settings.api_hash is not None
        problem = _archive_problem(settings.db_path)
        if problem is not None:
            raise ConfigError("CHANWATCH_DB", f"cannot open the archive at {settings.db_path}: {problem}")
        try:
            db = await Database.open(settings.db_path)
        except StorageError as exc:
            raise ConfigError("CHANWATCH_DB", str(exc)) from None
        common: dict[str, Any] = {
            "api_id": settings.api_id, "api_hash": settings.api_hash, "server": settings.server,
            "server_public_key_pem": settings.server_public_key, "dc_id": settings.server_dc,
        }
        try:
            user = make_user_client(session=settings.session, session_file=settings.session_file,
                                    flood_sleep_threshold=0, **common)
            # The bot's session lives in memory: a fresh authorisation per start also proves the
            # token is still valid (a stored session would hide a revoked token until it is used).
            bot = make_bot_client(flood_sleep_threshold=0, **common)
        except ValueError as exc:
            raise StartFailure(f"TG_SESSION: {exc}" if "session" in str(exc) else str(exc)) from None
        if prepare is not None:
            prepare(user, "user")
            prepare(bot, "bot")
        try:
            await user.connect()
            authorised = await user.is_user_authorized()
        except UNREACHABLE as exc:
            raise StartFailure(f"cannot reach Telegram ({describe_client(user)}): {type(exc).__name__}: "
                               f"{exc}; check the network, a proxy or TG_SERVER", status=1) from None
        if not authorised:
            variable = "TG_SESSION_FILE" if settings.session_file else "TG_SESSION"
            raise StartFailure(f"{variable}: the user session is not logged in (expired or revoked); "
                               "run `chanwatch login` and update it")
        try:
            await start_bot(bot, settings.bot_token or "")
        except (BotLoginError, ValueError) as exc:
            raise StartFailure(f"TG_BOT_TOKEN: {exc}; check the token with @BotFather (/token) or "
                               "`chanwatch login --bot`") from None
        except UNREACHABLE as exc:
            raise StartFailure(f"cannot reach Telegram for the bot: {type(exc).__name__}: {exc}",
                               status=1) from None
        log.info("chanwatch running: archive %s, user %s, bot %s", settings.db_path, describe_client(user),
                 describe_client(bot))
        served = True
        yield Service(settings, db, user, bot)
    finally:
        for client in (bot, user):
            if client is not None:
                try:
                    await client.disconnect()
                except Exception:
                    log.debug("disconnect failed", exc_info=True)
        if db is not None:
            await db.close()
        if served:
            log.info("chanwatch stopped")


async def serve(service: Service, stop: asyncio.Event) -> int:
    """Serve until `stop` is set: 0 after a clean stop, 1 if the daemon stopped on an unexpected
    error (logged with its traceback)."""
    try:
        await service.run_until(stop)
    except Exception:  # start-up went wrong past the checks in `connected`: say so, exit non-zero
        log.exception("the daemon stopped on an unexpected error")
        return 1
    return 0


def _archive_problem(path: Path) -> str | None:
    """Why the archive path cannot work (a folder, not writable), checked before opening it."""
    path = path.expanduser()
    if path.is_dir():
        return "it is a directory; set CHANWATCH_DB to a file path"
    if path.exists():
        return None if os.access(path, os.R_OK | os.W_OK) else "the file is not readable and writable"
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        return f"cannot create it: {folder} is not a writable folder"
    return None
