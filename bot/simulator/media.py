"""Builders for real Telethon media objects (photo, document, video, web page, poll), and the
files behind photos and documents, which ``upload.GetFile`` serves.

The module-level builders make media without a World (their bytes repeat the file id); a World
adopts their files when they are posted. ``World.photo(data)``/``World.document(data)`` make media
whose content is given bytes, with ids unique to that World. Files live in DC 2, the simulated home
DC, unless placed in another (``dc_id=``): GetFile there answers FILE_MIGRATE_N and Telethon borrows
an exported sender for DC N, which ``attach`` makes a simulated one too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import zlib
from dataclasses import dataclass, field

from telethon.tl import types

from .tl import SimRpcError, make, text_with_entities, wants_text_with_entities

HOME_DC = 2
#: The data centres ``help.GetConfig`` lists (one IPv4 option each, on loopback addresses).
DC_IDS = (1, 2, 3, 4, 5)
_ids = itertools.count(5_000_000_000_001)
#: Telegram's download rules (core.telegram.org/api/files): chunks are 4 KB-aligned, a limit
#: divides 1 MB, and no chunk crosses a 1 MB boundary.
CHUNK_ALIGN = 4096
MAX_CHUNK = 1024 * 1024
#: Photo size types: the thumbnail every photo has, and the full size by its longest side.
THUMB_TYPE = "m"
THUMB_BOX = 320


def _next_id() -> int:
    return next(_ids)


def dc_address(dc_id: int) -> str:
    """The (never dialled) IPv4 address ``help.GetConfig`` gives for DC ``dc_id``."""
    return f"127.0.0.{dc_id}"


def check_dc(dc_id: int) -> int:
    """``dc_id`` if it names a simulated DC; else ValueError (a test asked for a DC that is not there)."""
    if dc_id not in DC_IDS:
        raise ValueError(f"no DC {dc_id} in the simulator (DCs are {DC_IDS})")
    return dc_id


def pattern_bytes(file_id: int, offset: int, end: int) -> bytes:
    """Bytes ``offset:end`` of the content of a file made without data (its bytes repeat its id)."""
    if offset >= end:
        return b""
    pattern = file_id.to_bytes(8, "little")
    start = offset - offset % 8
    reps = (end - start) // 8 + 1
    return (pattern * reps)[offset - start:end - start]


def thumb_bytes(data: bytes) -> bytes:
    """The smaller byte string a photo's thumbnail serves, derived from the full photo."""
    size = max(1, min(len(data) // 10, 8192))
    digest = hashlib.sha256(data).digest()
    return (digest * (size // len(digest) + 1))[:size]


def file_reference(file_id: int, generation: int) -> bytes:
    """The file reference of generation ``generation`` of a file (it changes when references expire)."""
    return b"\x02" + hashlib.sha256(f"ref:{file_id}:{generation}".encode()).digest()[:19]


def full_size_type(w: int, h: int) -> str:
    """Telegram's photo size letter for a full photo: "y" up to 1280 px, "w" beyond (2560 px)."""
    return "y" if max(w, h) <= 1280 else "w"


def chunk_error(offset: int, limit: int) -> str | None:
    """Telegram's error for a GetFile chunk that breaks the download rules, or None."""
    if offset < 0 or offset % CHUNK_ALIGN:
        return "OFFSET_INVALID"
    if limit <= 0 or limit % CHUNK_ALIGN or MAX_CHUNK % limit:
        return "LIMIT_INVALID"
    if offset // MAX_CHUNK != (offset + limit - 1) // MAX_CHUNK:
        return "LIMIT_INVALID"
    return None


@dataclass
class SimFile:
    """A photo or document on the simulated server: what a GetFile location names and what it serves."""

    id: int
    access_hash: int
    kind: str  # "photo" or "document"
    #: The content; None for files made without data (their bytes repeat the id, ``size`` of them).
    data: bytes | None
    size: int
    dc_id: int = HOME_DC
    #: Bumped by ``World.expire_file_references``; the reference messages carry derives from it.
    generation: int = 0
    #: Photo size type -> bytes, for the sizes smaller than the full photo.
    thumbs: dict[str, bytes] = field(default_factory=dict)
    full_type: str = ""

    @property
    def file_reference(self) -> bytes:
        """The current file reference (messages read now carry it)."""
        return file_reference(self.id, self.generation)

    def was_reference(self, reference: bytes) -> bool:
        """Whether ``reference`` is one this file had before it expired."""
        return any(file_reference(self.id, g) == reference for g in range(self.generation))

    def read(self, thumb_size: str, offset: int, limit: int) -> bytes:
        """Bytes ``offset:offset+limit`` of the size ``thumb_size`` ("" or the full type for the file)."""
        if thumb_size and thumb_size != self.full_type:
            if thumb_size not in self.thumbs:
                raise SimRpcError(400, "LOCATION_INVALID")
            return self.thumbs[thumb_size][offset:offset + limit]
        end = min(self.size, offset + limit)
        if self.data is None:
            return pattern_bytes(self.id, offset, end)
        return self.data[offset:end]

    def refresh(self, media: types.Photo | types.Document) -> None:
        """Set the current file reference on a Photo/Document of this file (as a fresh read has)."""
        media.file_reference = self.file_reference


def adopt(media: object) -> SimFile | None:
    """The file behind a Photo/Document media made by this module's builders (without data)."""
    if isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo):
        p = media.photo
        sizes = [s for s in p.sizes if isinstance(s, types.PhotoSize)]
        full = max(sizes, key=lambda s: s.size, default=None)
        return SimFile(id=p.id, access_hash=p.access_hash, kind="photo", data=None,
                       size=full.size if full else 0, dc_id=p.dc_id, full_type=full.type if full else "")
    if isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
        d = media.document
        return SimFile(id=d.id, access_hash=d.access_hash, kind="document", data=None, size=d.size,
                       dc_id=d.dc_id)
    return None


def photo_of(file: SimFile, *, w: int, h: int, date: dt.datetime | None) -> types.MessageMediaPhoto:
    """The message media for photo ``file``: a thumbnail size and the full size."""
    scale = min(1.0, THUMB_BOX / max(w, h, 1))
    sizes = [types.PhotoSize(type=t, w=max(1, round(w * scale)), h=max(1, round(h * scale)), size=len(b))
             for t, b in file.thumbs.items()]
    sizes.append(types.PhotoSize(type=file.full_type, w=w, h=h, size=file.size))
    return types.MessageMediaPhoto(photo=make(
        types.Photo, id=file.id, access_hash=file.access_hash, file_reference=file.file_reference,
        date=date, sizes=sizes, dc_id=file.dc_id,
    ))


def document_of(file: SimFile, *, mime_type: str, file_name: str, attributes: list | None,
                date: dt.datetime | None) -> types.MessageMediaDocument:
    """The message media for document ``file``."""
    attrs = list(attributes or []) + [types.DocumentAttributeFilename(file_name=file_name)]
    return make(types.MessageMediaDocument, document=make(
        types.Document, id=file.id, access_hash=file.access_hash, file_reference=file.file_reference,
        date=date, mime_type=mime_type, size=file.size, dc_id=file.dc_id, attributes=attrs,
    ))


def _hash(value: int) -> int:
    """A deterministic, non-zero signed 63-bit access hash for a media id."""
    return (value * 2654435761) % (2**62) + 1


def photo(*, w: int = 1280, h: int = 720, size: int = 120_000, date: dt.datetime | None = None
          ) -> types.MessageMediaPhoto:
    """A photo message media with one ``PhotoSize`` and no real content (see ``World.photo``)."""
    pid = _next_id()
    return types.MessageMediaPhoto(photo=make(
        types.Photo, id=pid, access_hash=_hash(pid), file_reference=b"sim", date=date,
        sizes=[types.PhotoSize(type="y", w=w, h=h, size=size)], dc_id=HOME_DC,
    ))


def document(*, mime_type: str = "application/pdf", file_name: str = "file.pdf", size: int = 50_000,
             attributes: list | None = None, date: dt.datetime | None = None) -> types.MessageMediaDocument:
    """A document message media (a file with a name) and no real content (see ``World.document``)."""
    did = _next_id()
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


def webpage(url: str, *, title: str = "", description: str = "", site_name: str = "",
            photo: types.MessageMediaPhoto | None = None) -> types.MessageMediaWebPage:
    """A link preview for ``url``; ``photo`` (a ``World.photo``) is its preview picture."""
    wid = _next_id()
    display = url.split("://", 1)[-1]
    return make(types.MessageMediaWebPage, webpage=make(
        types.WebPage, id=wid, url=url, display_url=display, hash=0, type="article",
        site_name=site_name or display.split("/", 1)[0], title=title or None, description=description or None,
        photo=photo.photo if photo is not None else None,
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
