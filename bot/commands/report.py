"""/report: the archive's reports in the bot (`storage.reports`): a summary that fits one message,
then the whole report with its charts as a self-contained HTML file (`bot.report_html`), sent as a
document to the same chat.

`/report amplification [WINDOW] [@origin]`, `/report channel @name [WINDOW]`, `/report query QUERY`.
A WINDOW is `24h`, `7d`, `30d` (hours or days up to now, whole UTC days since the day it starts) or
`YYYY-MM-DD..YYYY-MM-DD`; the last 7 days when left out. The report, its summary and its HTML are
made in one hop on the database thread: a large archive's report never holds the event loop.
Anyone who may /search may ask for a report (the same access check, in `CommandsBase`).
"""

from __future__ import annotations

import io
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot import command_text as text
from bot.commands.base import MAX_INPUT, CommandsBase, Request
from bot.formatting import LIMIT, cut, escape
from bot.report_html import amplification_html, channel_html, page, query_html
from bot.telegram import answered_within
from storage.channels import channel_by_username
from storage.query import QueryError, parse
from storage.reports import amplification, channel_report, query_timeline

__all__ = ["DEFAULT_WINDOW", "ReportCommands", "ReportFile", "WindowError", "window"]

DEFAULT_WINDOW = "7d"
MAX_DAYS = 3660  # ten years: more is a typo
_RELATIVE = re.compile(r"(\d{1,5})([hd])\Z", re.IGNORECASE)
_SPAN = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})\Z")
_NAME = re.compile(r"@?([A-Za-z0-9_]{1,64})\Z")


class WindowError(ValueError):
    """A window /report cannot read: the token, and why (a clause shown after it, or "")."""

    def __init__(self, token: str, why: str = "") -> None:
        super().__init__(f"{token}{why}")
        self.token = token
        self.why = why


def window(token: str, now: datetime) -> tuple[date, date]:
    """The UTC days (first, last; inclusive) a window names: `Nd` the last N days, today included;
    `Nh` every day the last N hours touch; `D..D` those days. WindowError when it names none.

    Example: `window("7d", datetime(2025, 12, 18, 9, tzinfo=UTC))` -> (2025-12-12, 2025-12-18).
    """
    today = now.date()
    if match := _RELATIVE.fullmatch(token):
        n, unit = int(match.group(1)), match.group(2).lower()
        if n < 1 or (n if unit == "d" else n / 24) > MAX_DAYS:
            raise WindowError(token, f": give 1 to {MAX_DAYS} days")
        if unit == "d":
            return today - timedelta(days=n - 1), today
        return (now - timedelta(hours=n)).date(), today
    if match := _SPAN.fullmatch(token):
        try:
            first, last = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
        except ValueError:
            raise WindowError(token, ": not a calendar day") from None
        if first > last:
            raise WindowError(token, ": the first day is after the last; swap them")
        return first, last
    raise WindowError(token)


@dataclass(frozen=True, slots=True)
class ReportFile:
    """What /report answers: the summary message, and the HTML document (None for an empty report)."""

    summary: str
    file_name: str | None = None
    html: str | None = None


class _Unknown(Exception):
    """A channel name the archive does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class ReportCommands(CommandsBase):
    """/report amplification | channel | query."""

    PUBLIC = {**CommandsBase.PUBLIC, "report": "_report"}

    async def _report(self, req: Request) -> None:
        kind, rest = [*req.args.split(None, 1), "", ""][:2]  # a newline may separate them too
        kind, rest = kind.lower(), rest.strip()
        today = self.now().date()
        try:
            if kind == "amplification":
                made = await self._amplification(req, rest, today)
            elif kind == "channel":
                made = await self._channel(req, rest, today)
            elif kind == "query":
                made = await self._query(req, rest, today)
            else:
                note = f"I don't know the report <code>{escape(cut(kind, 40))}</code>." if kind else ""
                await self._reply(req.event, text.report_usage(note))
                return
        except WindowError as exc:
            await self._reply(req.event, text.report_bad_window(exc.token, exc.why))
            return
        except _Unknown as exc:
            await self._reply(req.event, text.report_unknown_channel(exc.name))
            return
        if made is None:
            return
        await self._reply(req.event, made.summary)
        if made.html is not None and made.file_name is not None:
            await self._send_document(req, made.file_name, made.html)

    def _windowed(self, tokens: list[str]) -> tuple[date, date]:
        """The days of the one window among `tokens` (those not naming a channel), or of the default."""
        found = [t for t in tokens if not t.startswith("@")]
        if len(found) > 1:
            raise WindowError(found[1], ": give one window")
        token = found[0] if found else DEFAULT_WINDOW
        try:
            return window(token, self.now())
        except WindowError as exc:
            if not exc.why and _NAME.fullmatch(token) and token[0].isalpha():  # a channel without its @?
                raise WindowError(token, f"; for a channel, write @{token}") from None
            raise

    async def _amplification(self, req: Request, rest: str, today: date) -> ReportFile | None:
        tokens = rest.split()
        names = [t[1:] for t in tokens if t.startswith("@")]
        if len(names) > 1 or any(not _NAME.fullmatch(n) for n in names):
            await self._reply(req.event, text.report_usage("Name one origin channel, e.g. @MFARussia."))
            return None
        since, until = self._windowed(tokens)
        origin = names[0] if names else None
        return await self._db(_amplification_report, origin, since, until, today)

    async def _channel(self, req: Request, rest: str, today: date) -> ReportFile | None:
        tokens = rest.split()
        if not tokens or not _NAME.fullmatch(tokens[0]) or any(t.startswith("@") for t in tokens[1:]):
            await self._reply(req.event, text.report_usage("Name one channel: /report channel @rusembc"))
            return None
        name = tokens[0].lstrip("@")
        since, until = self._windowed(tokens[1:])
        return await self._db(_channel_report, name, since, until, today)

    async def _query(self, req: Request, rest: str, today: date) -> ReportFile | None:
        if not rest:
            await self._reply(req.event, text.report_usage("Give a query: /report query canada sanctions"))
            return None
        try:
            parse(rest)
        except QueryError as exc:
            await self._reply(req.event, text.query_error("report query", rest, exc))
            return None
        return await self._db(_query_report, rest, today, text.cut_note(MAX_INPUT) if req.cut else "")

    async def _send_document(self, req: Request, file_name: str, html: str) -> None:
        """The report's HTML as a document in the chat the command came from, under the summary."""
        data = io.BytesIO(html.encode("utf-8"))
        data.name = file_name  # Telethon names the document (and guesses text/html) from it
        chat = await req.event.get_input_chat()
        await answered_within(self.bot.send_file(chat, data, force_document=True, reply_to=req.event.id),
                              "a report file")


def _named(conn: sqlite3.Connection, name: str) -> int:
    found = channel_by_username(conn, name)
    if found is None:
        raise _Unknown(name)
    return found


def _file_name(kind: str, today: date, name: str = "") -> str:
    """`amplification-2026-11-30.html`, `channel-rusembc-2026-11-30.html`: safe on every disk."""
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:40]
    return "-".join(part for part in (kind, label, today.isoformat()) if part) + ".html"


def _made(summary: str, kind: str, title: str, body: Callable[[], str], today: date, name: str = "",
          empty: bool = False) -> ReportFile:
    if empty:
        return ReportFile(summary)
    return ReportFile(summary, _file_name(kind, today, name), page(title, body()))


def _amplification_report(conn: sqlite3.Connection, origin: str | None, since: date, until: date,
                          today: date) -> ReportFile:
    report = amplification(conn, None if origin is None else _named(conn, origin), since, until)
    title = f"Amplification, {since} to {until}" + (f", {report.origins[0].name}" if origin and
                                                     report.origins else "")
    return _made(text.amplification_summary(report), "amplification", title,
                 lambda: amplification_html(report), today, empty=not report.origins)


def _channel_report(conn: sqlite3.Connection, name: str, since: date, until: date, today: date
                    ) -> ReportFile:
    report = channel_report(conn, _named(conn, name), since, until)
    return _made(text.channel_summary(report), "channel", f"Channel {report.name}, {since} to {until}",
                 lambda: channel_html(report), today, report.name, empty=not report.messages)


def _query_report(conn: sqlite3.Connection, query: str, today: date, note: str = "") -> ReportFile:
    """The query report; `note` (the query was cut) goes above its summary, within the limit."""
    timeline = query_timeline(conn, query)
    title = f"Query {' '.join(query.split())[:80]}"
    return _made(note + text.query_summary(timeline, LIMIT - len(note)), "query", title,
                 lambda: query_html(timeline), today, empty=not timeline.days)
