"""The engagement job: views, forwards, replies and reactions of young messages re-read on their
widening schedule (`storage.engagement`) into the `message_stats` time series.

Each round takes what is due (oldest first, at most `ROUND_LIMIT`), and per channel and batch of 100
ids sends one messages.GetMessagesViews (increment=False: our reads are not views) and one
messages.GetMessagesReactions, so a round costs 2 * ceil(due / 100) requests per channel, never one
per message. Each batch's readings commit in one transaction with the messages' next due times.

As in the poll (`bot.poller`): every request goes through `Requests` (flood policy, timeouts); one
failing channel (private, banned, a long flood wait) is one log line and the others go on — its
messages stay due for the next round, and the poller, which owns channel status, marks and backs it
off (a channel in backoff is skipped); an archive that cannot be written is one line for the round.

Example::

    report = await Engagement(db, client, days=14).run_once()
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from bot.clock import Clock, Sleep, utcnow
from bot.normalize import reaction_counts
from bot.telegram import FloodDeferred, FloodPolicy, Requests, RequestStats, classify_error, input_peer
from storage import channels, engagement
from storage.database import Database
from storage.faults import explain
from storage.records import ChannelState, Reading

__all__ = ["ChannelReading", "Engagement", "EngagementReport", "readings_from"]

log = logging.getLogger("chanwatch.engagement")


@dataclass(frozen=True, slots=True)
class ChannelReading:
    """One channel's part of a round: messages due, read (answers stored), readings written."""

    channel_id: int
    due: int
    read: int = 0
    written: int = 0
    requests: int = 0
    skipped: bool = False
    error: str | None = None
    unstored: bool = False


@dataclass(frozen=True, slots=True)
class EngagementReport:
    """A whole round."""

    started: datetime
    channels: tuple[ChannelReading, ...] = ()
    requests: int = 0
    ended: int = 0  # messages unscheduled (past the horizon, or deleted)

    @property
    def read(self) -> int:
        """Messages whose counts were read and stored."""
        return sum(c.read for c in self.channels)

    def by_id(self, channel_id: int) -> ChannelReading:
        """The result for one channel."""
        return next(c for c in self.channels if c.channel_id == channel_id)


def readings_from(channel_id: int, at: datetime, ids: Sequence[int], views: types.messages.MessageViews,
                  reactions: types.Updates) -> list[Reading]:
    """The readings one batch's two answers give: views in the order of `ids` (Telegram answers
    one MessageViews per id asked), reactions matched by message id (none: unknown)."""
    counts = []
    for v in views.views:
        replies = v.replies.replies if isinstance(v.replies, types.MessageReplies) else None
        counts.append((v.views, v.forwards, replies))
    if len(counts) != len(ids):
        raise ValueError(f"GetMessagesViews answered {len(counts)} counts for {len(ids)} ids")
    by_id = {
        u.msg_id: reaction_counts(u.reactions) for u in getattr(reactions, "updates", ())
        if isinstance(u, types.UpdateMessageReactions) and isinstance(u.peer, types.PeerChannel)
        and u.peer.channel_id == channel_id
    }
    return engagement.readings_of(channel_id, at, list(ids), counts,
                                  {k: v for k, v in by_id.items() if v is not None})


@dataclass
class _Round:
    requests: int = 0
    unstored: list[str] = field(default_factory=list)


class Engagement:
    """Reads due engagement counts (`run_once`); `days` is CHANWATCH_STATS_DAYS (0: nothing is read)."""

    def __init__(self, db: Database, client: TelegramClient, flood: FloodPolicy | None = None, *,
                 days: float = engagement.DEFAULT_DAYS, limit: int = engagement.ROUND_LIMIT,
                 concurrency: int = 4, now: Clock = utcnow, sleep: Sleep = asyncio.sleep,
                 reads: Callable[[ChannelState], bool] | None = None, logger: logging.Logger = log) -> None:
        self.db = db
        self.reads = reads  # which watched channels are this reader's (bot.service: its leases)
        self.account_id: int | None = None  # the reading account (set once known): its own access hashes
        self.days = days
        self.limit = limit
        self.now = now
        self.log = logger
        self.requests = Requests(client, flood or FloodPolicy(), sleep=sleep, now=now, logger=logger)
        self._semaphore = asyncio.Semaphore(max(concurrency, 1))

    async def run_once(self) -> EngagementReport:
        """One round over everything due now. Raises sqlite3.Error only when the archive cannot be
        read at all (the daemon's job logs it in one line)."""
        started = self.now()
        if self.days <= 0:
            return EngagementReport(started)
        count0 = self.requests.count
        ended = await self.db.transaction(engagement.end_past_horizon, started, self.days)
        due = await self.db.run(engagement.due, started, self.limit)
        states = {s.id: s for s in await self.db.run(channels.load_watched, self.account_id)}
        if self.reads is not None:  # another reader's channels are read by that reader
            due = {cid: ids for cid, ids in due.items() if cid not in states or self.reads(states[cid])}
        results = await asyncio.gather(
            *(self._channel(states.get(cid), cid, ids) for cid, ids in due.items()))
        report = EngagementReport(started, tuple(results), self.requests.count - count0, ended)
        unstored = [r for r in results if r.unstored]
        if unstored:  # one line for the round: every channel meets the same archive
            self.log.warning("engagement round: %s; %d channel(s) read but not stored",
                             unstored[0].error, len(unstored))
        self.log.info("engagement round: %d due in %d channels, %d read, %d readings, %d requests, %d failed",
                      sum(r.due for r in results), len(results), report.read,
                      sum(r.written for r in results), report.requests,
                      sum(1 for r in results if r.error and not r.unstored))
        return report

    async def _channel(self, state: ChannelState | None, channel_id: int, ids: list[int]) -> ChannelReading:
        """Read one channel's due messages batch by batch; a failure ends this channel's round only."""
        if state is None or state.access_hash is None or (
                state.retry_at is not None and state.retry_at > self.now()):
            return ChannelReading(channel_id, len(ids), skipped=True)
        stats = RequestStats()
        read = written = 0
        async with self._semaphore:
            try:
                for start in range(0, len(ids), engagement.BATCH):
                    chunk = ids[start:start + engagement.BATCH]
                    readings = await self._read(state, chunk, stats)
                    written += await self.db.transaction(engagement.write_readings, readings, self.days)
                    read += len(chunk)
            except sqlite3.Error as exc:  # the archive failed, not the channel: the same ids stay due
                return ChannelReading(channel_id, len(ids), read, written, stats.requests,
                                      error=str(explain(exc, self.db.path, daemon=True)), unstored=True)
            except FloodDeferred as exc:
                self.log.warning("engagement %s: deferred (%s); %d of %d read", state.name, exc, read,
                                 len(ids))
                return ChannelReading(channel_id, len(ids), read, written, stats.requests, error=str(exc))
            except Exception as exc:  # one channel never stops the others
                status, detail = classify_error(exc)
                telegrams = isinstance(exc, errors.RPCError | OSError | ValueError)  # else keep the trace
                self.log.log(logging.WARNING if telegrams else logging.ERROR,
                             "engagement %s: %s (%s); %d of %d read, the rest stay due",
                             state.name, status, detail, read, len(ids), exc_info=None if telegrams else exc)
                return ChannelReading(channel_id, len(ids), read, written, stats.requests, error=detail)
        self.log.info("engagement %s: %d read, %d readings, %d requests", state.name, read, written,
                      stats.requests)
        return ChannelReading(channel_id, len(ids), read, written, stats.requests)

    async def _read(self, state: ChannelState, chunk: list[int], stats: RequestStats) -> list[Reading]:
        """One batch: GetMessagesViews (not counted as a view) and GetMessagesReactions."""
        peer = input_peer(state)
        views = await self.requests("get_messages_views", functions.messages.GetMessagesViewsRequest(
            peer, chunk, increment=False), stats=stats)
        ask = functions.messages.GetMessagesReactionsRequest(peer, chunk)
        reactions = await self.requests("get_messages_reactions", ask, stats=stats)
        return readings_from(state.id, self.now(), chunk, views, reactions)

