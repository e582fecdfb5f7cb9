"""Poll cycle: resolve watched channels once, fetch new messages, re-check recent ones for edits/deletions.

Every request is a raw TL request built from the *stored* channel id + access_hash (never a
username lookup after the first resolve), sent under the `FloodPolicy`. Answers are normalised
with the answer's own `.chats`, so forwards carry their origin channel's username and title.

Crash safety: pages are ingested as they arrive *without* moving the cursor; the cursor (and the
channel's ok status) is written only with the last page, in the same transaction. A crash between
pages repeats work on the next cycle and never leaves a gap; ingest is idempotent, so nothing
duplicates.

A channel that was never polled (cursor 0) gets only its newest page: older history is the job of
`bot.backfill`. One failing channel (private, banned, gone, flood-deferred) is marked in its row
and the others go on; failures back off exponentially (`backoff`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from telethon import TelegramClient, errors
from telethon.tl import functions, types
from telethon.tl.tlobject import TLRequest

from bot.clock import utcnow
from bot.names import parse_channel_name, username_of
from bot.normalize import is_content, normalize
from bot.telegram import FloodDeferred, FloodPolicy, forget_local_flood
from storage.database import Database
from storage.ingest import AfterIngest, ingest, upsert_channel
from storage.records import Batch, Channel, IngestResult, MessageRecord, iso, parse_iso
from storage.retry import doubling

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "PAGE_SIZE",
    "Clock",
    "Sleep",
    "ChannelPoll",
    "ChannelRecheck",
    "ChannelState",
    "PollReport",
    "Poller",
    "RecheckReport",
    "RequestStats",
    "Requests",
    "ResolveOutcome",
    "backoff",
    "classify_error",
    "load_channel",
    "parse_channel_name",
    "records_of",
    "refreshed",
    "resolve_channels",
    "utcnow",
]

log = logging.getLogger("chanwatch.poller")

PAGE_SIZE = 100  # Telegram's maximum for messages.getHistory / channels.getMessages / getPeerDialogs
BACKOFF_BASE = 60.0  # seconds after the first consecutive failure; doubles each time
BACKOFF_CAP = 3600.0  # never wait more than an hour between attempts

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[Any]]


def backoff(failures: int) -> timedelta:
    """How long to leave a channel alone after its `failures`-th consecutive failure.

    1, 2, 4, 8, 16, 32 minutes, then capped at one hour: a channel that went private is retried
    hourly (it may come back), without costing a request every cycle.
    """
    return doubling(failures, BACKOFF_BASE, BACKOFF_CAP)


# --- channel rows ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A channel row as the poller needs it."""

    id: int
    username: str | None
    title: str | None
    access_hash: int | None
    cursor: int = 0
    status: str = "ok"
    failures: int = 0
    retry_at: datetime | None = None
    watched: bool = True
    backfill_before: int | None = None
    backfill_done: bool = False

    @property
    def name(self) -> str:
        """For logs: @username, else the id."""
        return f"@{self.username}" if self.username else str(self.id)

    @property
    def input_peer(self) -> types.InputPeerChannel:
        """The stored id + access_hash as an InputPeer (no username lookup)."""
        return types.InputPeerChannel(self.id, self.access_hash or 0)

    @property
    def input_channel(self) -> types.InputChannel:
        """The stored id + access_hash as an InputChannel."""
        return types.InputChannel(self.id, self.access_hash or 0)

    def channel(self) -> Channel:
        """The storage record for batches."""
        return Channel(self.id, self.username, self.title, self.access_hash, watched=self.watched)


_STATE_COLUMNS = (
    "id, username, title, access_hash, cursor, status, failures, retry_at, watched, "
    "backfill_before, backfill_done"
)


def _state(row: sqlite3.Row | tuple) -> ChannelState:
    return ChannelState(
        id=row[0], username=row[1], title=row[2], access_hash=row[3], cursor=row[4] or 0,
        status=row[5], failures=row[6] or 0, retry_at=parse_iso(row[7]), watched=bool(row[8]),
        backfill_before=row[9], backfill_done=bool(row[10]),
    )


def _load_watched(conn: sqlite3.Connection) -> list[ChannelState]:
    rows = conn.execute(f"SELECT {_STATE_COLUMNS} FROM channels WHERE watched = 1 ORDER BY id").fetchall()
    return [_state(r) for r in rows]


def _load_one(conn: sqlite3.Connection, channel_id: int | None, username: str | None) -> ChannelState | None:
    if channel_id is not None:
        row = conn.execute(f"SELECT {_STATE_COLUMNS} FROM channels WHERE id = ?", (channel_id,)).fetchone()
    else:
        row = conn.execute(
            f"""SELECT {_STATE_COLUMNS} FROM channels WHERE lower(username) = lower(?)
                ORDER BY access_hash IS NULL, watched DESC LIMIT 1""",
            (username,),
        ).fetchone()
    return _state(row) if row else None


async def load_channel(db: Database, *, channel_id: int | None = None,
                       username: str | None = None) -> ChannelState | None:
    """One stored channel by id or (case-insensitive) username, or None."""
    return await db.run(_load_one, channel_id, username)


# --- requests -------------------------------------------------------------------------------------


@dataclass(slots=True)
class RequestStats:
    """What one channel's work cost: requests, pages, flood seconds slept."""

    requests: int = 0
    pages: int = 0
    flood_slept: float = 0.0


class Requests:
    """Sends raw TL requests under the flood policy; shared by the poller and the backfill.

    `kind` names the request for the policy's per-kind bounds ("get_history", "get_messages",
    "get_peer_dialogs", "resolve_username", "join_channel", "get_channels"). Short flood waits are
    slept through `sleep`; long ones raise `FloodDeferred`. Never returns None on error.
    """

    def __init__(self, client: TelegramClient, flood: FloodPolicy, *, sleep: Sleep = asyncio.sleep,
                 now: Clock = utcnow, logger: logging.Logger = log) -> None:
        self.client = client
        self.flood = flood
        self.sleep = sleep
        self.now = now
        self.log = logger
        self.count = 0
        self.flood_slept = 0.0

    async def __call__(self, kind: str, request: TLRequest, *, stats: RequestStats | None = None,
                       via: Callable[[TLRequest], Awaitable[Any]] | None = None) -> Any:
        """Send `request` (through `via`, e.g. a takeout client, if given) and return the answer."""
        send = via or self.client
        constructor = request.CONSTRUCTOR_ID

        async def attempt() -> Any:
            forget_local_flood(self.client, constructor)
            self.count += 1
            if stats is not None:
                stats.requests += 1
            return await send(request)

        async def sleep(seconds: float) -> None:
            await self.sleep(seconds)
            self.flood_slept += seconds
            if stats is not None:
                stats.flood_slept += seconds

        return await self.flood.call(attempt, kind=kind, sleep=sleep, log=self.log, now=self.now)


# --- errors ---------------------------------------------------------------------------------------

_NOT_FOUND = (errors.ChannelInvalidError, errors.UsernameNotOccupiedError, errors.UsernameInvalidError)
_BANNED = (errors.ChannelBannedError, errors.UserBannedInChannelError)
# Errors about one peer: GetPeerDialogs fails as a whole for them, so the chunk is bisected.
_PEER_ERRORS = (errors.ChannelPrivateError, *_NOT_FOUND, *_BANNED, errors.PeerIdInvalidError)


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(status, detail) for a failed channel: private, not_found, banned, or error."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, errors.ChannelPrivateError):
        return "private", detail
    if isinstance(exc, _NOT_FOUND):
        return "not_found", detail
    if isinstance(exc, _BANNED):
        return "banned", detail
    return "error", detail


# --- normalising answers --------------------------------------------------------------------------


def records_of(messages: Iterable[Any], chats: Sequence[Any], channel_id: int) -> list[MessageRecord]:
    """Content messages of `channel_id` in an answer, normalised with the answer's chats."""
    by_id: Mapping[int, Any] = {c.id: c for c in chats}
    out = []
    for message in messages:
        if not is_content(message):
            continue
        peer = message.peer_id
        if isinstance(peer, types.PeerChannel) and peer.channel_id == channel_id:
            out.append(normalize(message, chats=by_id))
    return out


def refreshed(channel: Channel, chats: Sequence[Any]) -> Channel:
    """`channel` with the username/title the answer carries for it (renames are followed)."""
    for chat in chats:
        if getattr(chat, "id", None) == channel.id and isinstance(chat, types.Channel):
            return replace(channel, username=username_of(chat) or channel.username,
                           title=chat.title or channel.title)
    return channel


# --- resolving ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolveOutcome:
    """What became of one name given to `resolve_channels`.

    `status`: ok, private, not_found (no such username: no row is stored, a row needs an id),
    banned, not_channel (a user or bot), invalid (not a username), deferred (flood wait), error.
    `requested` tells whether a ResolveUsername request was sent (False: the stored row was reused).
    """

    name: str
    status: str
    username: str | None = None
    channel_id: int | None = None
    title: str | None = None
    detail: str | None = None
    requested: bool = False
    joined: bool = False
    retry_at: datetime | None = None


def _store_resolved(conn: sqlite3.Connection, channel: Channel, status: str, detail: str | None,
                    now: str) -> None:
    upsert_channel(conn, channel, now)
    conn.execute(
        "UPDATE channels SET watched = 1, status = ?, status_detail = ? WHERE id = ?",
        (status, detail, channel.id),
    )


def _set_watched(conn: sqlite3.Connection, channel_id: int) -> None:
    conn.execute("UPDATE channels SET watched = 1 WHERE id = ?", (channel_id,))


def _set_status(conn: sqlite3.Connection, channel_id: int, status: str, detail: str | None) -> None:
    conn.execute("UPDATE channels SET status = ?, status_detail = ? WHERE id = ?",
                 (status, detail, channel_id))


async def resolve_channels(
    db: Database,
    client: TelegramClient,
    names: Sequence[str],
    *,
    join: bool = False,
    flood: FloodPolicy | None = None,
    now: Clock = utcnow,
    sleep: Sleep = asyncio.sleep,
    logger: logging.Logger = log,
) -> list[ResolveOutcome]:
    """Resolve @usernames / t.me links to stored, watched channels; one outcome per name, in order.

    A channel already stored with id + access_hash is reused without any request (and marked
    watched); otherwise one raw contacts.ResolveUsername is sent (Telethon's get_entity would turn
    USERNAME_NOT_OCCUPIED into a ValueError) and the channel stored. With `join`, channels the
    account has not joined are joined (channels.GetChannels tells which stored ones are joined).
    """
    requests = Requests(client, flood or FloodPolicy(), sleep=sleep, now=now, logger=logger)
    outcomes: list[ResolveOutcome] = []
    joinable: dict[int, tuple[int, ChannelState, bool | None]] = {}  # id -> (outcome index, state, left)
    for name in names:
        try:
            username = parse_channel_name(name)
        except ValueError as exc:
            logger.warning("resolve %s: %s", name, exc)
            outcomes.append(ResolveOutcome(name, "invalid", detail=str(exc)))
            continue
        stored = await load_channel(db, username=username)
        if stored is not None and stored.access_hash is not None:
            if not stored.watched:
                await db.transaction(_set_watched, stored.id)
            outcomes.append(ResolveOutcome(name, stored.status, stored.username, stored.id, stored.title))
            joinable.setdefault(stored.id, (len(outcomes) - 1, stored, None))
            continue
        outcome, state, left = await _resolve_one(db, requests, name, username, now, logger)
        outcomes.append(outcome)
        if state is not None and outcome.status == "ok":
            joinable.setdefault(state.id, (len(outcomes) - 1, state, left))
    if join and joinable:
        await _join_all(db, requests, joinable, outcomes, logger)
    return outcomes


async def _resolve_one(
    db: Database, requests: Requests, name: str, username: str, now: Clock, logger: logging.Logger,
) -> tuple[ResolveOutcome, ChannelState | None, bool | None]:
    """One ResolveUsername; stores the channel; returns (outcome, state, left flag)."""
    try:
        answer = await requests("resolve_username", functions.contacts.ResolveUsernameRequest(username))
    except (errors.UsernameNotOccupiedError, errors.UsernameInvalidError) as exc:
        logger.warning("resolve @%s: not found (%s)", username, type(exc).__name__)
        return ResolveOutcome(name, "not_found", username, detail=str(exc), requested=True), None, None
    except FloodDeferred as exc:
        logger.warning("resolve @%s: %s", username, exc)
        return ResolveOutcome(name, "deferred", username, detail=str(exc), requested=True,
                              retry_at=exc.retry_at), None, None
    except (errors.RPCError, OSError) as exc:
        status, detail = classify_error(exc)
        logger.warning("resolve @%s: %s", username, detail)
        return ResolveOutcome(name, status, username, detail=detail, requested=True), None, None
    peer = answer.peer
    chat = next((c for c in answer.chats if isinstance(peer, types.PeerChannel) and c.id == peer.channel_id),
                None)
    if chat is None:
        logger.warning("resolve @%s: not a channel (%s)", username, type(peer).__name__)
        return ResolveOutcome(name, "not_channel", username, detail=f"@{username} is not a channel",
                              requested=True), None, None
    private = isinstance(chat, types.ChannelForbidden)
    status, detail = ("private", "the channel is private") if private else ("ok", None)
    channel = Channel(chat.id, username_of(chat) or username, chat.title, chat.access_hash, watched=True)
    await db.transaction(_store_resolved, channel, status, detail, iso(now()) or "")
    logger.info("resolved @%s -> channel %d (%s)%s", username, chat.id, chat.title,
                " [private]" if private else "")
    state = ChannelState(chat.id, channel.username, chat.title, chat.access_hash, status=status)
    left = None if private else bool(getattr(chat, "left", False))
    return (ResolveOutcome(name, status, channel.username, chat.id, chat.title, detail, requested=True),
            state, left)


async def _join_all(
    db: Database, requests: Requests, joinable: dict[int, tuple[int, ChannelState, bool | None]],
    outcomes: list[ResolveOutcome], logger: logging.Logger,
) -> None:
    """Join the channels whose `left` flag says the account is not a member."""
    unknown = [state for _, state, left in joinable.values() if left is None]
    left_flags = {cid: left for cid, (_, _, left) in joinable.items() if left is not None}
    for start in range(0, len(unknown), PAGE_SIZE):
        chunk = unknown[start:start + PAGE_SIZE]
        try:
            answer = await requests("get_channels",
                                    functions.channels.GetChannelsRequest([s.input_channel for s in chunk]))
        except (FloodDeferred, errors.RPCError, OSError) as exc:
            logger.warning("could not check membership of %d channels: %s", len(chunk), exc)
            continue
        for chat in answer.chats:
            if isinstance(chat, types.Channel):
                left_flags[chat.id] = bool(chat.left)
    for cid, left in left_flags.items():
        if not left:
            continue
        index, state, _ = joinable[cid]
        try:
            await requests("join_channel", functions.channels.JoinChannelRequest(state.input_channel))
        except errors.UserAlreadyParticipantError:
            continue
        except FloodDeferred as exc:
            logger.warning("join %s deferred: %s", state.name, exc)
            outcomes[index] = replace(outcomes[index], detail=f"not joined: {exc}", retry_at=exc.retry_at)
            continue
        except (errors.RPCError, OSError) as exc:
            status, detail = classify_error(exc)
            logger.warning("join %s failed: %s", state.name, detail)
            if status != "error":  # private / banned / gone: the row says so; otherwise poll by history
                await db.transaction(_set_status, cid, status, detail)
                outcomes[index] = replace(outcomes[index], status=status, detail=detail)
            else:
                outcomes[index] = replace(outcomes[index], detail=f"not joined: {detail}")
            continue
        logger.info("joined %s", state.name)
        outcomes[index] = replace(outcomes[index], joined=True)


# --- reports --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelPoll:
    """One channel's part of a poll cycle.

    `status` is the channel's status afterwards; `skipped` means its retry_at was in the future;
    `deferred_until` is set when a long flood wait rescheduled it; `error` holds the failure.
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


@dataclass(frozen=True, slots=True)
class RecheckReport:
    """A whole re-check cycle."""

    started: datetime
    channels: tuple[ChannelRecheck, ...]
    requests: int

    def by_id(self, channel_id: int) -> ChannelRecheck:
        """The result for one channel."""
        return next(c for c in self.channels if c.channel_id == channel_id)


# --- transactions ---------------------------------------------------------------------------------


def _commit_page(conn: sqlite3.Connection, batch: Batch, now: datetime, after: AfterIngest | None,
                 final: bool) -> IngestResult:
    """Ingest one page; with `final`, the cursor (in the batch) and the ok status go with it."""
    result = ingest(conn, batch, now, after)
    if final:
        stamp = iso(now)
        conn.execute(
            """UPDATE channels SET last_poll = ?, last_success = ?, status = 'ok', status_detail = NULL,
               failures = 0, retry_at = NULL WHERE id = ?""",
            (stamp, stamp, batch.channel.id),
        )
    return result


def _mark_idle(conn: sqlite3.Connection, channels: Sequence[Channel], now: str) -> None:
    """Channels checked and found without news: ok, polled now; names refreshed from the answer."""
    for ch in channels:
        conn.execute(
            """UPDATE channels SET username = coalesce(?, username), title = coalesce(?, title),
               last_poll = ?, last_success = ?, status = 'ok', status_detail = NULL, failures = 0,
               retry_at = NULL WHERE id = ?""",
            (ch.username, ch.title, now, now, ch.id),
        )


def _mark_failed(conn: sqlite3.Connection, channel_id: int, status: str, detail: str, now: str,
                 retry_at: str) -> int:
    """Record a failure: status, detail, one more consecutive failure, and the backoff."""
    conn.execute(
        """UPDATE channels SET status = ?, status_detail = ?, failures = failures + 1, last_poll = ?,
           retry_at = ? WHERE id = ?""",
        (status, detail, now, retry_at, channel_id),
    )
    return conn.execute("SELECT failures FROM channels WHERE id = ?", (channel_id,)).fetchone()[0]


def _mark_deferred(conn: sqlite3.Connection, channel_id: int, detail: str, now: str, retry_at: str) -> None:
    """A long flood wait: keep the status, come back when Telegram allows."""
    conn.execute(
        "UPDATE channels SET status_detail = ?, last_poll = ?, retry_at = ? WHERE id = ?",
        (detail, now, retry_at, channel_id),
    )


def _recent_window(conn: sqlite3.Connection, channel_id: int, window_ids: int, since: str
                   ) -> dict[int, str | None]:
    """{message_id: stored edit_date} of the last `window_ids` ids and those dated since `since`."""
    rows = conn.execute(
        """SELECT message_id, edit_date FROM (
               SELECT message_id, edit_date FROM messages WHERE channel_id = :c AND deleted_at IS NULL
               ORDER BY message_id DESC LIMIT :n)
           UNION
           SELECT message_id, edit_date FROM messages
           WHERE channel_id = :c AND deleted_at IS NULL AND date >= :since""",
        {"c": channel_id, "n": window_ids, "since": since},
    ).fetchall()
    return {r[0]: r[1] for r in rows}


# --- the poller -----------------------------------------------------------------------------------


class Poller:
    """Polls watched channels for new messages (`poll_once`) and re-reads recent ones (`recheck_once`).

    `join=True`: the account joins the watched channels, and one messages.GetPeerDialogs per 100
    channels tells which have news (an idle cycle for 200 channels costs 2 requests). Without it,
    each due channel costs one messages.GetHistory per cycle. `after_ingest` runs inside each ingest
    transaction (the alert percolator). `now` and `sleep` are injectable for tests.
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
        self.log = logger
        self.requests = Requests(client, self.flood, sleep=sleep, now=now, logger=logger)
        self._semaphore = asyncio.Semaphore(concurrency)

    # -- poll cycle -------------------------------------------------------------------------------

    async def poll_once(self) -> PollReport:
        """One poll cycle over the watched channels (read from the DB each time, so /watch applies)."""
        started = self.now()
        count0, slept0 = self.requests.count, self.requests.flood_slept
        states = await self.db.run(_load_watched)
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
                await self.db.transaction(_mark_idle, idle, iso(started) or "")
        results += await asyncio.gather(*(self._poll_channel(s, join) for s, join in to_fetch))
        order = {s.id: i for i, s in enumerate(states)}
        results.sort(key=lambda r: order.get(r.channel_id, 0))
        report = PollReport(started, tuple(results), self.requests.count - count0,
                            self.requests.flood_slept - slept0)
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
                [types.InputDialogPeer(s.input_peer) for s in chunk])
            try:
                answer = await self.requests("get_peer_dialogs", request)
            except _PEER_ERRORS as exc:
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
                if join_first:
                    await self._join(state, stats)
                return await self._fetch_new(state, stats)
            except FloodDeferred as exc:
                return await self._defer(state, exc, stats)
            except Exception as exc:  # one channel never stops the others
                return await self._fail(state, exc, stats)

    async def _join(self, state: ChannelState, stats: RequestStats) -> None:
        """Join a channel the dialogs did not list (so later cycles see it in GetPeerDialogs)."""
        try:
            await self.requests("join_channel", functions.channels.JoinChannelRequest(state.input_channel),
                                stats=stats)
            self.log.info("joined %s", state.name)
        except errors.UserAlreadyParticipantError:
            pass
        except errors.ChannelsTooMuchError:
            self.log.warning("cannot join %s: too many channels joined; polling it by history", state.name)

    async def _fetch_new(self, state: ChannelState, stats: RequestStats) -> ChannelPoll:
        """Newest-first pages down to the cursor; the cursor moves only with the last page."""
        cursor = state.cursor
        channel = state.channel()
        highest = cursor
        offset_id = 0
        new = updated = 0
        post_ids: list[int] = []
        while True:
            answer = await self.requests("get_history", functions.messages.GetHistoryRequest(
                peer=state.input_peer, offset_id=offset_id, offset_date=None, add_offset=0,
                limit=self.page_size, max_id=0, min_id=cursor, hash=0,
            ), stats=stats)
            stats.pages += 1
            messages = [m for m in answer.messages if getattr(m, "id", 0) > cursor]
            channel = refreshed(channel, answer.chats)
            records = records_of(messages, answer.chats, state.id)
            if messages:
                highest = max(highest, max(m.id for m in messages))
            lowest = min((m.id for m in messages), default=None)
            # Stop on a short page or one that reaches the cursor; a never-polled channel gets one
            # page only (its history is backfill's job).
            last = (cursor == 0 or lowest is None or len(answer.messages) < self.page_size
                    or lowest <= cursor + 1)
            batch = Batch(channel, tuple(records), cursor=highest if last else None)
            result = await self.db.transaction(_commit_page, batch, self.now(), self.after_ingest, last)
            new += result.messages_new
            updated += result.messages_updated
            post_ids += result.new_post_ids
            if last:
                break
            offset_id = lowest
        self.log.info("poll %s: %d new, %d updated, %d pages, %d requests, cursor %d -> %d, ok",
                      f"@{channel.username}" if channel.username else channel.id, new, updated,
                      stats.pages, stats.requests, cursor, highest)
        return ChannelPoll(state.id, channel.username, "ok", new, updated, stats.pages, stats.requests,
                           highest, stats.flood_slept, new_post_ids=tuple(post_ids))

    async def _defer(self, state: ChannelState, exc: FloodDeferred, stats: RequestStats) -> ChannelPoll:
        """A long flood wait: keep the status, retry when Telegram allows."""
        now = iso(self.now()) or ""
        try:
            await self.db.transaction(_mark_deferred, state.id, str(exc), now, iso(exc.retry_at))
        except Exception:
            self.log.exception("poll %s: could not record the flood wait", state.name)
        self.log.warning("poll %s: deferred until %s (%s), %d pages, %d requests", state.name,
                         iso(exc.retry_at), exc, stats.pages, stats.requests)
        return ChannelPoll(state.id, state.username, state.status, pages=stats.pages, requests=stats.requests,
                           cursor=state.cursor, flood_slept=stats.flood_slept, deferred_until=exc.retry_at,
                           retry_at=exc.retry_at, error=str(exc))

    async def _fail(self, state: ChannelState, exc: BaseException, stats: RequestStats) -> ChannelPoll:
        """Mark the channel failed (status from the error) and back off exponentially."""
        status, detail = classify_error(exc)
        now = self.now()
        retry_at = now + backoff(state.failures + 1)
        try:
            await self.db.transaction(_mark_failed, state.id, status, detail, iso(now), iso(retry_at))
        except Exception:
            self.log.exception("poll %s: could not record the failure", state.name)
        if isinstance(exc, errors.RPCError | OSError | ValueError):
            self.log.warning("poll %s: %s (%s); retry after %s", state.name, status, detail, iso(retry_at))
        else:  # not Telegram's doing: keep the traceback
            self.log.error("poll %s: %s (%s); retry after %s", state.name, status, detail, iso(retry_at),
                           exc_info=exc)
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
        states = await self.db.run(_load_watched)
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
        return RecheckReport(started, tuple(results), self.requests.count - count0)

    async def _recheck_channel(self, state: ChannelState, window_ids: int, since: str) -> ChannelRecheck:
        stats = RequestStats()
        async with self._semaphore:
            try:
                return await self._recheck(state, window_ids, since, stats)
            except FloodDeferred as exc:
                poll = await self._defer(state, exc, stats)
            except Exception as exc:
                poll = await self._fail(state, exc, stats)
            return ChannelRecheck(state.id, state.username, poll.status, requests=stats.requests,
                                  error=poll.error)

    async def _recheck(self, state: ChannelState, window_ids: int, since: str, stats: RequestStats
                       ) -> ChannelRecheck:
        stored = await self.db.run(_recent_window, state.id, window_ids, since)
        ids = sorted(stored, reverse=True)
        channel = state.channel()
        edited: list[MessageRecord] = []
        deleted: list[int] = []
        for start in range(0, len(ids), PAGE_SIZE):
            chunk = ids[start:start + PAGE_SIZE]
            answer = await self.requests("get_messages", functions.channels.GetMessagesRequest(
                state.input_channel, [types.InputMessageID(i) for i in chunk]), stats=stats)
            channel = refreshed(channel, answer.chats)
            found = {
                m.id: m for m in answer.messages
                if not isinstance(m, types.MessageEmpty)
                and isinstance(getattr(m, "peer_id", None), types.PeerChannel)
                and m.peer_id.channel_id == state.id
            }
            changed = []
            for message_id in chunk:
                message = found.get(message_id)
                if message is None:
                    deleted.append(message_id)
                elif is_content(message) and message.edit_date is not None and (
                    (iso(message.edit_date) or "") > (stored[message_id] or "")
                ):
                    changed.append(message)
            edited += records_of(changed, answer.chats, state.id)
        result = IngestResult()
        if edited or deleted:
            batch = Batch(channel, tuple(edited), deleted_ids=tuple(deleted), seen_at=self.now())
            result = await self.db.transaction(ingest, batch, self.now(), self.after_ingest)
        self.log.info("recheck %s: %d checked, %d edited, %d deleted, %d requests", state.name, len(ids),
                      result.edits, result.deletions, stats.requests)
        return ChannelRecheck(state.id, channel.username, state.status, len(ids), result.edits,
                              result.deletions, stats.requests, edited_post_ids=result.edited_post_ids)

