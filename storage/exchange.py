"""Import and export of the archive: Telegram Desktop JSON exports in, our JSONL and CSV out (and in).

Imports go through `storage.ingest`, so they deduplicate exactly like polling does and are
idempotent: importing the same file twice changes nothing. Imports never run the alert hook
(history is not news). Everything here is synchronous over a `sqlite3.Connection`.

Telegram Desktop ("Export chat history", JSON, of one channel)
    `result.json` with the channel's bare `id`, its `name` and `messages`. Service messages are
    skipped (and counted). Text is rebuilt from `text_entities`; entities become our JSON dicts
    with the names `bot.normalize` gives Telethon's entities (`text_link` -> `text_url`,
    `link` -> `url`, `strikethrough` -> `strike`, the rest as exported). Offsets and lengths are in
    UTF-16 code units, as Telegram counts them (an emoji outside the BMP is 2 units), so
    `text.encode("utf-16-le")[2 * offset: 2 * (offset + length)]` is the entity's text. Exports
    carry no views, no album `grouped_id` and no original post id of a forward, so a forward finds
    its original by folded text (`storage.dedup` rule 3). `raw` is the export's message dict.

Our JSONL (one JSON object a line, one line per canonical post, ordered by `post_id`)::

    post_id, key, text, entities, date, lang, media_kind, first_seen, edited_at,
    origin:    {channel_id, username, title, message_id, author, date, url}
    sightings: [{channel_id, username, title, message_id, date, relation, url, deleted_at,
                 edit_date, views, forwards, replies, reply_to, grouped_id, post_author,
                 media, forward, first_seen, raw, [text], [entities]}]      original(s) first
    versions:  [{channel_id, message_id, edit_date, text, entities, replaced_at}]

`forward` is null or {from_type, from_id, channel_post, from_name, date, post_author,
saved_from_type, saved_from_id, saved_from_msg_id}: the header as stored. A sighting carries
`text` / `entities` only when they differ from the post's. `versions` are the earlier texts of
the sightings, oldest first. Dates are ISO-8601 UTC text. Importing an export into a fresh archive
and exporting again gives the identical file: each message is replayed through ingest version by
version, with the archive's own timestamps as "now".

CSV: one row per post, sightings flattened as `rusembc/500 forward; MFARussia/10 original`.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TextIO

from storage.ingest import ingest, ingest_batch
from storage.progress import Progress
from storage.records import Batch, Channel, ForwardHeader, Media, MessageRecord, message_url, parse_iso
from storage.text import utf16_len

__all__ = [
    "BATCH_SIZE",
    "ExchangeError",
    "ImportReport",
    "desktop_entities",
    "desktop_media",
    "desktop_record",
    "detect_format",
    "export_posts",
    "import_file",
    "utf16_len",
]

BATCH_SIZE = 500
"""Messages per import transaction."""

EXPORT_PAGE = 200
"""Posts loaded per query while exporting."""

CHANNEL_CHAT_TYPES = ("public_channel", "private_channel", "public_supergroup", "private_supergroup")

# Telegram Desktop entity names -> the names bot.normalize derives from Telethon's classes.
_ENTITY_NAMES = {"text_link": "text_url", "link": "url", "strikethrough": "strike"}
_MEDIA_KINDS = {
    "video_file": "video", "video_message": "video", "voice_message": "voice",
    "audio_file": "audio", "animation": "gif", "sticker": "sticker",
}


class ExchangeError(Exception):
    """A file cannot be imported or exported; the message names it and says what was expected."""


@dataclass(slots=True)
class ImportReport:
    """What one imported file held and what it changed (messages are counted once each)."""

    format: str  # "desktop" or "jsonl"
    channel: str  # the channel's name (desktop), or "N channels" (jsonl)
    path: str = ""
    messages: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    service_skipped: int = 0
    posts_new: int = 0
    channels: set[int] = field(default_factory=set, repr=False)


def _json(value: Any) -> str:
    """Compact JSON, as `storage.ingest` stores it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# --- format detection -----------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """`desktop` or `jsonl`, judged by content; ExchangeError for anything else."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    expected = "expected a Telegram Desktop result.json or a chanwatch JSONL export"
    if not head.strip():
        raise ExchangeError(f"{path}: the file is empty; {expected}")
    if b"\x00" in head:
        raise ExchangeError(f"{path}: binary data, not JSON; {expected}")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(head) < 4096:
            raise ExchangeError(f"{path}: not UTF-8 text; {expected}") from exc
        try:  # a multi-byte character may be cut at the 4096th byte
            text = head[:-3].decode("utf-8-sig")
        except UnicodeDecodeError as again:
            raise ExchangeError(f"{path}: not UTF-8 text; {expected}") from again
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        kind = "a JSON list" if stripped.startswith("[") else "not JSON"
        raise ExchangeError(f"{path}: {kind}; {expected}")
    if stripped.startswith("{\n") or stripped.startswith("{\r\n"):
        return "desktop"  # pretty-printed, as Telegram Desktop writes it; _load_desktop checks it
    try:
        with path.open(encoding="utf-8-sig") as fh:
            first_line = next((line for line in fh if line.strip()), "")
        first = json.loads(first_line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "desktop"  # _load_desktop says what is wrong with it
    if isinstance(first, dict) and "post_id" in first:
        return "jsonl"
    return "desktop"


def import_file(
    conn: sqlite3.Connection, path: str | Path, *, progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import one file (format detected by content) into the archive; idempotent.

    `progress` hears how far it got: a Desktop export counts its messages under the channel's
    title, out of a known total; our JSONL counts posts under the file's name, total unknown.
    """
    path = Path(path)
    if not path.is_file():
        raise ExchangeError(f"{path}: no such file")
    fmt = detect_format(path)
    if fmt == "jsonl":
        return _import_jsonl(conn, path, progress=progress)
    return _import_desktop(conn, path, progress=progress, now=now)


def _no_progress(label: str, done: int, total: int | None) -> None:
    """The `Progress` of a caller that does not want to know."""


# --- Telegram Desktop export ----------------------------------------------------------------------


def _load_desktop(path: Path) -> dict[str, Any]:
    """The export's top-level object, checked to be one channel's history."""
    expected = "expected a Telegram Desktop channel export (result.json)"
    try:
        with path.open(encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except UnicodeDecodeError as exc:
        raise ExchangeError(f"{path}: not UTF-8 text; {expected}") from exc
    except json.JSONDecodeError as exc:
        raise ExchangeError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); {expected}") from exc
    if not isinstance(data, dict):
        raise ExchangeError(f"{path}: JSON {type(data).__name__}, not an object; {expected}")
    if "chats" in data and "messages" not in data:
        raise ExchangeError(f"{path}: a whole-account export; {expected} of a single channel")
    if not isinstance(data.get("messages"), list):
        raise ExchangeError(f"{path}: JSON without a 'messages' list; {expected}")
    chat_type = data.get("type")
    if chat_type is not None and chat_type not in CHANNEL_CHAT_TYPES:
        raise ExchangeError(f"{path}: an export of a {chat_type}, not of a channel; {expected}")
    if not isinstance(data.get("id"), int) or isinstance(data.get("id"), bool):
        raise ExchangeError(f"{path}: no numeric channel 'id' at the top level; {expected}")
    return data


def _import_desktop(
    conn: sqlite3.Connection, path: Path, *, progress: Progress | None, now: datetime | None
) -> ImportReport:
    data = _load_desktop(path)
    channel = Channel(id=data["id"], title=data.get("name") or None)
    report = ImportReport("desktop", channel.title or str(channel.id), str(path), channels={channel.id})
    records: list[MessageRecord] = []
    for position, message in enumerate(data["messages"]):
        if not isinstance(message, dict):
            raise ExchangeError(f"{path}: messages[{position}] is not an object; expected a message")
        if message.get("type") != "message":
            report.service_skipped += 1
            continue
        try:
            records.append(desktop_record(channel.id, message))
        except (KeyError, TypeError, ValueError) as exc:
            raise ExchangeError(
                f"{path}: message {message.get('id', f'#{position}')} cannot be read ({exc!r}); "
                "expected Telegram Desktop's export format"
            ) from exc
    report.messages = len(records)
    advance = progress or _no_progress
    label = channel.title or str(channel.id)
    advance(label, 0, len(records))
    for start in range(0, len(records), BATCH_SIZE):
        chunk = tuple(records[start:start + BATCH_SIZE])
        cursor = max(r.message_id for r in chunk)
        result = ingest_batch(conn, Batch(channel, chunk, cursor=cursor), now=now)
        report.new += result.messages_new
        report.updated += result.messages_updated
        report.unchanged += result.messages_unchanged
        report.posts_new += len(result.new_post_ids)
        advance(label, start + len(chunk), len(records))
    return report


def _unix(value: Any) -> datetime | None:
    """An export's `*_unixtime` string as an aware UTC datetime."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _date(message: dict[str, Any], unix_key: str, local_key: str) -> datetime | None:
    """Prefer the UTC unixtime; the plain field is the exporter's local time (taken as UTC)."""
    if message.get(unix_key) not in (None, ""):
        return _unix(message[unix_key])
    local = message.get(local_key)
    return datetime.fromisoformat(local).replace(tzinfo=UTC) if local else None


def _peer(value: Any) -> tuple[str | None, int | None]:
    """`channel1234` -> ("channel", 1234), `user5678` -> ("user", 5678); else (None, None)."""
    if not isinstance(value, str):
        return None, None
    for kind in ("channel", "user", "chat"):
        if value.startswith(kind) and value[len(kind):].isdigit():
            return kind, int(value[len(kind):])
    return None, None


def _text_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The message's text as export entities; `text` is used when `text_entities` is absent."""
    parts = message.get("text_entities")
    if parts is None:
        raw = message.get("text", "")
        raw = [raw] if isinstance(raw, str) else raw
        parts = [{"type": "plain", "text": p} if isinstance(p, str) else p for p in raw]
    return parts


def desktop_entities(parts: Iterable[dict[str, Any]]) -> tuple[str, tuple[dict[str, Any], ...]]:
    """Rebuild (text, entities) from an export's `text_entities`; offsets in UTF-16 code units."""
    pieces: list[str] = []
    entities: list[dict[str, Any]] = []
    offset = 0
    for part in parts:
        piece = part.get("text", "")
        length = utf16_len(piece)
        kind = part.get("type", "plain")
        if kind != "plain" and length:
            entity: dict[str, Any] = {
                "type": _ENTITY_NAMES.get(kind, kind), "offset": offset, "length": length,
            }
            if part.get("href"):
                entity["url"] = part["href"]
            if isinstance(part.get("user_id"), int):
                entity["user_id"] = part["user_id"]
            if part.get("language"):
                entity["language"] = part["language"]
            doc = part.get("document_id")
            if isinstance(doc, int) or (isinstance(doc, str) and doc.isdigit()):
                entity["document_id"] = int(doc)  # exports usually hold a file path here instead
            if part.get("collapsed"):
                entity["collapsed"] = True
            entities.append(entity)
        pieces.append(piece)
        offset += length
    return "".join(pieces), tuple(entities)


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, "", False)}


def desktop_media(message: dict[str, Any]) -> Media | None:
    """An export message's media as `Media`, with the kinds `bot.normalize` uses."""
    dims = _present(width=message.get("width"), height=message.get("height"))
    if "photo" in message:
        size = message.get("photo_file_size")
        extra = {**dims, **_present(spoiler=message.get("media_spoiler"))}
        return Media(kind="photo", size=size, mime_type="image/jpeg" if size else None, extra=extra)
    if "file" in message or "media_type" in message:
        media_type = message.get("media_type")
        extra = {
            **dims,
            **_present(
                duration=message.get("duration_seconds"), performer=message.get("performer"),
                audio_title=message.get("title"), emoji=message.get("sticker_emoji"),
                spoiler=message.get("media_spoiler"),
            ),
        }
        if media_type == "video_message":
            extra["round"] = True
        return Media(
            kind=_MEDIA_KINDS.get(media_type or "", "document"), file_name=message.get("file_name"),
            size=message.get("file_size"), mime_type=message.get("mime_type"), extra=extra,
        )
    if isinstance(message.get("poll"), dict):
        poll = message["poll"]
        extra = {"question": poll.get("question", ""),
                 "answers": [a.get("text", "") for a in poll.get("answers", [])]}
        extra.update(_present(closed=poll.get("closed"), total_voters=poll.get("total_voters")))
        return Media(kind="poll", extra=extra)
    if isinstance(message.get("location_information"), dict):
        loc = message["location_information"]
        extra = _present(lat=loc.get("latitude"), long=loc.get("longitude"),
                         title=message.get("place_name"), address=message.get("address"),
                         live_period=message.get("live_location_period_seconds"))
        return Media(kind="geo", extra=extra)
    if isinstance(message.get("contact_information"), dict):
        contact = message["contact_information"]
        return Media(kind="contact", extra=_present(
            first_name=contact.get("first_name"), last_name=contact.get("last_name"),
            phone_number=contact.get("phone_number"),
        ))
    for key in ("game_title", "invoice_information", "dice"):
        if key in message:
            return Media(kind="other", extra={"export": key})
    return None


def _desktop_forward(message: dict[str, Any]) -> ForwardHeader | None:
    """The export's `forwarded_from` / `forwarded_from_id` as a header without `channel_post`."""
    name = message.get("forwarded_from")
    peer_type, peer_id = _peer(message.get("forwarded_from_id"))
    if name is None and peer_id is None:
        return None
    return ForwardHeader(
        from_peer_type=peer_type, from_peer_id=peer_id,
        from_name=name if peer_id is None else None,  # Telegram sets from_name for hidden senders only
        origin_title=name if peer_id is not None else None,
    )


def desktop_record(channel_id: int, message: dict[str, Any]) -> MessageRecord:
    """One export message of type `message` as a `MessageRecord` (raw = the export's dict)."""
    text, entities = desktop_entities(_text_parts(message))
    date = _date(message, "date_unixtime", "date")
    if date is None:
        raise ValueError("no date")
    reply_to = message.get("reply_to_message_id")
    return MessageRecord(
        channel_id=channel_id,
        message_id=int(message["id"]),
        date=date,
        text=text,
        entities=entities,
        edit_date=_date(message, "edited_unixtime", "edited"),
        reply_to=reply_to if isinstance(reply_to, int) else None,
        post_author=message.get("author") or None,
        media=desktop_media(message),
        forward=_desktop_forward(message),
        raw=message,
    )


# --- export ---------------------------------------------------------------------------------------


def _post_ids(conn: sqlite3.Connection, query: str | None) -> Iterator[list[int]]:
    """Pages of the ids of every post, or of those the query finds (in search order)."""
    if query is None:
        last = 0
        while True:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM posts WHERE id > ? ORDER BY id LIMIT ?", (last, EXPORT_PAGE)
            )]
            if not ids:
                return
            yield ids
            last = ids[-1]
    from storage import search  # imported here: export of everything needs no query language

    yield from search.id_pages(conn, query, EXPORT_PAGE)


def _forward_json(row: sqlite3.Row) -> dict[str, Any] | None:
    if not any(row[c] is not None for c in ("fwd_from_type", "fwd_from_id", "fwd_from_name", "fwd_date")):
        return None
    return {
        "from_type": row["fwd_from_type"], "from_id": row["fwd_from_id"],
        "channel_post": row["fwd_channel_post"], "from_name": row["fwd_from_name"],
        "date": row["fwd_date"], "post_author": row["fwd_post_author"],
        "saved_from_type": row["fwd_saved_from_type"], "saved_from_id": row["fwd_saved_from_id"],
        "saved_from_msg_id": row["fwd_saved_from_msg_id"],
    }


def _load_export_page(conn: sqlite3.Connection, ids: list[int]) -> list[dict[str, Any]]:
    """Full export objects of the posts `ids`, in that order."""
    marks = ", ".join("?" * len(ids))
    posts = {r["id"]: r for r in conn.execute(f"SELECT * FROM posts WHERE id IN ({marks})", ids)}
    sightings: dict[int, list[sqlite3.Row]] = {}
    for row in conn.execute(
        f"""SELECT m.*, c.username AS ch_username, c.title AS ch_title
            FROM messages m JOIN channels c ON c.id = m.channel_id
            WHERE m.post_id IN ({marks})
            ORDER BY m.relation != 'original', m.date, m.channel_id, m.message_id""",
        ids,
    ):
        sightings.setdefault(row["post_id"], []).append(row)
    versions: dict[int, list[sqlite3.Row]] = {}
    for row in conn.execute(
        f"""SELECT v.*, m.post_id FROM message_versions v
            JOIN messages m ON m.channel_id = v.channel_id AND m.message_id = v.message_id
            WHERE m.post_id IN ({marks}) ORDER BY v.channel_id, v.message_id, v.id""",
        ids,
    ):
        versions.setdefault(row["post_id"], []).append(row)
    out = []
    for post_id in ids:
        p = posts.get(post_id)
        if p is None:
            continue
        post_entities = json.loads(p["entities"])
        obj: dict[str, Any] = {
            "post_id": p["id"], "key": p["key"], "text": p["text"], "entities": post_entities,
            "date": p["date"], "lang": p["language"], "media_kind": p["media_kind"],
            "first_seen": p["first_seen"], "edited_at": p["edited_at"],
            "origin": {
                "channel_id": p["origin_channel_id"], "username": p["origin_username"],
                "title": p["origin_title"], "message_id": p["origin_message_id"],
                "author": p["origin_author"], "date": p["date"],
                "url": message_url(p["origin_channel_id"], p["origin_username"], p["origin_message_id"]),
            },
            "sightings": [],
            "versions": [
                {"channel_id": v["channel_id"], "message_id": v["message_id"], "edit_date": v["edit_date"],
                 "text": v["text"], "entities": json.loads(v["entities"]), "replaced_at": v["replaced_at"]}
                for v in versions.get(post_id, [])
            ],
        }
        for m in sightings.get(post_id, []):
            s: dict[str, Any] = {
                "channel_id": m["channel_id"], "username": m["ch_username"], "title": m["ch_title"],
                "message_id": m["message_id"], "date": m["date"], "relation": m["relation"],
                "url": message_url(m["channel_id"], m["ch_username"], m["message_id"]),
                "deleted_at": m["deleted_at"], "edit_date": m["edit_date"], "views": m["views"],
                "forwards": m["forwards"], "replies": m["replies"], "reply_to": m["reply_to"],
                "grouped_id": m["grouped_id"], "post_author": m["post_author"],
                "media": json.loads(m["media"]) if m["media"] else None,
                "forward": _forward_json(m), "first_seen": m["first_seen"],
                "raw": json.loads(m["raw"]) if m["raw"] else None,
            }
            if m["text"] != p["text"]:
                s["text"] = m["text"]
            entities = json.loads(m["entities"])
            if entities != post_entities:
                s["entities"] = entities
            obj["sightings"].append(s)
        out.append(obj)
    return out


CSV_COLUMNS = (
    "post_id", "date", "origin", "origin_message_id", "origin_url", "author", "lang", "media_kind",
    "edited_at", "text", "sightings_count", "sightings",
)


def _csv_row(obj: dict[str, Any]) -> list[Any]:
    origin = obj["origin"]
    flat = "; ".join(
        f"{s['username'] or s['channel_id']}/{s['message_id']} {s['relation']}"
        + (" deleted" if s["deleted_at"] else "")
        for s in obj["sightings"]
    )
    return [
        obj["post_id"], obj["date"], origin["username"] or origin["title"] or origin["channel_id"] or "",
        origin["message_id"] if origin["message_id"] is not None else "", origin["url"] or "",
        origin["author"] or "", obj["lang"] or "", obj["media_kind"] or "", obj["edited_at"] or "",
        obj["text"], len(obj["sightings"]), flat,
    ]


def export_posts(conn: sqlite3.Connection, query: str | None, fmt: str, out: TextIO) -> int:
    """Write every canonical post (or those `query` finds) as `jsonl` or `csv`; returns the count.

    Streams: posts are read a page at a time. A bad query raises `storage.query.QueryError`.
    """
    if fmt not in ("jsonl", "csv"):
        raise ExchangeError(f"unknown export format {fmt!r}; expected jsonl or csv")
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for ids in _post_ids(conn, query):
        for obj in _load_export_page(conn, ids):
            if writer is not None:
                writer.writerow(_csv_row(obj))
            else:
                out.write(_json(obj) + "\n")
            count += 1
    return count


# --- our JSONL back in ----------------------------------------------------------------------------


def _jsonl_posts(path: Path, fh: IO[str]) -> Iterator[dict[str, Any]]:
    """Each line's post object, checked just enough to give a clear error."""
    for number, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExchangeError(f"{path}: line {number} is not JSON ({exc.msg}); expected a chanwatch "
                                "JSONL export, one post object a line") from exc
        if not isinstance(obj, dict) or "post_id" not in obj or not isinstance(obj.get("sightings"), list):
            raise ExchangeError(f"{path}: line {number} is not a post object with post_id and sightings; "
                                "expected a chanwatch JSONL export")
        yield obj


def _record_from_sighting(post: dict[str, Any], s: dict[str, Any]) -> MessageRecord:
    """The message as it stands now, rebuilt from an exported sighting."""
    fwd = s.get("forward")
    header = None
    if fwd:
        origin = post.get("origin") or {}
        same_origin = fwd.get("from_type") == "channel" and fwd.get("from_id") == origin.get("channel_id")
        header = ForwardHeader(
            from_peer_type=fwd.get("from_type"), from_peer_id=fwd.get("from_id"),
            channel_post=fwd.get("channel_post"), from_name=fwd.get("from_name"),
            date=parse_iso(fwd.get("date")), post_author=fwd.get("post_author"),
            saved_from_peer_type=fwd.get("saved_from_type"), saved_from_peer_id=fwd.get("saved_from_id"),
            saved_from_msg_id=fwd.get("saved_from_msg_id"),
            origin_username=origin.get("username") if same_origin else None,
            origin_title=origin.get("title") if same_origin else None,
        )
    media = s.get("media")
    date = parse_iso(s["date"])
    if date is None:
        raise ValueError("sighting without a date")
    return MessageRecord(
        channel_id=int(s["channel_id"]), message_id=int(s["message_id"]), date=date,
        text=s.get("text", post.get("text", "")),
        entities=tuple(s.get("entities", post.get("entities", []))),
        edit_date=parse_iso(s.get("edit_date")), views=s.get("views"), forwards=s.get("forwards"),
        replies=s.get("replies"), reply_to=s.get("reply_to"), grouped_id=s.get("grouped_id"),
        post_author=s.get("post_author"), media=Media(**media) if media else None,
        forward=header, raw=s.get("raw"),
    )


def _message_state(conn: sqlite3.Connection, channel_id: int, message_id: int) -> tuple[Any, ...] | None:
    """Everything stored about one message (row and version count), to tell what an import changed."""
    row = conn.execute(
        "SELECT * FROM messages WHERE channel_id = ? AND message_id = ?", (channel_id, message_id)
    ).fetchone()
    if row is None:
        return None
    count = conn.execute(
        "SELECT count(*) FROM message_versions WHERE channel_id = ? AND message_id = ?",
        (channel_id, message_id),
    ).fetchone()[0]
    return (*tuple(row), count)


def _replay_post(conn: sqlite3.Connection, post: dict[str, Any], report: ImportReport) -> None:
    """Ingest every sighting of one exported post, replaying its versions in time order.

    Each message's versions become steps stamped with the archive's own times (first seen, then
    each replacement); the steps of all sightings are replayed in time order, so dedup decisions
    that depend on arrival (a copy of a text later edited) come out as they did.
    """
    versions: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for v in post.get("versions") or ():
        versions.setdefault((int(v["channel_id"]), int(v["message_id"])), []).append(v)
    steps: list[tuple[str, int, int, Channel, MessageRecord]] = []
    finals: list[tuple[Channel, MessageRecord, str | None]] = []
    for order, s in enumerate(post["sightings"]):
        channel = Channel(int(s["channel_id"]), s.get("username"), s.get("title"))
        final = _record_from_sighting(post, s)
        finals.append((channel, final, s.get("deleted_at")))
        when = s.get("first_seen") or ""
        history = versions.get((final.channel_id, final.message_id), [])
        for number, v in enumerate(history):
            old = replace(final, text=v["text"], entities=tuple(v.get("entities") or ()),
                          edit_date=parse_iso(v.get("edit_date")))
            steps.append((when, order, number, channel, old))
            when = v.get("replaced_at") or when
        steps.append((when, order, len(history), channel, final))
    # Arrival order: by time, then as one batch orders its messages (by date and id).
    steps.sort(key=lambda step: (step[0], step[4].date, step[4].message_id, step[1], step[2]))
    before = {(r.channel_id, r.message_id): _message_state(conn, r.channel_id, r.message_id)
              for _, r, _ in finals}
    created: list[int] = []
    for when, _, _, channel, record in steps:
        batch = Batch(channel, (record,), cursor=record.message_id)
        result = ingest(conn, batch, now=parse_iso(when or None))
        created.extend(result.new_post_ids)
    for channel, final, deleted_at in finals:
        if deleted_at:
            deleted = parse_iso(deleted_at)
            ingest(conn, Batch(channel, deleted_ids=(final.message_id,), seen_at=deleted), now=deleted)
        key = (final.channel_id, final.message_id)
        report.messages += 1
        report.channels.add(channel.id)
        if before[key] is None:
            report.new += 1
        elif before[key] != _message_state(conn, *key):
            report.updated += 1
        else:
            report.unchanged += 1
    if created:
        report.posts_new += len(created)
        conn.execute(
            "UPDATE posts SET first_seen = coalesce(?, first_seen), edited_at = ? WHERE id = ?",
            (post.get("first_seen"), post.get("edited_at"), created[0]),
        )


def _import_jsonl(conn: sqlite3.Connection, path: Path, *, progress: Progress | None) -> ImportReport:
    report = ImportReport("jsonl", "", str(path))

    def replay(connection: sqlite3.Connection, chunk: list[dict[str, Any]]) -> None:
        for post in chunk:
            try:
                _replay_post(connection, post, report)
            except (KeyError, TypeError, ValueError) as exc:
                raise ExchangeError(
                    f"{path}: post {post.get('post_id')} cannot be read ({exc!r}); "
                    "expected a chanwatch JSONL export"
                ) from exc

    from storage.database import run_in_transaction

    try:
        fh = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    advance = progress or _no_progress
    advance(path.name, 0, None)
    with fh:
        chunk: list[dict[str, Any]] = []
        size = done = 0
        try:
            for post in _jsonl_posts(path, fh):
                chunk.append(post)
                size += max(1, len(post["sightings"]))
                if size >= BATCH_SIZE:
                    run_in_transaction(conn, replay, chunk)
                    done += len(chunk)
                    advance(path.name, done, None)
                    chunk, size = [], 0
            if chunk:
                run_in_transaction(conn, replay, chunk)
                advance(path.name, done + len(chunk), None)
        except UnicodeDecodeError as exc:
            raise ExchangeError(f"{path}: not UTF-8 text; expected a chanwatch JSONL export") from exc
    count = len(report.channels)
    report.channel = f"{count} channel" + ("" if count == 1 else "s")
    return report
