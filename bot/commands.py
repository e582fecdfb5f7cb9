"""The bot's commands (/search, the subscriber's /subscribe … /resume, /channels, /status, the admins'
/watch … /deny) with access control, on the Telethon bot client.

Every update is its own task in Telethon 1.x (`sequential_updates=False`, the default: the update
loop wraps each `_dispatch_update` in `loop.create_task`), so a slow command never blocks another
command, an alert or a poll; for a client built with `sequential_updates=True` each command is
spawned as a task of ours instead. Archive work runs on the database thread (`Database.run`) behind
a small semaphore, so a burst of searches queues here rather than in front of a poll's ingest.

Nothing from the archive reaches a chat that is not allowed (see `bot.access`): every command and
every button press checks the chat first. Every handler catches, logs and answers its own errors.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telethon import Button, TelegramClient, errors, events, functions, types

from bot import command_text as text
from bot.access import REFUSAL_INTERVAL, Access, Caller, PageCache, RefusalLimiter
from bot.clock import cron_trigger, utcnow
from bot.config import Settings
from bot.formatting import LIMIT, cut, escape, utf16_len
from storage.channels import channel_listing
from storage.database import Database
from storage.query import And, Filter, Query, QueryError, parse
from storage.records import Rule, Subscriber
from storage.rules import (
    MAX_RULES,
    USER_PAUSE,
    RuleError,
    add_rule,
    get_subscriber,
    list_rules,
    remove_rule,
    resume_after_contact,
    set_allowed,
    set_mode,
    set_paused,
)
from storage.search import SearchPage, count, highlight_spans, search

__all__ = ["COMMAND", "EXPIRED", "FAILED", "MAX_INPUT", "Commands", "with_since"]

log = logging.getLogger("chanwatch.commands")

COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?\Z", re.S)
PAGE_DATA = re.compile(rb"pg:([A-Za-z0-9_-]{1,16}):(\d{1,7})\Z")
MAX_INPUT = 1000  # characters of a command's argument that are read; the rest is cut
RECENT_DAYS = 30  # /subscribe tells how many archived posts of this many days the rule matches
FAILED = "⚠️ Something went wrong; it has been logged. Please try again later."
EXPIRED = "This search has expired — send /search again."


def with_since(query: Query, day: str) -> Query:
    """`query` restricted to posts dated `day` (YYYY-MM-DD) or later, as an AST: no text is spliced,
    so an OR in the query keeps its meaning."""
    root = query.root
    children = root.children if isinstance(root, And) else (root,)
    return Query(query.text, And((*children, Filter("since", day))), query.sort)


@dataclass(frozen=True, slots=True)
class _Request:
    event: Any
    caller: Caller
    name: str
    args: str
    cut: bool


Handler = Callable[[_Request], Awaitable[None]]


class Commands:
    """The bot's command and button handlers; `register()` adds them to the bot client."""

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
        self._public: dict[str, Handler] = {
            "start": self._help, "help": self._help, "search": self._search,
            "subscribe": self._subscribe, "rules": self._rules, "unsubscribe": self._unsubscribe,
            "mode": self._mode, "pause": self._pause, "resume": self._resume,
            "channels": self._channels, "status": self._status,
        }
        self._admin: dict[str, Handler] = {
            "watch": self._watch, "unwatch": self._unwatch, "allow": self._allow, "deny": self._deny,
        }

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

    async def _bot_username(self) -> str | None:
        if self._username is None:
            me = await self.bot.get_me()
            self._username = getattr(me, "username", None) or ""
        return self._username or None

    # -- messages ---------------------------------------------------------------------------------

    async def _handle_message(self, event: Any) -> None:
        match = event.pattern_match
        name, target, args = match.group(1).lower(), match.group(2), match.group(3) or ""
        caller = Caller(event.sender_id, event.chat_id, bool(event.is_private))
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
            request = _Request(event, caller, name, args[:MAX_INPUT], len(args) > MAX_INPUT)
            await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("/%s from user %s in chat %s failed", name, caller.user_id, caller.chat_id)
            await self._try_reply(event, FAILED)

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
        first = await event.reply(messages[0], parse_mode="html", link_preview=False, buttons=buttons)
        for message in messages[1:]:
            await event.respond(message, parse_mode="html", link_preview=False)
        return first

    async def _try_reply(self, event: Any, message: str) -> None:
        try:
            await event.reply(message)
        except Exception:
            self.log.exception("could not tell chat %s that its command failed", event.chat_id)

    async def _changed(self, chat_id: int) -> None:
        if self.on_subscription_change is None:
            return
        try:
            await self.on_subscription_change(chat_id)
        except Exception:
            self.log.exception("subscription change hook failed for chat %s", chat_id)

    # -- everyone ---------------------------------------------------------------------------------

    async def _help(self, req: _Request) -> None:
        admin = self.access.is_admin(req.caller.user_id) and req.caller.private  # not shown to a group
        await self._reply(req.event, text.help_text(await self._bot_username(), admin))

    async def _search(self, req: _Request) -> None:
        if not req.args:
            await self._reply(req.event, text.usage("search") + "\n\n" + text.SYNTAX)
            return
        query = await self._parsed(req)
        if query is None:
            return
        token = self.pages.put(req.caller.chat_id, req.args)
        note = f"<i>(your query was cut to {MAX_INPUT} characters)</i>\n" if req.cut else ""
        body, buttons = await self._page(query, token, 0, note)
        sent = await self._reply(req.event, body, buttons)
        self.pages.bind(token, sent.id)

    async def _parsed(self, req: _Request) -> Query | None:
        """The command's query, or None after answering with the error, where it is and an example."""
        try:
            return parse(req.args)
        except QueryError as exc:
            await self._reply(req.event, text.query_error(req.name, req.args, exc))
            return None

    async def _page(self, query: Query, token: str, offset: int, note: str = "") -> tuple[str, Any]:
        """One page of results (after `note`, all within Telegram's limit) and its buttons."""
        page, spans = await self._db(_search_page, query, offset, text.PAGE_SIZE)
        total = page.total
        body = note + text.results_page(query.text, page.posts, spans, total, offset,
                                        limit=LIMIT - utf16_len(note), total_exact=page.total_exact,
                                        unknown_channels=page.unknown_channels)
        row = []
        if offset > 0:
            row.append(Button.inline(text.PREVIOUS, f"pg:{token}:{max(offset - text.PAGE_SIZE, 0)}".encode()))
        if offset + text.PAGE_SIZE < total:
            row.append(Button.inline(text.NEXT, f"pg:{token}:{offset + text.PAGE_SIZE}".encode()))
        return body, [row] if row else None

    async def _subscribe(self, req: _Request) -> None:
        if not req.args:
            await self._reply(req.event, text.usage("subscribe"))
            return
        if req.cut:
            await self._reply(req.event, f"A rule can be at most {MAX_INPUT} characters; shorten it.")
            return
        query = await self._parsed(req)
        if query is None:
            return
        now = self.now()
        since = (now - timedelta(days=RECENT_DAYS)).date().isoformat()
        try:
            rule, created, recent = await self._tx(_add_rule, req.caller.chat_id, query, since, now)
        except RuleError as exc:
            await self._reply(req.event, escape(str(exc)))
            return
        await self._changed(req.caller.chat_id)
        await self._reply(req.event, text.subscribed(rule, created, recent, RECENT_DAYS))

    async def _rules(self, req: _Request) -> None:
        rules, sub = await self._db(_rules_of, req.caller.chat_id)
        await self._reply(req.event, text.rules_text(rules, sub, self.settings.digest_schedule,
                                                     self.settings.timezone))

    async def _unsubscribe(self, req: _Request) -> None:
        raw = req.args.removeprefix("#")
        if not raw.isdecimal() or len(raw) > 18:
            await self._reply(req.event, text.usage("unsubscribe") + "\n/rules lists the ids.")
            return
        try:
            rule = await self._tx(remove_rule, int(raw), req.caller.chat_id)
        except RuleError:
            await self._reply(req.event, f"This chat has no rule {int(raw)}. /rules lists them.")
            return
        await self._changed(req.caller.chat_id)
        await self._reply(req.event, f"🗑 Removed rule <b>{rule.id}</b>: {text.shown_query(rule.query)}")

    async def _mode(self, req: _Request) -> None:
        mode, _, rest = req.args.partition(" ")
        mode, fields = mode.lower(), rest.split()
        usable = mode == "digest" and len(fields) in (0, 5, 6) or mode == "instant" and not fields
        if not usable:
            await self._reply(req.event, text.usage("mode"))
            return
        cron = " ".join(fields[:5]) or None
        zone = fields[5] if len(fields) == 6 else None
        if cron or zone:
            sub = await self._db(get_subscriber, req.caller.chat_id)
            try:
                cron_trigger(cron or (sub and sub.digest_schedule) or self.settings.digest_schedule,
                             zone or (sub and sub.timezone) or self.settings.timezone)
            except ValueError as exc:
                await self._reply(req.event, f"❌ Bad schedule <code>{escape(rest.strip())}</code>: "
                                  f"{escape(str(exc))}\nFive fields (minute hour day month weekday), then"
                                  " an optional time zone — e.g. <code>/mode digest 0 8 * * *</code> (08:00"
                                  " daily) or <code>/mode digest 0 8 * * 1-5 Europe/Moscow</code>")
                return
        sub = await self._tx(set_mode, req.caller.chat_id, mode, cron, zone)
        await self._changed(req.caller.chat_id)
        await self._reply(req.event, "✅ " + text.mode_line(sub, self.settings.digest_schedule,
                                                            self.settings.timezone))

    async def _pause(self, req: _Request) -> None:
        await self._tx(set_paused, req.caller.chat_id, True, USER_PAUSE)
        await self._changed(req.caller.chat_id)
        await self._reply(req.event, "⏸ Alerts paused; they keep queueing. /resume sends them again.")

    async def _resume(self, req: _Request) -> None:
        await self._tx(set_paused, req.caller.chat_id, False)
        await self._changed(req.caller.chat_id)
        await self._reply(req.event, "▶️ Alerts resumed.")

    async def _channels(self, req: _Request) -> None:
        await self._reply(req.event, text.channels_text(await self._db(channel_listing)))

    async def _status(self, req: _Request) -> None:
        await self._reply(req.event, text.status_text(await self._db(text.status_facts, self.now())))

    # -- admins -----------------------------------------------------------------------------------

    async def _watch(self, req: _Request) -> None:
        await self._channel_hook(req, self.watch)

    async def _unwatch(self, req: _Request) -> None:
        await self._channel_hook(req, self.unwatch)

    async def _channel_hook(self, req: _Request, hook: Callable[[str], Awaitable[str]] | None) -> None:
        if hook is None:
            await self._reply(req.event, f"/{req.name} is not available in this setup.")
            return
        name = req.args.split()[0] if req.args.split() else ""
        if not name:
            await self._reply(req.event, text.usage(req.name))
            return
        await self._reply(req.event, escape(await hook(name)))

    async def _allow(self, req: _Request) -> None:
        await self._set_allowed(req, True)

    async def _deny(self, req: _Request) -> None:
        await self._set_allowed(req, False)

    async def _set_allowed(self, req: _Request, allowed: bool) -> None:
        raw = req.args
        if not raw and not req.caller.private:
            chat_id: int | None = req.caller.chat_id
        else:
            chat_id = int(raw) if re.fullmatch(r"-?\d{1,16}", raw) else None  # within SQLite's int64
        if chat_id is None:
            await self._reply(req.event, text.usage(req.name))
            return
        await self._tx(set_allowed, chat_id, allowed, self.now())
        await self._changed(chat_id)
        if allowed:
            message = f"✅ Chat <code>{chat_id}</code> may use the bot."
        else:
            message = f"⛔ Chat <code>{chat_id}</code> is denied; its rules are off."
            if chat_id == self.settings.alert_chat:
                message += " (It is CHANWATCH_ALERT_CHAT, which stays allowed by the config.)"
        self.log.info("admin %s %s chat %s", req.caller.user_id, "allowed" if allowed else "denied", chat_id)
        await self._reply(req.event, message)

    # -- buttons ----------------------------------------------------------------------------------

    async def _handle_callback(self, event: Any) -> None:
        caller = Caller(event.sender_id, event.chat_id, bool(event.is_private))
        try:
            match = PAGE_DATA.fullmatch(event.data or b"")
            if match is None:
                await event.answer("This button no longer works.")
                return
            if not await self._db(self.access.chat_allowed, caller):
                self.log.info("refused a results button from user %s in chat %s", caller.user_id,
                              caller.chat_id)
                await event.answer("This chat is not allowed to use the bot.")
                return
            token, offset = match.group(1).decode(), int(match.group(2))
            page = self.pages.get(token, caller.chat_id, event.message_id)
            if page is None or offset % text.PAGE_SIZE:
                await event.answer(EXPIRED, alert=True)
                return
            body, buttons = await self._page(parse(page.query), token, offset)
            try:
                await event.edit(body, parse_mode="html", link_preview=False, buttons=buttons)
            except errors.MessageNotModifiedError:
                pass
            await event.answer()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("results button from user %s in chat %s failed",
                               caller.user_id, caller.chat_id)
            try:
                await event.answer(FAILED, alert=True)
            except Exception:
                self.log.exception("could not answer the button press")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _not_allowed(chat_id: int) -> str:
    return ("🔒 This bot is private. An admin can let this chat in with "
            f"<code>/allow {chat_id}</code>.")


# -- database work (runs on the database thread) ---------------------------------------------------


def _search_page(conn: sqlite3.Connection, query: Query, offset: int,
                 size: int) -> tuple[SearchPage, list[list[tuple[int, int]]]]:
    page = search(conn, query, limit=size, offset=offset)
    return page, [highlight_spans(p.text, query) for p in page.posts]


def _add_rule(conn: sqlite3.Connection, chat_id: int, query: Query, since: str,
              now: datetime) -> tuple[Rule, bool, int]:
    rule, created = add_rule(conn, chat_id, query.text, now, limit=MAX_RULES)
    recent = count(conn, with_since(query, since), exact=True) or 0
    return rule, created, recent


def _rules_of(conn: sqlite3.Connection, chat_id: int) -> tuple[list[Rule], Subscriber | None]:
    return list_rules(conn, chat_id), get_subscriber(conn, chat_id)
