"""Import and export of the archive: Telegram Desktop JSON exports in, our JSONL and CSV out (and in).

One module a format: `desktop` (Telegram Desktop exports in), `export` (JSONL and CSV out),
`jsonl` (our JSONL back in); `common` holds the report and the errors they share, `check` the field
checks that name a malformed message instead of failing on it.

Imports stream: memory stays bounded whatever the file's size (Desktop exports are read with ijson,
JSONL a line at a time). They never fail halfway on one bad message: a message (post) with a field
of the wrong type or out of range is skipped, counted and named in the report. A file that is not an
export at all is refused before anything is written (`ExchangeError`). An import that stops partway
(a bad JSONL line, a full disk) raises `ImportStopped`, which says how many messages the committed
batches hold; importing the file again adds the rest and nothing twice.

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
    files:     [{sha256, size, mime_type, path, kind, state}]

`forward` is null or {from_type, from_id, channel_post, from_name, date, post_author,
saved_from_type, saved_from_id, saved_from_msg_id}: the header as stored. A sighting carries
`text` / `entities` only when they differ from the post's. `versions` are the earlier texts of
the sightings, oldest first. Dates are ISO-8601 UTC text. Importing an export into a fresh archive
and exporting again gives the identical file: each message is replayed through ingest version by
version, with the archive's own timestamps as "now".

`files` are the Telegram files the post's messages carry now, each once (`media_queue.files_of_post`):
`state` is queued, done, skipped or failed; `sha256` and `path` (relative to the media directory,
`ab/cd/<sha256>.<ext>`; `export --with-media DIR` copies them there) are null until downloaded. It
describes this archive's media store, so the importer ignores it: the files are queued again from the
sightings' `media` (their file ids), and a round trip is identical until the new archive downloads.

CSV: one row per post, sightings flattened as `rusembc/500 forward; MFARussia/10 original`, files
as `photo done ab/cd/abcd….jpg; video skipped`.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import ijson

from storage.exchange.check import Malformed, one_line
from storage.exchange.common import (
    BATCH_SIZE,
    ExchangeError,
    ImportReport,
    ImportStopped,
    any_int_digits,
    archive_name,
)
from storage.exchange.desktop import desktop_entities, desktop_media, desktop_record, import_desktop
from storage.exchange.export import export_posts
from storage.exchange.jsonl import import_jsonl
from storage.progress import Progress

__all__ = [
    "BATCH_SIZE",
    "ExchangeError",
    "ImportReport",
    "ImportStopped",
    "Malformed",
    "desktop_entities",
    "desktop_media",
    "desktop_record",
    "detect_format",
    "export_posts",
    "import_file",
    "one_line",
]


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
        return "desktop"  # pretty-printed, as Telegram Desktop writes it; its reader checks it
    return "jsonl" if _first_object_has_post_id(path) else "desktop"


def _first_object_has_post_id(path: Path) -> bool:
    """Whether the file's first JSON value has a top-level `post_id` (our JSONL's first key), read
    key by key: a one-line Desktop export is never read whole here (it names `messages` first)."""
    try:
        with any_int_digits(), path.open("rb") as fh:
            if fh.read(3) != b"\xef\xbb\xbf":
                fh.seek(0)
            for prefix, event, value in ijson.parse(fh, multiple_values=True):
                if prefix == "" and event == "map_key":
                    if value == "post_id":
                        return True
                    if value == "messages":
                        return False
                elif prefix == "" and event in ("end_map", "end_array"):
                    return False
    except (ijson.JSONError, UnicodeDecodeError, OSError):
        pass  # the Desktop reader says what is wrong with it
    return False


def _check_path(path: Path) -> None:
    """ExchangeError unless `path` is a file: a directory is told apart, and its result.json named."""
    if path.is_dir():
        inside = path / "result.json"
        if inside.is_file():
            raise ExchangeError(f"{path}: is a directory; give the result.json inside it: {inside}")
        raise ExchangeError(f"{path}: is a directory; give the result.json of a Telegram Desktop export "
                            "(or a chanwatch JSONL export), not its folder")
    if not path.exists():
        raise ExchangeError(f"{path}: no such file")
    if not path.is_file():
        raise ExchangeError(f"{path}: not a regular file; expected a Telegram Desktop result.json or a "
                            "chanwatch JSONL export")


def import_file(
    conn: sqlite3.Connection, path: str | Path, *, progress: Progress | None = None,
    now: datetime | None = None, archive: str | Path | None = None,
) -> ImportReport:
    """Import one file (format detected by content) into the archive; idempotent.

    Streams: memory stays bounded whatever the file's size. A message (post) that cannot be read is
    skipped and counted in the report (`malformed`, the first few named); a file that is not an
    export raises ExchangeError before anything is written; an import that stops partway (a bad
    JSONL line, a full disk) raises ImportStopped saying how much was committed. `archive` names
    the archive in those messages (default: the file `conn` has open).

    `progress` hears how far it got: a Desktop export counts its messages under the channel's
    title, out of a total counted first; our JSONL counts posts under the file's name, total unknown.
    """
    path = Path(path)
    _check_path(path)
    where = archive if archive is not None else archive_name(conn)
    with any_int_digits():
        fmt = detect_format(path)
        if fmt == "jsonl":
            return import_jsonl(conn, path, progress=progress, archive=where)
        return import_desktop(conn, path, progress=progress, now=now, archive=where)
