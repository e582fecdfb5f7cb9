"""Web-preview posts (`bot.web.preview.WebPost`) as the `MessageRecord`s the API path stores, so ingest,
dedup, alerts, search and exports are the same whichever way a channel is read.

- Channel id: the page's real id when it carries one (a placeholder holding that username's archive
  is adopted into it first, `storage.identity.adopt_username`), else `channel_for_username`.
- Forward provenance: the "Forwarded from" link's username and post id become a `ForwardHeader`
  naming the origin's id (real or placeholder) and `channel_post`, so the sighting meets the
  origin's post by key as an API-read forward does; a header without a link is a hidden sender
  (`from_name` only), matched as the API path matches id-less forwards.
- Edits: the page says "edited" but gives no edit time. `edit_date` is therefore derived against what
  is stored: a new post marked edited gets its own date (so `is:edited` finds it); a re-read with the
  stored text and entities keeps the stored edit_date (ingest writes nothing); a re-read with other
  words gets the time the change was seen, later than the stored one, so ingest keeps a version.
- `raw` is the parsed post as JSON (`"_": "WebPost"`, with `views_text`, the approximate views as
  shown), never the HTML.

Functions taking a connection run inside the caller's transaction (`storage.database`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from typing import Any

from bot.web.preview import WebChannel, WebForward, WebPost
from storage import channels, identity
from storage.ingest_rows import entities_json
from storage.records import Channel, ForwardHeader, MessageRecord, iso, parse_iso

__all__ = ["channel_id_for", "forward_header", "raw_of", "record_of", "records_for"]


def raw_of(post: WebPost) -> dict[str, Any]:
    """The parsed post as JSON-able data, tagged `"_": "WebPost"` (what `messages.raw` keeps)."""
    data = asdict(post)
    data["date"] = iso(post.date)
    if post.media is not None:
        data["media"] = {k: v for k, v in asdict(post.media).items() if v not in (None, {}, ())}
    data["entities"] = [dict(e) for e in post.entities]
    data["album"] = list(post.album)
    return {"_": "WebPost", **data}


def forward_header(conn: sqlite3.Connection, forward: WebForward | None, now: datetime,
                   origins: dict[str, int] | None = None) -> ForwardHeader | None:
    """The "Forwarded from" header as the API path records it: the origin channel by its id (a
    placeholder when only its username is known), or a hidden sender's name. `origins` remembers the
    ids a page's forwards named already (a page often forwards one origin many times)."""
    if forward is None:
        return None
    if forward.username:
        key = forward.username.lower()
        origin = (origins or {}).get(key)
        if origin is None:
            origin = identity.channel_for_username(conn, forward.username, now)
            if origins is not None:
                origins[key] = origin
        return ForwardHeader(from_peer_type="channel", from_peer_id=origin, channel_post=forward.message_id,
                             origin_username=forward.username, origin_title=forward.name)
    return ForwardHeader(from_name=forward.name)


def record_of(post: WebPost, channel_id: int, *, forward: ForwardHeader | None,
              edit_date: datetime | None) -> MessageRecord:
    """One post as a `MessageRecord` of `channel_id` (views approximate: the figure shown, written out)."""
    return MessageRecord(
        channel_id=channel_id, message_id=post.message_id, date=post.date, text=post.text,
        entities=post.entities, edit_date=edit_date, views=post.views, reply_to=post.reply_to,
        grouped_id=post.grouped_id, post_author=post.post_author, media=post.media, forward=forward,
        raw=raw_of(post))


def channel_id_for(conn: sqlite3.Connection, username: str, real_id: int | None, now: datetime,
                   *, title: str | None = None) -> int:
    """The id a web-read channel's posts are filed under: its real id when the page gives it (any
    placeholder for the name adopted into it first), else the placeholder's or known channel's."""
    if real_id is None or real_id <= 0:
        return identity.channel_for_username(conn, username, now)
    channel = Channel(real_id, username, title)
    channels.upsert_channel(conn, channel, iso(now) or "")
    identity.adopt_username(conn, channel, now)
    return real_id


def records_for(conn: sqlite3.Connection, channel_id: int, posts: list[WebPost] | tuple[WebPost, ...],
                now: datetime, stored: dict[int, tuple[str, str, str | None, int | None]] | None = None
                ) -> list[MessageRecord]:
    """The posts of one channel as records, each `edit_date` derived against the stored message (see
    the module docstring) so that only a changed text or entities makes a version. `stored`: what
    `channels.stored_contents` says of them, when the caller read it already."""
    if stored is None:
        stored = channels.stored_contents(conn, channel_id, [p.message_id for p in posts])
    records: list[MessageRecord] = []
    origins: dict[str, int] = {}
    for post in posts:
        record = record_of(post, channel_id, forward=forward_header(conn, post.forward, now, origins),
                           edit_date=None)
        before = stored.get(post.message_id)
        if before is None:
            edit_date = post.date if post.edited else None
        else:
            text, entities, stored_edit, _ = before
            old_edit = parse_iso(stored_edit)
            if record.text == text and entities_json(record) == entities:
                edit_date = old_edit if old_edit is not None or not post.edited else now
            else:  # other words: a version, dated when we saw it (after any stored edit)
                edit_date = now if old_edit is None or now > old_edit else old_edit + timedelta(seconds=1)
        records.append(replace(record, edit_date=edit_date))
    return records


def channel_record(channel: WebChannel | None, channel_id: int, username: str) -> Channel:
    """The channel as a batch names it (title from the page header when there is one)."""
    return Channel(channel_id, username, channel.title if channel is not None else None)
