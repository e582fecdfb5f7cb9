"""What ingest builds on: the rows it writes (columns, SQL, JSON), the per-batch views it reads
(`Keys`: post_keys as the batch sees it), what a new message needs worked out once (`New`), and the
batch's counters. Plain helpers; `storage.ingest` does the work."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from storage import dedup, text
from storage.dialect import Dialect, dialect_of
from storage.records import IngestResult, MessageRecord, iso

__all__ = ["INSERT_MESSAGE", "INSERT_POST", "Counts", "Keys", "Mark", "New", "chunks",
           "counts_json", "edited_sql", "entities_json", "id_forward", "json_text", "media_content",
           "media_json", "reactions_json", "shown_edited", "sightings_sql", "text_columns"]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def json_text(value: Any) -> str:
    return _ENCODER.encode(value)  # = json.dumps with these options, without a new encoder each time


def counts_json(reactions: dict[str, int] | None) -> str | None:
    """Reaction counts as stored (`messages.reactions`, `message_stats.reactions`)."""
    return None if reactions is None else json_text(reactions)


def reactions_json(record: MessageRecord) -> str | None:
    """The message's reaction counts as stored."""
    return counts_json(record.reactions)


def entities_json(record: MessageRecord) -> str:
    return json_text(list(record.entities)) if record.entities else "[]"


def shown_edited(record: MessageRecord) -> bool:
    """Whether Telegram shows the message as edited: it has an edit_date, and its raw message does not
    say `"edit_hide": true` (set for edits nobody sees, e.g. a link preview refreshed; most real
    messages carry one). `edited_sql` says the same in SQL."""
    if record.edit_date is None:
        return False
    return not (isinstance(record.raw, dict) and record.raw.get("edit_hide") is True)


@lru_cache(maxsize=4)
def edited_sql(dialect: Dialect) -> str:
    """Recompute a post's `edited` flag (`is:edited`): an original sighting of it was edited, as
    Telegram shows it (`shown_edited`) or as we saw its text change (a kept version). Facts of the
    sightings alone, so the same in any arrival order; migration 0005 wrote it so for older archives."""
    return f"""UPDATE posts SET edited = CAST(EXISTS (
    SELECT 1 FROM messages m WHERE m.post_id = posts.id AND m.relation = 'original' AND (
        (m.edit_date IS NOT NULL AND {dialect.json_not_true("m.raw", "edit_hide")})
        OR EXISTS (SELECT 1 FROM message_versions v
                   WHERE v.channel_id = m.channel_id AND v.message_id = m.message_id))) AS INTEGER)
    WHERE id = ?"""



VOLATILE_MEDIA = frozenset({"total_voters", "views", "results", "voters"})
"""Media counters that change without an edit (a poll's votes): never a new version."""


def media_content(media: str | None) -> Any:
    """A stored media JSON without its counters (`VOLATILE_MEDIA`): two equal results are one version's
    media; any other change (a preview replaced, a poll's answers edited, a document renamed) is not."""
    if media is None:
        return None
    value = json.loads(media)
    if isinstance(value, dict) and isinstance(value.get("extra"), dict):
        value["extra"] = {k: v for k, v in value["extra"].items() if k not in VOLATILE_MEDIA}
    return value


def media_json(record: MessageRecord) -> str | None:
    if record.media is None:
        return None
    return json_text({k: v for k, v in asdict(record.media).items() if v not in (None, {}, "")})


@dataclass(slots=True)
class Counts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    edits: int = 0
    deletions: int = 0
    new_posts: list[int] = field(default_factory=list)
    edited_posts: list[int] = field(default_factory=list)
    flagged_posts: list[int] = field(default_factory=list)  # edited: the flag alone, the words kept

    def result(self) -> IngestResult:
        return IngestResult(
            self.new, self.updated, self.unchanged, self.edits, self.deletions,
            tuple(self.new_posts), tuple(dict.fromkeys(self.edited_posts)),
            tuple(dict.fromkeys(self.flagged_posts)),
        )


def chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    return [values[start:start + size] for start in range(0, len(values), size)]


class Keys:
    """`post_keys` as this batch sees it: prefetched in one query, kept up to date by `register` and
    `moved`. A key the view holds maps to its post (None: not in post_keys); any other is looked up.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.known: dict[str, int | None] = {}

    def prefetch(self, keys: set[str]) -> None:
        wanted = [k for k in keys if k not in self.known]
        for chunk in chunks(wanted):
            self.known.update(dict.fromkeys(chunk))
            marks = ", ".join("?" * len(chunk))
            self.known.update(
                self.conn.execute(f"SELECT key, post_id FROM post_keys WHERE key IN ({marks})", chunk)
            )

    def lookup(self, key: str) -> int | None:
        if key in self.known:
            return self.known[key]
        row = self.conn.execute("SELECT post_id FROM post_keys WHERE key = ?", (key,)).fetchone()
        self.known[key] = row[0] if row else None
        return self.known[key]

    def register(self, post_id: int, *keys: str | None) -> None:
        """INSERT OR IGNORE each key for `post_id`: a key already taken keeps its post."""
        keys = tuple(dict.fromkeys(k for k in keys if k))
        self.conn.executemany(
            dialect_of(self.conn).insert_or_ignore("post_keys (key, post_id)", "VALUES (?, ?)"),
            [(k, post_id) for k in keys],
        )
        for k in keys:
            if k not in self.known:
                continue  # unknown: it may have been taken already, so the next lookup asks
            if self.known[k] is None:
                self.known[k] = post_id

    def moved(self, gone: int, keep: int) -> None:
        """`gone`'s keys now lead to `keep` (a merge)."""
        for k, post_id in self.known.items():
            if post_id == gone:
                self.known[k] = keep


def text_columns(body: str, a: text.Analysed | None = None) -> dict[str, Any]:
    """The post columns derived from its text (index, fingerprint, language)."""
    a = a or text.analyse(body)
    return {
        "text": body, "words": a.words, "stems": a.stems, "tags": a.tags,
        "fingerprint": a.fingerprint, "word_count": a.word_count, "language": a.language,
    }


POST_COLUMNS = (
    "key", "origin_channel_id", "origin_username", "origin_title", "origin_message_id", "origin_author",
    "date", "text", "words", "stems", "tags", "fingerprint", "word_count", "language", "entities",
    "media_kind", "first_seen", "text_date", "edited",
)
INSERT_POST = (
    f"INSERT INTO posts ({', '.join(POST_COLUMNS)}) VALUES ({', '.join('?' * len(POST_COLUMNS))})"
)
MESSAGE_COLUMNS = (
    "channel_id", "message_id", "post_id", "relation", "date", "edit_date", "text", "entities",
    "views", "forwards", "replies", "reply_to", "grouped_id", "post_author", "media",
    "fwd_from_type", "fwd_from_id", "fwd_channel_post", "fwd_from_name", "fwd_date", "fwd_post_author",
    "fwd_saved_from_type", "fwd_saved_from_id", "fwd_saved_from_msg_id", "first_seen", "raw",
    "reactions", "last_seen", "stats_due",
)
INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})"
)
@lru_cache(maxsize=4)
def sightings_sql(dialect: Dialect) -> str:
    """What `_settle` reads of every sighting of a post (texts only of the one it shows)."""
    return f"""SELECT channel_id, message_id, relation, date, grouped_id, post_author, fwd_from_type,
    fwd_from_id, fwd_channel_post, fwd_from_name, fwd_date, fwd_post_author, text != '' AS has_text,
    {dialect.json_text("media", "kind")} AS media_kind FROM messages WHERE post_id = ?"""



def id_forward(record: MessageRecord) -> bool:
    """A forward naming its origin channel's post id (rule 1): found without reading its text."""
    fwd = record.forward
    return fwd is not None and fwd.from_peer_type == "channel" and bool(fwd.from_peer_id and fwd.channel_post)


class Mark(NamedTuple):
    """A message's copy mark (rule 5) and the posts it links to by it."""

    fingerprint: str
    key: str
    posts: list[int]


class New:
    """What a message not yet stored needs, worked out once: its keys, its date, its text analysed.

    A forward naming its origin's post id is identified without its text, which is analysed only
    if it is needed after all (most such forwards join a post that shows it already).
    """

    __slots__ = ("record", "ident", "date", "_analysed")

    def __init__(self, record: MessageRecord) -> None:
        self.record = record
        self._analysed: text.Analysed | None = None
        if id_forward(record):
            self.ident = dedup.identify(record, None)  # rule 1: the fingerprint plays no part
        else:
            self.ident = dedup.identify(record, self.analysed.fingerprint)
        self.date = iso(record.date)

    @property
    def analysed(self) -> text.Analysed:
        if self._analysed is None:
            self._analysed = text.analyse(self.record.text)
        return self._analysed

    @property
    def copyable(self) -> str | None:
        """The fingerprint, if the text was analysed and has enough words to be copied (rule 5)."""
        a = self._analysed
        return a.fingerprint if a is not None and a.word_count >= dedup.COPY_MIN_WORDS else None
