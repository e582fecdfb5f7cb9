"""Builders for real Telethon media objects (photo, document, video, web page, poll).

Media live in DC 2, the simulated home DC, so Telethon never tries to borrow a sender for another
DC (which would open a real connection).
"""

from __future__ import annotations

import datetime as dt
import itertools
import zlib

from telethon.tl import types

from .tl import make, text_with_entities, wants_text_with_entities

HOME_DC = 2
_ids = itertools.count(5_000_000_000_001)
#: Size in bytes of every photo/document made here, by id (``upload.GetFile`` serves them).
FILE_SIZES: dict[int, int] = {}


def _next_id() -> int:
    return next(_ids)


def file_bytes(file_id: int, offset: int, limit: int) -> bytes:
    """A deterministic slice of the content of file ``file_id`` (its bytes repeat its id)."""
    size = FILE_SIZES.get(file_id)
    if size is None:
        raise KeyError(file_id)
    pattern = file_id.to_bytes(8, "little")
    end = min(size, offset + limit)
    if offset >= end:
        return b""
    reps = (end // 8) + 1
    return (pattern * reps)[offset:end]


def _hash(value: int) -> int:
    """A deterministic, non-zero signed 63-bit access hash for a media id."""
    return (value * 2654435761) % (2**62) + 1


def photo(*, w: int = 1280, h: int = 720, size: int = 120_000, date: dt.datetime | None = None
          ) -> types.MessageMediaPhoto:
    """A photo message media with one ``PhotoSize``."""
    pid = _next_id()
    FILE_SIZES[pid] = size
    return types.MessageMediaPhoto(photo=make(
        types.Photo, id=pid, access_hash=_hash(pid), file_reference=b"sim", date=date,
        sizes=[types.PhotoSize(type="y", w=w, h=h, size=size)], dc_id=HOME_DC,
    ))


def document(*, mime_type: str = "application/pdf", file_name: str = "file.pdf", size: int = 50_000,
             attributes: list | None = None, date: dt.datetime | None = None) -> types.MessageMediaDocument:
    """A document message media (a file with a name)."""
    did = _next_id()
    FILE_SIZES[did] = size
    attrs = list(attributes or []) + [types.DocumentAttributeFilename(file_name=file_name)]
    return make(types.MessageMediaDocument, document=make(
        types.Document, id=did, access_hash=_hash(did), file_reference=b"sim", date=date,
        mime_type=mime_type, size=size, dc_id=HOME_DC, attributes=attrs,
    ))


def video(*, duration: int = 30, w: int = 1280, h: int = 720, size: int = 2_000_000,
          file_name: str = "video.mp4", date: dt.datetime | None = None) -> types.MessageMediaDocument:
    """A video: an mp4 document with ``DocumentAttributeVideo``."""
    attr = make(types.DocumentAttributeVideo, duration=duration, w=w, h=h, supports_streaming=True)
    return document(mime_type="video/mp4", file_name=file_name, size=size, attributes=[attr], date=date)


def webpage(url: str, *, title: str = "", description: str = "", site_name: str = ""
            ) -> types.MessageMediaWebPage:
    """A link preview for ``url``."""
    wid = _next_id()
    display = url.split("://", 1)[-1]
    return make(types.MessageMediaWebPage, webpage=make(
        types.WebPage, id=wid, url=url, display_url=display, hash=0, type="article",
        site_name=site_name or display.split("/", 1)[0], title=title or None, description=description or None,
    ))


def poll(question: str, answers: list[str], *, closed: bool = False) -> types.MessageMediaPoll:
    """A poll with the given answers (no votes yet)."""
    pid = _next_id()
    q = text_with_entities(question) if wants_text_with_entities(types.Poll, "question") else question
    wrap_answer = wants_text_with_entities(types.PollAnswer, "text")
    opts = [
        make(types.PollAnswer, text=text_with_entities(a) if wrap_answer else a, option=bytes([i]))
        for i, a in enumerate(answers)
    ]
    p = make(types.Poll, id=pid, question=q, answers=opts, hash=zlib.crc32(question.encode()), closed=closed)
    return make(types.MessageMediaPoll, poll=p, results=make(types.PollResults))
