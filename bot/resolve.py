"""Resolving channel names to stored channels (one ResolveUsername per name never seen), and joining them.

A name already stored with an id and access hash costs no request: later polls go by id, so a
renamed channel keeps working. A name Telegram does not know, a private channel, a user instead
of a channel: each is one `ResolveOutcome` with a status, and `record_outcomes` writes them to the
watch list (a resolved name's placeholder is adopted by the real row; a failed one backs off).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from telethon import TelegramClient, errors
from telethon.tl import functions, types

from bot.clock import Clock, Sleep, utcnow
from bot.history import PAGE_SIZE
from bot.names import parse_channel_name, username_of
from bot.telegram import FloodDeferred, FloodPolicy, Requests, classify_error, input_channel
from storage import channels, identity, leases
from storage.database import Database
from storage.records import Channel, ChannelState, channel_label, iso

__all__ = ["ResolveOutcome", "WatchList", "record_outcomes", "resolve_channels"]

log = logging.getLogger("chanwatch.resolve")


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
    account_id: int | None = None,
) -> list[ResolveOutcome]:
    """Resolve @usernames / t.me links to stored, watched channels; one outcome per name, in order.
    With `account_id` (the reading account's user id), a channel counts as stored only with that
    account's own access hash, and what is resolved is recorded as readable by it
    (`storage.leases.can_read`): an access hash is valid for one account only.

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
        stored = await db.run(channels.load_channel, username=username, account_id=account_id)
        if stored is not None and stored.access_hash is not None:
            if not stored.watched:
                await db.transaction(channels.set_watched, stored.id)
            if account_id is not None:  # a hash stored before accounts were recorded becomes this one's
                await db.transaction(leases.can_read, account_id, stored.id, stored.access_hash)
            outcomes.append(ResolveOutcome(name, stored.status, stored.username, stored.id, stored.title))
            joinable.setdefault(stored.id, (len(outcomes) - 1, stored, None))
            continue
        outcome, state, left = await _resolve_one(db, requests, name, username, now, logger, account_id)
        outcomes.append(outcome)
        if state is not None and outcome.status == "ok":
            joinable.setdefault(state.id, (len(outcomes) - 1, state, left))
    if join and joinable:
        await _join_all(db, requests, joinable, outcomes, logger)
    return outcomes


async def _resolve_one(
    db: Database, requests: Requests, name: str, username: str, now: Clock, logger: logging.Logger,
    account_id: int | None = None,
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
    await db.transaction(_store_resolved, channel, status, detail, iso(now()) or "", account_id)
    logger.info("resolved @%s -> channel %d (%s)%s", username, chat.id, chat.title,
                " [private]" if private else "")
    state = ChannelState(chat.id, channel.username, chat.title, chat.access_hash, status=status)
    left = None if private else bool(getattr(chat, "left", False))
    return (ResolveOutcome(name, status, channel.username, chat.id, chat.title, detail, requested=True),
            state, left)


def _store_resolved(conn: sqlite3.Connection, channel: Channel, status: str, detail: str | None, now: str,
                    account_id: int | None) -> None:
    """The resolved channel stored, and (with an account) that account's access hash for it."""
    channels.store_resolved(conn, channel, status, detail, now)
    if account_id is not None and channel.access_hash is not None:
        leases.can_read(conn, account_id, channel.id, channel.access_hash)


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
                                    functions.channels.GetChannelsRequest([input_channel(s) for s in chunk]))
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
            await requests("join_channel", functions.channels.JoinChannelRequest(input_channel(state)))
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
                await db.transaction(channels.set_status, cid, status, detail)
                outcomes[index] = replace(outcomes[index], status=status, detail=detail)
            else:
                outcomes[index] = replace(outcomes[index], detail=f"not joined: {detail}")
            continue
        logger.info("joined %s", state.name)
        outcomes[index] = replace(outcomes[index], joined=True)


_FAILED_STATUS = {"private": "private", "not_found": "not_found", "banned": "banned",
                  "not_channel": "not_found", "invalid": "error", "error": "error"}


def record_outcomes(conn: sqlite3.Connection, outcomes: Sequence[ResolveOutcome], now: datetime, *,
                    watch_failed: bool = False) -> None:
    """Write outcomes to the watch list: a resolved name's placeholder goes (the real row took
    over; what it held is adopted, `storage.identity.adopt`), a deferred one waits for its flood
    wait, a failed one is marked and backs off.

    `watch_failed`: a failed name with no row yet (a configured one) gets a placeholder first, as
    `chanwatch channels add` would make, so it is tried again when due instead of being forgotten
    until the next start."""
    for outcome in outcomes:
        name = outcome.username
        if name is None:
            try:
                name = parse_channel_name(outcome.name)
            except ValueError:
                continue
        if outcome.channel_id is not None:  # what the web reader stored under the name moves to the id
            identity.adopt_username(conn, Channel(outcome.channel_id, name, outcome.title), now)
            channels.forget_placeholder(conn, name)
            continue
        if watch_failed:
            channels.add_watch_name(conn, name, now)
        if outcome.status == "deferred":
            channels.defer_unresolved(conn, name, outcome.detail, outcome.retry_at)
        else:
            channels.fail_unresolved(conn, name, _FAILED_STATUS.get(outcome.status, "error"),
                                     outcome.detail or outcome.status, now)


async def watch_by_web(db: Database, name: str, now: datetime) -> str:
    """/watch for a channel read by its web preview: put the name on the watch list for the web
    reader (no account involved); the reply line."""
    try:
        username = parse_channel_name(name)
    except ValueError as exc:
        return str(exc)
    outcome = await db.transaction(channels.add_watch_name, username, now)
    if outcome == "already watched":
        return f"@{username} is already watched"
    return f"watching @{username} by its web preview; new posts arrive with the next poll"


async def unwatch(db: Database, name: str) -> str:
    """/unwatch: stop reading a channel, however it is read (its archive stays); the reply line."""
    try:
        username = parse_channel_name(name)
    except ValueError as exc:
        return str(exc)
    changed = await db.transaction(channels.unwatch_name, username)
    return f"stopped watching @{username}" if changed else f"@{username} is not watched"


class WatchList:
    """The daemon's watch list through the reading account: the configured names and those added
    offline are resolved at start, names added since before each poll, and /watch and /unwatch
    answer with one line. Every outcome is recorded on the archive (`record_outcomes`). Names read by
    their web preview (their own source, else `default_source`) are left to the web reader."""

    def __init__(self, db: Database, client: TelegramClient, configured: Sequence[str] = (), *,
                 join: bool = False, flood: FloodPolicy | None = None, now: Clock = utcnow,
                 sleep: Sleep = asyncio.sleep, default_source: str = "api", logger: logging.Logger = log
                 ) -> None:
        self.account_id: int | None = None  # the reading account (set once known): its own hashes
        self.held: Callable[[], Collection[int]] | None = None  # a reader's leased channels (bot.leases)
        self.db = db
        self.client = client
        self.configured = tuple(configured)
        self.default_source = default_source
        self.join = join
        self.flood = flood or FloodPolicy()
        self.now = now
        self.sleep = sleep
        self.log = logger

    async def _resolve(self, names: Sequence[str], *, watch_failed: bool = False) -> list[ResolveOutcome]:
        """Resolve (and join) the names the account reads; a channel read by its web preview is the
        web reader's: the account neither looks it up nor joins it."""
        web = await self.db.run(channels.read_by_web, names, self.default_source)
        if web and watch_failed:  # configured: on the watch list, for the web reader
            for name in sorted(web):
                await self.db.transaction(channels.add_watch_name, name, self.now())
        names = [n for n in names if n.lower().lstrip("@") not in web]
        if not names:
            return []
        outcomes = await resolve_channels(self.db, self.client, names, join=self.join, flood=self.flood,
                                          now=self.now, sleep=self.sleep, logger=self.log,
                                          account_id=self.account_id)
        await self.db.transaction(record_outcomes, outcomes, self.now(), watch_failed=watch_failed)
        return outcomes

    async def resolve_configured(self) -> list[ResolveOutcome]:
        """Resolve CHANWATCH_CHANNELS and the names added with `chanwatch channels add` (joining
        when CHANWATCH_JOIN is set); each failure is logged and recorded (a configured name that
        failed stays on the watch list as a placeholder, tried again before a later poll), the
        others go on."""
        pending = await self.db.run(channels.pending_names, None, self.default_source,
                                    account_id=self.account_id)
        names = list(dict.fromkeys([*self.configured, *pending]))
        if not names:
            return []
        try:
            outcomes = await self._resolve(names, watch_failed=True)
        except Exception:
            self.log.exception("could not resolve the watched channels; polling those already resolved")
            return []
        ok = sum(1 for o in outcomes if o.channel_id is not None and o.status == "ok")
        self.log.info("channels: %d of %d resolved", ok, len(outcomes))
        return outcomes

    async def resolve_due(self) -> list[ResolveOutcome]:
        """Names added while the daemon runs (or due for another try), and held channels this account
        has no access hash for, are resolved before a poll; the outcomes (none: nothing was due)."""
        names = await self.db.run(channels.pending_names, iso(self.now()), self.default_source,
                                  account_id=self.account_id,
                                  channel_ids=None if self.held is None else self.held())
        return await self._resolve(names) if names else []

    async def watch(self, name: str) -> str:
        """The admin /watch hook: resolve (and join) a channel; the reply line."""
        try:
            parse_channel_name(name)
        except ValueError as exc:
            return str(exc)
        if await self.db.run(channels.read_by_web, [name], self.default_source):
            return await watch_by_web(self.db, name, self.now())
        [outcome] = await self._resolve([name])
        if outcome.channel_id is not None and outcome.status == "ok":
            shown = channel_label(outcome.username, None, outcome.channel_id)
            title = f" ({outcome.title})" if outcome.title else ""
            joined = ", joined" if outcome.joined else ""
            live = self.join and not (outcome.detail or "").startswith("not joined")
            when = "as they are posted (live updates)" if live else "with the next poll"
            return f"watching {shown}{title}{joined}; new posts arrive {when}"
        return f"cannot watch {name}: {outcome.status} ({outcome.detail or outcome.status})"

    async def unwatch(self, name: str) -> str:
        """The admin /unwatch hook: stop polling a channel (its archive stays); the reply line."""
        return await unwatch(self.db, name)
