"""The subscriber's commands: /subscribe, /rules, /unsubscribe, /mode, /pause, /resume."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from bot import command_text as text
from bot.clock import cron_trigger
from bot.commands.base import MAX_INPUT, CommandsBase, Request
from bot.formatting import escape
from storage.query import And, Filter, Query
from storage.records import Rule, Subscriber
from storage.rules import (
    MAX_RULES,
    USER_PAUSE,
    RuleError,
    add_rule,
    get_subscriber,
    list_rules,
    remove_rule,
    set_mode,
    set_paused,
)
from storage.search import count

__all__ = ["RECENT_DAYS", "SubscriberCommands", "with_since"]

RECENT_DAYS = 30  # /subscribe tells how many archived posts of this many days the rule matches


class SubscriberCommands(CommandsBase):
    """Saved searches that alert this chat, and how alerts reach it."""

    PUBLIC = {**CommandsBase.PUBLIC, "subscribe": "_subscribe", "rules": "_rules",
              "unsubscribe": "_unsubscribe", "mode": "_mode", "pause": "_pause", "resume": "_resume"}

    async def _subscribe(self, req: Request) -> None:
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

    async def _rules(self, req: Request) -> None:
        rules, sub = await self._db(_rules_of, req.caller.chat_id)
        await self._reply(req.event, text.rules_text(rules, sub, self.settings.digest_schedule,
                                                     self.settings.timezone))

    async def _unsubscribe(self, req: Request) -> None:
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

    async def _mode(self, req: Request) -> None:
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

    async def _pause(self, req: Request) -> None:
        await self._tx(set_paused, req.caller.chat_id, True, USER_PAUSE)
        await self._changed(req.caller.chat_id)
        await self._reply(req.event, "⏸ Alerts paused; they keep queueing. /resume sends them again.")

    async def _resume(self, req: Request) -> None:
        await self._tx(set_paused, req.caller.chat_id, False)
        await self._changed(req.caller.chat_id)
        await self._reply(req.event, "▶️ Alerts resumed.")


def with_since(query: Query, day: str) -> Query:
    """`query` restricted to posts dated `day` (YYYY-MM-DD) or later, as an AST: no text is spliced,
    so an OR in the query keeps its meaning."""
    root = query.root
    children = root.children if isinstance(root, And) else (root,)
    return Query(query.text, And((*children, Filter("since", day))), query.sort)


def _add_rule(conn: sqlite3.Connection, chat_id: int, query: Query, since: str,
              now: datetime) -> tuple[Rule, bool, int]:
    rule, created = add_rule(conn, chat_id, query.text, now, limit=MAX_RULES)
    recent = count(conn, with_since(query, since), exact=True) or 0
    return rule, created, recent


def _rules_of(conn: sqlite3.Connection, chat_id: int) -> tuple[list[Rule], Subscriber | None]:
    return list_rules(conn, chat_id), get_subscriber(conn, chat_id)
