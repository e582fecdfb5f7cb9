"""The web-preview reader: watched channels read from `t.me/s/<name>` instead of the API.

`poll_once` reads the newest page, then `?before=` pages back down to the cursor (a never-polled
channel: its newest page only, as `bot.poller`), ingesting each page as it arrives and moving the
cursor only with the last (the poller's crash rule). `recheck_once` re-reads the newest pages
covering the re-check window: a changed text is a version, a stored id missing inside the contiguous
stretch of ids the pages covered is deleted (`deleted_via='recheck'`), every id found present moves
its `last_seen`. `fetch_post` archives one post from its `?embed=1` page. With `fetch_origins`, the
original of a forward whose channel is not watched and not archived is fetched once (bounded per
cycle; the client's rate applies).

Failures are recorded per channel as the poller records them (`storage.channels`): no public
preview is `not_found`, a long 429 defers, anything else backs off; one channel never stops the
others. A post the parser cannot read whole is logged with its id and why, and never stored.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from bot.backfill import BackfillReport
from bot.clock import Clock, utcnow
from bot.poller import ChannelPoll, ChannelRecheck
from bot.web.http import WebClient, WebDeferred, WebError, WebNotFound
from bot.web.preview import WebPage, WebPost, parse_embed_page, parse_page
from bot.web.records import channel_id_for, channel_record, records_for
from storage import channels, identity
from storage.channels import backoff
from storage.database import Database
from storage.faults import explain
from storage.ingest import AfterIngest, ingest
from storage.progress import Progress
from storage.records import Batch, Channel, ChannelState, IngestResult, iso

__all__ = ["PageUnreadable", "WebReader", "source_of"]

log = logging.getLogger("chanwatch.web")

ORIGINS_PER_CYCLE = 20
"""Originals of forwards fetched at most per poll cycle (`fetch_origins`), one request each."""


def source_of(state: ChannelState, default: str) -> str:
    """'api' or 'web' for this channel: its own setting, else `default` (Settings.source resolved:
    'auto' means 'api' here; the caller resolves 'auto' against a configured user session)."""
    if state.source in ("api", "web"):
        return state.source
    return "web" if default == "web" else "api"


class PageUnreadable(WebError):
    """A page came back without any message block the parser knows (t.me's markup changed?)."""


@dataclass(slots=True)
class _Read:
    """One channel's pages as a re-check reads them."""

    posts: dict[int, WebPost] = field(default_factory=dict)
    skipped: set[int] = field(default_factory=set)
    low: int | None = None  # the lowest id the pages cover (1 when they reached the channel's start)
    high: int = 0


class WebReader:
    """Reads channels through the web preview (interface: phase 2 of issue #15)."""

    def __init__(self, db: Database, web: WebClient, *, now: Clock = utcnow,
                 after_ingest: AfterIngest | None = None, fetch_origins: bool = False,
                 logger: logging.Logger = log) -> None:
        self.db = db
        self.web = web
        self.now = now
        self.after_ingest = after_ingest
        self.fetch_origins = fetch_origins
        self.log = logger
        self._origins_tried: set[tuple[str, int]] = set()
        self._origin_budget = ORIGINS_PER_CYCLE

    # -- pages -------------------------------------------------------------------------------------

    async def _page(self, username: str, before: int | None) -> WebPage:
        page = parse_page(await self.web.channel_page(username, before))
        for message_id, why in page.skipped:
            self.log.info("web %s: post %s skipped (%s)", f"@{username}", message_id, why)
        if not page.posts and not page.skipped:  # even a new channel shows its "channel created"
            raise PageUnreadable(f"the page of @{username} has no message the reader knows "
                                 f"(has t.me's markup changed?)")
        return page

    def _channel_id(self, conn: sqlite3.Connection, state_id: int, username: str, page: WebPage,
                    posts: Sequence[WebPost], now: datetime) -> int:
        """The id the page's posts go under: the real id the page names (a placeholder adopted into
        it), else the channel's own; its title and subscriber count from the page header."""
        real = (page.channel.channel_id if page.channel else None) or next(
            (p.channel_id for p in posts if p.channel_id), None)
        title = page.channel.title if page.channel else None
        if real is not None and real > 0 and real != state_id:
            channel_id = channel_id_for(conn, username, real, now, title=title)
        else:
            channel_id = state_id
            if title:
                channels.upsert_channel(conn, Channel(state_id, username, title), iso(now) or "")
        if page.channel is not None and page.channel.subscribers is not None:
            channels.set_subscribers(conn, channel_id, page.channel.subscribers, iso(now) or "")
        return channel_id

    def _store(self, conn: sqlite3.Connection, state: ChannelState, page: WebPage, posts: Sequence[WebPost],
               cursor: int | None, final: bool) -> tuple[int, IngestResult]:
        """One page in one transaction: the channel's id settled, records, ingest, the cursor if final."""
        now = self.now()
        username = state.username or ""
        channel_id = self._channel_id(conn, state.id, username, page, posts, now)
        batch = Batch(channel_record(page.channel, channel_id, username),
                      tuple(records_for(conn, channel_id, posts, now)), cursor=cursor, seen_at=now)
        result = ingest(conn, batch, now, self.after_ingest)
        if final:
            channels.mark_polled(conn, channel_id, now)
        return channel_id, result

    # -- poll ----------------------------------------------------------------------------------------

    async def poll_once(self, states: Sequence[ChannelState]) -> list[ChannelPoll]:
        """One poll over `states` (the channels read by web); per-channel results, in order."""
        self._origin_budget = ORIGINS_PER_CYCLE
        started = self.now()
        results: list[ChannelPoll] = []
        for state in states:
            if state.retry_at is not None and state.retry_at > started:
                results.append(ChannelPoll(state.id, state.username, state.status, cursor=state.cursor,
                                           skipped=True, retry_at=state.retry_at))
                continue
            results.append(await self._guarded(state, self._poll))
        return results

    async def _guarded(self, state: ChannelState, work: Callable[[ChannelState], Awaitable[Any]]) -> Any:
        """Run one channel's read; every failure is recorded on its row (as `bot.poller`), never raised."""
        try:
            try:
                if not state.username:
                    raise WebNotFound("", "the channel has no username: the web preview cannot show it")
                return await work(state)
            except WebDeferred as exc:
                return await self._defer(state, exc)
            except sqlite3.Error:
                raise
            except Exception as exc:
                return await self._fail(state, exc)
        except sqlite3.Error as exc:
            return ChannelPoll(state.id, state.username, state.status, cursor=state.cursor,
                               error=str(explain(exc, self.db.path, daemon=True)), unstored=True)

    async def _poll(self, state: ChannelState) -> ChannelPoll:
        username = state.username or ""
        cursor = state.cursor
        before: int | None = None
        highest = cursor
        new = updated = pages = 0
        post_ids: list[int] = []
        channel_id = state.id
        forwards: list[WebPost] = []
        while True:
            page = await self._page(username, before)
            pages += 1
            fresh = [p for p in page.posts if p.message_id > cursor]
            low = min((p.message_id for p in page.posts), default=0)
            highest = max([highest, *(p.message_id for p in fresh)])
            last = cursor == 0 or page.before is None or not page.posts or low <= cursor + 1
            channel_id, result = await self.db.transaction(
                self._store, state, page, fresh, highest if last else None, last)
            new += result.messages_new
            updated += result.messages_updated
            post_ids += result.new_post_ids
            forwards += [p for p in fresh if p.forward is not None and p.forward.username]
            if last:
                break
            before = page.before
        self.log.info("web poll @%s: %d new, %d updated, %d pages, cursor %d -> %d, ok",
                      username, new, updated, pages, cursor, highest)
        if self.fetch_origins:
            await self._fetch_origins(forwards)
        return ChannelPoll(channel_id, username, "ok", new, updated, pages, pages, highest,
                           new_post_ids=tuple(post_ids))

    async def _defer(self, state: ChannelState, exc: WebDeferred) -> ChannelPoll:
        self.log.warning("web %s: deferred until %s (429)", state.name, iso(exc.retry_at))
        await self.db.transaction(channels.mark_deferred, state.id, str(exc), iso(self.now()) or "",
                                  iso(exc.retry_at) or "")
        return ChannelPoll(state.id, state.username, state.status, cursor=state.cursor,
                           deferred_until=exc.retry_at, retry_at=exc.retry_at, error=str(exc))

    async def _fail(self, state: ChannelState, exc: Exception) -> ChannelPoll:
        status = "not_found" if isinstance(exc, WebNotFound) else "error"
        detail = str(exc) or type(exc).__name__
        now = self.now()
        retry_at = now + backoff(state.failures + 1)
        if isinstance(exc, WebError | OSError):
            self.log.warning("web %s: %s (%s); retry after %s", state.name, status, detail, iso(retry_at))
        else:
            self.log.error("web %s: %s (%s); retry after %s", state.name, status, detail, iso(retry_at),
                           exc_info=exc)
        await self.db.transaction(channels.mark_failed, state.id, status, detail, iso(now) or "",
                                  iso(retry_at) or "")
        return ChannelPoll(state.id, state.username, status, cursor=state.cursor, retry_at=retry_at,
                           error=detail)

    # -- re-check ------------------------------------------------------------------------------------

    async def recheck_once(self, states: Sequence[ChannelState], window_ids: int) -> list[ChannelRecheck]:
        """Re-read each channel's newest pages covering its last `window_ids` stored ids: edits become
        versions, ids missing inside the stretch the pages covered deletions."""
        started = self.now()
        results: list[ChannelRecheck] = []
        for state in states:
            if state.retry_at is not None and state.retry_at > started:
                results.append(ChannelRecheck(state.id, state.username, state.status, skipped=True))
                continue
            outcome = await self._guarded(state, lambda s: self._recheck(s, window_ids))
            if isinstance(outcome, ChannelPoll):
                outcome = ChannelRecheck(state.id, state.username, outcome.status, error=outcome.error,
                                         unstored=outcome.unstored)
            results.append(outcome)
        return results

    async def _recheck(self, state: ChannelState, window_ids: int) -> ChannelRecheck:
        username = state.username or ""
        stored = await self.db.run(channels.recent_window, state.id, window_ids, "9999")
        if not stored:
            return ChannelRecheck(state.id, username, state.status)
        floor = min(stored)
        read = _Read()
        before: int | None = None
        requests = 0
        channel = None
        while True:
            page = await self._page(username, before)
            requests += 1
            channel = page.channel or channel
            read.posts.update({p.message_id: p for p in page.posts})
            read.skipped.update(i for i, _ in page.skipped if i is not None)
            ids = [p.message_id for p in page.posts] + [i for i, _ in page.skipped if i is not None]
            if ids:
                read.high = max(read.high, *ids)
                read.low = min(ids) if read.low is None else min(read.low, *ids)
            if page.before is None:
                read.low = 1  # the channel's start: nothing below is missing from the stretch
                break
            if not ids or min(ids) <= floor:
                break
            before = page.before
        low = read.low or read.high + 1
        seen = self.now()
        window = [i for i in stored if low <= i <= read.high]
        deleted = tuple(i for i in window if i not in read.posts and i not in read.skipped)
        present = tuple(i for i in window if i in read.posts)
        posts = [read.posts[i] for i in present]

        def store(conn: sqlite3.Connection) -> IngestResult:
            real = next((p.channel_id for p in posts if p.channel_id), None)
            channel_id = channel_id_for(conn, username, real, seen) if real and real != state.id else state.id
            stored = channels.stored_contents(conn, channel_id, [p.message_id for p in posts])
            records = records_for(conn, channel_id, posts, seen, stored)
            changed = tuple(r for r in records  # a new version, or a moved count (a reading)
                            if (r.edit_date and iso(r.edit_date)) != stored[r.message_id][2]
                            or (r.views is not None and r.views != stored[r.message_id][3]))
            changed_ids = {r.message_id for r in changed}
            batch = Batch(channel_record(channel, channel_id, username), changed, deleted_ids=deleted,
                          seen_at=seen, present_ids=tuple(i for i in present if i not in changed_ids),
                          deleted_via="recheck")
            return ingest(conn, batch, seen, self.after_ingest)

        result = await self.db.transaction(store)
        self.log.info("web recheck @%s: %d checked, %d edited, %d deleted, %d pages", username, len(window),
                      result.edits, result.deletions, requests)
        return ChannelRecheck(state.id, username, state.status, len(window), result.edits, result.deletions,
                              requests, edited_post_ids=result.edited_post_ids)

    # -- history -------------------------------------------------------------------------------------

    async def backfill(self, username: str, *, since: date | None = None, limit: int | None = None,
                       progress: Progress | None = None) -> BackfillReport:
        """Archive a channel's history from the preview, paging back with `?before=` from the newest
        post (or below where the last run stopped) to the start, `since` or `limit`: each page in one
        transaction with the backfill progress (`storage.channels.record_backfill_page`), so a stop
        loses at most one page and the next run resumes. Backfilled posts do not alert."""
        started = self.now()
        username = username.lstrip("@")
        channel_id = await self.db.transaction(identity.channel_for_username, username, started)
        state = await self.db.run(_load, channel_id)
        if state.backfill_done and (state.backfill_before or 0) <= 1:
            return BackfillReport(channel_id, username, 0, 0, 0, 0, state.backfill_before,
                                  state.backfill_before, True, "done", 0.0)
        since_at = datetime(since.year, since.month, since.day, tzinfo=UTC) if since is not None else None
        low, before = state.backfill_before, state.backfill_before
        taken = new = pages = 0
        stopped_by, total = "start", None
        while limit is None or taken < limit:
            page = await self._page(username, before)
            pages += 1
            kept = sorted((p for p in page.posts if low is None or p.message_id < low),
                          key=lambda p: p.message_id, reverse=True)
            done = page.before is None
            if since_at is not None and any(p.date < since_at for p in kept):
                kept = [p for p in kept if p.date >= since_at]
                stopped_by, done = "since", True
            if limit is not None and len(kept) > limit - taken:
                kept = kept[:limit - taken]
                stopped_by, done = "limit", False
            if not kept:
                if done:
                    await self.db.transaction(channels.mark_backfill_done, channel_id)
                if page.before is None or done:
                    break
                before = page.before
                continue
            if total is None:
                total = kept[0].message_id if limit is None else min(kept[0].message_id, limit)
            channel_id, result = await self.db.transaction(self._store_back, channel_id, username, page,
                                                           kept, done)
            low = kept[-1].message_id
            taken += len(kept)
            new += result.messages_new
            if progress is not None:
                progress(f"backfill @{username}", taken if limit is not None else (total or 0) - low + 1,
                         total)
            if done or stopped_by == "limit":
                break
            before = page.before if page.before is not None and page.before <= low else low
        else:
            stopped_by = "limit"
        finished = await self.db.run(channels.backfill_done, channel_id)
        self.log.info("web backfill @%s: %d messages (%d new), %d pages, stopped by %s, oldest id %s",
                      username, taken, new, pages, stopped_by, low)
        return BackfillReport(channel_id, username, taken, new, pages, pages, state.backfill_before, low,
                              finished, stopped_by, (self.now() - started).total_seconds())

    def _store_back(self, conn: sqlite3.Connection, channel_id: int, username: str, page: WebPage,
                    kept: list[WebPost], done: bool) -> tuple[int, IngestResult]:
        """One backfill page (newest first) with the progress, in one transaction; no alerts."""
        seen = self.now()
        channel_id = self._channel_id(conn, channel_id, username, page, kept, seen)
        batch = Batch(channel_record(page.channel, channel_id, username),
                      tuple(records_for(conn, channel_id, kept, seen)), seen_at=seen)
        result = ingest(conn, batch, seen)
        channels.record_backfill_page(conn, channel_id, kept[-1].message_id, kept[0].message_id, done)
        return channel_id, result

    # -- one post --------------------------------------------------------------------------------------

    async def fetch_post(self, username: str, message_id: int) -> IngestResult:
        """Archive one post (every part of an album) from its `?embed=1` page. Raises WebNotFound when
        the page shows no such post."""
        username = username.lstrip("@")
        page = parse_embed_page(await self.web.embed(username, message_id))
        for skipped_id, why in page.skipped:
            self.log.info("web @%s: post %s skipped (%s)", username, skipped_id, why)
        if not page.posts:
            raise WebNotFound(f"/{username}/{message_id}", "no such public post")
        now = self.now()

        def store(conn: sqlite3.Connection) -> IngestResult:
            real = next((p.channel_id for p in page.posts if p.channel_id), None)
            channel_id = channel_id_for(conn, username, real, now)
            batch = Batch(channel_record(None, channel_id, username),
                          tuple(records_for(conn, channel_id, page.posts, now)), seen_at=now)
            return ingest(conn, batch, now, self.after_ingest)

        result = await self.db.transaction(store)
        if self.fetch_origins:
            await self._fetch_origins([p for p in page.posts if p.forward is not None and p.forward.username])
        return result

    async def _fetch_origins(self, posts: Sequence[WebPost]) -> None:
        """Fetch, once each and within the cycle's budget, originals the archive lacks whose channel is
        not watched."""
        for post in posts:
            fwd = post.forward
            if fwd is None or not fwd.username or fwd.message_id is None:
                continue
            key = (fwd.username.lower(), fwd.message_id)
            if key in self._origins_tried or self._origin_budget <= 0:
                continue
            if not await self.db.run(_origin_missing, fwd.username, fwd.message_id):
                continue
            self._origins_tried.add(key)
            self._origin_budget -= 1
            try:
                await self.fetch_post(fwd.username, fwd.message_id)
                self.log.info("web: fetched the original https://t.me/%s/%d", fwd.username, fwd.message_id)
            except WebDeferred as exc:  # the rate limit: originals wait for a later cycle
                self._origin_budget = 0
                self.log.info("web: originals wait (%s)", exc)
            except WebError as exc:
                self.log.info("web: original https://t.me/%s/%d not fetched (%s)", fwd.username,
                              fwd.message_id, exc)


def _load(conn: sqlite3.Connection, channel_id: int) -> ChannelState:
    found = channels.load_channel(conn, channel_id=channel_id)
    assert found is not None  # made just before
    return found


def _origin_missing(conn: sqlite3.Connection, username: str, message_id: int) -> bool:
    """Whether a forward's original is neither archived nor in a watched channel (which reads it itself)."""
    channel_id = channels.channel_by_username(conn, username)
    if channel_id is None:
        return True
    return not (channels.is_watched(conn, channel_id)
                or channels.message_stored(conn, channel_id, message_id))

