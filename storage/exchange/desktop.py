"""Telegram Desktop "Export chat history" JSON of one channel, read into the archive as a stream.

`result.json` holds the channel's bare `id`, its `name` and `messages`; service messages are
skipped (and counted). See the package docstring for how text, entities and forwards are rebuilt.

The file is never held in memory whole: ijson (C backend) reads it in two passes, neither holding
more than one batch of messages. (1) The header (`name`, `type`, `id`, before or after `messages`:
Desktop writes them before, and a wrong one is refused there) and a count of the messages, which is
the progress total; reading to the end also proves the file is JSON before anything is written.
(2) The messages, one batch (`BATCH_SIZE`) per transaction. A message that cannot be read (a field
of the wrong type, an id out of range) is skipped and named in the report; a file whose top level is
not a channel export is refused before writing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import ijson

from storage.exchange.check import (
    DATA_ERRORS,
    SQLITE_MAX,
    Malformed,
    as_dict,
    as_list,
    checked,
    floats,
    got,
    int_or_none,
    kind,
    need_int,
    need_text,
    safe,
    shown,
    text_or_none,
    unicode_problem,
    unix_date,
)
from storage.exchange.common import (
    BATCH_SIZE,
    ExchangeError,
    ImportReport,
    ImportStopped,
    commit,
    counted,
    no_progress,
)
from storage.ingest import ingest
from storage.progress import Progress
from storage.records import Batch, Channel, ForwardHeader, Media, MessageRecord
from storage.shown import Part, shown_text
from storage.text import utf16_len

__all__ = ["ALBUM_KINDS", "Albums", "desktop_entities", "desktop_media", "desktop_media_text",
           "desktop_record", "import_desktop", "message_id_of"]

CHANNEL_CHAT_TYPES = ("public_channel", "private_channel", "public_supergroup", "private_supergroup")
EXPECTED = "expected a Telegram Desktop channel export (result.json)"
HEADER_KEYS = frozenset({"name", "type", "id"})
MAX_DEPTH = 64
"""Deepest nesting read (Desktop's messages nest 6 deep): deeper is refused before anything is written."""

# Telegram Desktop entity names -> the names bot.normalize derives from Telethon's classes.
_ENTITY_NAMES = {"text_link": "text_url", "link": "url", "strikethrough": "strike"}
_MEDIA_KINDS = {
    "video_file": "video", "video_message": "video", "voice_message": "voice",
    "audio_file": "audio", "animation": "gif", "sticker": "sticker",
}


class _BadJson(Exception):
    """The file stopped being JSON (or UTF-8) at some point; the message says how, in one line."""


def _open(path: Path) -> IO[bytes]:
    """The file in binary, past a UTF-8 byte-order mark if it has one (ijson reads bytes)."""
    try:
        fh = path.open("rb")
        if fh.read(3) != b"\xef\xbb\xbf":
            fh.seek(0)
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return fh


def _json_problem(exc: Exception) -> str:
    """ijson's (yajl's) several-line complaint as a short phrase."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    text = exc.args[0] if exc.args else ""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    first = (text.strip().splitlines() or ["not JSON"])[0].strip().rstrip(".")
    if "UTF8" in first or "UTF-8" in first:
        return "not UTF-8 text"
    if "premature EOF" in first:
        return "not valid JSON (the file ends too early: cut short?)"
    return f"not valid JSON ({first})"


class _Scan:
    """The first pass: the header (`name`, `type`, `id`), what each top-level key holds, and the
    number of messages, read from ijson's events without building any value and without prefixes
    (whose cost grows with nesting: a file nested 100,000 deep would exhaust memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}  # top-level key -> "scalar", "start_map" or "start_array"
        self.total = 0  # elements of `messages` whose type is "message"
        self.channel: Channel | None = None

    def run(self) -> tuple[Channel, int]:
        with _open(self.path) as fh:
            try:
                self._walk(ijson.basic_parse(fh))
            except (ijson.JSONError, UnicodeDecodeError, OSError) as exc:
                raise ExchangeError(f"{self.path}: {_json_problem(exc)}; {EXPECTED}") from exc
        channel = self.channel or self._check_header()
        return channel, self.total

    def _walk(self, events: Iterator[tuple[str, Any]]) -> None:
        event, value = next(events, ("end", None))
        if event != "start_map":
            what = {"start_array": "a JSON list", "end": "empty"}.get(event, f"JSON {kind(value)}")
            raise ExchangeError(f"{self.path}: {what}, not an object; {EXPECTED}")
        depth, top, key, in_messages = 1, None, None, False
        for event, value in events:
            if event == "map_key":
                if depth == 1:
                    top = value
                elif depth == 3:
                    key = value
            elif event == "start_map" or event == "start_array":
                if depth == 1:
                    self.kinds[top] = event
                    in_messages = top == "messages" and event == "start_array"
                    if in_messages and self.channel is None and HEADER_KEYS <= self.kinds.keys():
                        self.channel = self._check_header()  # refuse a wrong header before reading on
                depth += 1
                if depth > MAX_DEPTH:
                    raise ExchangeError(f"{self.path}: JSON nested more than {MAX_DEPTH} deep; {EXPECTED}")
                if depth == 3:
                    key = None
            elif event == "end_map" or event == "end_array":
                depth -= 1
                if depth == 1:
                    in_messages = False
            elif depth == 1:
                self.kinds[top] = "scalar"
                self.values[top] = value
            elif depth == 3 and in_messages and key == "type":
                self.total += value == "message"
                key = None

    def _check_header(self) -> Channel:
        """The channel the export is of; ExchangeError if the top level is not a channel's export."""
        path, values, kinds = self.path, self.values, self.kinds
        if "chats" in kinds and "messages" not in kinds:
            raise ExchangeError(f"{path}: a whole-account export; {EXPECTED} of a single channel")
        if kinds.get("messages") != "start_array":
            raise ExchangeError(f"{path}: JSON without a 'messages' list; {EXPECTED}")
        chat_type = values.get("type")
        if kinds.get("type", "scalar") != "scalar":
            chat_type = what = "'type' " + ("a list" if kinds["type"] == "start_array" else "an object")
        elif chat_type is not None and chat_type not in CHANNEL_CHAT_TYPES:
            what = chat_type if isinstance(chat_type, str) else f"'type' {got(chat_type)}"
        if chat_type is not None and chat_type not in CHANNEL_CHAT_TYPES:
            raise ExchangeError(f"{path}: an export of a {safe(what)}, not of a channel; {EXPECTED}")
        channel_id = values.get("id")
        if not isinstance(channel_id, int) or isinstance(channel_id, bool):
            raise ExchangeError(f"{path}: no numeric channel 'id' at the top level; {EXPECTED}")
        if not 0 < channel_id <= SQLITE_MAX:
            raise ExchangeError(f"{path}: the channel 'id' {shown(channel_id)} is out of range; {EXPECTED}")
        name = values.get("name")
        if kinds.get("name", "scalar") != "scalar" or not (name is None or isinstance(name, str)) or (
                isinstance(name, str) and unicode_problem(name) is not None):
            raise ExchangeError(f"{path}: the channel's 'name' is not text; {EXPECTED}")
        return Channel(id=channel_id, title=name or None)


def _messages(fh: IO[bytes]) -> Iterator[Any]:
    """Each element of `messages`, built one at a time (non-integral numbers as floats)."""
    try:
        for message in ijson.items(fh, "messages.item"):
            yield floats(message)
    except (ijson.JSONError, UnicodeDecodeError, OSError) as exc:
        raise _BadJson(_json_problem(exc)) from exc


def message_id_of(message: dict[str, Any]) -> int:
    """The message's `id`: a whole number from 1 to SQLite's largest integer."""
    return need_int(message.get("id"), "id", minimum=1)


def _who(message: Any, position: int) -> str:
    """How a skipped message is named: `message 17` by its id, else `messages[16]` by position."""
    try:
        return f"message {message_id_of(message)}"
    except (Malformed, AttributeError):
        return f"messages[{position}]"


ALBUM_KINDS = frozenset({"photo", "video", "document", "audio"})
"""Media an album can hold (Telegram groups up to 10 photos/videos, documents or audio files)."""


class Albums:
    """Desktop exports carry no `grouped_id`: a run of messages with consecutive ids, the same date to
    the second, all with album media and at most one with text, is one album (as Telegram shows it).

    Each run of two or more gets a synthetic `grouped_id`, minus its first message id: deterministic,
    so a re-import gives the same, and negative, so it never equals Telegram's (positive) ids. Dedup
    rule 4 then makes the run one post, as the API's albums are. Messages go in in export order;
    `add` returns those whose run is settled, `close` the rest.

    >>> albums = Albums(); albums.add(part1); albums.add(part2); albums.close()  # doctest: +SKIP
    [MessageRecord(..., grouped_id=-41), MessageRecord(..., grouped_id=-41)]
    """

    def __init__(self) -> None:
        self.run: list[MessageRecord] = []

    @staticmethod
    def _part(record: MessageRecord) -> bool:
        return record.grouped_id is None and record.media is not None and record.media.kind in ALBUM_KINDS

    def _extends(self, record: MessageRecord) -> bool:
        last = self.run[-1]
        return (
            self._part(record) and record.message_id == last.message_id + 1 and record.date == last.date
            and record.forward == last.forward and len(self.run) < 10
            and sum(bool(r.text) for r in (*self.run, record)) <= 1
        )

    def add(self, record: MessageRecord) -> list[MessageRecord]:
        """Take the next message; the messages now settled (an album, or not one), in order."""
        if self.run and self._extends(record):
            self.run.append(record)
            return []
        done = self.close()
        if self._part(record):
            self.run = [record]
        else:
            done.append(record)
        return done

    def close(self) -> list[MessageRecord]:
        """The run in progress, grouped if it has two parts or more."""
        run, self.run = self.run, []
        if len(run) < 2:
            return run
        return [replace(r, grouped_id=-run[0].message_id) for r in run]


class _Importer:
    """One export's import: batches of records committed in order, counted in the report."""

    def __init__(self, conn: sqlite3.Connection, path: Path, channel: Channel, total: int, *,
                 progress: Progress | None, now: datetime | None, archive: str | Path) -> None:
        self.conn, self.path, self.channel, self.total = conn, path, channel, total
        self.now, self.archive = now, archive
        self.advance = progress or no_progress
        self.label = channel.title or str(channel.id)
        self.report = ImportReport("desktop", self.label, str(path), channels={channel.id})
        self.records: list[MessageRecord] = []
        self.albums = Albums()  # the album run in progress is held back from `records`
        self.done = 0  # messages handled: stored, or skipped as malformed

    def run(self, fh: IO[bytes]) -> ImportReport:
        self.advance(self.label, 0, self.total)
        try:
            for position, message in enumerate(_messages(fh)):
                self.take(position, message)
        except _BadJson as exc:
            self.records += self.albums.close()
            self.flush()
            raise self.stopped(f"{self.path}: stopped after {counted(self.done, 'message')}: {exc}") from exc
        self.records += self.albums.close()
        self.flush()
        return self.report

    def take(self, position: int, message: Any) -> None:
        """Queue one element of `messages` (service messages and malformed ones are counted)."""
        if not isinstance(message, dict):
            self.report.skip(f"messages[{position}]", f"{got(message)}, not a message object")
            return
        kind_ = message.get("type")
        if kind_ == "service":
            self.report.service_skipped += 1
            return
        if kind_ != "message":
            self.report.skip(_who(message, position), f"type: {got(kind_)}, expected message or service")
            return
        self.done += 1
        try:
            self.records += self.albums.add(desktop_record(self.channel.id, message))
        except Malformed as exc:
            self.report.skip(_who(message, position), str(exc))
        if len(self.records) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        """Commit the queued records as one batch; if one of them cannot be stored, one by one."""
        chunk, self.records = tuple(self.records), []
        if not chunk:
            return
        try:
            self.store(chunk)
        except DATA_ERRORS:
            for record in chunk:
                try:
                    self.store((record,))
                except DATA_ERRORS as exc:
                    why = f"cannot be stored: {type(exc).__name__}: {shown(str(exc), 80)}"
                    self.report.skip(f"message {record.message_id}", why)
        self.advance(self.label, self.done, self.total)

    def store(self, chunk: tuple[MessageRecord, ...]) -> None:
        batch = Batch(self.channel, chunk, cursor=max(r.message_id for r in chunk))
        result = commit(self.conn, ingest, batch, self.now, archive=self.archive, stopped=self.stopped)
        report = self.report
        report.messages += len(chunk)
        report.new += result.messages_new
        report.updated += result.messages_updated
        report.unchanged += result.messages_unchanged
        report.posts_new += len(result.new_post_ids)

    def stopped(self, reason: str) -> ImportStopped:
        """The error for an import that stops here: why, and how much of the file is in."""
        committed = self.report.messages
        return ImportStopped(
            f"{reason}; committed before it stopped: {committed:,} of the {counted(self.total, 'message')} "
            f"in {self.path}; import it again to add the rest: what is in is not imported twice", committed)


def import_desktop(
    conn: sqlite3.Connection, path: Path, *, progress: Progress | None, now: datetime | None,
    archive: str | Path = ":memory:",
) -> ImportReport:
    """Import one Desktop export, streamed; see the module docstring. `archive` names the archive
    in the one-line error of an SQLite failure (a full disk), which says how much was committed."""
    channel, total = _Scan(path).run()
    with _open(path) as fh:
        return _Importer(conn, path, channel, total, progress=progress, now=now, archive=archive).run(fh)


def _date(message: dict[str, Any], unix_key: str, local_key: str) -> datetime | None:
    """Prefer the UTC unixtime; the plain field is the exporter's local time (taken as UTC)."""
    if message.get(unix_key) not in (None, ""):
        return unix_date(message[unix_key], unix_key)
    local = message.get(local_key)
    if local in (None, ""):
        return None
    text = need_text(local, local_key)
    return checked(lambda: datetime.fromisoformat(text).replace(tzinfo=UTC), local_key,
                   f"{shown(text)} is not a date")


def _peer(value: Any, field: str) -> tuple[str | None, int | None]:
    """`channel1234` -> ("channel", 1234), `user5678` -> ("user", 5678); else (None, None)."""
    if not isinstance(value, str):
        return None, None
    for peer in ("channel", "user", "chat"):
        digits = value[len(peer):]
        if value.startswith(peer) and digits.isascii() and digits.isdigit():
            return peer, need_int(int(digits), field, minimum=1)
    return None, None


def _text_parts(message: dict[str, Any]) -> tuple[list[Any], str]:
    """The message's text as export entities, and the field they came from: `text_entities`, or
    `text` when it is absent (a string, or a list of strings and entity objects)."""
    parts = message.get("text_entities")
    if parts is not None:
        return as_list(parts, "text_entities"), "text_entities"
    raw = message.get("text", "")
    if isinstance(raw, str):
        return [{"type": "plain", "text": raw}], "text"
    return [{"type": "plain", "text": p} if isinstance(p, str) else p for p in as_list(raw, "text")], "text"


def desktop_entities(
    parts: Iterable[Any], field: str = "text_entities"
) -> tuple[str, tuple[dict[str, Any], ...]]:
    """Rebuild (text, entities) from an export's `text_entities`; offsets in UTF-16 code units.

    A part that is not an entity object (or whose text is not text) raises `Malformed` naming it,
    e.g. `text_entities[1]`.
    """
    pieces: list[str] = []
    entities: list[dict[str, Any]] = []
    offset = 0
    for index, part in enumerate(parts):
        at = f"{field}[{index}]"
        part = as_dict(part, at)
        piece = need_text(part.get("text", ""), f"{at}.text")
        length = utf16_len(piece)
        name = need_text(part.get("type", "plain"), f"{at}.type")
        if name != "plain" and length:
            entity: dict[str, Any] = {
                "type": _ENTITY_NAMES.get(name, name), "offset": offset, "length": length,
            }
            if part.get("href"):
                entity["url"] = need_text(part["href"], f"{at}.href")
            user = part.get("user_id")
            if isinstance(user, int) and not isinstance(user, bool):
                entity["user_id"] = user
            if part.get("language"):
                entity["language"] = need_text(part["language"], f"{at}.language")
            doc = part.get("document_id")
            if (isinstance(doc, int) and not isinstance(doc, bool)) or (
                isinstance(doc, str) and doc.isascii() and doc.isdigit()
            ):
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
        size = int_or_none(message.get("photo_file_size"), "photo_file_size")
        extra = {**dims, **_present(spoiler=message.get("media_spoiler"))}
        return Media(kind="photo", size=size, mime_type="image/jpeg" if size else None, extra=extra)
    if "file" in message or "media_type" in message:
        media_type = text_or_none(message.get("media_type"), "media_type")
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
            kind=_MEDIA_KINDS.get(media_type or "", "document"),
            file_name=text_or_none(message.get("file_name"), "file_name"),
            size=int_or_none(message.get("file_size"), "file_size"),
            mime_type=text_or_none(message.get("mime_type"), "mime_type"), extra=extra,
        )
    if isinstance(message.get("poll"), dict):
        poll = message["poll"]
        answers = as_list(poll.get("answers", []), "poll.answers")
        extra = {"question": poll.get("question", ""),
                 "answers": [as_dict(a, f"poll.answers[{i}]").get("text", "") for i, a in enumerate(answers)]}
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


def desktop_media_text(message: dict[str, Any]) -> list[Part]:
    """The text an export message's media shows besides the caption (`storage.shown`), as
    `bot.normalize.media_text` reads it from the API: poll question and answers, venue, contact name,
    game and invoice title and description."""
    def text(value: Any, field: str) -> Part:
        if isinstance(value, list):  # an exported TextWithEntities: parts like `text`
            return desktop_entities(value, field)
        return text_or_none(value, field) or "", ()

    parts: list[Part] = []
    poll = message.get("poll")
    if isinstance(poll, dict):
        parts.append(text(poll.get("question"), "poll.question"))
        for i, answer in enumerate(as_list(poll.get("answers", []), "poll.answers")):
            parts.append(text(as_dict(answer, f"poll.answers[{i}]").get("text"), f"poll.answers[{i}].text"))
    if "location_information" in message:
        parts += [text(message.get("place_name"), "place_name"), text(message.get("address"), "address")]
    contact = message.get("contact_information")
    if isinstance(contact, dict):
        names = (text_or_none(contact.get(k), f"contact_information.{k}")
                 for k in ("first_name", "last_name"))
        parts.append((" ".join(n for n in names if n), ()))
    if "game_title" in message:
        parts += [text(message.get("game_title"), "game_title"),
                  text(message.get("game_description"), "game_description")]
    invoice = message.get("invoice_information")
    if isinstance(invoice, dict):
        parts += [text(invoice.get("title"), "invoice_information.title"),
                  text(invoice.get("description"), "invoice_information.description")]
    return parts


def _desktop_forward(message: dict[str, Any]) -> ForwardHeader | None:
    """The export's `forwarded_from` / `forwarded_from_id` as a header without `channel_post`."""
    name = text_or_none(message.get("forwarded_from"), "forwarded_from")
    peer_type, peer_id = _peer(message.get("forwarded_from_id"), "forwarded_from_id")
    if name is None and peer_id is None:
        return None
    return ForwardHeader(
        from_peer_type=peer_type, from_peer_id=peer_id,
        from_name=name if peer_id is None else None,  # Telegram sets from_name for hidden senders only
        origin_title=name if peer_id is not None else None,
    )


def desktop_record(channel_id: int, message: dict[str, Any]) -> MessageRecord:
    """One export message of type `message` as a `MessageRecord` (raw = the export's dict).

    Raises `Malformed` naming the first field that is missing, of the wrong type or out of range.
    """
    message_id = message_id_of(message)
    text, entities = shown_text(*desktop_entities(*_text_parts(message)), desktop_media_text(message))
    date = _date(message, "date_unixtime", "date")
    if date is None:
        raise Malformed("date", "missing")
    return MessageRecord(
        channel_id=channel_id,
        message_id=message_id,
        date=date,
        text=text,
        entities=entities,
        edit_date=_date(message, "edited_unixtime", "edited"),
        reply_to=int_or_none(message.get("reply_to_message_id"), "reply_to_message_id"),
        post_author=text_or_none(message.get("author") or None, "author"),
        media=desktop_media(message),
        forward=_desktop_forward(message),
        raw=message,
        reactions=desktop_reactions(message.get("reactions")),
    )


def desktop_reactions(value: Any) -> dict[str, int] | None:
    """An export's `reactions` list as counts per reaction (keys as `MessageRecord.reactions`: the
    emoji, `custom:<document_id>`, `paid`); None when the export has none (unknown). An entry of a
    type we do not know is left out."""
    if value is None:
        return None
    counts: dict[str, int] = {}
    for i, item in enumerate(as_list(value, "reactions")):
        entry = as_dict(item, f"reactions[{i}]")
        count = need_int(entry.get("count"), f"reactions[{i}].count", minimum=0)
        kind_ = entry.get("type")
        if kind_ == "emoji":
            key = need_text(entry.get("emoji"), f"reactions[{i}].emoji")
        elif kind_ == "custom_emoji":
            key = f"custom:{entry.get('document_id')}"
        elif kind_ == "paid":
            key = "paid"
        else:
            continue
        counts[key] = counts.get(key, 0) + count
    return counts
