"""Channels known only by username, and the archive they hold until the name resolves.

The web preview names channels by username and never by id; the archive keys everything by channel
id (`messages`, dedup keys `tg:<channel>:<message>`, forward headers, `posts.origin_channel_id`). A
name the archive has no id for gets a placeholder row (a negative id, no access hash, the scheme of
`channels.add_watch_name`), and whatever the web reader stores for that channel, or for forwards
naming it, uses that id: a message id in the preview is the message's real id, so within the
placeholder every key is what the API path would write, with the placeholder's id for the channel's.

When the name resolves to the real channel, `adopt` moves everything stored under the placeholder
to the real id, as if it had been read under that id: a message stored under both is kept once (the
one with the later edit, the other's differing text a version), keys that meet an existing key merge
their posts (`storage.posts` merging and settling), and the posts are settled again. So web and API
readings of the same channels give the same posts in any order, with adoption at any point.

Plain functions on the caller's transaction (`storage.database`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from storage import channels
from storage.dialect import dialect_of
from storage.ingest_rows import Counts, Keys
from storage.posts import PostSettling
from storage.records import Channel, iso

__all__ = ["Adopted", "adopt", "adopt_username", "channel_for_username", "set_source"]

CHANNEL_KEYS = ("tg", "tgtext", "tgfwd", "album")
"""The dedup key kinds that name a channel id (`storage.dedup`), as `<kind>:<channel>:<rest>`."""

_PAIRED = {"tgtext": "tgfwd", "tgfwd": "tgtext"}
"""A channel's text key and a forward's text key of that channel link each other (dedup rule 2)."""


def channel_for_username(conn: sqlite3.Connection, username: str, now: datetime) -> int:
    """The id to file a channel known by `username` under: the real channel's if the archive knows
    one with that name (case-insensitive), else a placeholder's, made (not watched) if none exists."""
    username = username.lstrip("@")
    found = channels.channel_by_username(conn, username)
    if found is not None:
        return found
    return channels.add_placeholder(conn, username, now)


def set_source(conn: sqlite3.Connection, username_or_id: str | int, source: str | None,
               now: datetime | None = None) -> int:
    """Read a channel through 'api' or 'web' (None: the CHANWATCH_SOURCE default); a name the archive
    does not know becomes a placeholder. Returns the channel's id."""
    if isinstance(username_or_id, int):
        channel_id = username_or_id
    else:
        channel_id = channel_for_username(conn, username_or_id, now or datetime.now(UTC))
    channels.set_source(conn, channel_id, source)
    return channel_id


@dataclass(frozen=True, slots=True)
class Adopted:
    """What an adoption did: messages moved to the real id, and posts merged away."""

    messages: int = 0
    merged_posts: int = 0


class _Adoption(PostSettling):
    """Merging and settling posts as ingest does (`storage.posts`), outside a batch."""

    def __init__(self, conn: sqlite3.Connection, now: str) -> None:
        self.conn = conn
        self.now = now
        self.counts = Counts()
        self.keys = Keys(conn)
        self.merged = {}
        self.edited_merged = set()

    def post(self, post_id: int) -> int:
        while post_id in self.merged:
            post_id = self.merged[post_id]
        return post_id

    def join(self, a: int, b: int) -> str | None:
        """One post from `a` and `b` (the newer id stays, as ingest keeps); the text the other showed."""
        a, b = self.post(a), self.post(b)
        if a == b:
            return None
        return self._merge(max(a, b), min(a, b))

    def settle(self, post_ids: set[int], shown: list[str]) -> None:
        for post_id in sorted({self.post(p) for p in post_ids}):
            if self.conn.execute("SELECT 1 FROM messages WHERE post_id = ?", (post_id,)).fetchone():
                self._settle(post_id, shown=shown)


def adopt_username(conn: sqlite3.Connection, channel: Channel, now: datetime | None = None) -> Adopted:
    """The channel's username resolved to `channel`: adopt every placeholder standing for it."""
    total = Adopted()
    if channel.username:
        for placeholder in channels.placeholder_ids(conn, channel.username):
            done = adopt(conn, placeholder, channel, now)
            total = Adopted(total.messages + done.messages, total.merged_posts + done.merged_posts)
    return total


def adopt(conn: sqlite3.Connection, placeholder_id: int, channel: Channel,
          now: datetime | None = None) -> Adopted:
    """Move everything stored under the placeholder to the real channel, then drop the placeholder.

    Messages (with their versions, readings, media links and files' carriers), forward headers and
    posts naming the placeholder, dedup keys (`tg:<placeholder>:<id>` becomes `tg:<real>:<id>`; where
    that key leads to another post already the two merge), and the channel row's progress
    (`channels.absorb_placeholder`). A placeholder gone already changes nothing (idempotent).
    """
    if placeholder_id >= 0 or channel.id <= 0:
        raise ValueError(f"adopt moves a placeholder (negative id) to a real id, not {placeholder_id} to "
                         f"{channel.id}")
    if channels.channel_names(conn, placeholder_id) is None:
        return Adopted()
    stamp = iso(now or datetime.now(UTC)) or ""
    channels.upsert_channel(conn, channel, stamp)
    work = _Adoption(conn, stamp)
    conn.execute(dialect_of(conn).defer_foreign_keys)  # rows move between keys; checked at commit
    channels.absorb_placeholder(conn, placeholder_id, channel.id)  # reads where each row's messages start
    touched, shown, moved = _move_messages(conn, work, placeholder_id, channel.id, stamp)
    args = {"p": placeholder_id, "r": channel.id}
    for column, kind in (("fwd_from_id", "fwd_from_type"), ("fwd_saved_from_id", "fwd_saved_from_type")):
        touched.update(r[0] for r in conn.execute(
            f"SELECT post_id FROM messages WHERE {kind} = 'channel' AND {column} = :p", args))
        conn.execute(f"UPDATE messages SET {column} = :r WHERE {kind} = 'channel' AND {column} = :p", args)
    touched.update(r[0] for r in conn.execute("SELECT id FROM posts WHERE origin_channel_id = :p", args))
    shown += _move_keys(conn, work, placeholder_id, channel.id)
    for kind in CHANNEL_KEYS:
        prefix = f"{kind}:{placeholder_id}:"
        conn.execute(
            "UPDATE posts SET key = :new || substr(key, :cut) WHERE key > :lo AND key < :hi",
            {"new": f"{kind}:{channel.id}:", "cut": len(prefix) + 1, **_key_range(prefix)})
    conn.execute("UPDATE posts SET origin_channel_id = :r WHERE origin_channel_id = :p", args)
    work.settle(touched, shown)
    return Adopted(moved, len(work.merged))


def _move_messages(conn: sqlite3.Connection, work: _Adoption, placeholder_id: int, real_id: int,
                   now: str) -> tuple[set[int], list[str], int]:
    """Messages of the placeholder move to the real id; one stored under both is kept once, and
    their posts merge. Returns the posts touched, the texts merged posts showed, messages moved."""
    args = {"p": placeholder_id, "r": real_id, "now": now}
    touched = {r[0] for r in conn.execute("SELECT post_id FROM messages WHERE channel_id = :p", args)}
    both = conn.execute(
        "SELECT p.message_id FROM messages p JOIN messages r ON r.channel_id = :r"
        " AND r.message_id = p.message_id WHERE p.channel_id = :p", args).fetchall()
    shown: list[str] = []
    for (message_id,) in both:
        shown += _merge_message(conn, work, placeholder_id, real_id, message_id, now)
    moved = conn.execute("UPDATE messages SET channel_id = :r WHERE channel_id = :p", args).rowcount
    for table in ("message_versions", "message_stats", "message_media", "tg_files"):
        conn.execute(f"UPDATE {table} SET channel_id = :r WHERE channel_id = :p", args)
    return touched, shown, moved + len(both)


def _merge_message(conn: sqlite3.Connection, work: _Adoption, placeholder_id: int, real_id: int,
                   message_id: int, now: str) -> list[str]:
    """One message read under both ids: the real row stays, with the later edit's content (the other
    content, if it differs, is kept as a version, as ingest keeps one), counts it lacks, the wider
    seen interval; the placeholder's versions, readings, media links and files move to it, its row
    goes, and the two posts merge."""
    key = {"p": placeholder_id, "r": real_id, "m": message_id, "now": now}
    p, r = (conn.execute("SELECT * FROM messages WHERE channel_id = ? AND message_id = ?",
                         (c, message_id)).fetchone() for c in (placeholder_id, real_id))
    newer, older = (p, r) if (p["edit_date"] or "") > (r["edit_date"] or "") else (r, p)
    # The web shows media unlike the API (a preview, no file id): only other words are an edit.
    content = ("text", "entities")
    if any(newer[c] != older[c] for c in content) and not conn.execute(
            "SELECT 1 FROM message_versions WHERE channel_id IN (:p, :r) AND message_id = :m"
            " AND text = :text AND entities = :entities",
            {**key, **{c: older[c] for c in content}}).fetchone():
        conn.execute(
            "INSERT INTO message_versions (channel_id, message_id, edit_date, text, entities, media,"
            " replaced_at, raw) VALUES (:r, :m, :edit_date, :text, :entities, :media, :now, :raw)",
            {**key, **{c: older[c] for c in ("edit_date", "text", "entities", "media", "raw")}})
    filled = ("views", "forwards", "replies", "reactions", "reply_to", "grouped_id", "post_author",
              "fwd_from_type", "fwd_from_id", "fwd_channel_post", "fwd_from_name", "fwd_date",
              "fwd_post_author", "fwd_saved_from_type", "fwd_saved_from_id", "fwd_saved_from_msg_id",
              "stats_due")
    values = {c: r[c] if r[c] is not None else p[c] for c in filled}
    values.update({c: newer[c] for c in (*content, "edit_date")})
    values["media"] = r["media"] if r["media"] is not None else p["media"]  # the API's names the file
    values["raw"] = newer["raw"] if newer["raw"] is not None else older["raw"]
    values["first_seen"] = min(p["first_seen"], r["first_seen"])
    values["last_seen"] = max(p["last_seen"] or "", r["last_seen"] or "") or None
    gone = [d for d in (p["deleted_at"], r["deleted_at"]) if d is not None]
    deleted = min(gone) if gone and min(gone) > (values["last_seen"] or "") else None
    values["deleted_at"] = deleted
    values["deleted_via"] = next((x["deleted_via"] for x in (r, p) if x["deleted_at"] == deleted), None) \
        if deleted else None
    sets = ", ".join(f"{c} = :{c}" for c in values)
    conn.execute(f"UPDATE messages SET {sets} WHERE channel_id = :r AND message_id = :m", {**key, **values})
    # versions, readings: the real row's reading of the same moment wins
    conn.execute("UPDATE message_versions SET channel_id = :r WHERE channel_id = :p AND message_id = :m", key)
    conn.execute(  # UPDATE OR IGNORE, portably: a reading the real row has at that moment stays
        "UPDATE message_stats SET channel_id = :r WHERE channel_id = :p AND message_id = :m AND NOT EXISTS"
        " (SELECT 1 FROM message_stats o WHERE o.channel_id = :r AND o.message_id = :m"
        " AND o.at = message_stats.at)", key)
    conn.execute("DELETE FROM message_stats WHERE channel_id = :p AND message_id = :m", key)
    # media links: the real row's current file stays current; the placeholder's is kept, replaced
    conn.execute(
        """UPDATE message_media SET replaced_at = :now WHERE channel_id = :p AND message_id = :m
           AND replaced_at IS NULL AND position IN (SELECT position FROM message_media
           WHERE channel_id = :r AND message_id = :m AND replaced_at IS NULL) AND file_id NOT IN
           (SELECT file_id FROM message_media WHERE channel_id = :r AND message_id = :m)""", key)
    conn.execute(  # UPDATE OR IGNORE, portably: the key (file) and the current file's position stay unique
        """UPDATE message_media SET channel_id = :r WHERE channel_id = :p AND message_id = :m
           AND NOT EXISTS (SELECT 1 FROM message_media o WHERE o.channel_id = :r AND o.message_id = :m
                           AND o.file_id = message_media.file_id)
           AND NOT (message_media.replaced_at IS NULL AND EXISTS (SELECT 1 FROM message_media o
                    WHERE o.channel_id = :r AND o.message_id = :m AND o.replaced_at IS NULL
                    AND o.position = message_media.position))""", key)
    conn.execute("DELETE FROM message_media WHERE channel_id = :p AND message_id = :m", key)
    conn.execute("UPDATE tg_files SET channel_id = :r WHERE channel_id = :p AND message_id = :m", key)
    conn.execute("DELETE FROM messages WHERE channel_id = :p AND message_id = :m", key)
    merged = work.join(p["post_id"], r["post_id"])
    return [merged] if merged is not None else []


def _key_range(prefix: str) -> dict[str, str]:
    """Bounds of the keys that start with `prefix` (ending in ':'), for a range of the key's index."""
    return {"lo": prefix, "hi": prefix[:-1] + chr(ord(":") + 1)}


def _move_keys(conn: sqlite3.Connection, work: _Adoption, placeholder_id: int, real_id: int) -> list[str]:
    """Dedup keys naming the placeholder name the real id; a key that meets one taken already, or
    the text key it pairs with (rule 2), merges the two posts. Returns the texts merged posts showed."""
    shown: list[str] = []
    renamed: list[str] = []
    for kind in CHANNEL_KEYS:
        prefix = f"{kind}:{placeholder_id}:"
        rows = conn.execute("SELECT key, post_id FROM post_keys WHERE key > :lo AND key < :hi",
                            _key_range(prefix)).fetchall()
        for old, post_id in rows:
            new = f"{kind}:{real_id}:{old[len(prefix):]}"
            taken = conn.execute("SELECT post_id FROM post_keys WHERE key = ?", (new,)).fetchone()
            conn.execute("DELETE FROM post_keys WHERE key = ?", (old,))
            if taken is None:
                conn.execute("INSERT INTO post_keys (key, post_id) VALUES (?, ?)", (new, work.post(post_id)))
            elif (text := work.join(taken[0], post_id)) is not None:
                shown.append(text)
            renamed.append(new)
    for key in renamed:
        kind, _, rest = key.partition(":")
        pair = _PAIRED.get(kind)
        if pair is None:
            continue
        found = [r[0] for r in conn.execute("SELECT post_id FROM post_keys WHERE key IN (?, ?)",
                                            (key, f"{pair}:{rest}"))]
        if len(found) == 2 and (text := work.join(*found)) is not None:
            shown.append(text)
    return shown
