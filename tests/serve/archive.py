"""A small archive file with known figures for the served pages: the amplification story of
tests/storage/test_reports.py (a post with three sightings and an edit), Russian posts in every case,
a message holding `<script>`, enough matches to page, a downloaded photo, a subscriber and a rule
(what must never be served)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.media_queue import mark_done
from storage.rules import add_rule, ensure_subscriber
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, PHOTO, T0, batch, msg
from tests.storage.test_reports import amplification_story

SCRIPT = "<script>alert('pwned')</script> Statement on the visit"
SANCTIONS_INSTR = "Ответ на давление санкциями не заставит себя ждать"
SANCTIONS_CAPS = "НОВЫЕ САНКЦИИ ПРОТИВ ФРИДОНИИ"
ARCTIC_MANY = 23  # more than one page of 20 results
SUBSCRIBER = 424242424
ACCESS_HASH = 7018639715332310000
RULE = "secret-subscriber-rule-words"
def _png(width: int, height: int) -> bytes:
    """A real PNG (red, 8-bit RGB) that a browser decodes, written with zlib alone."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


PHOTO_SIZE = (64, 48)
PHOTO_BYTES = _png(*PHOTO_SIZE)
PHOTO_SHA = hashlib.sha256(PHOTO_BYTES).hexdigest()
PHOTO_FILE_ID = 777001
EDITED_POST_ORIGIN = 11  # MFA's message 11: copied by EMBASSY, forwarded by EMBASSY_UK, edited by the MFA


def build_archive(path: Path, media_dir: Path) -> Path:
    """The archive at `path`, with its media store at `media_dir`."""
    conn = connect_sync(path)
    amplification_story(conn)
    later = T0 + timedelta(days=3)
    ingest_batch(conn, batch(MFA, msg(MFA, 20, SCRIPT, minutes=3 * 24 * 60),
                             msg(MFA, 21, SANCTIONS_INSTR, minutes=3 * 24 * 60 + 5),
                             msg(MFA, 22, "Фото дня", minutes=3 * 24 * 60 + 6,
                                 media=replace(PHOTO, file_id=PHOTO_FILE_ID, mime_type="image/png"))), later)
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 520, SANCTIONS_CAPS, minutes=3 * 24 * 60 + 10)), later)
    ingest_batch(conn, batch(EMBASSY_UK, *(msg(EMBASSY_UK, 800 + n, f"Arctic update number {n}",
                                               minutes=4 * 24 * 60 + n) for n in range(ARCTIC_MANY))), later)
    relative = f"{PHOTO_SHA[:2]}/{PHOTO_SHA[2:4]}/{PHOTO_SHA}.png"
    (media_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    (media_dir / relative).write_bytes(PHOTO_BYTES)
    mark_done(conn, PHOTO_FILE_ID, PHOTO_SHA, len(PHOTO_BYTES), "image/png", relative, later)
    for channel_id in (MFA.id, EMBASSY.id, EMBASSY_UK.id):  # hashes no other figure could contain
        conn.execute("UPDATE channels SET access_hash = ? WHERE id = ?",
                     (ACCESS_HASH + channel_id, channel_id))
    ensure_subscriber(conn, SUBSCRIBER)
    add_rule(conn, SUBSCRIBER, RULE)
    conn.close()
    return path
