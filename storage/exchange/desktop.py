"""Telegram Desktop "Export chat history" JSON of one channel, read into the archive.

`result.json` holds the channel's bare `id`, its `name` and `messages`; service messages are
skipped (and counted). See the package docstring for how text, entities and forwards are rebuilt.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.exchange.common import BATCH_SIZE, ExchangeError, ImportReport, no_progress
from storage.ingest import ingest_batch
from storage.progress import Progress
from storage.records import Batch, Channel, ForwardHeader, Media, MessageRecord
from storage.text import utf16_len

__all__ = ["desktop_entities", "desktop_media", "desktop_record", "import_desktop"]

CHANNEL_CHAT_TYPES = ("public_channel", "private_channel", "public_supergroup", "private_supergroup")

# Telegram Desktop entity names -> the names bot.normalize derives from Telethon's classes.
_ENTITY_NAMES = {"text_link": "text_url", "link": "url", "strikethrough": "strike"}
_MEDIA_KINDS = {
    "video_file": "video", "video_message": "video", "voice_message": "voice",
    "audio_file": "audio", "animation": "gif", "sticker": "sticker",
}


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


def import_desktop(
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
    advance = progress or no_progress
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
