"""Idempotent batch ingest: messages, canonical posts, versions, index, deletions and cursor together.

`ingest(conn, batch)` runs inside the caller's transaction; `ingest_batch` and `Database.transaction`
wrap it in one. Re-ingesting a batch changes nothing; a newer `edit_date` keeps the old text, entities,
media and raw message in `message_versions` when text, entities or media changed (a photo replaced by
a video, a reworded poll; not its votes). Every message a read of Telegram showed present (the batch's
messages, `present_ids`) gets `last_seen` = the batch's `seen_at`; a deleted message keeps all its
content and gains `deleted_at` and `deleted_via`, and loses both if it is seen again later. Each stored
message's Telegram file is linked and queued for download in the same transaction
(`storage.media_queue.link_media`).

The rows and per-batch views are in `storage.ingest_rows`; what a post shows when several
messages make it (merging, settling) is `storage.posts`; which keys link messages, `storage.dedup`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from storage import dedup, engagement, text
from storage.channels import channel_names, raise_cursor, upsert_channel
from storage.database import run_in_transaction
from storage.dialect import dialect_of
from storage.ingest_rows import (
    INSERT_MESSAGE,
    INSERT_POST,
    Counts,
    Keys,
    Mark,
    New,
    chunks,
    entities_json,
    id_forward,
    json_text,
    media_content,
    media_json,
    reactions_json,
    shown_edited,
)
from storage.media_queue import link_media, stored_file_id
from storage.origin_names import name_titles
from storage.posts import PostSettling
from storage.records import Batch, Channel, IngestResult, MessageRecord, iso, parse_iso

AfterIngest = Callable[[sqlite3.Connection, IngestResult], None]
"""A hook run inside the ingest transaction once the batch is written (the alert percolator)."""


class _Ingest(PostSettling):
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
        self.seen = iso(batch.seen_at) or self.now  # when Telegram showed the batch's messages present
        self.seen_at = parse_iso(self.seen) or now  # the same moment, for the engagement schedule
        self.counts = Counts()
        self.keys = Keys(conn)
        # This channel's stored messages, by id. Another message's ingest can change only their
        # `relation` (`_settle`), which `_update` does not read, and their post (`_merge`): `_post`.
        self.stored: dict[int, sqlite3.Row] = {}
        self.written: set[int] = set()  # message ids this batch wrote: `stored` no longer tells
        self.unmarked: set[str] = set()  # fingerprints no post shows nor has a copy mark of
        self.merged: dict[int, int] = {}  # post id merged away -> the post it went into
        self.edited_merged: set[int] = set()

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
                self._insert(record, prepared or New(record))
            else:
                self._update(record, existing)
            self.written.add(record.message_id)
        if self.batch.seen_at is not None:  # a read of Telegram (an import says nothing of now)
            self._seen_present()
        self._deletions()
        if self.batch.cursor is not None:
            raise_cursor(self.conn, self.channel.id, self.batch.cursor)
        return self.counts.result()

    def _prefetch(self, records: list[MessageRecord]) -> list[New | None]:
        """Read in one query each what the batch's messages will look up; analyse the new ones.

        Returns each record's `New` if it is the first record of a message not stored yet.
        """
        ids = list(dict.fromkeys(r.message_id for r in records if r.channel_id == self.channel.id))
        for chunk in chunks(ids):
            marks = ", ".join("?" * len(chunk))
            for row in self.conn.execute(
                f"SELECT * FROM messages WHERE channel_id = ? AND message_id IN ({marks})",
                (self.channel.id, *chunk),
            ):
                self.stored[row["message_id"]] = row
        new: list[New | None] = []
        first: set[int] = set()
        for r in records:
            fresh = r.channel_id == self.channel.id and r.message_id not in self.stored
            new.append(New(r) if fresh and r.message_id not in first else None)
            first.add(r.message_id)
        prepared = [n for n in new if n is not None]
        self.keys.prefetch({k for n in prepared for k in n.ident.finds})
        fps = list({fp for n in prepared if (fp := n.copyable)})  # the texts analysed already
        self.unmarked.update(fps)
        for chunk in chunks(fps):
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

    def _insert(self, record: MessageRecord, new: New) -> None:
        ident = new.ident
        found = self._found(ident.finds)
        post = None
        if len(found) == 1 and id_forward(record) and record.grouped_id is None:
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
        link_media(self.conn, record.channel_id, record.message_id, record.media, self.now, new=True)
        self._first_reading(record)
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

    def _copy_mark(self, record: MessageRecord, a: text.Analysed) -> Mark | None:
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
            return Mark(fp, key, [])
        window = dedup.copy_window(a.word_count)
        lo, hi = iso(said - window) or "", iso(said + window) or ""
        rows = self.conn.execute(
            "SELECT id FROM posts WHERE fingerprint = ? AND date BETWEEN ? AND ?"
            " UNION SELECT post_id FROM post_keys WHERE key BETWEEN ? AND ?",
            (fp, lo, hi, dedup.mark_key(fp, lo), dedup.mark_key(fp, hi)),
        )
        return Mark(fp, key, [r[0] for r in rows])

    def _claim(self, post_id: int, keys: tuple[str, ...], mark: Mark | None) -> None:
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

    def _create_post(self, record: MessageRecord, key: str, new: New) -> int:
        a = new.analysed
        return self.conn.execute(INSERT_POST, (
            key, *self._origin_fields(record, new.date),
            record.text, a.words, a.stems, a.tags, a.fingerprint, a.word_count, a.language,
            entities_json(record), record.media.kind if record.media else None, self.now,
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
        self.conn.execute(INSERT_MESSAGE, (
            record.channel_id, record.message_id, post_id, relation, date, iso(record.edit_date),
            record.text, entities_json(record), record.views, record.forwards, record.replies,
            record.reply_to, record.grouped_id, record.post_author, media_json(record),
            *header, self.now, json_text(record.raw) if record.raw is not None else None,
            reactions_json(record), self.seen, engagement.first_due(record.date, self.seen_at),
        ))

    # -- messages seen before -----------------------------------------------------------------

    def _update(self, record: MessageRecord, old: sqlite3.Row) -> None:
        changes: dict[str, Any] = {}
        for name in ("views", "forwards", "replies"):
            value = getattr(record, name)
            if value is not None and value != old[name]:
                changes[name] = value
        self._reread(record, old, changes)
        if old["deleted_at"] is not None:  # it came back: it was hidden, not deleted
            changes.update(deleted_at=None, deleted_via=None)
        file_id = record.media.file_id if record.media is not None else None
        refiled = file_id is not None and file_id != stored_file_id(old["media"]) and link_media(
            self.conn, record.channel_id, record.message_id, record.media, self.now, new=False)
        media = media_json(record)
        if refiled:
            changes["media"] = media  # a media-only edit: the old file stays linked
        entities = entities_json(record)
        new_edit = iso(record.edit_date)
        newer = new_edit is not None and new_edit > (old["edit_date"] or "")
        reworded = record.text != old["text"] or entities != old["entities"]
        remedia = newer and (refiled or media_content(media) != media_content(old["media"]))
        edited = newer and (reworded or remedia)  # a whole version: text, entities or media changed
        if edited:
            self.conn.execute(
                """INSERT INTO message_versions (channel_id, message_id, edit_date, text, entities, media,
                   replaced_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (record.channel_id, record.message_id, old["edit_date"], old["text"], old["entities"],
                 old["media"], self.now, old["raw"]),
            )
            changes.update(text=record.text, entities=entities, edit_date=new_edit, media=media)
            self.counts.edits += 1
        elif newer:
            changes["edit_date"] = new_edit  # edited without a visible change (e.g. a preview refreshed)
        if not changes:
            self.counts.unchanged += 1
            return
        if record.raw is not None:
            changes["raw"] = json_text(record.raw)
        sets = ", ".join(f"{name} = :{name}" for name in changes)
        self.conn.execute(
            f"UPDATE messages SET {sets} WHERE channel_id = :c AND message_id = :m",
            {**changes, "c": record.channel_id, "m": record.message_id},
        )
        post_id = self._post(old["post_id"])
        if (refiled or edited and remedia) and record.media is not None:  # the post shows its origin's kind
            self.conn.execute(
                "UPDATE posts SET media_kind = ? WHERE id = ? AND origin_channel_id = ?"
                " AND origin_message_id = ?",
                (record.media.kind, post_id, record.channel_id, record.message_id),
            )
        if edited and reworded:
            self._edited(record, post_id)
        elif "edit_date" in changes:  # shown edited now, a media-only edit, or an edit Telegram hides
            self._mark_edited(post_id, edited)
        self.counts.updated += 1

    # -- engagement (storage.engagement) ----------------------------------------------------------

    def _first_reading(self, record: MessageRecord) -> None:
        """A new message's counts are its first reading (its next is due as `_insert_message` wrote)."""
        reading = engagement.reading_of(record, self.seen)
        if engagement.known(reading):
            engagement.insert_reading(self.conn, reading)

    def _reread(self, record: MessageRecord, old: sqlite3.Row, changes: dict[str, Any]) -> None:
        """Counts a re-read message shows anew (views, forwards, replies in `changes` already; reactions
        added here) are a reading, never an edit."""
        reactions = reactions_json(record)
        if reactions is not None and reactions != old["reactions"]:
            changes["reactions"] = reactions
        if changes.keys() & {"views", "forwards", "replies", "reactions"}:
            engagement.insert_reading(self.conn, engagement.reading_of(record, self.seen))

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

    def _seen_present(self) -> None:
        """Every message the batch saw present (its messages, `present_ids`) was there at `seen`:
        `last_seen` moves up to it, and one that was marked deleted before then came back."""
        ids = sorted({r.message_id for r in self.batch.messages} | set(self.batch.present_ids))
        greatest = dialect_of(self.conn).greatest
        for chunk in chunks(ids):
            marks = ", ".join(f":m{i}" for i in range(len(chunk)))
            self.conn.execute(
                f"""UPDATE messages SET last_seen = {greatest}(coalesce(last_seen, ''), :seen),
                    deleted_via = CASE WHEN deleted_at <= :seen THEN NULL ELSE deleted_via END,
                    deleted_at = CASE WHEN deleted_at <= :seen THEN NULL ELSE deleted_at END
                    WHERE channel_id = :c AND message_id IN ({marks})
                    AND (last_seen IS NULL OR last_seen < :seen OR deleted_at <= :seen)""",
                {"seen": self.seen, "c": self.channel.id, **{f"m{i}": m for i, m in enumerate(chunk)}},
            )

    def _deletions(self) -> None:
        """Messages seen missing at `seen`: deleted between their `last_seen` and then (`deleted_via`
        says which read saw it; a live update's time is exact)."""
        ids = sorted(set(self.batch.deleted_ids))
        for chunk in chunks(ids):
            marks = ", ".join("?" * len(chunk))
            cursor = self.conn.execute(
                f"""UPDATE messages SET deleted_at = ?, deleted_via = ? WHERE channel_id = ?
                    AND message_id IN ({marks}) AND deleted_at IS NULL""",
                (self.seen, self.batch.deleted_via, self.channel.id, *chunk),
            )
            self.counts.deletions += cursor.rowcount


INGEST_LOCK = 0x63776967  # 'cwig': the lock that makes ingest transactions on a server one at a time
"""Ingest decides from what the archive holds (which posts a message's keys and copy marks lead to,
what a post's sightings say) and writes what follows. On SQLite a write transaction excludes every
other (BEGIN IMMEDIATE); on PostgreSQL, READ COMMITTED lets two readers ingest forwards of one origin
at once, each blind to the other's uncommitted post: a unique violation, a deadlock, or two posts
for one origin. So an ingest first takes this lock (`Dialect.transaction_lock`), held until its
transaction ends: ingests run one after another, as on SQLite, each seeing every earlier one whole;
reads, searches and other writers do not wait for it (docs/architecture.md, "Backends")."""


def ingest(
    conn: sqlite3.Connection, batch: Batch, now: datetime | None = None, after: AfterIngest | None = None
) -> IngestResult:
    """Write one batch on the caller's transaction, after every other ingest's (`INGEST_LOCK`);
    `after` runs on it too (e.g. percolation)."""
    lock = dialect_of(conn).transaction_lock()
    if lock is not None:
        conn.execute(lock, (INGEST_LOCK,))
    result = _Ingest(conn, batch, now or datetime.now(UTC)).run()
    name_titles(conn)  # PostgreSQL: the names `from:` compares, of the origin titles just written
    if after is not None:
        after(conn, result)
    return result


def ingest_batch(
    conn: sqlite3.Connection, batch: Batch, now: datetime | None = None, after: AfterIngest | None = None
) -> IngestResult:
    """Ingest one batch as its own transaction (synchronous callers: CLI import, tests, benchmarks)."""
    return run_in_transaction(conn, ingest, batch, now, after)
