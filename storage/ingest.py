"""Idempotent batch ingest: messages, canonical posts, versions, index, deletions and cursor together.

`ingest(conn, batch)` runs inside the caller's transaction; `ingest_batch` and `Database.transaction`
wrap it in one. Re-ingesting a batch changes nothing; a newer `edit_date` keeps the old text in
`message_versions`; a deleted message keeps all its content and gains `deleted_at`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from storage import dedup, text
from storage.channels import channel_names, raise_cursor, upsert_channel
from storage.database import Database, run_in_transaction
from storage.records import Batch, Channel, IngestResult, MessageRecord, iso

AfterIngest = Callable[[sqlite3.Connection, IngestResult], None]
"""A hook run inside the ingest transaction once the batch is written (the alert percolator)."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _json(value: Any) -> str:
    return _ENCODER.encode(value)  # = json.dumps with these options, without a new encoder each time


def _entities_json(record: MessageRecord) -> str:
    return _json(list(record.entities)) if record.entities else "[]"


def shown_edited(record: MessageRecord) -> bool:
    """Whether Telegram shows the message as edited: it has an edit_date, and its raw message does not
    say `"edit_hide": true` (set for edits nobody sees, e.g. a link preview refreshed; most real
    messages carry one). `_EDITED` says the same in SQL."""
    if record.edit_date is None:
        return False
    return not (isinstance(record.raw, dict) and record.raw.get("edit_hide") is True)


_EDITED = """UPDATE posts SET edited = EXISTS (
    SELECT 1 FROM messages m WHERE m.post_id = posts.id AND m.relation = 'original' AND (
        (m.edit_date IS NOT NULL AND json_type(m.raw, '$.edit_hide') IS NOT 'true')
        OR EXISTS (SELECT 1 FROM message_versions v
                   WHERE v.channel_id = m.channel_id AND v.message_id = m.message_id))) WHERE id = ?"""
"""Recompute a post's `edited` flag (`is:edited`): an original sighting of it was edited, as Telegram
shows it (`shown_edited`) or as we saw its text change (a kept version). Facts of the sightings alone,
so the same in any arrival order; migration 0005 wrote it so for older archives."""


def _media_json(record: MessageRecord) -> str | None:
    if record.media is None:
        return None
    return _json({k: v for k, v in asdict(record.media).items() if v not in (None, {}, "")})


@dataclass(slots=True)
class _Counts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    edits: int = 0
    deletions: int = 0
    new_posts: list[int] = field(default_factory=list)
    edited_posts: list[int] = field(default_factory=list)

    def result(self) -> IngestResult:
        return IngestResult(
            self.new, self.updated, self.unchanged, self.edits, self.deletions,
            tuple(self.new_posts), tuple(dict.fromkeys(self.edited_posts)),
        )


def _chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    return [values[start:start + size] for start in range(0, len(values), size)]


class _Keys:
    """`post_keys` as this batch sees it: prefetched in one query, kept up to date by `register` and
    `moved`. A key the view holds maps to its post (None: not in post_keys); any other is looked up.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.known: dict[str, int | None] = {}

    def prefetch(self, keys: set[str]) -> None:
        wanted = [k for k in keys if k not in self.known]
        for chunk in _chunks(wanted):
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
            "INSERT OR IGNORE INTO post_keys (key, post_id) VALUES (?, ?)", [(k, post_id) for k in keys]
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


def _text_columns(body: str, a: text.Analysed | None = None) -> dict[str, Any]:
    """The post columns derived from its text (index, fingerprint, language)."""
    a = a or text.analyse(body)
    return {
        "text": body, "words": a.words, "stems": a.stems, "tags": a.tags,
        "fingerprint": a.fingerprint, "word_count": a.word_count, "language": a.language,
    }


_POST_COLUMNS = (
    "key", "origin_channel_id", "origin_username", "origin_title", "origin_message_id", "origin_author",
    "date", "text", "words", "stems", "tags", "fingerprint", "word_count", "language", "entities",
    "media_kind", "first_seen", "text_date", "edited",
)
_INSERT_POST = (
    f"INSERT INTO posts ({', '.join(_POST_COLUMNS)}) VALUES ({', '.join('?' * len(_POST_COLUMNS))})"
)
_MESSAGE_COLUMNS = (
    "channel_id", "message_id", "post_id", "relation", "date", "edit_date", "text", "entities",
    "views", "forwards", "replies", "reply_to", "grouped_id", "post_author", "media",
    "fwd_from_type", "fwd_from_id", "fwd_channel_post", "fwd_from_name", "fwd_date", "fwd_post_author",
    "fwd_saved_from_type", "fwd_saved_from_id", "fwd_saved_from_msg_id", "first_seen", "raw",
)
_INSERT_MESSAGE = (
    f"INSERT INTO messages ({', '.join(_MESSAGE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_MESSAGE_COLUMNS))})"
)
_SIGHTINGS = """SELECT channel_id, message_id, relation, date, grouped_id, post_author, fwd_from_type,
    fwd_from_id, fwd_channel_post, fwd_from_name, fwd_date, fwd_post_author, text != '' AS has_text,
    json_extract(media, '$.kind') AS media_kind FROM messages WHERE post_id = ?"""
"""What `_settle` reads of every sighting of a post (texts only of the one it shows)."""


def _id_forward(record: MessageRecord) -> bool:
    """A forward naming its origin channel's post id (rule 1): found without reading its text."""
    fwd = record.forward
    return fwd is not None and fwd.from_peer_type == "channel" and bool(fwd.from_peer_id and fwd.channel_post)


class _Mark(NamedTuple):
    """A message's copy mark (rule 5) and the posts it links to by it."""

    fingerprint: str
    key: str
    posts: list[int]


class _New:
    """What a message not yet stored needs, worked out once: its keys, its date, its text analysed.

    A forward naming its origin's post id is identified without its text, which is analysed only
    if it is needed after all (most such forwards join a post that shows it already).
    """

    __slots__ = ("record", "ident", "date", "_analysed")

    def __init__(self, record: MessageRecord) -> None:
        self.record = record
        self._analysed: text.Analysed | None = None
        if _id_forward(record):
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


class _Ingest:
    """One batch's work; all statements run on the caller's transaction.

    Lookups that would run once per message are answered from views fetched once per batch
    (the batch's stored messages, its keys in `post_keys`, which fingerprints no post shows nor has a
    copy mark of), each kept true to the database as the batch writes, so a message sees what
    earlier ones wrote.

    A new message joins every post it links to (`storage.dedup`), merging them when there are
    several; then `_settle` makes the post what all its messages say, so no decision depends on which
    of them came first. A forward of a post's original showing its text and date changes nothing
    there and skips that.
    """

    def __init__(self, conn: sqlite3.Connection, batch: Batch, now: datetime) -> None:
        self.conn = conn
        self.batch = batch
        self.channel = batch.channel
        self.now = iso(now) or ""
        self.counts = _Counts()
        self.keys = _Keys(conn)
        # This channel's stored messages, by id. Another message's ingest can change only their
        # `relation` (`_settle`), which `_update` does not read, and their post (`_merge`): `_post`.
        self.stored: dict[int, sqlite3.Row] = {}
        self.written: set[int] = set()  # message ids this batch wrote: `stored` no longer tells
        self.unmarked: set[str] = set()  # fingerprints no post shows nor has a copy mark of
        self.merged: dict[int, int] = {}  # post id merged away -> the post it went into

    def run(self) -> IngestResult:
        upsert_channel(self.conn, self.channel, self.now)
        records = sorted(self.batch.messages, key=lambda r: r.message_id)
        new = self._prefetch(records)
        for record, prepared in zip(records, new, strict=True):
            if record.channel_id != self.channel.id:
                raise ValueError(
                    f"message {record.message_id} is from channel {record.channel_id}, "
                    f"not the batch's channel {self.channel.id}"
                )
            self._origin_channel(record)
            existing = self._stored(record.message_id)
            if existing is None:
                self._insert(record, prepared or _New(record))
            else:
                self._update(record, existing)
            self.written.add(record.message_id)
        self._deletions()
        if self.batch.cursor is not None:
            raise_cursor(self.conn, self.channel.id, self.batch.cursor)
        return self.counts.result()

    def _prefetch(self, records: list[MessageRecord]) -> list[_New | None]:
        """Read in one query each what the batch's messages will look up; analyse the new ones.

        Returns each record's `_New` if it is the first record of a message not stored yet.
        """
        ids = list(dict.fromkeys(r.message_id for r in records if r.channel_id == self.channel.id))
        for chunk in _chunks(ids):
            marks = ", ".join("?" * len(chunk))
            for row in self.conn.execute(
                f"SELECT * FROM messages WHERE channel_id = ? AND message_id IN ({marks})",
                (self.channel.id, *chunk),
            ):
                self.stored[row["message_id"]] = row
        new: list[_New | None] = []
        first: set[int] = set()
        for r in records:
            fresh = r.channel_id == self.channel.id and r.message_id not in self.stored
            new.append(_New(r) if fresh and r.message_id not in first else None)
            first.add(r.message_id)
        prepared = [n for n in new if n is not None]
        self.keys.prefetch({k for n in prepared for k in n.ident.finds})
        fps = list({fp for n in prepared if (fp := n.copyable)})  # the texts analysed already
        self.unmarked.update(fps)
        for chunk in _chunks(fps):
            args = [a for fp in chunk for a in (fp, dedup.mark_key(fp, ""), dedup.mark_key(fp, "~"))]
            rows = ", ".join(["(?, ?, ?)"] * len(chunk))
            self.unmarked.difference_update(r[0] for r in self.conn.execute(
                f"WITH f (fp, lo, hi) AS (VALUES {rows}) SELECT fp FROM f"
                " WHERE EXISTS (SELECT 1 FROM posts WHERE fingerprint = f.fp)"
                " OR EXISTS (SELECT 1 FROM post_keys WHERE key > f.lo AND key < f.hi)", args,
            ))
        return new

    def _stored(self, message_id: int) -> sqlite3.Row | None:
        """The stored message (a message this batch wrote is read again)."""
        if message_id not in self.written:
            return self.stored.get(message_id)
        return self.conn.execute(
            "SELECT * FROM messages WHERE channel_id = ? AND message_id = ?", (self.channel.id, message_id)
        ).fetchone()

    def _post(self, post_id: int) -> int:
        """The post `post_id` is now (itself, unless this batch merged it into another)."""
        while post_id in self.merged:
            post_id = self.merged[post_id]
        return post_id

    def _update_post(self, post_id: int, **columns: Any) -> None:
        sets = ", ".join(f"{name} = :{name}" for name in columns)
        self.conn.execute(f"UPDATE posts SET {sets} WHERE id = :post_id", {**columns, "post_id": post_id})

    # -- new messages -------------------------------------------------------------------------

    def _origin_channel(self, record: MessageRecord) -> None:
        """Remember a forward's origin channel (unwatched) when the answer told us its name."""
        fwd = record.forward
        if fwd and fwd.from_peer_type == "channel" and fwd.from_peer_id and (
            fwd.origin_username or fwd.origin_title
        ):
            upsert_channel(
                self.conn, Channel(fwd.from_peer_id, fwd.origin_username, fwd.origin_title), self.now
            )

    def _insert(self, record: MessageRecord, new: _New) -> None:
        ident = new.ident
        found = self._found(ident.finds)
        post = None
        if len(found) == 1 and _id_forward(record) and record.grouped_id is None:
            post = self.conn.execute(
                "SELECT text, date, origin_channel_id, origin_message_id, media_kind FROM posts WHERE id = ?",
                found,
            ).fetchone()
            if not self._shows(record, post):
                post = None
        mark = None
        if post is None:  # not a forward its post shows already: the text may link copies
            mark = self._copy_mark(record, new.analysed)
            found = list(dict.fromkeys([*found, *(mark.posts if mark else ())]))
        if not found:
            post_id = self._create_post(record, ident.key, new)
            self.counts.new_posts.append(post_id)
            self._insert_message(record, post_id, ident.relation, new.date)
            if mark is not None:  # the post's own fingerprint and date are this mark
                self.unmarked.discard(mark.fingerprint)
                mark = None
        else:
            post_id = max(found)  # the newest: a deleted id is never the largest, so never reused
            shown = [self._merge(post_id, other) for other in found if other != post_id]
            self._insert_message(record, post_id, ident.relation, new.date)
            if post is None:
                self._settle(post_id, shown=shown)
            elif record.media is not None and post["media_kind"] is None:
                self._update_post(post_id, media_kind=record.media.kind)
        self._claim(post_id, ident.claims, mark)
        self.counts.new += 1

    def _found(self, keys: tuple[str, ...]) -> list[int]:
        """The posts these keys lead to, without repeats."""
        return list(dict.fromkeys(p for k in keys if (p := self.keys.lookup(k)) is not None))

    def _shows(self, record: MessageRecord, post: sqlite3.Row) -> bool:
        """Whether a forward is of its post's origin, with the post's date and text: then all it could
        link to is linked already (its copy mark is the post's own fingerprint and date), and settling
        would change nothing."""
        fwd = record.forward
        assert fwd is not None
        return (
            post["origin_channel_id"] == fwd.from_peer_id and post["origin_message_id"] == fwd.channel_post
            and fwd.date is not None and iso(fwd.date) == post["date"] and record.text == post["text"]
        )

    def _copy_mark(self, record: MessageRecord, a: text.Analysed) -> _Mark | None:
        """Rule 5: the copy mark the message's text claims, and the posts with marks within its window
        (None: too few words to tell a copy).

        A post's own fingerprint and date (`posts_fingerprint_date`) stand for the mark of the message
        that made the post, so that most messages write none; a post that stops showing them keeps
        them as a mark in `post_keys` (`_keep_mark`). A window is one range of each index."""
        fp = a.fingerprint
        if fp is None or a.word_count < dedup.COPY_MIN_WORDS:
            return None
        said = dedup.stated(record)
        key = dedup.mark_key(fp, iso(said) or "")
        if fp in self.unmarked:
            return _Mark(fp, key, [])
        window = dedup.copy_window(a.word_count)
        lo, hi = iso(said - window) or "", iso(said + window) or ""
        rows = self.conn.execute(
            "SELECT id FROM posts WHERE fingerprint = ? AND date BETWEEN ? AND ?"
            " UNION SELECT post_id FROM post_keys WHERE key BETWEEN ? AND ?",
            (fp, lo, hi, dedup.mark_key(fp, lo), dedup.mark_key(fp, hi)),
        )
        return _Mark(fp, key, [r[0] for r in rows])

    def _keep_mark(self, post_id: int, fingerprint: str | None, words: int, date: str) -> None:
        """A fingerprint and date a post showed (its own, or one merged into it) stay its copy mark."""
        if fingerprint and words >= dedup.COPY_MIN_WORDS:
            self.keys.register(post_id, dedup.mark_key(fingerprint, date))

    def _claim(self, post_id: int, keys: tuple[str, ...], mark: _Mark | None) -> None:
        """Register the message's keys (and copy mark) for its post."""
        if mark is not None:
            keys = (*keys, mark.key)
            self.unmarked.discard(mark.fingerprint)
        self.keys.register(post_id, *keys)

    def _origin_fields(self, record: MessageRecord, date: str | None) -> tuple[Any, ...]:
        """origin_channel_id, origin_username, origin_title, origin_message_id, origin_author, date."""
        fwd = record.forward
        if fwd is None:
            return (
                self.channel.id, self.channel.username, self.channel.title, record.message_id,
                record.post_author, date,
            )
        channel_id = fwd.from_peer_id if fwd.from_peer_type == "channel" else None
        username, title = fwd.origin_username, fwd.origin_title
        if channel_id and not (username and title):
            known = channel_names(self.conn, channel_id)
            if known:
                username, title = username or known[0], title or known[1]
        return (
            channel_id, username, title or fwd.from_name, fwd.channel_post if channel_id else None,
            fwd.post_author, iso(fwd.date) if fwd.date else date,
        )

    def _create_post(self, record: MessageRecord, key: str, new: _New) -> int:
        a = new.analysed
        return self.conn.execute(_INSERT_POST, (
            key, *self._origin_fields(record, new.date),
            record.text, a.words, a.stems, a.tags, a.fingerprint, a.word_count, a.language,
            _entities_json(record), record.media.kind if record.media else None, self.now,
            iso(record.edit_date), int(record.forward is None and shown_edited(record)),
        )).lastrowid

    def _insert_message(self, record: MessageRecord, post_id: int, relation: str, date: str | None) -> None:
        fwd = record.forward
        if fwd is None:
            header: tuple[Any, ...] = (None,) * 9
        else:
            header = (
                fwd.from_peer_type, fwd.from_peer_id, fwd.channel_post, fwd.from_name, iso(fwd.date),
                fwd.post_author, fwd.saved_from_peer_type, fwd.saved_from_peer_id, fwd.saved_from_msg_id,
            )
        self.conn.execute(_INSERT_MESSAGE, (
            record.channel_id, record.message_id, post_id, relation, date, iso(record.edit_date),
            record.text, _entities_json(record), record.views, record.forwards, record.replies,
            record.reply_to, record.grouped_id, record.post_author, _media_json(record),
            *header, self.now, _json(record.raw) if record.raw is not None else None,
        ))

    # -- posts made of several messages -------------------------------------------------------

    def _merge(self, keep: int, gone: int) -> str:
        """One post from two that a message links: `gone`'s sightings, keys and alerts move to `keep`.

        A chat alerted about both keeps one alert, the one already sent if either was. Returns the
        text `gone` showed.
        """
        first_seen, edited_at, media_kind, shown, fingerprint, words, date = self.conn.execute(
            "SELECT first_seen, edited_at, media_kind, text, fingerprint, word_count, date FROM posts"
            " WHERE id = ?", (gone,)
        ).fetchone()
        args = {"keep": keep, "gone": gone}
        self.conn.execute("UPDATE messages SET post_id = :keep WHERE post_id = :gone", args)
        self.conn.execute("UPDATE post_keys SET post_id = :keep WHERE post_id = :gone", args)
        # alerts are indexed by (chat_id, post_id): name the chats so each row is one lookup
        chats = "chat_id IN (SELECT chat_id FROM subscribers)"
        self.conn.execute(
            f"""DELETE FROM alerts WHERE {chats} AND post_id = :keep AND sent_at IS NULL AND chat_id IN
                (SELECT chat_id FROM alerts WHERE {chats} AND post_id = :gone AND sent_at IS NOT NULL)""",
            args,
        )
        self.conn.execute(
            f"UPDATE OR IGNORE alerts SET post_id = :keep WHERE {chats} AND post_id = :gone", args
        )
        self.conn.execute(f"DELETE FROM alerts WHERE {chats} AND post_id = :gone", args)
        self.conn.execute("DELETE FROM posts WHERE id = ?", (gone,))
        self.conn.execute(
            """UPDATE posts SET first_seen = min(first_seen, :first_seen),
                 edited_at = CASE WHEN edited_at IS NULL OR edited_at < :edited_at
                                  THEN :edited_at ELSE edited_at END,
                 media_kind = coalesce(media_kind, :media_kind) WHERE id = :keep""",
            {"keep": keep, "first_seen": first_seen, "edited_at": edited_at, "media_kind": media_kind},
        )
        self.merged[gone] = keep
        self.keys.moved(gone, keep)
        self._keep_mark(keep, fingerprint, words, date)
        return shown

    def _settle(self, post_id: int, edit: bool = False, shown: Iterable[str] = ()) -> None:
        """Make the post what its sightings say, the same whatever order they came in.

        Its origin is the earliest of them: a message (not a forward), or the original a forward's
        header names (its original date, else the forward's own); on ties a message. The origin and
        the messages of its album are `original`, every other message a `copy`. The post shows the
        first text among the origin, its album (by id) and the rest (by date, channel, id), or none.

        A new text is an edit of the post (`edited_at`, and the percolator looks at it again) when a
        message of it was just edited (`edit`), or when an edited message now shows other words;
        never when the post, or one merged into it (`shown`: their texts), showed that text already.
        """
        rows = self.conn.execute(_SIGHTINGS, (post_id,)).fetchall()
        post = self.conn.execute(
            "SELECT key, text, entities, fingerprint, word_count, date, media_kind FROM posts WHERE id = ?",
            (post_id,),
        ).fetchone()

        def said(r: sqlite3.Row) -> tuple[Any, ...]:
            if r["relation"] == "forward":
                return (r["fwd_date"] or r["date"], 1, r["channel_id"], r["message_id"])
            return (r["date"], 0, r["channel_id"], r["message_id"])

        origin = min(rows, key=said)
        from_message = origin["relation"] != "forward"
        album = [
            r for r in rows
            if from_message and r is not origin and r["relation"] != "forward"
            and origin["grouped_id"] is not None and r["channel_id"] == origin["channel_id"]
            and r["grouped_id"] == origin["grouped_id"]
        ]
        originals = {(r["channel_id"], r["message_id"]) for r in [origin, *album]} if from_message else set()
        relabel = []
        for r in rows:
            if r["relation"] == "forward":
                continue
            relation = "original" if (r["channel_id"], r["message_id"]) in originals else "copy"
            if relation != r["relation"]:
                relabel.append((relation, r["channel_id"], r["message_id"]))
        self.conn.executemany(
            "UPDATE messages SET relation = ? WHERE channel_id = ? AND message_id = ?", relabel
        )
        changes = self._origin_columns(origin, post["key"])
        first = {id(r) for r in [origin, *album]}
        rest = sorted((r for r in rows if id(r) not in first),
                      key=lambda r: (r["date"], r["channel_id"], r["message_id"]))
        order = [origin, *sorted(album, key=lambda r: r["message_id"]), *rest]
        source = next((r for r in order if r["has_text"]), None)
        body, entities, edit_date = "", "[]", None  # no sighting has text (any more)
        if source is not None:
            body, entities, edit_date = self.conn.execute(
                "SELECT text, entities, edit_date FROM messages WHERE channel_id = ? AND message_id = ?",
                (source["channel_id"], source["message_id"]),
            ).fetchone()
        if body != post["text"] or entities != post["entities"]:
            columns = _text_columns(body)
            reworded = edit_date is not None and columns["fingerprint"] != post["fingerprint"]
            if (edit or (post["text"] and reworded)) and body not in shown:
                changes["edited_at"] = self.now
                self.counts.edited_posts.append(post_id)
            changes.update(columns, entities=entities, text_date=edit_date)
        if post["media_kind"] is None:
            kind = next((r["media_kind"] for r in order if r["media_kind"]), None)
            if kind is not None:
                changes["media_kind"] = kind
        moved = changes["date"] != post["date"]
        if moved or changes.get("fingerprint", post["fingerprint"]) != post["fingerprint"]:
            self._keep_mark(post_id, post["fingerprint"], post["word_count"], post["date"])
        self._update_post(post_id, **changes)
        self.conn.execute(_EDITED, (post_id,))

    def _origin_columns(self, origin: sqlite3.Row, key: str) -> dict[str, Any]:
        """The post's origin columns from its origin sighting: the message, or its header's original."""
        if origin["relation"] != "forward":
            channel_id, message_id = origin["channel_id"], origin["message_id"]
            author, date = origin["post_author"], origin["date"]
            key, fallback_title = dedup.message_key(channel_id, message_id), None
        else:
            channel_id = origin["fwd_from_id"] if origin["fwd_from_type"] == "channel" else None
            message_id = origin["fwd_channel_post"] if channel_id else None
            author, date = origin["fwd_post_author"], origin["fwd_date"] or origin["date"]
            if channel_id and message_id:
                key = dedup.message_key(channel_id, message_id)
            fallback_title = origin["fwd_from_name"]
        known = None
        if channel_id is not None:
            known = self.conn.execute(
                "SELECT username, title FROM channels WHERE id = ?", (channel_id,)
            ).fetchone()
        return {
            "key": key, "origin_channel_id": channel_id, "origin_username": known[0] if known else None,
            "origin_title": (known[1] if known else None) or fallback_title,
            "origin_message_id": message_id, "origin_author": author, "date": date,
        }

    # -- messages seen before -----------------------------------------------------------------

    def _update(self, record: MessageRecord, old: sqlite3.Row) -> None:
        changes: dict[str, Any] = {}
        for name in ("views", "forwards", "replies"):
            value = getattr(record, name)
            if value is not None and value != old[name]:
                changes[name] = value
        if old["deleted_at"] is not None:  # it came back: it was hidden, not deleted
            changes["deleted_at"] = None
        entities = _entities_json(record)
        new_edit = iso(record.edit_date)
        edited = (
            new_edit is not None
            and new_edit > (old["edit_date"] or "")
            and (record.text != old["text"] or entities != old["entities"])
        )
        if edited:
            self.conn.execute(
                """INSERT INTO message_versions (channel_id, message_id, edit_date, text, entities,
                   replaced_at) VALUES (?, ?, ?, ?, ?, ?)""",
                (record.channel_id, record.message_id, old["edit_date"], old["text"], old["entities"],
                 self.now),
            )
            changes.update(text=record.text, entities=entities, edit_date=new_edit)
            self.counts.edits += 1
        elif new_edit is not None and new_edit > (old["edit_date"] or ""):
            changes["edit_date"] = new_edit  # edited without a visible change (e.g. media only)
        if not changes:
            self.counts.unchanged += 1
            return
        if record.raw is not None:
            changes["raw"] = _json(record.raw)
        sets = ", ".join(f"{name} = :{name}" for name in changes)
        self.conn.execute(
            f"UPDATE messages SET {sets} WHERE channel_id = :c AND message_id = :m",
            {**changes, "c": record.channel_id, "m": record.message_id},
        )
        post_id = self._post(old["post_id"])
        if edited:
            self._edited(record, post_id)
        elif "edit_date" in changes:  # shown edited now, or an edit Telegram hides
            self.conn.execute(_EDITED, (post_id,))
        self.counts.updated += 1

    def _edited(self, record: MessageRecord, post_id: int) -> None:
        """A message's new text: it links what that text links (rules 2 and 5), and the post follows
        the edit if it shows this message's text."""
        analysed = text.analyse(record.text)
        ident = dedup.identify(record, analysed.fingerprint)
        mark = self._copy_mark(record, analysed)
        linked = {post_id, *self._found(ident.finds), *(mark.posts if mark else ())}
        post_id = max(linked)  # as in `_insert`
        shown = [self._merge(post_id, other) for other in sorted(linked - {post_id})]
        self._claim(post_id, ident.claims, mark)
        self._settle(post_id, edit=True, shown=shown)

    def _deletions(self) -> None:
        ids = sorted(set(self.batch.deleted_ids))
        seen = iso(self.batch.seen_at) or self.now
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            cursor = self.conn.execute(
                f"""UPDATE messages SET deleted_at = ? WHERE channel_id = ?
                    AND message_id IN ({marks}) AND deleted_at IS NULL""",
                (seen, self.channel.id, *chunk),
            )
            self.counts.deletions += cursor.rowcount


def ingest(
    conn: sqlite3.Connection, batch: Batch, now: datetime | None = None, after: AfterIngest | None = None
) -> IngestResult:
    """Write one batch on the caller's transaction; `after` runs on it too (e.g. percolation)."""
    result = _Ingest(conn, batch, now or datetime.now(UTC)).run()
    if after is not None:
        after(conn, result)
    return result


def ingest_batch(
    conn: sqlite3.Connection, batch: Batch, now: datetime | None = None, after: AfterIngest | None = None
) -> IngestResult:
    """Ingest one batch as its own transaction (synchronous callers: CLI import, tests, benchmarks)."""
    return run_in_transaction(conn, ingest, batch, now, after)


async def ingest_async(
    db: Database, batch: Batch, now: datetime | None = None, after: AfterIngest | None = None
) -> IngestResult:
    """Ingest one batch as one transaction on the database's worker thread."""
    return await db.transaction(ingest, batch, now, after)
