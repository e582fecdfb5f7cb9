"""A post as all its sightings say: merging two posts a message links, and settling a post's origin,
relations, text and flags so that nothing depends on which sighting came first.

`PostSettling` is a part of `storage.ingest`'s batch work (it runs on the batch's transaction and
views); it is split out because it is the one place that decides what a post shows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from storage import dedup
from storage.channels import channel_names
from storage.dialect import dialect_of
from storage.ingest_rows import Counts, Keys, edited_sql, sightings_sql, text_columns

__all__ = ["PostSettling"]


class PostSettling:
    """Merging and settling posts; the batch (`storage.ingest._Ingest`) provides the state below."""

    conn: sqlite3.Connection
    now: str
    counts: Counts
    keys: Keys
    merged: dict[int, int]
    edited_merged: set[int]  # posts a merge gave an `is:edited` post: they read edited before

    def _update_post(self, post_id: int, **columns: Any) -> None:
        sets = ", ".join(f"{name} = :{name}" for name in columns)
        self.conn.execute(f"UPDATE posts SET {sets} WHERE id = :post_id", {**columns, "post_id": post_id})

    def _keep_mark(self, post_id: int, fingerprint: str | None, words: int, date: str) -> None:
        """A fingerprint and date a post showed (its own, or one merged into it) stay its copy mark."""
        if fingerprint and words >= dedup.COPY_MIN_WORDS:
            self.keys.register(post_id, dedup.mark_key(fingerprint, date))

    def _merge(self, keep: int, gone: int) -> str:
        """One post from two that a message links: `gone`'s sightings, keys and alerts move to `keep`.

        A chat alerted about both keeps one alert, the one already sent if either was. Returns the
        text `gone` showed.
        """
        first_seen, edited_at, media_kind, shown, fingerprint, words, date, edited = self.conn.execute(
            "SELECT first_seen, edited_at, media_kind, text, fingerprint, word_count, date, edited"
            " FROM posts WHERE id = ?", (gone,)
        ).fetchone()
        if edited:
            self.edited_merged.add(keep)
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
        self.conn.execute(  # UPDATE OR IGNORE, portably: a chat's alert about `keep` stays the one
            f"""UPDATE alerts SET post_id = :keep WHERE {chats} AND post_id = :gone AND NOT EXISTS
                (SELECT 1 FROM alerts o WHERE o.chat_id = alerts.chat_id AND o.post_id = :keep)""",
            args,
        )
        self.conn.execute(f"DELETE FROM alerts WHERE {chats} AND post_id = :gone", args)
        self.conn.execute("DELETE FROM posts WHERE id = ?", (gone,))
        self.conn.execute(
            f"""UPDATE posts SET first_seen = {dialect_of(self.conn).least}(first_seen, :first_seen),
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
        rows = self.conn.execute(sightings_sql(dialect_of(self.conn)), (post_id,)).fetchall()
        post = self.conn.execute(
            "SELECT key, text, entities, fingerprint, word_count, date, media_kind, edited FROM posts"
            " WHERE id = ?",
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
            columns = text_columns(body)
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
        was = post["edited"] or post_id in self.edited_merged  # a post merged in read `is:edited` before
        self._mark_edited(post_id, edit and post_id not in self.counts.edited_posts, was=was)

    def _mark_edited(self, post_id: int, edit: bool, was: int | None = None) -> None:
        """Recompute the post's `edited` flag; when an edit of one of its messages (`edit`) turns it
        on with the text unchanged (an edited message merged in, a media-only edit), the post was
        edited now (`edited_at`) and is for the percolator too: `is:edited` matches it now. `was`: the
        flag before, when the caller read the post already."""
        if was is None and edit:
            row = self.conn.execute("SELECT edited FROM posts WHERE id = ?", (post_id,)).fetchone()
            was = row[0] if row is not None else 1
        self.conn.execute(edited_sql(dialect_of(self.conn)), (post_id,))
        if edit and not was and self.conn.execute(
                "SELECT edited FROM posts WHERE id = ?", (post_id,)).fetchone()[0]:
            self._update_post(post_id, edited_at=self.now)  # seen edited now, though its words stayed
            self.counts.edited_posts.append(post_id)
            self.counts.flagged_posts.append(post_id)

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
        known = channel_names(self.conn, channel_id) if channel_id is not None else None
        return {
            "key": key, "origin_channel_id": channel_id, "origin_username": known[0] if known else None,
            "origin_title": (known[1] if known else None) or fallback_title,
            "origin_message_id": message_id, "origin_author": author, "date": date,
        }
