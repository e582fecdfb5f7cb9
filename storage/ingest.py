"""Idempotent batch ingest: messages, canonical posts, versions, index, deletions and cursor together.

`ingest(conn, batch)` runs inside the caller's transaction; `ingest_batch` and `Database.transaction`
wrap it in one. Re-ingesting a batch changes nothing; a newer `edit_date` keeps the old text in
`message_versions`; a deleted message keeps all its content and gains `deleted_at`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from storage import dedup, text
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


def upsert_channel(conn: sqlite3.Connection, channel: Channel, now: str) -> None:
    """Create or refresh a channel row; known fields are never overwritten with unknowns."""
    conn.execute(
        """INSERT INTO channels (id, username, title, access_hash, watched, added_at)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET
             username = coalesce(excluded.username, username),
             title = coalesce(excluded.title, title),
             access_hash = coalesce(excluded.access_hash, access_hash),
             watched = max(watched, excluded.watched)""",
        (channel.id, channel.username, channel.title, channel.access_hash, int(channel.watched), now),
    )


def _chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    return [values[start:start + size] for start in range(0, len(values), size)]


class _Keys:
    """`post_keys` as this batch sees it: prefetched in one query, kept up to date by `register`.

    A key the view holds maps to its post (None: not in post_keys); any other key is looked up.
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

    def absent(self, key: str) -> bool:
        """Whether `key` is surely not in post_keys (False: it is, or the view does not know)."""
        return key in self.known and self.known[key] is None

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


class _New:
    """What a message not yet stored needs, worked out once: its keys, its date, its text analysed.

    A forward naming its origin's post id is identified without its text, which is analysed only
    if it is needed after all (most such forwards join a post that has it already).
    """

    __slots__ = ("record", "channel_id", "ident", "date", "_analysed")

    def __init__(self, record: MessageRecord, channel_id: int) -> None:
        self.record = record
        self.channel_id = channel_id
        self._analysed: text.Analysed | None = None
        fwd = record.forward
        if fwd is not None and fwd.from_peer_type == "channel" and fwd.from_peer_id and fwd.channel_post:
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
    def fingerprint(self) -> str | None:
        """The fingerprint if the text was analysed already (None: not analysed, or no words)."""
        return self._analysed.fingerprint if self._analysed is not None else None

    @property
    def text_key(self) -> str | None:
        fp = self.analysed.fingerprint
        return dedup.text_key(self.channel_id, fp) if fp else None


class _Ingest:
    """One batch's work; all statements run on the caller's transaction.

    Lookups that would run once per message are answered from views fetched once per batch
    (the batch's stored messages, its keys in `post_keys`, which fingerprints posts have), each
    kept true to the database as the batch writes, so a message sees what earlier ones wrote.
    """

    def __init__(self, conn: sqlite3.Connection, batch: Batch, now: datetime) -> None:
        self.conn = conn
        self.batch = batch
        self.channel = batch.channel
        self.now = iso(now) or ""
        self.counts = _Counts()
        self.keys = _Keys(conn)
        # This channel's stored messages, by id. Another message's ingest can change only their
        # `relation` (`_become_origin`), which `_update` does not read.
        self.stored: dict[int, sqlite3.Row] = {}
        self.written: set[int] = set()  # message ids this batch wrote: `stored` no longer tells
        self.no_post_has: set[str] = set()  # fingerprints no post has

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
                self._insert(record, prepared or _New(record, self.channel.id))
            else:
                self._update(record, existing)
            self.written.add(record.message_id)
        self._deletions()
        if self.batch.cursor is not None:
            self.conn.execute(
                "UPDATE channels SET cursor = max(cursor, ?) WHERE id = ?",
                (self.batch.cursor, self.channel.id),
            )
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
            new.append(_New(r, self.channel.id) if fresh and r.message_id not in first else None)
            first.add(r.message_id)
        prepared = [n for n in new if n is not None]
        fps = list({n.fingerprint for n in prepared if n.fingerprint})  # the analysed texts
        self.keys.prefetch(
            {n.ident.key for n in prepared} | {dedup.text_key(self.channel.id, fp) for fp in fps}
        )
        self.no_post_has.update(fps)
        for chunk in _chunks(fps):
            marks = ", ".join("?" * len(chunk))
            self.no_post_has.difference_update(r[0] for r in self.conn.execute(
                f"SELECT DISTINCT fingerprint FROM posts WHERE fingerprint IN ({marks})", chunk
            ))
        return new

    def _stored(self, message_id: int) -> sqlite3.Row | None:
        """The stored message (a message this batch wrote is read again)."""
        if message_id not in self.written:
            return self.stored.get(message_id)
        return self.conn.execute(
            "SELECT * FROM messages WHERE channel_id = ? AND message_id = ?", (self.channel.id, message_id)
        ).fetchone()

    def _update_post(self, post_id: int, **columns: Any) -> None:
        if columns.get("fingerprint"):
            self.no_post_has.discard(columns["fingerprint"])
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
        relation = ident.relation
        post_id = self.keys.lookup(ident.key)
        if post_id is None and relation == "original" and new.analysed.fingerprint:
            post_id = self._forwarded_without_id(new.text_key)
            if post_id is not None:  # a forward that had no post id came first: adopt it
                self._become_origin(post_id, record, ident.own_key, new.date)
        if post_id is None and record.grouped_id is not None:
            sibling = self.conn.execute(
                "SELECT post_id, relation FROM messages WHERE channel_id = ? AND grouped_id = ? LIMIT 1",
                (record.channel_id, record.grouped_id),
            ).fetchone()
            if sibling:
                post_id, relation = sibling
        if post_id is None and relation == "original" and new.analysed.word_count >= dedup.COPY_MIN_WORDS:
            post_id = self._find_copy(record, new.analysed.fingerprint)
            if post_id is not None:
                relation = "copy"
                if self._is_earlier(post_id, new.date):
                    self._become_origin(post_id, record, ident.own_key, new.date)
                    relation = "original"
        if post_id is None:
            post_id = self._create_post(record, ident.key, new)
            self.counts.new_posts.append(post_id)
            self._insert_message(record, post_id, relation, new.date)
        else:
            self._join(post_id, record, relation)
            self._insert_message(record, post_id, relation, new.date)
            if relation != "forward":  # it may be (or have displaced) an original shown edited
                self.conn.execute(_EDITED, (post_id,))
        text_key = new.text_key if relation == "original" else None
        self.keys.register(post_id, ident.key, ident.own_key, text_key)
        self.counts.new += 1

    def _forwarded_without_id(self, key: str | None) -> int | None:
        """A post of this channel's text known only from forwards without a post id (no origin yet).

        A post that already has its original message (the channel posted the same text twice) is
        not adopted: the repeat is a copy, and the first message stays the original.
        """
        if key is None or self.keys.absent(key):
            return None
        row = self.conn.execute(
            "SELECT k.post_id FROM post_keys k JOIN posts p ON p.id = k.post_id"
            " WHERE k.key = ? AND p.origin_message_id IS NULL",
            (key,),
        ).fetchone()
        return row[0] if row else None

    def _find_copy(self, record: MessageRecord, fp: str | None) -> int | None:
        """Rule 4: a recent post with exactly these (many enough) words."""
        if fp in self.no_post_has:
            return None
        row = self.conn.execute(
            """SELECT id FROM posts WHERE fingerprint = ? AND word_count >= ?
               AND date BETWEEN ? AND ? ORDER BY date LIMIT 1""",
            (
                fp, dedup.COPY_MIN_WORDS,
                iso(record.date - dedup.COPY_WINDOW), iso(record.date + dedup.COPY_WINDOW),
            ),
        ).fetchone()
        return row[0] if row else None

    def _is_earlier(self, post_id: int, date: str | None) -> bool:
        row = self.conn.execute("SELECT date FROM posts WHERE id = ?", (post_id,)).fetchone()
        return (date or "") < row[0]

    def _become_origin(self, post_id: int, record: MessageRecord, own_key: str, date: str | None) -> None:
        """This message is the post's original: it takes the key and the origin fields."""
        self.conn.execute(
            "UPDATE messages SET relation = 'copy' WHERE post_id = ? AND relation = 'original'", (post_id,)
        )
        self._update_post(
            post_id, key=own_key, origin_channel_id=self.channel.id,
            origin_username=self.channel.username, origin_title=self.channel.title,
            origin_message_id=record.message_id, origin_author=record.post_author, date=date,
        )

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
            known = self.conn.execute(
                "SELECT username, title FROM channels WHERE id = ?", (channel_id,)
            ).fetchone()
            if known:
                username, title = username or known[0], title or known[1]
        return (
            channel_id, username, title or fwd.from_name, fwd.channel_post if channel_id else None,
            fwd.post_author, iso(fwd.date) if fwd.date else date,
        )

    def _create_post(self, record: MessageRecord, key: str, new: _New) -> int:
        a = new.analysed
        if a.fingerprint:
            self.no_post_has.discard(a.fingerprint)
        return self.conn.execute(_INSERT_POST, (
            key, *self._origin_fields(record, new.date),
            record.text, a.words, a.stems, a.tags, a.fingerprint, a.word_count, a.language,
            _entities_json(record), record.media.kind if record.media else None, self.now,
            iso(record.edit_date), int(record.forward is None and shown_edited(record)),
        )).lastrowid

    def _join(self, post_id: int, record: MessageRecord, relation: str) -> None:
        """A new sighting of a known post: fill in what the post lacked, prefer the original's text."""
        post = self.conn.execute(
            "SELECT text, text_date, origin_username, origin_title, media_kind FROM posts WHERE id = ?",
            (post_id,),
        ).fetchone()
        changes: dict[str, Any] = {}
        if relation == "original":
            if not post["origin_username"] and self.channel.username:
                changes["origin_username"] = self.channel.username
            if not post["origin_title"] and self.channel.title:
                changes["origin_title"] = self.channel.title
            newer = (iso(record.edit_date) or "") > (post["text_date"] or "")
            if record.text and record.text != post["text"] and (newer or not post["text"]):
                changes.update(_text_columns(record.text), entities=_entities_json(record),
                               text_date=iso(record.edit_date))
                if post["text"] and record.edit_date is not None:
                    changes["edited_at"] = self.now
                    self.counts.edited_posts.append(post_id)
        if record.text and not post["text"] and "text" not in changes:  # an album's caption
            changes.update(_text_columns(record.text), entities=_entities_json(record))
        if record.media and not post["media_kind"]:
            changes["media_kind"] = record.media.kind
        if changes:
            self._update_post(post_id, **changes)

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
            self._edit_post(old["post_id"], old["text"], record, entities)
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
        if "edit_date" in changes:  # shown edited now, or an edit Telegram hides
            self.conn.execute(_EDITED, (old["post_id"],))
        self.counts.updated += 1

    def _edit_post(self, post_id: int, old_text: str, record: MessageRecord, entities: str) -> None:
        """The post shows this message's text: follow the edit and re-index."""
        post = self.conn.execute("SELECT text FROM posts WHERE id = ?", (post_id,)).fetchone()
        if post["text"] != old_text:
            return
        analysed = text.analyse(record.text)
        self._update_post(
            post_id, **_text_columns(record.text, analysed), entities=entities,
            text_date=iso(record.edit_date), edited_at=self.now,
        )
        fp = analysed.fingerprint
        if fp:
            self.keys.register(post_id, dedup.text_key(self.channel.id, fp))
        self.counts.edited_posts.append(post_id)

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
