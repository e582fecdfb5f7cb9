"""The slow deletion sweep: older stored messages of every watched channel re-checked by id, within a
request budget per hour (CHANWATCH_SWEEP_PER_HOUR).

The re-check reads only the recent window; a deletion older than that would go unseen. The sweep
goes down each channel's stored ids below the window (`storage.sweep`: where it is, what is next),
100 ids per channels.GetMessages, channels taken in turn one request each, and starts each channel
again from the top once it reached the bottom. What it finds is recorded as the re-check records it
(`bot.reread`): present ids' `last_seen` moves, a newer edit_date is a version, a missing id is a
deletion with `deleted_via` 'sweep'. Each request's findings and the channel's new position commit
together.

A flood wait ends the run (the sweep is never worth waiting for; the next run starts after it); a
channel whose request fails is logged and skipped for the rest of the run.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from telethon import TelegramClient, errors

from bot.clock import Clock, Sleep, utcnow
from bot.reread import Reread, reread
from bot.telegram import FloodDeferred, FloodPolicy, Requests, RequestStats
from storage import channels, sweep
from storage.database import Database
from storage.ingest import AfterIngest, ingest
from storage.records import ChannelState, IngestResult, iso

__all__ = ["SWEEP_EVERY", "SweepReport", "Sweeper"]

log = logging.getLogger("chanwatch.sweep")

SWEEP_EVERY = 300.0  # seconds between sweep runs (divided by time_scale); each spends its share of the hour


@dataclass(frozen=True, slots=True)
class SweepReport:
    """One sweep run: requests spent, ids re-checked, versions and deletions found, why it stopped."""

    requests: int = 0
    checked: int = 0
    edited: int = 0
    deleted: int = 0
    stopped: str | None = None  # a flood wait ended the run early
    failed: tuple[int, ...] = ()  # channels skipped after a failure


def _commit(conn: sqlite3.Connection, found: Reread, chunk: sweep.SweepChunk, seen: datetime,
            after: AfterIngest | None) -> IngestResult:
    """What one request found, and the channel's position past it, in one transaction."""
    result = ingest(conn, found.batch(seen, "sweep"), seen, after)
    sweep.move(conn, found.channel.id, chunk, iso(seen) or "")
    return result


class Sweeper:
    """Spends `per_hour` requests an hour re-checking older messages; `run_once` spends one run's share.

    `window_ids` / `window_days` are the re-check's window (the sweep covers what lies below it).
    """

    def __init__(self, db: Database, client: TelegramClient, per_hour: int, *, window_ids: int = 200,
                 window_days: float = 3, every: float = SWEEP_EVERY, now: Clock = utcnow,
                 sleep: Sleep = asyncio.sleep, after_ingest: AfterIngest | None = None,
                 reads: Callable[[ChannelState], bool] | None = None, logger: logging.Logger = log) -> None:
        if per_hour < 0:
            raise ValueError("per_hour must be 0 or more")
        self.db = db
        self.per_hour = per_hour
        self.window_ids = window_ids
        self.window_days = window_days
        self.every = every
        self.now = now
        self.after_ingest = after_ingest
        self.reads = reads  # which watched channels are this reader's (bot.service: its leases)
        self.account_id: int | None = None  # the reading account (set once known): its own access hashes
        self.log = logger
        # Never wait out a flood for the sweep: any flood wait ends the run (max_wait 0).
        self.requests = Requests(client, FloodPolicy(max_wait=0, max_retries=0), sleep=sleep, now=now,
                                 logger=logger)
        self._credit = 0.0  # requests earned and not yet spent (fractions carry over)
        self._turn = 0  # which channel goes first in the next run
        self._resume_at: datetime | None = None

    def share(self) -> int:
        """Requests this run may spend: the hour's budget spread over the runs, fractions carried,
        never more than one hour's worth banked."""
        self._credit = min(self._credit + self.per_hour * self.every / 3600, float(self.per_hour))
        return int(self._credit)

    async def run_once(self, budget: int | None = None) -> SweepReport:
        """Spend `budget` requests (default: this run's share), one per channel in turn."""
        budget = self.share() if budget is None else budget
        started = self.now()
        if budget <= 0 or (self._resume_at is not None and self._resume_at > started):
            return SweepReport()
        since = iso(started - timedelta(days=self.window_days)) or ""
        states = [s for s in await self.db.run(channels.load_watched, self.account_id)
                  if s.access_hash is not None and (s.retry_at is None or s.retry_at <= started)
                  and (self.reads is None or self.reads(s))]
        if not states:
            return SweepReport()
        order = states[self._turn % len(states):] + states[:self._turn % len(states)]
        self._turn += 1
        stats = RequestStats()
        checked = edited = deleted = 0
        failed: list[int] = []
        stopped = None
        active = list(order)
        while active and stats.requests < budget:
            for state in list(active):
                if stats.requests >= budget:
                    break
                try:
                    result, n = await self._one(state, since, stats)
                except FloodDeferred as exc:
                    self._resume_at = exc.retry_at
                    stopped = str(exc)
                    self.log.warning("sweep: %s; the sweep resumes after it", exc)
                    active = []
                    break
                except (errors.RPCError, OSError, ValueError) as exc:
                    self.log.warning("sweep %s: %s: %s; skipped this run", state.name,
                                     type(exc).__name__, exc)
                    failed.append(state.id)
                    active.remove(state)
                    continue
                if result is None:  # nothing older than the window
                    active.remove(state)
                    continue
                checked += n
                edited += result.edits
                deleted += result.deletions
        self._credit = max(self._credit - stats.requests, 0.0)
        report = SweepReport(stats.requests, checked, edited, deleted, stopped, tuple(failed))
        if stats.requests:
            self.log.info("sweep: %d requests, %d checked, %d edited, %d deleted", report.requests,
                          report.checked, report.edited, report.deleted)
        return report

    async def _one(self, state: ChannelState, since: str, stats: RequestStats
                   ) -> tuple[IngestResult | None, int]:
        """Re-check the channel's next 100 older ids (one request); None when it has none."""
        chunk = await self.db.run(sweep.next_chunk, state.id, self.window_ids, since)
        if chunk is None:
            return None, 0
        found = await reread(self.requests, state, chunk.stored, stats, kind="sweep")
        result = await self.db.transaction(_commit, found, chunk, self.now(), self.after_ingest)
        return result, len(chunk.stored)
