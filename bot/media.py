"""The media download worker: queued Telegram files -> the content-addressed media store.

`Downloader.run_once` claims due files (`storage.media_queue.claim_due`), skips what the policy does
not want (a kind, a size over the cap), and downloads the rest, at most `concurrency` at once. File
references expire and are never stored: each file's carrier messages are re-read (one GetMessages per
channel) for a fresh one, and the first message still carrying the file is downloaded with Telethon's
own `download_media`, streamed into a `MediaStore` writer (never the whole file in memory). Only a
file renamed into place by `Writer.finish` (size checked) is marked done, in its own transaction.

Telethon re-reads a document whose reference expires mid-download itself; for a photo the worker
re-reads the message once more and retries once. Short flood waits are slept through (the flood
policy); a long one ends the run and the files stay due. A full disk (ENOSPC from the writer,
SQLITE_FULL from the archive) ends the run too, with one warning line: nothing is lost, the next run
retries. Each run that did something or stopped early is recorded in the archive (`record_run`), so
/status warns while a full media disk pauses downloads. Any other failure is recorded on the file with
backoff (`mark_failed`) and the run goes on.
Downloads have no overall timeout: a 2 GB file takes as long as it takes, and Telethon's
`download_media` offers no per-chunk bound; the metadata reads (GetMessages) are bounded.
A cancelled run leaves no file behind: the writer removes its temporary file on any exit.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import mimetypes
import sqlite3
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from telethon import TelegramClient, errors, types
from telethon.tl.functions.upload import GetFileRequest

from bot.clock import Clock, Sleep, utcnow
from bot.telegram import (
    REQUEST_TIMEOUT,
    FloodDeferred,
    FloodPolicy,
    RequestTimeout,
    answered_within,
    forget_local_flood,
    input_peer,
)
from storage.channels import load_channel
from storage.database import Database
from storage.faults import explain
from storage.media_queue import carriers, claim_due, mark_done, mark_failed, mark_skipped, record_run
from storage.media_store import MediaStore, StoredFile, Writer
from storage.records import ChannelState, QueuedFile

__all__ = ["KINDS", "MB", "DownloadReport", "Downloader", "MediaPolicy", "media_job"]

log = logging.getLogger("chanwatch.media")

MB = 1024 * 1024
KINDS = frozenset({"photo", "video", "document", "audio", "voice", "gif", "sticker"})
"""The kinds of file a message can carry (`bot.normalize`); a web page's preview is a photo."""
IDS_PER_REQUEST = 100  # GetMessages takes at most 100 ids
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    """Which files to download: `kinds` (None: every kind) and a size cap in bytes (None: no cap)."""

    kinds: frozenset[str] | None = frozenset({"photo", "document"})
    max_bytes: int | None = 50 * MB

    def refusal(self, file: QueuedFile) -> str | None:
        """Why the policy skips `file`, or None to download it."""
        if self.kinds is not None and file.kind not in self.kinds:
            wanted = ", ".join(sorted(self.kinds)) or "none"
            return f"kind {file.kind} is not downloaded (CHANWATCH_MEDIA={wanted})"
        if self.max_bytes is not None and file.size is not None and file.size > self.max_bytes:
            return (f"{file.size} bytes ({file.size / MB:.1f} MB) is over the cap of "
                    f"{self.max_bytes / MB:g} MB (CHANWATCH_MEDIA_MAX_MB)")
        return None

    @classmethod
    def from_settings(cls, kinds: frozenset[str] | None, max_mb: int) -> MediaPolicy:
        """The policy of CHANWATCH_MEDIA (`kinds`) and CHANWATCH_MEDIA_MAX_MB (0: no cap)."""
        return cls(kinds=kinds, max_bytes=max_mb * MB if max_mb else None)


@dataclass(slots=True)
class DownloadReport:
    """What one run did: files downloaded (and their bytes), skipped, failed; why it stopped early."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    stopped: str | None = None
    disk_full: bool = False  # it stopped because the disk holding the media store is full
    failures: dict[int, str] = field(default_factory=dict)


class _Halt(Exception):
    """Stop the run: the reason is logged once, the files not finished stay due."""


class _NoCarrier(Exception):
    """No message that carried the file still carries it (deleted, or its media edited)."""


class Downloader:
    """Downloads due files of the queue into a `MediaStore`; see the module docstring."""

    def __init__(self, db: Database, client: TelegramClient, store: MediaStore, policy: MediaPolicy, *,
                 now: Clock = utcnow, sleep: Sleep = asyncio.sleep, concurrency: int = 2,
                 flood: FloodPolicy | None = None, logger: logging.Logger = log,
                 request_timeout: float = REQUEST_TIMEOUT,
                 channels: Callable[[], Collection[int]] | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.client = client
        self.store = store
        self.policy = policy
        self.channels = channels  # None, or the channels whose files this reader downloads (its leases)
        self.account_id: int | None = None  # the reading account (set once known): its own access hashes
        self.now = now
        self.sleep = sleep
        self.concurrency = concurrency
        self.flood = flood or FloodPolicy()
        self.log = logger
        self.request_timeout = request_timeout
        self._recorded_clean = False  # the archive says the last run ran to the end: idle runs write nothing

    async def run_once(self, limit: int = 20, file_ids: Collection[int] | None = None) -> DownloadReport:
        """Download (or skip) up to `limit` due files (only those of `file_ids` when given); return what
        happened, recorded in the archive (`record_run`) for /status."""
        report = await self._run(limit, file_ids)
        busy = report.done or report.failed or report.skipped or report.stopped is not None
        if busy or not self._recorded_clean:
            try:
                await self.db.transaction(record_run, self.now(), report.stopped, report.disk_full)
                self._recorded_clean = report.stopped is None
            except sqlite3.Error:
                pass  # the archive itself cannot be written (full, say): the run's warning said so
        return report

    async def _run(self, limit: int, file_ids: Collection[int] | None) -> DownloadReport:
        report = DownloadReport()
        try:
            due = await self.db.run(claim_due, self.now(), limit, file_ids,
                                    None if self.channels is None else self.channels())
            wanted: list[QueuedFile] = []
            for file in due:
                reason = self.policy.refusal(file)
                if reason is None:
                    wanted.append(file)
                    continue
                await self.db.transaction(mark_skipped, file.file_id, reason)
                report.skipped += 1
        except sqlite3.Error as exc:
            report.stopped = str(explain(exc, self.db.path, daemon=True))
            self.log.warning("media downloads stopped: %s", report.stopped)
            return report
        if not wanted:
            return report
        gate = asyncio.Semaphore(self.concurrency)
        channels: dict[int, ChannelState | None] = {}

        async def one(file: QueuedFile) -> None:
            async with gate:
                if report.stopped is None:
                    await self._one(file, channels, report)

        await asyncio.gather(*(one(f) for f in wanted))
        if report.stopped is not None:
            self.log.warning("media downloads stopped: %s; the files not finished stay due", report.stopped)
        if report.done or report.failed or report.skipped:
            self.log.info("media: %d downloaded (%d bytes), %d skipped, %d failed", report.done,
                          report.bytes, report.skipped, report.failed)
        return report

    # -- one file ---------------------------------------------------------------------------------

    async def _one(self, file: QueuedFile, channels: dict[int, ChannelState | None],
                   report: DownloadReport) -> None:
        """Download one file and record the outcome; a halt is recorded on the report."""
        try:
            stored = await self._download(file, channels)
            try:
                await self.db.transaction(mark_done, file.file_id, stored.sha256, stored.size,
                                          file.mime_type, stored.relpath, self.now())
            except sqlite3.Error as exc:
                raise _Halt(str(explain(exc, self.db.path, daemon=True))) from exc
        except _Halt as exc:
            report.stopped = report.stopped or str(exc)
            return
        except FloodDeferred as exc:
            report.stopped = report.stopped or f"Telegram asked to wait {exc.seconds:g}s ({exc.kind})"
            return
        except OSError as exc:
            if exc.errno in _FULL_ERRNOS:
                if report.stopped is None:
                    report.disk_full = True
                    report.stopped = f"the disk holding the media store {self.store.root} is full: free " \
                                     "some space; the next run tries again"
                return
            await self._failed(file, f"{type(exc).__name__}: {exc}", report)
            return
        except (errors.RPCError, _NoCarrier, ValueError) as exc:
            reason = str(exc) if isinstance(exc, _NoCarrier) else f"{type(exc).__name__}: {exc}"
            await self._failed(file, reason, report)
            return
        except Exception as exc:  # a bug, not Telegram: keep the traceback, keep the run going
            self.log.exception("media file %d: download failed", file.file_id)
            await self._failed(file, f"{type(exc).__name__}: {exc}", report, logged=True)
            return
        report.done += 1
        report.bytes += stored.size

    async def _failed(self, file: QueuedFile, reason: str, report: DownloadReport, *,
                      logged: bool = False) -> None:
        report.failed += 1
        report.failures[file.file_id] = reason
        if not logged:
            self.log.warning("media file %d (%s, message %d/%d): %s; retried later", file.file_id, file.kind,
                             file.channel_id, file.message_id, reason)
        try:
            await self.db.transaction(mark_failed, file.file_id, reason, self.now())
        except sqlite3.Error as exc:
            report.stopped = report.stopped or str(explain(exc, self.db.path, daemon=True))

    async def _download(self, file: QueuedFile, channels: dict[int, ChannelState | None]) -> StoredFile:
        """The file in the store: its carrier re-read, streamed into a writer, size checked."""
        message = await self._carrier(file, channels)
        try:
            return await self._stream(file, message)
        except errors.FileReferenceExpiredError:
            if not isinstance(_file_of(message), types.Photo):
                raise
            # Telethon refreshes a document's reference itself; a photo's we refresh once.
            message = await self._carrier(file, channels)
            return await self._stream(file, message)

    async def _stream(self, file: QueuedFile, message: Any) -> StoredFile:
        """Download `message`'s file into a new writer under the flood policy (each attempt anew)."""
        expected = _expected_size(message)
        ext = _extension(file, message)

        async def attempt() -> StoredFile:
            forget_local_flood(self.client, GetFileRequest.CONSTRUCTOR_ID)
            with self.store.writer() as writer:
                await self._while_progressing(self.client.download_media(message, file=writer), writer)
                return writer.finish(expected_size=expected, ext=ext)

        return await self.flood.call(attempt, kind="get_file", sleep=self.sleep, log=self.log, now=self.now)

    async def _while_progressing(self, download: Awaitable[Any], writer: Writer) -> None:
        """Await a download for as long as bytes keep coming: a 2 GB file may take an hour, but no
        chunk for `request_timeout` seconds (a request Telegram never answers) ends it with
        `RequestTimeout`, so the media job never hangs; the file is retried later."""
        task = asyncio.ensure_future(download)
        seen = writer.size
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self.request_timeout)
                if not task.done() and writer.size == seen:
                    raise RequestTimeout(f"no data from Telegram for {self.request_timeout:g}s "
                                         f"after {writer.size:,} bytes")
                seen = writer.size
            task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})

    async def _carrier(self, file: QueuedFile, channels: dict[int, ChannelState | None]) -> Any:
        """A freshly read message that still carries the file: the carriers' channels in order, one
        GetMessages (up to 100 ids) each, until one has it."""
        found = await self.db.run(carriers, file.file_id)
        by_channel: dict[int, list[int]] = {}
        for channel_id, message_id in found:
            by_channel.setdefault(channel_id, []).append(message_id)
        for channel_id, ids in by_channel.items():
            if channel_id not in channels:
                channels[channel_id] = await self.db.run(load_channel, channel_id=channel_id,
                                                         account_id=self.account_id)
            channel = channels[channel_id]
            if channel is None or not channel.access_hash:
                continue
            messages = await self._get_messages(channel, ids[:IDS_PER_REQUEST])
            for message in messages:
                if message is not None and _file_id(message) == file.file_id:
                    return message
        raise _NoCarrier(f"no message carries the file any more ({len(found)} known carrier(s) "
                         "deleted or edited)")

    async def _get_messages(self, channel: ChannelState, ids: list[int]) -> list[Any]:
        peer = input_peer(channel)

        async def attempt() -> list[Any]:
            forget_local_flood(self.client, *_GET_MESSAGES)
            result = await answered_within(self.client.get_messages(peer, ids=ids), "GetMessagesRequest",
                                           self.request_timeout)
            return list(result or [])

        return await self.flood.call(attempt, kind="get_messages", sleep=self.sleep, log=self.log,
                                     now=self.now)


def _constructors() -> tuple[int, ...]:
    from telethon.tl.functions.channels import GetMessagesRequest as ChannelMessages
    from telethon.tl.functions.messages import GetMessagesRequest as Messages
    return ChannelMessages.CONSTRUCTOR_ID, Messages.CONSTRUCTOR_ID


_GET_MESSAGES = _constructors()


def _file_of(message: Any) -> Any:
    """The Photo or Document a message's media holds (a web page's photo or document), or None."""
    media = getattr(message, "media", None)
    if isinstance(media, types.MessageMediaPhoto):
        return media.photo if isinstance(media.photo, types.Photo) else None
    if isinstance(media, types.MessageMediaDocument):
        return media.document if isinstance(media.document, types.Document) else None
    if isinstance(media, types.MessageMediaWebPage) and isinstance(media.webpage, types.WebPage):
        found = media.webpage.document or media.webpage.photo
        return found if isinstance(found, types.Photo | types.Document) else None
    return None


def _file_id(message: Any) -> int | None:
    file = _file_of(message)
    return file.id if file is not None else None


def _photo_size_bytes(size: Any) -> int:
    """Bytes of one photo size, as Telethon ranks them to pick the largest."""
    if isinstance(size, types.PhotoSizeProgressive):
        return max(size.sizes) if size.sizes else 0
    if isinstance(size, types.PhotoStrippedSize | types.PhotoCachedSize):
        return len(size.bytes)
    if isinstance(size, types.PhotoSizeEmpty):
        return 0
    return int(getattr(size, "size", 0) or 0)


def _expected_size(message: Any) -> int | None:
    """How many bytes `download_media` should write: the document's size, or a photo's largest size
    (Telethon's default choice); None where it cannot be told."""
    file = _file_of(message)
    if isinstance(file, types.Document):
        return file.size
    if isinstance(file, types.Photo):
        sizes = [*file.sizes, *(file.video_sizes or [])]
        return max((_photo_size_bytes(s) for s in sizes), default=None) or None
    return None


def _extension(file: QueuedFile, message: Any) -> str:
    """The stored file's extension: the file name's, else the MIME type's, `.jpg` for a photo."""
    if isinstance(_file_of(message), types.Photo):
        return ".jpg"
    if file.file_name:
        suffix = PurePath(file.file_name).suffix
        if suffix:
            return suffix
    if file.mime_type:
        return mimetypes.guess_extension(file.mime_type, strict=False) or ""
    return ""


Job = Callable[[], Awaitable[None]]


def media_job(downloader: Downloader, *, stopping: Callable[[], bool], limit: int = 20,
              logger: logging.Logger = log) -> Job:
    """The daemon's media job body: one `run_once`, every error caught and logged (nothing crashes
    the daemon); does nothing once the service is stopping."""

    async def job() -> None:
        if stopping():
            return
        try:
            await downloader.run_once(limit)
        except sqlite3.Error as exc:
            logger.warning("media downloads failed: %s", explain(exc, downloader.db.path, daemon=True))
        except Exception:
            logger.exception("media downloads failed; the next run tries again")

    return job


