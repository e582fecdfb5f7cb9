"""Plain dataclasses that cross the storage boundary; no Telethon types ever reach `storage`.

Dates are timezone-aware UTC `datetime`s in Python and ISO-8601 text (`2025-12-17T10:00:00+00:00`)
in SQLite, so that lexical order is time order and Datasette shows them readably.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload


def iso(value: datetime | None) -> str | None:
    """Render a datetime as ISO-8601 UTC text (naive values are taken to be UTC already)."""
    if value is None:
        return None
    if value.tzinfo is UTC and not value.microsecond:  # what Telegram dates are: already as stored
        return value.isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_iso(value: str | None) -> datetime | None:
    """Inverse of `iso`."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@overload
def message_url(channel_id: int, username: str | None, message_id: int) -> str: ...
@overload
def message_url(channel_id: int | None, username: str | None, message_id: int | None) -> str | None: ...
def message_url(channel_id: int | None, username: str | None, message_id: int | None) -> str | None:
    """The public t.me link of a message: `https://t.me/<username>/<id>`, or the `t.me/c/` form
    for a channel without a username; None when the channel or the message id is unknown."""
    if channel_id is None or message_id is None:
        return None
    if username:
        return f"https://t.me/{username}/{message_id}"
    return f"https://t.me/c/{channel_id}/{message_id}"


def deletion_text(last_seen: str | None, deleted_at: str | None, deleted_via: str | None) -> str | None:
    """A deletion interval for people, to the minute (UTC): 'deleted between 2025-12-17 10:00 and
    2025-12-17 10:15 UTC', or 'deleted at ... UTC (live update)' when Telegram told us at once."""
    if deleted_at is None:
        return None

    def minute(stamp: str) -> str:
        return stamp[:16].replace("T", " ")

    if deleted_via == "update":
        return f"deleted at {minute(deleted_at)} UTC (live update)"
    if last_seen is None or last_seen >= deleted_at:
        return f"deleted by {minute(deleted_at)} UTC"
    return f"deleted between {minute(last_seen)} and {minute(deleted_at)} UTC"


@dataclass(frozen=True, slots=True)
class ForwardHeader:
    """Every field of Telegram's `MessageFwdHeader`, as received.

    `from_peer_type` is `channel`, `user` or `chat` (None for a hidden sender, who has only
    `from_name`). `origin_username` / `origin_title` are filled when the answer that carried the
    message also carried the origin channel.
    """

    from_peer_type: str | None = None
    from_peer_id: int | None = None
    channel_post: int | None = None
    from_name: str | None = None
    date: datetime | None = None
    post_author: str | None = None
    saved_from_peer_type: str | None = None
    saved_from_peer_id: int | None = None
    saved_from_msg_id: int | None = None
    origin_username: str | None = None
    origin_title: str | None = None


@dataclass(frozen=True, slots=True)
class Media:
    """What a message carries besides text: `kind` is photo, video, document, webpage, poll, ...

    `file_id` is Telegram's Photo.id / Document.id (a web page's preview photo for `webpage`), the
    same in every forward of the file, and `dc_id` the data centre holding it; None where there is no
    file or it is not known (Desktop exports). Never a file reference: those expire, and the
    download worker re-reads the message for a fresh one.
    """

    kind: str
    file_name: str | None = None
    size: int | None = None
    mime_type: str | None = None
    url: str | None = None
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    file_id: int | None = None
    dc_id: int | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One Telegram message seen in a channel, normalised (see `bot/normalize.py`).

    `text` is the plain text Telegram shows (Telethon's `.message`, never the markdown `.text`, then
    any text the media carries: a poll's question and answers…, `storage.shown`) and `entities` its
    formatting as JSON-able dicts (`{"type": "bold", "offset": 0, "length": 4}`).
    `raw` is what Telegram sent (`Message.to_dict()` made JSON-safe); it is stored untouched.
    """

    channel_id: int
    message_id: int
    date: datetime
    text: str = ""
    entities: tuple[dict[str, Any], ...] = ()
    edit_date: datetime | None = None
    views: int | None = None
    forwards: int | None = None
    replies: int | None = None
    reply_to: int | None = None
    grouped_id: int | None = None
    post_author: str | None = None
    media: Media | None = None
    forward: ForwardHeader | None = None
    raw: dict[str, Any] | None = None
    reactions: dict[str, int] | None = None  # per reaction: "👍", "custom:<doc id>", "paid"; None: unknown


@dataclass(frozen=True, slots=True)
class Channel:
    """A Telegram channel we know of, watched or only seen as a forward origin."""

    id: int
    username: str | None = None
    title: str | None = None
    access_hash: int | None = None
    watched: bool = False


def channel_label(username: str | None, title: str | None, channel_id: int | None = None) -> str:
    """How a channel is named for people and logs: `@username`, else the title, else the id."""
    if username:
        return f"@{username}"
    return title or (str(channel_id) if channel_id else "unknown")


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A channel row as the poller, the resolver and the backfill need it (`storage.channels`)."""

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
    source: str | None = None  # 'api' | 'web'; None: the CHANWATCH_SOURCE default

    @property
    def name(self) -> str:
        """For logs: @username, else the id."""
        return channel_label(self.username, None, self.id)

    def channel(self) -> Channel:
        """The storage record for batches."""
        return Channel(self.id, self.username, self.title, self.access_hash, watched=self.watched)


@dataclass(frozen=True, slots=True)
class WatchedChannel:
    """A channel as `chanwatch channels list` and /channels show it: status, size, last post and poll."""

    id: int
    username: str | None
    title: str | None
    watched: bool
    resolved: bool
    status: str
    status_detail: str | None
    messages: int
    last_post: str | None
    last_poll: str | None
    last_success: str | None
    cursor: int
    backfill_done: bool
    source: str | None = None  # 'api' | 'web'; None: the CHANWATCH_SOURCE default

    @property
    def name(self) -> str:
        """@username, else the title, else the id."""
        return channel_label(self.username, self.title, self.id)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one poll of one channel hands to `storage.ingest`: committed together or not at all.

    `cursor` is the highest message id now stored for the channel (None: leave as is).
    `deleted_ids` are message ids that came back missing when re-read; `seen_at` is when we looked;
    `present_ids` are ids that came back unchanged then (their `last_seen` moves to `seen_at`, as it
    does for every message of the batch; a batch without `seen_at`, an import, moves none);
    `deleted_via` says which read saw the deletions (recheck, sweep, update).
    """

    channel: Channel
    messages: tuple[MessageRecord, ...] = ()
    cursor: int | None = None
    deleted_ids: tuple[int, ...] = ()
    seen_at: datetime | None = None
    present_ids: tuple[int, ...] = ()
    deleted_via: str = "recheck"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Counts of what one ingest changed; `new_post_ids` are canonical posts created by it (one that a
    later message of the batch merged into another is listed still, and no longer exists);
    `flagged_post_ids` are edited posts whose words stayed, an edit making them `is:edited`."""

    messages_new: int = 0
    messages_updated: int = 0
    messages_unchanged: int = 0
    edits: int = 0
    deletions: int = 0
    new_post_ids: tuple[int, ...] = ()
    edited_post_ids: tuple[int, ...] = ()
    flagged_post_ids: tuple[int, ...] = ()  # of the edited: only `is:edited` changed, the text did not


@dataclass(frozen=True, slots=True)
class PostDoc:
    """A canonical post as the query matcher sees it: exactly the facts the SQL search uses.

    `words` / `stems` are position-aligned token lists of the post text (see `storage.text`);
    `origin` and `channels` hold lower-cased usernames, numeric ids as text and folded titles.
    """

    post_id: int
    words: tuple[str, ...]
    stems: tuple[str, ...]
    tags: frozenset[str]
    date: str
    lang: str | None
    origin: frozenset[str]
    channels: frozenset[str]
    relations: frozenset[str]
    edited: bool
    deleted: bool


@dataclass(frozen=True, slots=True)
class Sighting:
    """One message that carried a post: where, when, as what."""

    channel_id: int
    username: str | None
    title: str | None
    message_id: int
    date: str
    relation: str
    deleted_at: str | None = None
    last_seen: str | None = None  # the last time Telegram showed it present
    deleted_via: str | None = None  # recheck | sweep | update (a live update: `deleted_at` is exact)

    @property
    def url(self) -> str:
        """Public t.me link (the `c/` form for channels without a username)."""
        return message_url(self.channel_id, self.username, self.message_id)

    @property
    def deletion(self) -> str | None:
        """When it was deleted, as it can be cited; None while it is not."""
        return deletion_text(self.last_seen, self.deleted_at, self.deleted_via)


@dataclass(frozen=True, slots=True)
class Post:
    """A canonical post with its provenance and sightings, as search and export return it."""

    id: int
    key: str
    text: str
    entities: tuple[dict[str, Any], ...]
    date: str
    lang: str | None
    media_kind: str | None
    origin_channel_id: int | None
    origin_username: str | None
    origin_title: str | None
    origin_message_id: int | None
    origin_author: str | None
    first_seen: str
    edited_at: str | None
    sightings: tuple[Sighting, ...] = ()
    snippet: str | None = None
    edited: bool = False  # what is:edited finds: the original was edited, seen by us or shown by Telegram

    @property
    def origin_url(self) -> str | None:
        """Link to the original message, when its channel and id are known."""
        return message_url(self.origin_channel_id, self.origin_username, self.origin_message_id)


@dataclass(frozen=True, slots=True)
class Reading:
    """One engagement reading of one message (a `message_stats` row): counts as read at `at` (ISO)."""

    channel_id: int
    message_id: int
    at: str
    views: int | None = None
    forwards: int | None = None
    replies: int | None = None
    reactions: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A chat that gets alerts: instantly or as a digest on a cron schedule in its time zone."""

    chat_id: int
    mode: str = "instant"
    digest_schedule: str | None = None
    timezone: str | None = None  # None: CHANWATCH_TIMEZONE
    paused: bool = False
    paused_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A saved search owned by a subscriber chat: a post matching `query` alerts that chat."""

    id: int
    chat_id: int
    query: str
    active: bool = True
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """One outbox row: a post to tell a chat about, with the rules it matched."""

    id: int
    chat_id: int
    post_id: int
    rule_ids: tuple[int, ...]
    created_at: str
    sent_at: str | None = None
    attempts: int = 0
    last_error: str | None = None
    next_try_at: str | None = None
    random_id: int | None = None  # Telegram's dedup id of its messages, fixed at the first claim


@dataclass(frozen=True, slots=True)
class QueuedFile:
    """A Telegram file due for download (`storage.media_queue.claim_due`), with the message to re-read
    for a fresh file reference."""

    file_id: int
    kind: str
    dc_id: int | None
    size: int | None
    mime_type: str | None
    file_name: str | None
    channel_id: int
    message_id: int
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class MediaStatus:
    """The download queue at a glance: Telegram files by state, and what the media store holds."""

    queued: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    stored_files: int = 0
    stored_bytes: int = 0
    stopped: str | None = None  # why the worker's last run stopped early (None: it ran to the end)
    full_since: str | None = None  # downloads paused by a full media disk since then (ISO), else None


@dataclass(frozen=True, slots=True)
class PostFile:
    """A file a post's messages carry now, as search and export will list it: where it is in the
    media store (`path`, relative to the media directory) once downloaded."""

    file_id: int
    kind: str
    state: str
    size: int | None
    mime_type: str | None
    file_name: str | None
    sha256: str | None
    path: str | None
