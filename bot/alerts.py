"""Alert dispatcher: outbox rows -> formatted HTML messages -> bot sends, paced, retried, digested.

Delivery is exactly once, across crashes and dispatcher takeovers too: each alert is marked sent in
its own transaction right after Telegram accepted the message, and every message carries a random_id
derived from its outbox row's (`storage.outbox.claim_random_ids`: fixed at the row's first claim). A
message sent again — after a crash between the send and the mark, or by a second dispatcher sending
the same row during a takeover — repeats an id Telegram has seen from this bot, and Telegram refuses it
(RANDOM_ID_DUPLICATE): the row is marked sent and nothing reaches the chat twice. A crash before a send
loses nothing (the row stays pending).

Instant chats are served by a job every few seconds (`dispatch_instant`); digest chats by one cron
job each (`send_digest`), on the subscriber's schedule in its time zone. Sends are paced within
Telegram's bot limits (about one message a second per chat, 25 a second overall). A flood wait is
slept through up to `flood_max_wait`, else the rows wait (`next_try_at`); a chat that blocked the
bot or vanished is paused with the reason and its alerts stay queued; any other error counts a
failed attempt with backoff (`storage.outbox`). One chat's trouble never stops the others, and no
job body ever raises.

Alerts and digests name the media a post carries (`storage.media_queue.files_of_post`). With
`photo_dir` (CHANWATCH_ALERT_MEDIA, the media store's root) an instant alert for a post whose photo is
downloaded is sent as that photo, the alert as its caption (1024 characters: the snippet shrinks), or
the photo and then the alert as text when even the shortest caption is too long; a photo not yet
downloaded, or gone from the disk, leaves the alert as text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from telethon import TelegramClient, errors
from telethon.extensions import html
from telethon.tl.functions.messages import SendMediaRequest, SendMessageRequest
from telethon.tl.functions.upload import SaveFilePartRequest
from telethon.tl.functions.users import GetUsersRequest
from telethon.tl.types import InputMediaUploadedPhoto

from bot.clock import cron_trigger, utcnow
from bot.formatting import DigestEntry, DigestGroup, render_alert, render_caption, render_digest
from bot.telegram import (
    REQUEST_TIMEOUT,
    FloodDeferred,
    answered_within,
    call_with_flood_policy,
    forget_local_flood,
    input_peer_of,
    send_once,
)
from storage.database import Database
from storage.faults import explain
from storage.media_queue import files_of_post
from storage.outbox import claim_random_ids, defer, mark_failed, mark_sent, pending_digest, pending_instant
from storage.peers import peer_of
from storage.query import QueryError, parse
from storage.records import Alert, Post, PostFile, Rule, Subscriber
from storage.rules import get_rule, get_subscriber, list_subscribers, set_paused
from storage.search import highlight_spans, load_posts, merge_spans

__all__ = [
    "DIGEST_GRACE",
    "GONE_ERRORS",
    "INSTANT_JOB",
    "REFRESH_JOB",
    "ChatUnreachable",
    "Dispatcher",
    "Pacer",
    "digest_job_id",
    "digest_random_id",
    "part_random_id",
]

log = logging.getLogger("chanwatch.alerts")

INSTANT_JOB = "alerts:instant"
REFRESH_JOB = "alerts:digests"  # re-reads digest subscribers now and then (belt and braces)
DIGEST_GRACE = 3600  # a digest missed while the daemon was down still goes out within the hour
REFRESH_EVERY = 600.0

Hook = Callable[[Sequence[int]], None]

# Errors that mean "this chat cannot receive from us (any more)": pause it, never retry blindly.
_GONE_REASONS = {
    "UserIsBlockedError": "the user blocked the bot",
    "ChatWriteForbiddenError": "the bot may not write in this chat",
    "PeerIdInvalidError": "the chat is unknown to Telegram or to the bot",
    "InputUserDeactivatedError": "the user's account was deleted",
    "ChannelPrivateError": "the channel is private or the bot was removed",
    "ChatIdInvalidError": "the chat no longer exists",
    "ChatRestrictedError": "the chat is restricted",
    "ChannelInvalidError": "the channel no longer exists",
    "UserBannedInChannelError": "the bot is banned from sending here",
    "ChatGuestSendForbiddenError": "the bot must join this chat to write",
    "ChatSendPlainForbiddenError": "plain messages are not allowed in this chat",
    "UserIdInvalidError": "the user id is invalid",
    "ChatAdminRequiredError": "the chat requires admin rights to post",
}
GONE_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(errors, name) for name in _GONE_REASONS if hasattr(errors, name)
)


# The request types a send makes (get_input_entity may resolve a user), whose flood memory we drop.
_SEND_REQUESTS = (SendMessageRequest.CONSTRUCTOR_ID, GetUsersRequest.CONSTRUCTOR_ID,
                  SendMediaRequest.CONSTRUCTOR_ID, SaveFilePartRequest.CONSTRUCTOR_ID)

Files = dict[int, list[PostFile]]  # a post's files, by post id
Part = tuple[str, Path | None]  # one message of an alert: its HTML, and the photo it is the caption of


class ChatUnreachable(Exception):
    """The bot cannot address the chat at all (Telethon knows no access hash for it)."""


def digest_job_id(chat_id: int) -> str:
    """The scheduler job id of a chat's digest."""
    return f"digest:{chat_id}"


def _signed64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


def part_random_id(random_id: int, part: int) -> int:
    """The random_id of message `part` (0, 1, ...) of an alert whose row has `random_id`: the row's
    plus the part, wrapped to a signed 64-bit integer."""
    return _signed64(random_id + part)


def digest_random_id(random_ids: Iterable[int], part: int = 0) -> int:
    """The random_id of a digest message carrying the rows with these `random_ids` (a hash of them,
    in any order): two dispatchers sending a message with the same rows send it with the same id,
    and Telegram keeps one; a message with other rows gets another id. `part` tells apart messages
    that carry no rows."""
    key = ",".join(str(r) for r in sorted(random_ids)) + f"|{part}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8, person=b"digest").digest(), "big",
                          signed=True)


class Pacer:
    """Spaces sends: `per_chat` seconds between two messages to one chat, `1/per_second` overall.

    Keeps its own timeline (the later of the clock and the end of its last wait), so with a frozen
    test clock five messages to one chat still sleep 1 s, 1 s, 1 s, 1 s.
    """

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], Awaitable[Any]], *,
                 per_chat: float = 1.0, per_second: float = 25.0) -> None:
        self.clock = clock
        self.sleep = sleep
        self.per_chat = per_chat
        self.gap = 1.0 / per_second if per_second > 0 else 0.0
        self._chat: dict[int, float] = {}
        self._last = -math.inf
        self._timeline = -math.inf

    def _now(self) -> float:
        return max(self.clock(), self._timeline)

    async def wait(self, chat_id: int) -> float:
        """Sleep until a message to `chat_id` is allowed; returns the seconds slept."""
        now = self._now()
        ready = max(now, self._chat.get(chat_id, -math.inf) + self.per_chat, self._last + self.gap)
        if ready > now:
            await self.sleep(ready - now)
        self._chat[chat_id] = self._last = self._timeline = ready
        return ready - now

    def slept(self, seconds: float) -> None:
        """Account for time spent sleeping elsewhere (a flood wait)."""
        self._timeline = self._now() + seconds


def _spans(text: str, rules: Sequence[Rule]) -> tuple[tuple[int, int], ...]:
    """Where any of the matched rules' positive terms occur in `text`."""
    spans: list[tuple[int, int]] = []
    for rule in rules:
        try:
            spans += highlight_spans(text, parse(rule.query))
        except QueryError:  # a stored rule always parses; an old one might not after a grammar change
            continue
    return tuple(merge_spans(spans))


def _context(conn: sqlite3.Connection, alerts: Sequence[Alert]
             ) -> tuple[dict[int, Post], dict[int, Rule], Files]:
    """The posts, rules and posts' files the alerts refer to (removed rules are simply absent)."""
    posts = {p.id: p for p in load_posts(conn, [a.post_id for a in alerts])}
    files = {post_id: files_of_post(conn, post_id) for post_id in posts}
    return posts, rules_of(conn, alerts), files


def rules_of(conn: sqlite3.Connection, alerts: Sequence[Alert]) -> dict[int, Rule]:
    """The rules the alerts matched, by id, each read once (a removed rule is absent)."""
    rules: dict[int, Rule] = {}
    for rule_id in dict.fromkeys(r for a in alerts for r in a.rule_ids):
        rule = get_rule(conn, rule_id)
        if rule is not None:
            rules[rule_id] = rule
    return rules


def _mark_sent_at(conn: sqlite3.Connection, sent: dict[int, datetime]) -> None:
    for alert_id, sent_at in sent.items():
        mark_sent(conn, [alert_id], sent_at)


def _fail_all(conn: sqlite3.Connection, alert_ids: Sequence[int], error: str, now: datetime) -> None:
    for alert_id in alert_ids:
        mark_failed(conn, alert_id, error, now)


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:300]


def _round_robin(alerts: Sequence[Alert]) -> list[Alert]:
    """Alerts interleaved by chat (oldest first within each), so one busy chat delays no other."""
    queues: dict[int, list[Alert]] = {}
    for alert in alerts:
        queues.setdefault(alert.chat_id, []).append(alert)
    out: list[Alert] = []
    for i in range(max((len(q) for q in queues.values()), default=0)):
        out += [q[i] for q in queues.values() if i < len(q)]
    return out


_SENT, _ALREADY, _PAUSED, _DEFERRED, _FAILED = "sent", "already", "paused", "deferred", "failed"
_DELIVERED = (_SENT, _ALREADY)  # in the chat: sent now, or by an earlier send of the same random_id


class Dispatcher:
    """Sends the alert outbox through the bot: instant alerts on an interval, digests on cron.

    `before_send` / `before_mark` are test hooks called with the alert ids of a message just before
    it is sent / just before it is marked sent (raise from them to simulate a crash there).
    """

    def __init__(self, db: Database, client: TelegramClient, *, default_schedule: str = "0 8 * * *",
                 default_timezone: str = "UTC", now: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, flood_max_wait: float = 60,
                 logger: logging.Logger = log, per_chat_interval: float = 1.0,
                 messages_per_second: float = 25.0, batch_size: int = 100,
                 before_send: Hook | None = None, before_mark: Hook | None = None,
                 request_timeout: float = REQUEST_TIMEOUT, photo_dir: Path | None = None,
                 active: Callable[[], Awaitable[bool]] | None = None) -> None:
        cron_trigger(default_schedule, default_timezone)  # a bad default fails here, at start-up
        self.db = db
        self.client = client
        self.default_schedule = default_schedule
        self.default_timezone = default_timezone
        self.now = now
        self.sleep = sleep
        self.flood_max_wait = flood_max_wait
        self.request_timeout = request_timeout
        self.log = logger
        self.batch_size = batch_size
        self.before_send = before_send
        self.before_mark = before_mark
        self.photo_dir = photo_dir  # the media store's root: alerts with a downloaded photo show it
        self.active = active  # None, or whether this process is the dispatcher now (several readers)
        self.pacer = Pacer(lambda: self.now().timestamp(), sleep, per_chat=per_chat_interval,
                           per_second=messages_per_second)
        self._lock = asyncio.Lock()  # instant and digest sends never interleave (no double send)
        self._hold_until: datetime | None = None  # a long flood wait: no sends before this
        #: Alerts Telegram accepted that the archive could not mark sent (id -> when): marked first
        #: thing in the next dispatch, and nothing is sent before they are, so none goes out twice.
        self._unrecorded: dict[int, datetime] = {}
        self._scheduler: BaseScheduler | None = None
        self._executor = "default"

    # -- sending ----------------------------------------------------------------------------------

    async def _flood_sleep(self, seconds: float) -> None:
        self.pacer.slept(seconds)
        await self.sleep(seconds)

    async def _peer(self, chat_id: int) -> Any:
        """How to address `chat_id`: the bot session's own entry, else the archive's record of the chat
        (`storage.peers`: it wrote to another process's bot, before this one took over)."""
        try:
            return await self.client.get_input_entity(chat_id)
        except ValueError as exc:  # Telethon: "Could not find the input entity for ..."
            stored = await self.db.run(peer_of, chat_id)
            if stored is None:
                raise ChatUnreachable("the bot does not know this chat (it must message the bot first)") \
                    from exc
            return input_peer_of(stored)

    async def _send(self, chat_id: int, text: str, random_id: int, photo: Path | None = None) -> None:
        async def send() -> None:
            peer = await self._peer(chat_id)
            message, entities = html.parse(text)
            entities = [e for e in entities if e.length] or None  # (Telegram refuses empty entities)
            request: SendMessageRequest | SendMediaRequest
            if photo is not None:
                media = InputMediaUploadedPhoto(await self.client.upload_file(photo))
                request = SendMediaRequest(peer, media, message, random_id=random_id, entities=entities)
            else:
                request = SendMessageRequest(peer, message, no_webpage=True, random_id=random_id,
                                             entities=entities)
            await send_once(self.client, request)

        async def attempt() -> None:
            forget_local_flood(self.client, *_SEND_REQUESTS)
            what = "SendMessageRequest" if photo is None else "SendMediaRequest"
            await answered_within(send(), what, self.request_timeout)

        await call_with_flood_policy(attempt, kind="send_alert", max_wait=self.flood_max_wait,
                                     sleep=self._flood_sleep, log=self.log, now=self.now)

    async def _deliver(self, chat_id: int, text: str, alert_ids: Sequence[int], random_id: int,
                       photo: Path | None = None) -> str:
        """Send one message (`photo` with `text` as its caption, if given) with `random_id`; record the
        outcome for its alerts at once. Returns the outcome: `_ALREADY` when Telegram had this message
        from the bot already (its alerts are marked sent all the same)."""
        await self.pacer.wait(chat_id)
        if self.before_send is not None:
            self.before_send(alert_ids)
        outcome = _SENT
        try:
            await self._send(chat_id, text, random_id, photo)
        except errors.RandomIdDuplicateError:
            outcome = _ALREADY
            self.log.info("alerts: a message to chat %s was sent already (by this bot before a crash, or by "
                          "another dispatcher); not sent again", chat_id)
        except FloodDeferred as exc:
            self._hold_until = exc.retry_at
            await self.db.transaction(defer, alert_ids, exc.retry_at, f"flood wait {exc.seconds:g}s")
            return _DEFERRED
        except (*GONE_ERRORS, ChatUnreachable) as exc:
            reason = f"{_GONE_REASONS.get(type(exc).__name__, 'unreachable')} ({_describe(exc)})"
            if isinstance(exc, ChatUnreachable):
                reason = str(exc)
            await self.db.transaction(set_paused, chat_id, True, reason)
            self.log.warning("alerts for chat %s paused: %s; its alerts stay queued", chat_id, reason)
            return _PAUSED
        except Exception as exc:
            error = _describe(exc)
            await self.db.transaction(_fail_all, alert_ids, error, self.now())
            self.log.warning("alert send to chat %s failed (%s); will retry with backoff", chat_id, error)
            return _FAILED
        if self.before_mark is not None:
            self.before_mark(alert_ids)
        sent_at = self.now()
        try:
            await self.db.transaction(mark_sent, alert_ids, sent_at)
        except sqlite3.Error:  # sent, but not on record: remember it, so it is never sent again
            self._unrecorded.update(dict.fromkeys(alert_ids, sent_at))
            raise
        return outcome

    async def _record_unrecorded(self) -> None:
        """Mark sent the alerts the archive could not mark before; raises (sqlite3.Error) while it
        still cannot, so the caller sends nothing meanwhile."""
        if self._unrecorded:
            await self.db.transaction(_mark_sent_at, dict(self._unrecorded))
            self.log.info("alerts: %d alert(s) sent earlier are now on record", len(self._unrecorded))
            self._unrecorded.clear()

    def _archive_failed(self, exc: sqlite3.Error, what: str) -> None:
        """One line for a dispatch the archive stopped (full, read-only, locked): no traceback."""
        kept = (f"; {len(self._unrecorded)} sent alert(s) are marked when it can be written, never sent twice"
                if self._unrecorded else "")
        self.log.warning("%s stopped: %s%s; unsent alerts stay queued", what,
                         explain(exc, self.db.path, daemon=True), kept)

    async def _random_ids(self, alerts: Sequence[Alert]) -> dict[int, int]:
        """Each alert's random_id by id: the row's, or one fixed now for rows never claimed (an alert
        whose row is gone is left out). Nothing is sent before its id is stored."""
        random_ids = {a.id: a.random_id for a in alerts if a.random_id is not None}
        unclaimed = [a.id for a in alerts if a.random_id is None]
        if unclaimed:
            random_ids.update(await self.db.transaction(claim_random_ids, unclaimed))
        return random_ids

    def _held(self) -> bool:
        return self._hold_until is not None and self.now() < self._hold_until

    # -- instant ----------------------------------------------------------------------------------

    async def dispatch_instant(self) -> int:
        """Send the due alerts of instant-mode chats; returns the messages sent. Never raises."""
        if self.active is not None and not await self.active():
            return 0  # another reader is the dispatcher
        async with self._lock:
            try:
                return await self._dispatch_instant()
            except sqlite3.Error as exc:
                self._archive_failed(exc, "alert dispatch")
                return 0
            except Exception:
                self.log.exception("alert dispatch stopped early; unsent alerts stay queued")
                return 0

    async def _dispatch_instant(self) -> int:
        await self._record_unrecorded()
        if self._held():
            return 0
        alerts = await self.db.run(pending_instant, self.now(), self.batch_size)
        if not alerts:
            return 0
        random_ids = await self._random_ids(alerts)
        posts, rules, files = await self.db.run(_context, alerts)
        sent = 0
        stopped: set[int] = set()  # chats paused during this cycle
        ordered = _round_robin(alerts)
        for index, alert in enumerate(ordered):
            if alert.chat_id in stopped or alert.id not in random_ids:  # (gone: its chat was removed)
                continue
            try:
                messages = self._render_alert(alert, posts, rules, files)
            except Exception as exc:
                self.log.exception("cannot render alert %s", alert.id)
                await self.db.transaction(_fail_all, [alert.id], _describe(exc), self.now())
                continue
            for number, (text, photo) in enumerate(messages):
                # an alert that needed several messages is marked sent with its last one
                ids = [alert.id] if number == len(messages) - 1 else []
                random_id = part_random_id(random_ids[alert.id], number)
                outcome = await self._deliver(alert.chat_id, text, ids, random_id, photo)
                if outcome in _DELIVERED:
                    sent += int(outcome == _SENT)
                    continue
                if outcome == _FAILED and ids == []:
                    await self.db.transaction(_fail_all, [alert.id], "a part of the alert failed", self.now())
                if outcome == _PAUSED:
                    stopped.add(alert.chat_id)
                if outcome == _DEFERRED:
                    assert self._hold_until is not None
                    rest = [a.id for a in ordered[index:] if a.chat_id not in stopped]
                    await self.db.transaction(defer, rest, self._hold_until, "flood wait")
                    self.log.info("alerts: %d sent, %d held until %s (flood wait)", sent, len(rest),
                                  self._hold_until.isoformat())
                    return sent
                break
        self.log.info("alerts: %d message(s) sent to %d chat(s)", sent,
                      len({a.chat_id for a in alerts} - stopped))
        return sent

    def _render_alert(self, alert: Alert, posts: dict[int, Post], rules: dict[int, Rule], files: Files
                      ) -> list[Part]:
        """The messages of one alert: the text, or its photo with the text as caption, or the photo
        and then the text when no caption fits."""
        post = posts.get(alert.post_id)
        if post is None:
            raise LookupError(f"post {alert.post_id} is not in the archive")
        matched = [rules[r] for r in alert.rule_ids if r in rules]
        queries = [rules[r].query if r in rules else f"rule #{r} (removed)" for r in alert.rule_ids]
        spans = _spans(post.text, matched)
        post_files = files.get(post.id, [])
        photo = self._photo(post, post_files)
        if photo is not None:
            caption = render_caption(post, queries, spans, post_files)
            if caption is not None:
                return [(caption, photo)]
        parts: list[Part] = [("", photo)] if photo is not None else []
        return parts + [(m, None) for m in render_alert(post, queries, spans, files=post_files).messages]

    def _photo(self, post: Post, files: Sequence[PostFile]) -> Path | None:
        """The post's downloaded photo in the media store, when alerts show photos; else None."""
        if self.photo_dir is None or post.media_kind != "photo":  # (a link preview's photo is not shown)
            return None
        for file in files:
            if file.kind == "photo" and file.state == "done" and file.path:
                path = self.photo_dir / file.path
                if path.is_file():
                    return path
                self.log.warning("alert photo %s is missing from the media store; sending text "
                                 "(chanwatch media verify checks the store)", file.path)
        return None

    # -- digests ----------------------------------------------------------------------------------

    async def send_digest(self, chat_id: int) -> int:
        """Send one chat's pending alerts as a digest; returns the messages sent. Never raises."""
        if self.active is not None and not await self.active():
            return 0  # another reader is the dispatcher
        async with self._lock:
            try:
                return await self._send_digest(chat_id)
            except sqlite3.Error as exc:
                self._archive_failed(exc, f"digest for chat {chat_id}")
                return 0
            except Exception:
                self.log.exception("digest for chat %s stopped early; unsent alerts stay queued", chat_id)
                return 0

    async def _send_digest(self, chat_id: int) -> int:
        await self._record_unrecorded()
        if self._held():
            return 0
        alerts = await self.db.run(pending_digest, chat_id, self.now())
        if not alerts:
            return 0
        posts, rules, files = await self.db.run(_context, alerts)
        subscriber = await self.db.run(get_subscriber, chat_id)
        missing = [a.id for a in alerts if a.post_id not in posts]
        if missing:
            await self.db.transaction(_fail_all, missing, "post is not in the archive", self.now())
        random_ids = await self._random_ids([a for a in alerts if a.post_id in posts])
        groups = _digest_groups([a for a in alerts if a.id in random_ids], posts, rules, files)
        messages = render_digest(groups, self._digest_title(subscriber))
        sent = 0
        for index, (text, ids) in enumerate(messages):
            carried = [random_ids[i] for i in ids] if ids else list(random_ids.values())
            outcome = await self._deliver(chat_id, text, ids, digest_random_id(carried, 0 if ids else index))
            if outcome == _SENT:
                sent += 1
            elif outcome == _DEFERRED:
                assert self._hold_until is not None
                rest = [i for _, later in messages[index + 1:] for i in later]
                await self.db.transaction(defer, rest, self._hold_until, "flood wait")
                break
            elif outcome == _PAUSED:
                break
        self.log.info("digest for chat %s: %d message(s), %d post(s)", chat_id, sent, len(alerts))
        return sent

    def _digest_title(self, subscriber: Subscriber | None) -> str:
        name = (subscriber.timezone if subscriber else None) or self.default_timezone
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            zone, name = ZoneInfo("UTC"), "UTC"
        return f"Digest · {self.now().astimezone(zone):%Y-%m-%d %H:%M} {name}"

    # -- scheduling -------------------------------------------------------------------------------

    def schedule(self, scheduler: BaseScheduler, *, instant_every: float = 5.0,
                 executor: str = "default") -> None:
        """Add the instant job, and a job that (re)reads digest subscribers as soon as the scheduler
        runs and every 10 minutes; `reschedule_digests()` does the same at once when awaited.
        Every job runs on `executor` (an alias the scheduler knows)."""
        self._scheduler = scheduler
        self._executor = executor
        scheduler.add_job(self.dispatch_instant, IntervalTrigger(seconds=instant_every), id=INSTANT_JOB,
                          name="alerts: instant", executor=executor, replace_existing=True, max_instances=1,
                          coalesce=True, misfire_grace_time=max(int(instant_every * 4), 30))
        scheduler.add_job(self.reschedule_digests, IntervalTrigger(seconds=REFRESH_EVERY), id=REFRESH_JOB,
                          name="alerts: digest schedules", executor=executor, replace_existing=True,
                          max_instances=1, coalesce=True, misfire_grace_time=int(REFRESH_EVERY),
                          next_run_time=datetime.now(UTC))  # the scheduler's own (wall) clock

    def trigger_for(self, subscriber: Subscriber) -> CronTrigger:
        """The subscriber's digest trigger; a bad schedule or zone falls back to the defaults (logged)."""
        expr = subscriber.digest_schedule or self.default_schedule
        zone = subscriber.timezone or self.default_timezone
        try:
            return cron_trigger(expr, zone)
        except ValueError as exc:
            self.log.warning("chat %s: digest schedule %r in %s is unusable (%s); using %r %s",
                             subscriber.chat_id, expr, zone, exc, self.default_schedule,
                             self.default_timezone)
            return cron_trigger(self.default_schedule, self.default_timezone)

    async def reschedule_digests(self) -> None:
        """One cron job per digest-mode chat (added, changed or removed to match the database)."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        try:
            subscribers = await self.db.run(list_subscribers)
            wanted = {digest_job_id(s.chat_id): s for s in subscribers if s.mode == "digest"}
            for job in scheduler.get_jobs():
                if job.id.startswith("digest:") and job.id not in wanted:
                    scheduler.remove_job(job.id)
            for job_id, subscriber in wanted.items():
                trigger = self.trigger_for(subscriber)
                job = scheduler.get_job(job_id)
                if job is not None:
                    if repr(job.trigger) == repr(trigger):
                        continue
                    scheduler.remove_job(job_id)  # (add_job's replace_existing is lazy before start)
                scheduler.add_job(self.send_digest, trigger, args=[subscriber.chat_id], id=job_id,
                                  name=f"alerts: digest for {subscriber.chat_id}", executor=self._executor,
                                  replace_existing=True,
                                  max_instances=1, coalesce=True, misfire_grace_time=DIGEST_GRACE)
        except Exception:
            self.log.exception("could not update the digest schedules; keeping the current ones")


def _digest_groups(alerts: Sequence[Alert], posts: dict[int, Post], rules: dict[int, Rule], files: Files
                   ) -> list[DigestGroup]:
    """Alerts filed under their first matched rule (by rule id); the other rules shown as 'also'."""
    groups: dict[int, list[DigestEntry]] = {}
    for alert in alerts:
        known = sorted(r for r in alert.rule_ids if r in rules)
        post = posts[alert.post_id]
        key = known[0] if known else -1
        also = tuple(rules[r].query for r in known[1:])
        entry = DigestEntry(post, alert.id, _spans(post.text, [rules[r] for r in known]), also,
                            tuple(files.get(post.id, ())))
        groups.setdefault(key, []).append(entry)
    return [DigestGroup(rules[k].query if k in rules else "(removed rules)", tuple(v))
            for k, v in sorted(groups.items(), key=lambda kv: (kv[0] < 0, kv[0]))]
