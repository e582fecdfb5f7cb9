"""The daemon's lifecycle: check the configuration, open the archive, connect the clients the mode
needs, serve until asked to stop, close everything.

Modes (`docs/architecture.md`): with no Telegram credentials at all, nothing connects to Telegram:
channels are read through the web preview and alerts are printed in the log. With a bot token (and
api_id/hash) the bot connects; with a user session the reading account connects too (unless
CHANWATCH_SOURCE=web and no channel reads by API). A `WebClient` is opened when any channel reads by
web (the default source or a channel's own).

`chanwatch run` (`bot.cli.daemon`, which owns logging and signal handling) does::

    async with connected(settings) as service:     # checks, opens, connects; or raises
        status = await serve(service, stop)        # until `stop` is set

A reason not to start — a missing or bad setting, an archive that cannot be opened, a session that
is not logged in, a refused bot token, Telegram out of reach — is raised as `ConfigError` or
`bot.connect.ConnectError` before anything is served; the checks run in that order, so a bad
configuration never creates the archive file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from telethon import TelegramClient

from bot.config import ConfigError, Settings
from bot.connect import Prepare, connect_bot, connect_user
from bot.service import Service
from bot.telegram import describe_client
from bot.web.http import WebClient
from bot.web.reader import source_of
from storage.channels import load_watched
from storage.database import Database, StorageError
from storage.location import ServerUrl

__all__ = ["connected", "serve"]

log = logging.getLogger("chanwatch.service")


@asynccontextmanager
async def connected(settings: Settings, *, prepare: Prepare | None = None,
                    scheduler: AsyncIOScheduler | None = None) -> AsyncIterator[Service]:
    """The daemon ready to serve: configuration checked, archive open, the clients its mode needs
    connected and authorised. Raises `ConfigError` or `ConnectError` if it cannot start; on exit the
    clients disconnect (saving the bot's session), the web client closes and the archive closes.
    `scheduler` replaces the service's own (tests pass a paused one and run the jobs themselves)."""
    user: TelegramClient | None = None
    bot: TelegramClient | None = None
    web: WebClient | None = None
    db: Database | None = None
    served = False
    try:
        settings.require_run()
        problem = _archive_problem(settings.db_path)
        if problem is not None:
            raise ConfigError("CHANWATCH_DB", f"cannot open the archive at {settings.db_path}: {problem}")
        try:
            db = await Database.open(settings.db_path)
        except StorageError as exc:
            raise ConfigError("CHANWATCH_DB", str(exc)) from None
        sources = {source_of(state, settings.default_source) for state in await db.run(load_watched)}
        if settings.has_user_session and (settings.default_source == "api" or "api" in sources):
            user = await connect_user(settings, prepare=prepare)
        elif "api" in sources:
            log.warning("some channels are set to be read through the API (`channels add NAME --source "
                        "api`) but no user session is configured: they are not read; run `chanwatch "
                        "login` and set TG_SESSION, or set them to --source web")
        if settings.bot_token is not None:
            bot = await connect_bot(settings, prepare=prepare)
        if settings.default_source == "web" or "web" in sources:
            web = WebClient(settings.web_url, rate=settings.web_rate)
        log.info("chanwatch running: archive %s, user %s, bot %s, web preview %s", settings.db_path,
                 describe_client(user) if user is not None else "none (no user session)",
                 describe_client(bot) if bot is not None else "none (alerts are printed in this log)",
                 settings.web_url if web is not None else "not used")
        served = True
        yield Service(settings, db, user, bot, web=web, scheduler=scheduler)
    finally:
        if web is not None:
            try:
                await web.aclose()
            except Exception:
                log.debug("closing the web client failed", exc_info=True)
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


def _archive_problem(path: Path | ServerUrl) -> str | None:
    """Why the archive path cannot work (a folder, not writable), checked before opening it; a
    server's archive is checked by connecting to it."""
    if isinstance(path, ServerUrl):
        return None
    path = path.expanduser()
    if path.is_dir():
        return "it is a directory; set CHANWATCH_DB to a file path"
    if path.exists():
        return None if os.access(path, os.R_OK | os.W_OK) else "the file is not readable and writable"
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        return f"cannot create it: {folder} is not a writable folder"
    return None
