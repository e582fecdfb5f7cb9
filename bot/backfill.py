"""Backfill a channel's history: resumable, newest to oldest, one transaction per page.

Each page of 100 (raw messages.GetHistory with `offset_id`, never Telethon's reverse iteration,
which loses messages in 1.36) is ingested in the same transaction as the channel's updated
`backfill_before` (the oldest id reached). A stop — Ctrl-C, a crash, a `limit` — loses at most the
page in flight, and the next run resumes below `backfill_before`: no gaps, no duplicates.

The poll cursor is raised to the newest id backfilled only once the backfill has come down to the
cursor (or the channel was never polled), so a backfill stopped early never hides messages from
the poller. `backfill_done` is set when the start of the channel (or `since`) is reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from telethon import TelegramClient, errors

from bot.clock import Clock, Sleep, utcnow
from bot.history import PAGE_SIZE, HistoryPage, history, records_of, refreshed
from bot.names import parse_channel_name
from bot.resolve import resolve_channels
from bot.telegram import FloodPolicy, Requests, RequestStats
from storage import channels
from storage.database import Database
from storage.ingest import AfterIngest, ingest
from storage.progress import Progress
from storage.records import Batch, ChannelState, IngestResult

__all__ = ["BackfillError", "BackfillReport", "backfill"]

log = logging.getLogger("chanwatch.backfill")


class BackfillError(Exception):
    """The backfill cannot run (unknown channel, takeout refused); the message says what to do."""


@dataclass(frozen=True, slots=True)
class BackfillReport:
    """What one backfill run did.

    `stopped_by`: "start" (reached the channel's first message), "since", "limit", or "done"
    (an earlier run had already reached the start: nothing to do). `backfill_before` is the oldest
    message id reached so far (a later run resumes below it).
    """

    channel_id: int
    username: str | None
    messages: int
    new_messages: int
    pages: int
    requests: int
    resumed_from: int | None
    backfill_before: int | None
    done: bool
    stopped_by: str
    seconds: float
    flood_slept: float = 0.0

    @property
    def rate(self) -> float:
        """Messages per second over the whole run."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def _commit_page(conn: Any, batch: Batch, now: datetime, after: AfterIngest | None,
                 low: int, top: int, done: bool) -> IngestResult:
    """Ingest one page together with the backfill progress (one transaction)."""
    result = ingest(conn, batch, now, after)
    channels.record_backfill_page(conn, batch.channel.id, low, top, done)
    return result


async def _channel_state(db: Database, client: TelegramClient, channel: str | int, requests: Requests,
                         now: Clock, sleep: Sleep) -> ChannelState:
    """The stored channel for an id or a name; a name not stored yet is resolved (and watched) once."""
    if isinstance(channel, int) or str(channel).lstrip("-").isdigit():
        channel_id = int(channel)
        if channel_id < 0 and str(channel_id).startswith("-100"):
            channel_id = int(str(channel_id)[4:])  # Bot API style marked id
        state = await db.run(channels.load_channel, channel_id=channel_id)
        if state is None or state.access_hash is None:
            raise BackfillError(f"channel {channel} is not in the archive with an access hash; "
                                "give its @username (or watch it) first")
        return state
    try:
        username = parse_channel_name(str(channel))
    except ValueError as exc:
        raise BackfillError(str(exc)) from None
    state = await db.run(channels.load_channel, username=username)
    if state is None or state.access_hash is None:
        [outcome] = await resolve_channels(db, client, [username], flood=requests.flood, now=now, sleep=sleep)
        if outcome.channel_id is None:
            raise BackfillError(f"cannot backfill @{username}: {outcome.status} ({outcome.detail})")
        state = await db.run(channels.load_channel, channel_id=outcome.channel_id)
        assert state is not None
    if state.status == "private":
        raise BackfillError(f"cannot backfill @{username}: the channel is private")
    return state


@contextlib.asynccontextmanager
async def _takeout_session(client: TelegramClient, enabled: bool
                           ) -> AsyncIterator[Callable[[Any], Awaitable[Any]] | None]:
    """A takeout client (Telegram's export session, lower flood limits) or None when not asked for."""
    if not enabled:
        yield None
        return
    try:
        manager = client.takeout(finalize=True, channels=True)
        takeout_client = await manager.__aenter__()
    except errors.TakeoutInitDelayError as exc:
        raise BackfillError(
            f"Telegram delays the takeout session by {exc.seconds} s: confirm the data export in another "
            "Telegram app (Settings > Privacy and Security) or run without --takeout") from None
    except Exception as exc:
        raise BackfillError(f"could not start a takeout session ({type(exc).__name__}: {exc}); "
                            "run the backfill without --takeout") from None
    try:
        yield takeout_client
    except BaseException:
        await manager.__aexit__(*sys.exc_info())
        raise
    else:
        await manager.__aexit__(None, None, None)


@dataclass(slots=True)
class _Window:
    """Where one backfill run stands: what `since` and `limit` still allow, and how far it got."""

    since: datetime | None
    limit: int | None
    low: int | None
    taken: int = 0
    new: int = 0
    stopped_by: str = "start"

    def room(self) -> int | None:
        """Messages this run may still take (None: no limit)."""
        return None if self.limit is None else self.limit - self.taken

    def goes_on(self, page: HistoryPage) -> bool:
        """Whether the run will want the page after `page` (so it may be fetched already)."""
        room = self.room()
        return (not page.last and (room is None or len(page.messages) < room)
                and (self.since is None or page.messages[-1].date >= self.since))

    def cut(self, page: HistoryPage) -> tuple[list[Any], bool]:
        """The page's messages this run keeps, and whether the run reached its end with them."""
        kept = list(page.messages)
        done = page.last
        if self.since is not None and kept and kept[-1].date < self.since:
            kept = [m for m in kept if m.date >= self.since]
            self.stopped_by, done = "since", True
        room = self.room()
        if room is not None and len(kept) >= room:
            kept = kept[:room]
            self.stopped_by, done = "limit", False
        return kept, done


async def backfill(
    db: Database,
    client: TelegramClient,
    channel_name_or_id: str | int,
    *,
    since: date | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    takeout: bool = False,
    flood: FloodPolicy | None = None,
    after_ingest: AfterIngest | None = None,
    now: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
    page_size: int = PAGE_SIZE,
    logger: logging.Logger = log,
) -> BackfillReport:
    """Archive a channel's history from the newest message (or where the last run stopped) backwards.

    Stops at `since` (messages dated before that day are not taken), after `limit` messages in this
    run, or at the channel's first message. A long flood wait raises `FloodDeferred` (the progress
    so far is saved; run again later). `progress(label, done, total)` hears of every page (total:
    the ids left, or the limit). `takeout` runs the requests in a takeout session; a refused
    takeout is a `BackfillError`.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    requests = Requests(client, flood or FloodPolicy(), sleep=sleep, now=now, logger=logger)
    state = await _channel_state(db, client, channel_name_or_id, requests, now, sleep)
    started = time.monotonic()
    if state.backfill_done and (state.backfill_before or 0) <= 1:
        logger.info("backfill %s: already complete", state.name)
        return BackfillReport(state.id, state.username, 0, 0, 0, 0, state.backfill_before,
                              state.backfill_before, True, "done", 0.0)
    since_at = datetime(since.year, since.month, since.day, tzinfo=UTC) if since is not None else None
    window = _Window(since_at, limit, state.backfill_before)
    stats = RequestStats()
    if limit is None or limit > 0:
        async with _takeout_session(client, takeout) as via:
            await _read_back(db, requests, state, window, stats, via, progress, after_ingest, now, page_size)
    else:
        window.stopped_by = "limit"
    report = BackfillReport(state.id, state.username, window.taken, window.new, stats.pages, stats.requests,
                            state.backfill_before, window.low, await db.run(channels.backfill_done, state.id),
                            window.stopped_by, time.monotonic() - started, stats.flood_slept)
    logger.info("backfill %s: %d messages (%d new), %d pages, %d requests, stopped by %s, oldest id %s, "
                "%.0f msg/s", state.name, report.messages, report.new_messages, report.pages,
                report.requests, report.stopped_by, report.backfill_before, report.rate)
    return report


async def _read_back(db: Database, requests: Requests, state: ChannelState, window: _Window,
                     stats: RequestStats, via: Callable[[Any], Awaitable[Any]] | None,
                     progress: Progress | None, after_ingest: AfterIngest | None, now: Clock,
                     page_size: int) -> None:
    """Page back from `window.low`, committing each page with the progress, until the window ends.

    The next page is requested while this one commits, unless the window ends with this page.
    """
    channel = state.channel()
    label = f"backfill {state.name}"
    total: int | None = None
    pages = history(requests, state, below=window.low or 0, page_size=page_size, stats=stats, via=via,
                    prefetch=window.goes_on)
    async with aclosing(pages):
        async for page in pages:
            kept, done = window.cut(page)
            if not kept:  # nothing older (or nothing since `since`): the start
                await db.transaction(channels.mark_backfill_done, state.id)
                return
            if total is None:  # the ids left to cover, or the limit
                start = window.low or kept[0].id + 1
                total = start - 1 if window.limit is None else min(start - 1, window.limit)
            channel = refreshed(channel, page.chats)
            seen = now()  # the page shows its messages present now (their `last_seen`)
            batch = Batch(channel, tuple(records_of(kept, page.chats, state.id)), seen_at=seen)
            result = await db.transaction(_commit_page, batch, seen, after_ingest, kept[-1].id,
                                          kept[0].id, done)
            window.low = kept[-1].id
            window.taken += len(kept)
            window.new += result.messages_new
            if progress is not None:
                progress(label, window.taken if window.limit is not None else start - window.low, total)
            if done or window.stopped_by == "limit":
                return
