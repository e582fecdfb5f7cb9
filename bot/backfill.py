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
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions
from tqdm import tqdm

from bot.poller import (
    PAGE_SIZE,
    ChannelState,
    Clock,
    Requests,
    RequestStats,
    Sleep,
    load_channel,
    parse_channel_name,
    records_of,
    refreshed,
    resolve_channels,
    utcnow,
)
from bot.telegram import FloodPolicy
from storage.database import Database
from storage.ingest import AfterIngest, ingest
from storage.records import Batch, IngestResult

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


def _commit_page(conn: sqlite3.Connection, batch: Batch, now: datetime, after: AfterIngest | None,
                 low: int, top: int, done: bool) -> IngestResult:
    """Ingest one page together with the backfill progress (one transaction)."""
    result = ingest(conn, batch, now, after)
    conn.execute(
        """UPDATE channels SET
             backfill_before = min(coalesce(backfill_before, :low), :low),
             backfill_done = max(backfill_done, :done),
             cursor = CASE WHEN cursor = 0 OR :low <= cursor + 1 THEN max(cursor, :top) ELSE cursor END
           WHERE id = :id""",
        {"low": low, "top": top, "done": int(done), "id": batch.channel.id},
    )
    return result


def _is_tty() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


async def _channel_state(db: Database, client: TelegramClient, channel: str | int, requests: Requests,
                         now: Clock, sleep: Sleep) -> ChannelState:
    """The stored channel for an id or a name; a name not stored yet is resolved (and watched) once."""
    if isinstance(channel, int) or str(channel).lstrip("-").isdigit():
        channel_id = int(channel)
        if channel_id < 0 and str(channel_id).startswith("-100"):
            channel_id = int(str(channel_id)[4:])  # Bot API style marked id
        state = await load_channel(db, channel_id=channel_id)
        if state is None or state.access_hash is None:
            raise BackfillError(f"channel {channel} is not in the archive with an access hash; "
                                "give its @username (or watch it) first")
        return state
    try:
        username = parse_channel_name(str(channel))
    except ValueError as exc:
        raise BackfillError(str(exc)) from None
    state = await load_channel(db, username=username)
    if state is None or state.access_hash is None:
        [outcome] = await resolve_channels(db, client, [username], flood=requests.flood, now=now, sleep=sleep)
        if outcome.channel_id is None:
            raise BackfillError(f"cannot backfill @{username}: {outcome.status} ({outcome.detail})")
        state = await load_channel(db, channel_id=outcome.channel_id)
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


async def backfill(
    db: Database,
    client: TelegramClient,
    channel_name_or_id: str | int,
    *,
    since: date | None = None,
    limit: int | None = None,
    progress: bool = True,
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
    so far is saved; run again later). `progress` shows a tqdm bar (messages/s, ETA from the ids
    left) when stderr is a terminal. `takeout` runs the requests in a takeout session; a refused
    takeout is a `BackfillError`.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    requests = Requests(client, flood or FloodPolicy(), sleep=sleep, now=now, logger=logger)
    state = await _channel_state(db, client, channel_name_or_id, requests, now, sleep)
    resumed_from = state.backfill_before
    started = time.monotonic()
    stats = RequestStats()
    taken = new = 0
    low = state.backfill_before
    since_at = datetime(since.year, since.month, since.day, tzinfo=UTC) if since is not None else None
    if state.backfill_done and (low or 0) <= 1:
        logger.info("backfill %s: already complete", state.name)
        return BackfillReport(state.id, state.username, 0, 0, 0, 0, resumed_from, low, True, "done", 0.0)
    bar: tqdm | None = None
    stopped_by = "start"
    channel = state.channel()
    async with _takeout_session(client, takeout) as via:
        def fetch(offset_id: int) -> asyncio.Task:
            """Ask for the page below `offset_id` (in the background while the previous commits)."""
            return asyncio.ensure_future(requests("get_history", functions.messages.GetHistoryRequest(
                peer=state.input_peer, offset_id=offset_id, offset_date=None, add_offset=0,
                limit=page_size, max_id=0, min_id=0, hash=0,
            ), stats=stats, via=via))

        pending: asyncio.Task | None = None
        try:
            while True:
                if limit is not None and taken >= limit:
                    stopped_by = "limit"
                    break
                answer = await (pending or fetch(low or 0))
                pending = None
                stats.pages += 1
                page = sorted((m for m in answer.messages if getattr(m, "id", 0) > 0),
                              key=lambda m: m.id, reverse=True)
                if low is not None:
                    page = [m for m in page if m.id < low]
                if not page:  # nothing older: the start
                    await db.transaction(_mark_done, state.id)
                    break
                if bar is None and (progress and _is_tty()):
                    total = (low - 1) if low else page[0].id
                    if limit is not None:
                        total = min(total, limit)
                    bar = tqdm(total=total, unit="msg", desc=f"backfill {state.name}", dynamic_ncols=True)
                reached_start = len(answer.messages) < page_size or page[-1].id <= 1
                if since_at is not None and page[-1].date < since_at:
                    page = [m for m in page if m.date >= since_at]
                    stopped_by, reached_start = "since", True
                if limit is not None and taken + len(page) >= limit:
                    page = page[:limit - taken]
                    stopped_by = "limit"
                if not page:
                    await db.transaction(_mark_done, state.id)
                    break
                done = reached_start and stopped_by != "limit"
                if not done and stopped_by != "limit":
                    pending = fetch(page[-1].id)  # overlap the next request with this page's commit
                channel = refreshed(channel, answer.chats)
                records = records_of(page, answer.chats, state.id)
                batch = Batch(channel, tuple(records))
                result = await db.transaction(_commit_page, batch, now(), after_ingest, page[-1].id,
                                              page[0].id, done)
                ids_spanned = (low or page[0].id + 1) - page[-1].id
                low = page[-1].id
                taken += len(page)
                new += result.messages_new
                if bar is not None:
                    bar.update(len(page) if limit is not None else ids_spanned)
                if done or stopped_by == "limit":
                    break
        finally:
            if pending is not None:  # stopped by an error: the prefetched page is not needed
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            if bar is not None:
                bar.close()
    row_done = await db.run(_is_done, state.id)
    seconds = time.monotonic() - started
    report = BackfillReport(state.id, channel.username, taken, new, stats.pages, stats.requests,
                            resumed_from, low, row_done, stopped_by, seconds, stats.flood_slept)
    logger.info("backfill %s: %d messages (%d new), %d pages, %d requests, stopped by %s, oldest id %s, "
                "%.0f msg/s", state.name, taken, new, stats.pages, stats.requests, stopped_by, low,
                report.rate)
    return report


def _mark_done(conn: sqlite3.Connection, channel_id: int) -> None:
    conn.execute("UPDATE channels SET backfill_done = 1 WHERE id = ?", (channel_id,))


def _is_done(conn: sqlite3.Connection, channel_id: int) -> bool:
    return bool(conn.execute("SELECT backfill_done FROM channels WHERE id = ?", (channel_id,)).fetchone()[0])

