"""The whole record of one post (`chanwatch show`, the bot's /post): its origin, every sighting with its
delay after the origin, each sighting's versions, deletion interval and engagement readings, and the
post's files. Read-only; a handful of queries per post, never one per row.

`find_post` turns what a person pastes — a post id, a t.me link, `@name/5678` — into a post id: a link
to any sighting finds the post, not only a link to its origin.

    record = post_record(conn, find_post(conn, "https://t.me/rusembc/500"))
    [(s.username, s.delay_s, s.deleted_at) for s in record.sightings]
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from storage.media_queue import files_of_post
from storage.records import PostFile, Reading, message_url, parse_iso
from storage.word_diff import word_diff

__all__ = ["FORMS", "PostRecord", "PostRefError", "Sighting", "Version", "find_post", "post_record",
           "record_json"]

FORMS = ("a post id (1234)", "a link (https://t.me/MFARussia/5678, https://t.me/c/1234567/5678)",
         "@MFARussia/5678")
"""What `find_post` accepts, as errors list it."""

_LINK = re.compile(r"(?:https?://)?(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?(c/)?([A-Za-z0-9_]+)/(\d+)/?"
                   r"(?:[?#].*)?", re.I)
_NAMED = re.compile(r"@?([A-Za-z][A-Za-z0-9_]{3,31})/(\d+)")


class PostRefError(ValueError):
    """A reference to a post that is malformed or finds nothing; the message lists the forms accepted."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; give {', '.join(FORMS[:-1])} or {FORMS[-1]}")
        self.problem = problem


def find_post(conn: sqlite3.Connection, ref: str) -> int:
    """The id of the post `ref` names: a post id, a t.me link (`t.me/name/5678`, `t.me/c/<id>/5678`) or
    `@name/5678` / `name/5678` of any of its sightings. Raises PostRefError when nothing matches."""
    ref = ref.strip()
    if ref.isdigit() and ref.isascii():
        row = conn.execute("SELECT id FROM posts WHERE id = ?", (int(ref),)).fetchone()
        if row is None:
            raise PostRefError(f"the archive has no post {ref}")
        return row[0]
    shown = ref if len(ref) <= 80 else ref[:79] + "…"
    link = _LINK.fullmatch(ref)
    named = _NAMED.fullmatch(ref) if link is None else None
    if link is not None and link.group(1):  # t.me/c/<channel id>/<message id>
        if not link.group(2).isdigit():
            raise PostRefError(f"not a post link: {shown!r}")
        channel_id, message_id = int(link.group(2)), int(link.group(3))
        row = conn.execute("SELECT post_id FROM messages WHERE channel_id = ? AND message_id = ?",
                           (channel_id, message_id)).fetchone()
        where = f"channel {channel_id}"
    elif link is not None or named is not None:
        name, number = (link.group(2), link.group(3)) if link is not None else named.groups()  # type: ignore[union-attr]
        message_id = int(number)
        row = conn.execute(
            """SELECT m.post_id FROM channels c JOIN messages m ON m.channel_id = c.id
               WHERE lower(c.username) = lower(?) AND m.message_id = ? ORDER BY c.id DESC LIMIT 1""",
            (name, message_id),
        ).fetchone()
        where = f"@{name}"
    else:
        raise PostRefError(f"not a post id or link: {shown!r}")
    if row is None:
        raise PostRefError(f"the archive has no message {message_id} of {where}")
    return row[0]


@dataclass(frozen=True, slots=True)
class Version:
    """One state of a message, oldest first: earlier ones from `message_versions`, the last one
    (`current`) as the message stands. `replaced_at`: when we saw it replaced (None for the current);
    `has_raw`: whether the whole message as Telegram sent it is kept for this version."""

    edit_date: str | None
    text: str
    entities: list[dict[str, Any]]
    media: dict[str, Any] | None
    has_raw: bool
    replaced_at: str | None
    current: bool


@dataclass(frozen=True, slots=True)
class Sighting:
    """One message that carried the post, with everything known about it. `delay_s` is seconds from
    the origin's date to this message's date. A deletion happened between `last_seen` (last seen
    present) and `deleted_at` (first seen missing); `deleted_via` says which read saw it."""

    channel_id: int
    username: str | None
    title: str | None
    message_id: int
    url: str
    relation: str
    date: str
    delay_s: float
    first_seen: str
    last_seen: str | None
    deleted_at: str | None
    deleted_via: str | None
    views: int | None
    forwards: int | None
    replies: int | None
    reactions: dict[str, int] | None
    versions: tuple[Version, ...]
    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True)
class PostRecord:
    """A post: who posted it first (origin), when, what it says, every sighting, and its files."""

    post_id: int
    date: str
    text: str
    lang: str | None
    media_kind: str | None
    origin_channel_id: int | None
    origin_username: str | None
    origin_title: str | None
    origin_message_id: int | None
    origin_author: str | None
    origin_url: str | None
    first_seen: str
    edited_at: str | None
    sightings: tuple[Sighting, ...]
    files: tuple[PostFile, ...]


def _json(value: str | None) -> Any:
    return json.loads(value) if value else None


def post_record(conn: sqlite3.Connection, post_id: int) -> PostRecord | None:
    """The whole record of post `post_id` (None if there is none): sightings origin first, then by date."""
    p = conn.execute(
        """SELECT id, date, text, language, media_kind, origin_channel_id, origin_username, origin_title,
                  origin_message_id, origin_author, first_seen, edited_at FROM posts WHERE id = ?""",
        (post_id,),
    ).fetchone()
    if p is None:
        return None
    origin_date = parse_iso(p[1])
    assert origin_date is not None
    versions: dict[tuple[int, int], list[Version]] = {}
    for row in conn.execute(
        """SELECT v.channel_id, v.message_id, v.edit_date, v.text, v.entities, v.media, v.raw IS NOT NULL,
                  v.replaced_at
           FROM message_versions v
           JOIN messages m ON m.channel_id = v.channel_id AND m.message_id = v.message_id
           WHERE m.post_id = ? ORDER BY v.channel_id, v.message_id, v.id""",
        (post_id,),
    ):
        versions.setdefault((row[0], row[1]), []).append(
            Version(row[2], row[3], _json(row[4]) or [], _json(row[5]), bool(row[6]), row[7], False))
    readings: dict[tuple[int, int], list[Reading]] = {}
    for row in conn.execute(
        """SELECT s.channel_id, s.message_id, s.at, s.views, s.forwards, s.replies, s.reactions
           FROM message_stats s
           JOIN messages m ON m.channel_id = s.channel_id AND m.message_id = s.message_id
           WHERE m.post_id = ? ORDER BY s.channel_id, s.message_id, s.at""",
        (post_id,),
    ):
        readings.setdefault((row[0], row[1]), []).append(Reading(*row[:6], _json(row[6])))
    sightings = []
    for m in conn.execute(
        """SELECT m.channel_id, c.username, c.title, m.message_id, m.relation, m.date, m.first_seen,
                  m.last_seen, m.deleted_at, m.deleted_via, m.views, m.forwards, m.replies, m.reactions,
                  m.edit_date, m.text, m.entities, m.media, m.raw IS NOT NULL
           FROM messages m LEFT JOIN channels c ON c.id = m.channel_id WHERE m.post_id = ?
           ORDER BY m.relation != 'original', m.date, m.channel_id, m.message_id""",
        (post_id,),
    ):
        key = (m[0], m[3])
        date = parse_iso(m[5])
        assert date is not None
        current = Version(m[14], m[15], _json(m[16]) or [], _json(m[17]), bool(m[18]), None, True)
        sightings.append(Sighting(
            channel_id=m[0], username=m[1], title=m[2], message_id=m[3],
            url=message_url(m[0], m[1], m[3]), relation=m[4], date=m[5],
            delay_s=(date - origin_date).total_seconds(), first_seen=m[6], last_seen=m[7],
            deleted_at=m[8], deleted_via=m[9], views=m[10], forwards=m[11], replies=m[12],
            reactions=_json(m[13]), versions=(*versions.get(key, ()), current),
            readings=tuple(readings.get(key, ())),
        ))
    return PostRecord(
        post_id=p[0], date=p[1], text=p[2], lang=p[3], media_kind=p[4], origin_channel_id=p[5],
        origin_username=p[6], origin_title=p[7], origin_message_id=p[8], origin_author=p[9],
        origin_url=message_url(p[5], p[6], p[8]), first_seen=p[10], edited_at=p[11],
        sightings=tuple(sightings), files=tuple(files_of_post(conn, post_id)),
    )


def record_json(record: PostRecord) -> dict[str, Any]:
    """The record as one JSON object (`chanwatch show --json`): the dataclass tree, and for each version
    after the first its word diff from the one before (`[[op, text], ...]`, `storage.word_diff`)."""
    out = asdict(record)
    for sighting, shown in zip(record.sightings, out["sightings"], strict=True):
        for index, version in enumerate(shown["versions"]):
            before = sighting.versions[index - 1].text if index else None
            runs = None if before is None else word_diff(before, version["text"])
            version["diff"] = None if runs is None else [list(run) for run in runs]
    return out
