"""Poll cycle: fetch the watched channels' new messages, and re-check recent ones for edits and deletions.

Every request is a raw TL request built from the *stored* channel id + access_hash (never a
username lookup after the first resolve), sent under the `FloodPolicy`. Answers are normalised
with the answer's own `.chats`, so forwards carry their origin channel's username and title.

Crash safety: pages are ingested as they arrive *without* moving the cursor; the cursor (and the
channel's ok status) is written only with the last page, in the same transaction. A crash between
pages repeats work on the next cycle and never leaves a gap; ingest is idempotent, so nothing
duplicates.

A channel that was never polled (cursor 0) gets only its newest page: older history is the job of
`bot.backfill`; pages come from `bot.history`, the pager both share. One failing channel (private,
banned, gone, flood-deferred) is marked in its row and the others go on; failures back off
exponentially (`storage.channels.backoff`). Names are resolved by `bot.resolve`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from bot.clock import Clock, Sleep, utcnow
from bot.history import PAGE_SIZE, history, records_of, refreshed
from bot.names import username_of
from bot.reread import reread
from bot.telegram import (
    PEER_ERRORS,
    FloodDeferred,
    FloodPolicy,
    Requests,
    RequestStats,
    classify_error,
    input_channel,
    input_peer,
)
from storage import channels
from storage.channels import backoff
from storage.database import Database
from storage.faults import explain
from storage.ingest import AfterIngest, ingest
from storage.records import Batch, Channel, ChannelState, IngestResult, iso

__all__ = ["ChannelPoll", "ChannelRecheck", "PollReport", "Poller", "RecheckReport"]

log = logging.getLogger("chanwatch.poller")


def _commit_page(conn: sqlite3.Connection, batch: Batch, now: datetime, after: AfterIngest | None,
                 final: bool) -> IngestResult:
    """Ingest one page; with `final`, the cursor (in the batch) and the ok status go with it."""
    result = ingest(conn, batch, now, after)
    if final:
        channels.mark_polled(conn, batch.channel.id, now)
    return result


# --- reports --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelPoll:
    """One channel's part of a poll cycle.

    `status` is the channel's status afterwards; `skipped` means its retry_at was in the future;
    `deferred_until` is set when a long flood wait rescheduled it; `error` holds the failure;
    `unstored` means the archive could not be written (the channel itself is fine, nothing of it was
    marked, and the next cycle reads the same messages again).
    """

    channel_id: int
    username: str | None
    status: str
    new_messages: int = 0
    updated_messages: int = 0
    pages: int = 0
    requests: int = 0
    cursor: int = 0
    flood_slept: float = 0.0
    skipped: bool = False
    deferred_until: datetime | None = None
    retry_at: datetime | None = None
    error: str | None = None
    new_post_ids: tuple[int, ...] = ()
    unstored: bool = False


@dataclass(frozen=True, slots=True)
class PollReport:
    """A whole poll cycle: per-channel results and the requests it cost."""

    started: datetime
    channels: tuple[ChannelPoll, ...]
    requests: int
    flood_slept: float = 0.0

    @property
    def new_messages(self) -> int:
        """New messages over all channels."""
        return sum(c.new_messages for c in self.channels)

    def by_id(self, channel_id: int) -> ChannelPoll:
        """The result for one channel."""
        return next(c for c in self.channels if c.channel_id == channel_id)


@dataclass(frozen=True, slots=True)
class ChannelRecheck:
    """One channel's re-check: ids looked at, edits found, deletions found."""

    channel_id: int
    username: str | None
    status: str
    checked: int = 0
    edited: int = 0
    deleted: int = 0
    requests: int = 0
    skipped: bool = False
    error: str | None = None
    edited_post_ids: tuple[int, ...] = ()
    unstored: bool = False


@dataclass(frozen=True, slots=True)
class RecheckReport:
    """A whole re-check cycle."""

    started: datetime
    channels: tuple[ChannelRecheck, ...]
    requests: int

    def by_id(self, channel_id: int) -> ChannelRecheck:
        """The result for one channel."""
        return next(c for c in self.channels if c.channel_id == channel_id)


# --- the poller -----------------------------------------------------------------------------------


class Poller:
    """Polls watched channels for new messages (`poll_once`) and re-reads recent ones (`recheck_once`).

    `join=True`: the account joins the watched channels, and one messages.GetPeerDialogs per 100
    channels tells which have news (an idle cycle for 200 channels costs 2 requests). Without it,
    each due channel costs one messages.GetHistory per cycle. `after_ingest` runs inside each ingest
    transaction (the alert percolator). `reads` says which watched channels are this poller's (the
    daemon leaves out those read by their web preview). `now` and `sleep` are injectable for tests.
    """

    def __init__(
        self,
        db: Database,
        client: TelegramClient,
        flood: FloodPolicy | None = None,
        *,
        concurrency: int = 4,
        page_size: int = PAGE_SIZE,
        join: bool = False,
        now: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        after_ingest: AfterIngest | None = None,
        reads: Callable[[ChannelState], bool] | None = None,
        logger: logging.Logger = log,
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{PAGE_SIZE}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.client = client
        self.flood = flood or FloodPolicy()
        self.page_size = page_size
        self.join = join
        self.now = now
        self.after_ingest = after_ingest
        self.reads = reads
        self.account_id: int | None = None  # the reading account (set once known): its own access hashes
        self.log = logger
        self.requests = Requests(client, self.flood, sleep=sleep, now=now, logger=logger)
        self._semaphore = asyncio.Semaphore(concurrency)

    async def _watched(self) -> list[ChannelState]:
        """The watched channels this poller reads (`reads`: not those read by their web preview)."""
        states = await self.db.run(channels.load_watched, self.account_id)
        return states if self.reads is None else [s for s in states if self.reads(s)]

    # -- poll cycle -------------------------------------------------------------------------------

    async def poll_once(self) -> PollReport:
        """One poll cycle over the watched channels (read from the DB each time, so /watch applies)."""
        started = self.now()
        count0, slept0 = self.requests.count, self.requests.flood_slept
        states = await self._watched()
        results: list[ChannelPoll] = []
        due: list[ChannelState] = []
        for state in states:
            if state.retry_at is not None and state.retry_at > started:
                results.append(ChannelPoll(state.id, state.username, state.status, cursor=state.cursor,
                                           skipped=True, retry_at=state.retry_at))
                self.log.info("poll %s: skipped until %s (%s)", state.name, iso(state.retry_at),
                              state.status)
            elif state.access_hash is None:
                results.append(await self._fail(state, ValueError(
                    "no access_hash stored: resolve the channel (resolve_channels) first"), RequestStats()))
            else:
                due.append(state)
        to_fetch: list[tuple[ChannelState, bool]] = [(s, False) for s in due]
        if self.join and due:
            to_fetch = []
            tops, names, failed, fallback = await self._dialog_tops(due)
            idle: list[Channel] = []
            for state in due:
                if state.id in failed:
                    results.append(await self._fail(state, failed[state.id], RequestStats()))
                elif state.id in fallback:
                    to_fetch.append((state, False))
                elif state.id not in tops:
                    to_fetch.append((state, True))  # not a member: join, then read its history
                elif tops[state.id] > state.cursor:
                    to_fetch.append((state, False))
                else:
                    username, title = names.get(state.id, (None, None))
                    idle.append(Channel(state.id, username, title))
                    results.append(ChannelPoll(state.id, username or state.username, "ok",
                                               cursor=state.cursor))
                    self.log.info("poll %s: 0 new, top message %d <= cursor %d (dialogs), ok",
                                  state.name, tops[state.id], state.cursor)
            if idle:
                await self.db.transaction(channels.mark_idle, idle, iso(started) or "")
        results += await asyncio.gather(*(self._poll_channel(s, join) for s, join in to_fetch))
        order = {s.id: i for i, s in enumerate(states)}
        results.sort(key=lambda r: order.get(r.channel_id, 0))
        report = PollReport(started, tuple(results), self.requests.count - count0,
                            self.requests.flood_slept - slept0)
        unstored = [r for r in results if r.unstored]
        if unstored:  # one line for the cycle: every channel meets the same archive
            self.log.warning("poll cycle: %s; %d channel(s) read but not stored",
                             unstored[0].error, len(unstored))
        failed = sum(1 for r in results if r.error and r.deferred_until is None)
        self.log.info("poll cycle: %d channels, %d new messages, %d requests, %d skipped, %d deferred, "
                      "%d failed", len(results), report.new_messages, report.requests,
                      sum(r.skipped for r in results), sum(r.deferred_until is not None for r in results),
                      failed)
        return report

    async def _dialog_tops(self, due: Sequence[ChannelState]) -> tuple[
        dict[int, int], dict[int, tuple[str | None, str | None]], dict[int, BaseException], set[int]
    ]:
        """top_message per joined channel, via GetPeerDialogs in chunks of 100.

        Returns (tops, names from the answers, per-channel failures, channels to poll by history
        because the dialogs call itself failed). One private channel fails a whole GetPeerDialogs
        call with CHANNEL_PRIVATE, so such a chunk is bisected down to the culprit.
        """
        tops: dict[int, int] = {}
        names: dict[int, tuple[str | None, str | None]] = {}
        failed: dict[int, BaseException] = {}
        fallback: set[int] = set()

        async def ask(chunk: Sequence[ChannelState]) -> None:
            request = functions.messages.GetPeerDialogsRequest(
                [types.InputDialogPeer(input_peer(s)) for s in chunk])
            try:
                answer = await self.requests("get_peer_dialogs", request)
            except PEER_ERRORS as exc:
                if len(chunk) == 1:
                    failed[chunk[0].id] = exc
                    return
                middle = len(chunk) // 2
                await ask(chunk[:middle])
                await ask(chunk[middle:])
                return
            except (FloodDeferred, errors.RPCError, OSError) as exc:
                self.log.warning("GetPeerDialogs failed (%s): polling %d channels by history",
                                 exc, len(chunk))
                fallback.update(s.id for s in chunk)
                return
            for dialog in answer.dialogs:
                if isinstance(dialog.peer, types.PeerChannel):
                    tops[dialog.peer.channel_id] = dialog.top_message
            for chat in answer.chats:
                if isinstance(chat, types.Channel):
                    names[chat.id] = (username_of(chat), chat.title)

        for start in range(0, len(due), PAGE_SIZE):
            await ask(due[start:start + PAGE_SIZE])
        return tops, names, failed, fallback

    async def _poll_channel(self, state: ChannelState, join_first: bool) -> ChannelPoll:
        """Fetch one channel's new messages; every failure is recorded on its row, never raised."""
        stats = RequestStats()
        async with self._semaphore:
            try:
                try:
                    if join_first:
                        await self._join(state, stats)
                    return await self._fetch_new(state, stats)
                except FloodDeferred as exc:
                    return await self._defer(state, exc, stats)
                except sqlite3.Error:
                    raise
                except Exception as exc:  # one channel never stops the others
                    return await self._fail(state, exc, stats)
            except sqlite3.Error as exc:  # the archive failed, not the channel: nothing marked, nothing lost
                return self._unstored(state, exc, stats)

    def _unstored(self, state: ChannelState, exc: sqlite3.Error, stats: RequestStats) -> ChannelPoll:
        """The archive could not be written: the channel keeps its row as it was (cursor, status, no
        backoff), so the next cycle reads the same messages again; the cycle logs it once."""
        return ChannelPoll(state.id, state.username, state.status, pages=stats.pages, requests=stats.requests,
                           cursor=state.cursor, flood_slept=stats.flood_slept,
                           error=str(explain(exc, self.db.path, daemon=True)), unstored=True)

    async def _join(self, state: ChannelState, stats: RequestStats) -> None:
        """Join a channel the dialogs did not list (so later cycles see it in GetPeerDialogs)."""
        try:
            await self.requests("join_channel", functions.channels.JoinChannelRequest(input_channel(state)),
                                stats=stats)
            self.log.info("joined %s", state.name)
        except errors.UserAlreadyParticipantError:
            pass
        except errors.ChannelsTooMuchError:
            self.log.warning("cannot join %s: too many channels joined; polling it by history", state.name)

    async def _fetch_new(self, state: ChannelState, stats: RequestStats) -> ChannelPoll:
        """Newest-first pages down to the cursor; the cursor moves only with the last page.

        A never-polled channel (cursor 0) gets its newest page only: its history is backfill's job.
        """
        cursor = state.cursor
        channel = state.channel()
        highest = cursor
        new = updated = 0
        post_ids: list[int] = []
        pages = history(self.requests, state, above=cursor, page_size=self.page_size, stats=stats)
        async with aclosing(pages):
            async for page in pages:
                channel = refreshed(channel, page.chats)
                highest = max(highest, page.newest)
                last = page.last or cursor == 0
                batch = Batch(channel, tuple(records_of(page.messages, page.chats, state.id)),
                              cursor=highest if last else None, seen_at=self.now())
                result = await self.db.transaction(_commit_page, batch, self.now(), self.after_ingest, last)
                new += result.messages_new
                updated += result.messages_updated
                post_ids += result.new_post_ids
                if last:
                    break
        self.log.info("poll %s: %d new, %d updated, %d pages, %d requests, cursor %d -> %d, ok",
                      f"@{channel.username}" if channel.username else channel.id, new, updated,
                      stats.pages, stats.requests, cursor, highest)
        return ChannelPoll(state.id, channel.username, "ok", new, updated, stats.pages, stats.requests,
                           highest, stats.flood_slept, new_post_ids=tuple(post_ids))

    async def _defer(self, state: ChannelState, exc: FloodDeferred, stats: RequestStats) -> ChannelPoll:
        """A long flood wait: keep the status, retry when Telegram allows. An archive that cannot
        record it raises (sqlite3.Error) for the caller, after the line is logged."""
        now = iso(self.now()) or ""
        self.log.warning("poll %s: deferred until %s (%s), %d pages, %d requests", state.name,
                         iso(exc.retry_at), exc, stats.pages, stats.requests)
        try:
            await self.db.transaction(channels.mark_deferred, state.id, str(exc), now, iso(exc.retry_at))
        except sqlite3.Error:
            raise
        except Exception:
            self.log.exception("poll %s: could not record the flood wait", state.name)
        return ChannelPoll(state.id, state.username, state.status, pages=stats.pages, requests=stats.requests,
                           cursor=state.cursor, flood_slept=stats.flood_slept, deferred_until=exc.retry_at,
                           retry_at=exc.retry_at, error=str(exc))

    async def _fail(self, state: ChannelState, exc: BaseException, stats: RequestStats) -> ChannelPoll:
        """Mark the channel failed (status from the error) and back off exponentially. An archive that
        cannot record it raises (sqlite3.Error) for the caller, after the line is logged."""
        status, detail = classify_error(exc)
        now = self.now()
        retry_at = now + backoff(state.failures + 1)
        if isinstance(exc, errors.RPCError | OSError | ValueError):
            self.log.warning("poll %s: %s (%s); retry after %s", state.name, status, detail, iso(retry_at))
        else:  # not Telegram's doing: keep the traceback
            self.log.error("poll %s: %s (%s); retry after %s", state.name, status, detail, iso(retry_at),
                           exc_info=exc)
        try:
            await self.db.transaction(channels.mark_failed, state.id, status, detail, iso(now), iso(retry_at))
        except sqlite3.Error:
            raise
        except Exception:
            self.log.exception("poll %s: could not record the failure", state.name)
        return ChannelPoll(state.id, state.username, status, pages=stats.pages, requests=stats.requests,
                           cursor=state.cursor, flood_slept=stats.flood_slept, retry_at=retry_at,
                           error=detail)

    # -- edits and deletions ----------------------------------------------------------------------

    async def recheck_once(self, window_ids: int = 200, window_days: float = 3) -> RecheckReport:
        """Re-read each watched channel's recent window by id: edits become versions, misses deletions.

        The window is the last `window_ids` stored (not deleted) message ids plus those dated within
        `window_days`. channels.GetMessages in chunks of 100; results are matched by id, never by
        position. One batch per channel (edited messages + deleted_ids + seen_at) commits together.
        """
        started = self.now()
        count0 = self.requests.count
        since = iso(started - timedelta(days=window_days)) or ""
        states = await self._watched()
        results: list[ChannelRecheck] = []
        due = []
        for state in states:
            if state.access_hash is None or (state.retry_at is not None and state.retry_at > started):
                results.append(ChannelRecheck(state.id, state.username, state.status, skipped=True))
            else:
                due.append(state)
        results += await asyncio.gather(*(self._recheck_channel(s, window_ids, since) for s in due))
        order = {s.id: i for i, s in enumerate(states)}
        results.sort(key=lambda r: order.get(r.channel_id, 0))
        unstored = [r for r in results if r.unstored]
        if unstored:
            self.log.warning("recheck cycle: %s; %d channel(s) read but not stored",
                             unstored[0].error, len(unstored))
        return RecheckReport(started, tuple(results), self.requests.count - count0)

    async def _recheck_channel(self, state: ChannelState, window_ids: int, since: str) -> ChannelRecheck:
        stats = RequestStats()
        async with self._semaphore:
            try:
                try:
                    return await self._recheck(state, window_ids, since, stats)
                except FloodDeferred as exc:
                    poll = await self._defer(state, exc, stats)
                except sqlite3.Error:
                    raise
                except Exception as exc:
                    poll = await self._fail(state, exc, stats)
            except sqlite3.Error as exc:  # as in a poll: the archive failed, the next recheck reads again
                poll = self._unstored(state, exc, stats)
            return ChannelRecheck(state.id, state.username, poll.status, requests=stats.requests,
                                  error=poll.error, unstored=poll.unstored)

    async def _recheck(self, state: ChannelState, window_ids: int, since: str, stats: RequestStats
                       ) -> ChannelRecheck:
        stored = await self.db.run(channels.recent_window, state.id, window_ids, since)
        found = await reread(self.requests, state, stored, stats)
        channel = found.channel
        result = IngestResult()
        if stored:  # one batch: edits, deletions and when the rest was seen present
            result = await self.db.transaction(ingest, found.batch(self.now(), "recheck"), self.now(),
                                               self.after_ingest)
        self.log.info("recheck %s: %d checked, %d edited, %d deleted, %d requests", state.name, len(stored),
                      result.edits, result.deletions, stats.requests)
        return ChannelRecheck(state.id, channel.username, state.status, len(stored), result.edits,
                              result.deletions, stats.requests, edited_post_ids=result.edited_post_ids)

