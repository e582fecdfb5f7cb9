"""Live updates for joined channels (CHANWATCH_JOIN): what Telegram pushes, ingested as it arrives.

A reading account that has joined a channel is sent its new messages, edits and deletions as
updates. `Live` registers Telethon event handlers for them on the reading client and ingests each
at once, exactly as a poll would: normalised with the update's own chats (so a forward's origin has
its name), one `ingest` transaction with the percolator as `after`, service messages skipped. A
deletion is a Batch of `deleted_ids` dated to the second it arrived (`deleted_via="update"`).
Which channels count is read from the archive at each update (`channels.load_channel`), so /watch
and /unwatch apply at once; an update of any other channel changes nothing.

The cursor: live ingest never moves `channels.cursor` ("every message at or below it is stored"),
since an update proves nothing about the messages before it (a push may have been lost). The poll
goes on as before and reads down to the cursor, finding the live messages stored already: ingest is
idempotent and the percolator alerts a post once, so nothing is stored or alerted twice.

Gaps: Telethon catches up at start (`catch_up`) and fills a pts gap with GetChannelDifference by
itself; after the connection was re-established (MTProtoSender's reconnection callback, which
Telethon's own catch-up ignores) `on_reconnect` asks for a poll of every joined channel at once.

Alerts at once: a live ingest that made or changed a post wakes the dispatcher (`Wakeup`: a
dispatch runs now, or once more right after the one running; never two at once). Nothing a handler
does raises into Telethon's update loop: a failure is one log line (the archive's in the words of
`storage.faults.explain`) and the poll fills in what was lost.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from telethon import TelegramClient, events
from telethon.tl import types

from bot.clock import Clock, utcnow
from bot.history import refreshed
from bot.normalize import is_content, normalize
from storage import channels
from storage.database import Database
from storage.faults import explain
from storage.ingest import AfterIngest, ingest
from storage.records import Batch, ChannelState, IngestResult, MessageRecord

__all__ = ["Live", "Wakeup"]

log = logging.getLogger("chanwatch.live")


class Wakeup:
    """Runs `job` soon when called, coalescing calls: one run at a time, and a call during a run
    makes exactly one more run after it (so what the call was about is seen). `job` must not raise
    (the daemon's job bodies log their own errors); `wait()` lets the run in flight finish."""

    def __init__(self, job: Callable[[], Awaitable[Any]], name: str, *, logger: logging.Logger = log) -> None:
        self.job = job
        self.name = name
        self.log = logger
        self.runs = 0
        self._task: asyncio.Task | None = None
        self._again = False

    def __call__(self) -> None:
        """Ask for a run now (or right after the one running)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._again = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"wakeup:{self.name}")

    async def _run(self) -> None:
        while True:
            self.runs += 1
            try:
                await self.job()
            except Exception:  # a job body should log its own; this is the safety net
                self.log.exception("%s woken up and failed", self.name)
            if not self._again:
                return
            self._again = False

    @property
    def busy(self) -> bool:
        """Whether a run is in flight or due."""
        return self._task is not None and not self._task.done()

    async def wait(self) -> None:
        """Until no run is in flight or due."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])


def _live_ingest(conn: sqlite3.Connection, channel_id: int, chats: list[Any], records: list[MessageRecord],
                 deleted_ids: tuple[int, ...], seen_at: datetime, now: datetime,
                 after: AfterIngest | None, reads: Callable[[ChannelState], bool] | None = None
                 ) -> IngestResult | None:
    """Ingest what one update brought, if its channel is watched and read through the account (else
    None: `reads` leaves out the channels read by their web preview); the cursor stays."""
    state = channels.load_channel(conn, channel_id=channel_id)
    if state is None or not state.watched or (reads is not None and not reads(state)):
        return None
    batch = Batch(refreshed(state.channel(), chats), tuple(records), deleted_ids=deleted_ids, seen_at=seen_at,
                  deleted_via="update")
    return ingest(conn, batch, now, after)


def _chats_of(event: Any, message: Any) -> list[Any]:
    """The channels the update carried that normalising needs: its own, and a forward's origin."""
    chats = [event.chat]
    forward = getattr(message, "forward", None)
    if forward is not None:
        chats.append(forward.chat)
    return [c for c in chats if isinstance(c, types.Channel)]


class Live:
    """The live path of a reading client: event handlers for new messages, edits and deletions of
    the watched channels, ingested at once (see the module docstring).

    `on_ingest` is called after a live ingest that created or changed a post (the dispatcher's
    wake-up); `on_reconnect` when the client's connection was re-established (a poll of every joined
    channel). Counters (`stored`, `deleted`, `ignored`, `failed`) are for tests and benchmarks.
    """

    def __init__(self, db: Database, client: TelegramClient, *, after_ingest: AfterIngest | None = None,
                 on_ingest: Callable[[], None] | None = None, on_reconnect: Callable[[], None] | None = None,
                 reads: Callable[[ChannelState], bool] | None = None, now: Clock = utcnow,
                 logger: logging.Logger = log) -> None:
        self.db = db
        self.reads = reads
        self.client = client
        self.after_ingest = after_ingest
        self.on_ingest = on_ingest
        self.on_reconnect = on_reconnect
        self.now = now
        self.log = logger
        self.stored = self.deleted = self.ignored = self.failed = 0
        self._handlers: list[tuple[Callable[[Any], Awaitable[None]], Any]] = [
            (self._on_message, events.NewMessage()),
            (self._on_message, events.MessageEdited()),
            (self._on_deleted, events.MessageDeleted()),
        ]
        self._running: set[asyncio.Task] = set()
        self._sender: Any = None
        self._chained: Callable[[], Awaitable[None]] | None = None
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the handlers, hook the reconnection callback, and catch up on what was missed."""
        if self._started:
            return
        self._started = True
        for callback, event in self._handlers:
            self.client.add_event_handler(callback, event)
        self._hook_reconnect()
        await self.client.catch_up()  # updates.GetDifference; pts gaps later fill themselves
        self.log.info("live updates on: new messages, edits and deletions of joined channels are stored "
                      "as they arrive")

    async def stop(self) -> None:
        """Take no more updates and let the ingests in flight commit."""
        if not self._started:
            return
        self._started = False
        for callback, event in self._handlers:
            self.client.remove_event_handler(callback, event)
        if self._sender is not None and self._sender._auto_reconnect_callback == self._reconnected:
            self._sender._auto_reconnect_callback = self._chained
        running = [t for t in self._running if not t.done()]
        if running:
            await asyncio.wait(running)

    def _hook_reconnect(self) -> None:
        """Be told when the connection is re-established: MTProtoSender calls its
        `_auto_reconnect_callback` (Telethon's own only re-announces itself and catches nothing up).
        Telethon has no public hook for it; tests/bot/test_live.py pins this one."""
        sender = getattr(self.client, "_sender", None)
        if sender is None or not hasattr(sender, "_auto_reconnect_callback"):
            self.log.warning("cannot see reconnections of this Telethon version: messages missed while "
                             "disconnected wait for the next poll")
            return
        self._sender = sender
        self._chained = sender._auto_reconnect_callback
        sender._auto_reconnect_callback = self._reconnected

    async def _reconnected(self) -> None:
        if self._chained is not None:
            try:
                await self._chained()
            except Exception:
                self.log.exception("Telethon's reconnection callback failed")
        self.reconnected()

    def reconnected(self) -> None:
        """The connection was re-established: updates pushed meanwhile are lost, so poll now."""
        self.log.warning("the reading account reconnected to Telegram: polling every joined channel now "
                         "for what was pushed meanwhile")
        if self.on_reconnect is not None:
            self.on_reconnect()

    # -- handlers ---------------------------------------------------------------------------------

    async def _on_message(self, event: Any) -> None:
        """A new or edited message: stored (and percolated) if its channel is watched."""
        message = event.message
        peer = getattr(message, "peer_id", None)
        if not isinstance(peer, types.PeerChannel):
            return
        if not is_content(message):  # a pin, a title change: not a post
            return
        await self._guarded(f"message {message.id} of channel {peer.channel_id}", peer.channel_id,
                            _chats_of(event, message), message, ())

    async def _on_deleted(self, event: Any) -> None:
        """Deleted messages of a watched channel: deleted_at is the second the update arrived."""
        channel_id = getattr(event.original_update, "channel_id", None)
        if channel_id is None:  # private chats and basic groups: not ours
            return
        ids = tuple(event.deleted_ids or ())
        if ids:
            await self._guarded(f"deletion of {len(ids)} message(s) of channel {channel_id}", channel_id, [],
                                None, ids)

    async def _guarded(self, what: str, channel_id: int, chats: list[Any], message: Any,
                       deleted: tuple[int, ...]) -> None:
        """Normalise and ingest, never raising into Telethon's update loop: a failure is one line."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            records: list[MessageRecord] = []
            if message is not None:  # with the update's chats, so a forward's origin has its name
                records = [normalize(message, chats={c.id: c for c in chats})]
            arrived = self.now()
            result = await self.db.transaction(_live_ingest, channel_id, chats, records, deleted, arrived,
                                               arrived, self.after_ingest, self.reads)
        except sqlite3.Error as exc:
            self.failed += 1
            self.log.warning("live %s not stored: %s; the next poll reads it again", what,
                             explain(exc, self.db.path, daemon=True))
            return
        except Exception as exc:
            self.failed += 1
            self.log.error("live %s not stored (%s: %s); the next poll reads it again", what,
                           type(exc).__name__, exc, exc_info=exc)
            return
        finally:
            if task is not None:
                self._running.discard(task)
        if result is None:
            self.ignored += 1
            return
        self.stored += result.messages_new + result.messages_updated
        self.deleted += result.deletions
        self.log.info("live %s: %d new, %d updated, %d deleted", what, result.messages_new,
                      result.messages_updated, result.deletions)
        if (result.new_post_ids or result.edited_post_ids) and self.on_ingest is not None:
            self.on_ingest()
