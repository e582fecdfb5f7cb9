"""The core of the bot's commands: wiring to the client, dispatch with access control, replies.

Every update is its own task in Telethon 1.x (`sequential_updates=False`, the default: the update
loop wraps each `_dispatch_update` in `loop.create_task`), so a slow command never blocks another
command, an alert or a poll; for a client built with `sequential_updates=True` each command is
spawned as a task of ours instead. Archive work runs on the database thread (`Database.run`) behind
a small semaphore, so a burst of searches queues here rather than in front of a poll's ingest.

Nothing from the archive reaches a chat that is not allowed (see `bot.access`): every command and
every button press checks the chat first. Every handler catches, logs and answers its own errors.
The handlers themselves are in the sibling modules, one per audience (search, subscriber, admin);
the commands everyone has that only read (/help, /channels, /status) are here.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from telethon import TelegramClient, events, functions, types

from bot import command_text as text
from bot.access import REFUSAL_INTERVAL, Access, Caller, PageCache, RefusalLimiter
from bot.clock import utcnow
from bot.config import Settings
from bot.formatting import cut
from bot.telegram import RequestTimeout, answered_within, peer_record
from storage.channels import channel_listing
from storage.database import Database
from storage.leases import status as lease_status
from storage.media_queue import media_status
from storage.peers import Peer, remember_peer
from storage.query import Query, QueryError, parse
from storage.records import MediaStatus
from storage.rules import USER_PAUSE, get_subscriber, resume_after_contact
from storage.stats import archive_stats

__all__ = ["COMMAND", "EXPIRED", "FAILED", "MAX_INPUT", "CommandsBase", "Handler", "Request"]

log = logging.getLogger("chanwatch.commands")

COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?\Z", re.S)
MAX_INPUT = 1000  # characters of a command's argument that are read; the rest is cut
FAILED = "⚠️ Something went wrong; it has been logged. Please try again later."
EXPIRED = "This search has expired — send /search again."


@dataclass(frozen=True, slots=True)
class Request:
    """One command as its handler gets it: the event, who sent it where, the command and its argument."""

    event: Any
    caller: Caller
    name: str
    args: str
    cut: bool


Handler = Callable[[Request], Awaitable[None]]


class CommandsBase:
    """Wiring, dispatch and the shared helpers; `PUBLIC`/`ADMIN` map command names to handler methods."""

    PUBLIC: ClassVar[dict[str, str]] = {"start": "_help", "help": "_help", "channels": "_channels",
                                        "status": "_status"}
    ADMIN: ClassVar[dict[str, str]] = {}
    pages: PageCache

    def __init__(self, db: Database, bot: TelegramClient, settings: Settings, *,
                 watch: Callable[[str], Awaitable[str]] | None = None,
                 unwatch: Callable[[str], Awaitable[str]] | None = None,
                 on_subscription_change: Callable[[int], Awaitable[None]] | None = None,
                 now: Callable[[], datetime] = utcnow, logger: logging.Logger = log,
                 db_concurrency: int = 4, page_cache_size: int = 1000,
                 refusal_interval: timedelta = REFUSAL_INTERVAL) -> None:
        self.db = db
        self.bot = bot
        self.settings = settings
        self.watch = watch
        self.unwatch = unwatch
        self.on_subscription_change = on_subscription_change
        self.now = now
        self.log = logger
        self.access = Access(settings)
        self.refusals = RefusalLimiter(now, refusal_interval)
        self.pages = PageCache(page_cache_size)
        self._db_slots = asyncio.Semaphore(db_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._registered: list[tuple[Callable[[Any], Awaitable[None]], events.common.EventBuilder]] = []
        self._username: str | None = None
        self._peers: dict[int, Peer] = {}  # chats whose way in is in the archive already
        self._public: dict[str, Handler] = {name: getattr(self, m) for name, m in self.PUBLIC.items()}
        self._admin: dict[str, Handler] = {name: getattr(self, m) for name, m in self.ADMIN.items()}

    # -- wiring -----------------------------------------------------------------------------------

    def register(self) -> None:
        """Add the command and button handlers to the bot client (idempotent)."""
        if self._registered:
            return
        self._registered = [
            (self._on_message, events.NewMessage(incoming=True, pattern=COMMAND)),
            (self._on_callback, events.CallbackQuery(pattern=rb"pg:")),
        ]
        for callback, builder in self._registered:
            self.bot.add_event_handler(callback, builder)

    async def publish_menu(self) -> bool:
        """Tell Telegram the subscriber commands, so its "/" menu lists them; False (logged) on failure.

        Admin commands stay out of the menu everyone sees; /help shows them to admins.
        """
        menu = [types.BotCommand(name, cut(what, 256)) for name, _args, what, _example in text.COMMANDS]
        try:
            await self.bot(functions.bots.SetBotCommandsRequest(
                scope=types.BotCommandScopeDefault(), lang_code="", commands=menu))
        except Exception as exc:  # a menu is a nicety: never stop the daemon for it
            self.log.warning("could not publish the bot's command menu: %s", exc)
            return False
        return True

    def unregister(self) -> None:
        """Remove the handlers and cancel commands still running."""
        for callback, builder in self._registered:
            self.bot.remove_event_handler(callback, builder)
        self._registered = []
        current = asyncio.current_task() if _loop_running() else None
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    async def drain(self) -> None:
        """Wait for the commands running now (tests; a graceful stop)."""
        while pending := [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _on_message(self, event: Any) -> None:
        await self._run(self._handle_message(event))

    async def _on_callback(self, event: Any) -> None:
        await self._run(self._handle_callback(event))

    async def _run(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a handler's work in this update's task, or as a task of ours if updates are sequential."""
        if getattr(self.bot, "_sequential_updates", False):
            task = asyncio.get_running_loop().create_task(work)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await work
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._db_slots:
            return await self.db.run(fn, *args)

    async def _tx(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._db_slots:
            return await self.db.transaction(fn, *args)

    async def _remember_peer(self, event: Any) -> None:
        """Keep in the archive how to reach the chat a command came from: with several readers the
        dispatcher may be another process, whose bot session never heard from this chat."""
        try:
            peer = peer_record(await event.get_input_chat())
            if peer is not None and self._peers.get(event.chat_id) != peer:
                await self._tx(remember_peer, event.chat_id, peer, self.now())
                self._peers[event.chat_id] = peer
        except Exception as exc:  # the command is answered anyway; the next one tries again
            self.log.warning("could not record how to reach chat %s: %s: %s", event.chat_id,
                             type(exc).__name__, exc)

    async def _bot_username(self) -> str | None:
        if self._username is None:
            me = await self.bot.get_me()
            self._username = getattr(me, "username", None) or ""
        return self._username or None

    # -- messages ---------------------------------------------------------------------------------

    async def _handle_message(self, event: Any) -> None:
        self._save_session()
        match = event.pattern_match
        name, target, args = match.group(1).lower(), match.group(2), match.group(3) or ""
        caller = Caller(event.sender_id, event.chat_id, bool(event.is_private))
        await self._remember_peer(event)
        try:
            if target and target.lower() != (await self._bot_username() or "").lower():
                return  # /cmd@another_bot
            handler = self._public.get(name) or self._admin.get(name)
            if handler is None and not (caller.private or target):
                return  # an unknown command in a group may be another bot's
            allowed = await self._db(self.access.chat_allowed, caller)
            admin = self.access.is_admin(caller.user_id)
            if name in self._admin:
                if not admin:
                    await self._refuse(event, caller, name, "🔒 This command is for admins.")
                    return
            elif not allowed:
                await self._refuse(event, caller, name, _not_allowed(caller.chat_id))
                return
            await self._resume_if_unreachable(caller.chat_id)
            if handler is None:
                await self._reply(event, text.short_help(name))
                return
            args = args.strip()
            request = Request(event, caller, name, args[:MAX_INPUT], len(args) > MAX_INPUT)
            await handler(request)
        except asyncio.CancelledError:
            raise
        except RequestTimeout as exc:  # Telegram did not answer the reply: nothing to tell the chat
            self.log.warning("/%s from user %s in chat %s: %s", name, caller.user_id, caller.chat_id, exc)
        except Exception:
            self.log.exception("/%s from user %s in chat %s failed", name, caller.user_id, caller.chat_id)
            await self._try_reply(event, FAILED)

    def _save_session(self) -> None:
        """Write the chats Telethon has just met (their access hashes) to the bot's session now.

        Telethon saves them a minute later, or when it disconnects; a chat that wrote to the bot
        just before a crash would otherwise be unreachable (by alerts too) until it wrote again.
        """
        try:
            self.bot.session.save()
        except Exception:
            self.log.warning("could not save the bot's session", exc_info=True)

    async def _resume_if_unreachable(self, chat_id: int) -> None:
        """A chat the dispatcher paused as unreachable just wrote to us: it can be reached now."""
        sub = await self._db(get_subscriber, chat_id)
        if sub is not None and sub.paused and sub.paused_reason != USER_PAUSE:
            if await self._tx(resume_after_contact, chat_id):
                self.log.info("chat %s wrote to the bot: its alerts (paused: %s) resume", chat_id,
                              sub.paused_reason)

    async def _refuse(self, event: Any, caller: Caller, name: str, message: str) -> None:
        if self.refusals.should_answer(caller.user_id):
            self.log.info("refused /%s from user %s in chat %s", name, caller.user_id, caller.chat_id)
            await self._reply(event, message)
        else:
            self.log.debug("refused /%s from user %s again (not answered)", name, caller.user_id)

    async def _reply(self, event: Any, messages: str | Sequence[str], buttons: Any = None) -> Any:
        """Reply to the command (HTML, no link previews); further messages follow it."""
        if isinstance(messages, str):
            messages = [messages]
        first = await answered_within(
            event.reply(messages[0], parse_mode="html", link_preview=False, buttons=buttons), "a reply")
        for message in messages[1:]:
            await answered_within(event.respond(message, parse_mode="html", link_preview=False), "a reply")
        return first

    async def _try_reply(self, event: Any, message: str) -> None:
        try:
            await answered_within(event.reply(message), "a reply")
        except Exception:
            self.log.exception("could not tell chat %s that its command failed", event.chat_id)

    async def _changed(self, chat_id: int) -> None:
        if self.on_subscription_change is None:
            return
        try:
            await self.on_subscription_change(chat_id)
        except Exception:
            self.log.exception("subscription change hook failed for chat %s", chat_id)

    async def _parsed(self, req: Request) -> Query | None:
        """The command's query, or None after answering with the error, where it is and an example."""
        try:
            return parse(req.args)
        except QueryError as exc:
            await self._reply(req.event, text.query_error(req.name, req.args, exc))
            return None

    # -- everyone: reading ------------------------------------------------------------------------

    async def _help(self, req: Request) -> None:
        admin = self.access.is_admin(req.caller.user_id) and req.caller.private  # not shown to a group
        await self._reply(req.event, text.help_text(await self._bot_username(), admin))

    async def _channels(self, req: Request) -> None:
        await self._reply(req.event, text.channels_text(await self._db(channel_listing)))

    async def _status(self, req: Request) -> None:
        stats = await self._db(archive_stats, self.now())
        media = await self._db(media_status)
        downloading = self.settings.media_kinds is None or bool(self.settings.media_kinds)
        shown = media if downloading or media != MediaStatus() else None
        listing = await self._db(channel_listing)
        sources = text.sources_line([c.source for c in listing], self.settings.default_source)
        readers, _ = await self._db(lease_status, self.now(), timedelta(seconds=self.settings.lease_seconds))
        await self._reply(req.event, text.status_text(stats, shown, sources, readers))

    async def _handle_callback(self, event: Any) -> None:
        raise NotImplementedError  # the search pages' buttons (bot.commands.search)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _not_allowed(chat_id: int) -> str:
    return ("🔒 This bot is private. An admin can let this chat in with "
            f"<code>/allow {chat_id}</code>.")
