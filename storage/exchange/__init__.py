"""Import and export of the archive: Telegram Desktop JSON exports in, our JSONL and CSV out (and in).

One module a format: `desktop` (Telegram Desktop exports in), `export` (JSONL and CSV out),
`jsonl` (our JSONL back in); `common` holds the report and the error they share.

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

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from storage.exchange.common import BATCH_SIZE, ExchangeError, ImportReport
from storage.exchange.desktop import desktop_entities, desktop_media, desktop_record, import_desktop
from storage.exchange.export import export_posts
from storage.exchange.jsonl import import_jsonl
from storage.progress import Progress

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
        return import_jsonl(conn, path, progress=progress)
    return import_desktop(conn, path, progress=progress, now=now)
