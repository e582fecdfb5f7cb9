"""The media download worker against the simulator: polled posts' files land in the content-addressed
store once, expired references are refreshed, the policy skips, interruptions leave nothing behind,
failures back off, and the daemon runs it as a job."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import resource
import signal
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from telethon import types

from bot.config import Settings, load_settings
from bot.media import MB, Downloader, MediaPolicy
from bot.resolve import resolve_channels
from bot.service import Service
from bot.simulator import LoopClock, World, drive
from bot.simulator import media as sim_media
from bot.telegram import REQUEST_TIMEOUT, FloodPolicy
from storage.media_queue import media_status
from storage.media_store import MediaStore
from tests.bot.conftest import FakeSleep, rows
from tests.bot.test_poller import make_poller
from tests.bot.test_service import paused_scheduler

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

ALL = MediaPolicy(kinds=None, max_bytes=None)


def blob(size: int, seed: int = 1) -> bytes:
    """``size`` seeded random bytes."""
    return random.Random(seed).randbytes(size)


async def poll(world: World, reader, db, *channels) -> None:
    """Resolve and poll the channels, so ingest queues their files."""
    await resolve_channels(db, reader, [f"@{c.username}" for c in channels])
    await make_poller(db, reader, world).poll_once()


def downloader(world: World, reader, db, tmp_path: Path, policy: MediaPolicy = ALL, **kwargs) -> Downloader:
    kwargs.setdefault("flood", FloodPolicy(max_wait=60))
    return Downloader(db, reader, MediaStore(tmp_path / "media"), policy, now=lambda: world.now,
                      sleep=FakeSleep(), **kwargs)


def queue(db) -> dict[int, tuple]:
    """file_id -> (state, sha256, attempts, last_error, retry_at)."""
    return {r[0]: tuple(r[1:]) for r in rows(
        db.path, "SELECT file_id, state, sha256, attempts, last_error, retry_at FROM tg_files")}


def stored(tmp_path: Path) -> list[Path]:
    """Every file in the media store (temporary ones included)."""
    return sorted(p for p in (tmp_path / "media").rglob("*") if p.is_file())


async def test_a_polled_photo_and_a_3_mb_pdf_are_stored_under_their_hashes_and_counted_done(
        world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    photo, pdf = blob(70_000, seed=1), blob(3 * MB + 12_345, seed=2)
    world.post(ch, "picture", media=world.photo(photo))
    world.post(ch, "report", media=world.document(pdf, mime_type="application/pdf", file_name="Report.PDF"))
    await poll(world, reader, db, ch)

    report = await downloader(world, reader, db, tmp_path).run_once()

    assert (report.done, report.failed, report.bytes) == (2, 0, len(photo) + len(pdf))
    for data, ext in ((photo, ".jpg"), (pdf, ".pdf")):
        sha = hashlib.sha256(data).hexdigest()
        assert (tmp_path / "media" / sha[:2] / sha[2:4] / f"{sha}{ext}").read_bytes() == data
    assert sorted(state[1] for state in queue(db).values()) == sorted(
        hashlib.sha256(d).hexdigest() for d in (photo, pdf))
    status = await db.run(media_status)
    assert (status.done, status.queued, status.stored_files) == (2, 0, 2)
    assert status.stored_bytes == len(photo) + len(pdf)
    assert not list((tmp_path / "media" / "tmp").iterdir())


async def test_files_stored_in_other_dcs_are_fetched_through_one_borrowed_sender_per_dc(
        world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    photo, pdf, video = blob(70_000, seed=1), blob(300_000, seed=2), blob(200_000, seed=3)
    world.post(ch, "picture", media=world.photo(photo, dc_id=4))
    world.post(ch, "report", media=world.document(pdf, mime_type="application/pdf", dc_id=4))
    world.post(ch, "clip", media=world.document(video, mime_type="video/mp4", file_name="c.mp4", dc_id=5))
    await poll(world, reader, db, ch)
    world.reset_requests()

    report = await downloader(world, reader, db, tmp_path).run_once()

    assert (report.done, report.failed) == (3, 0)
    assert sorted(p.read_bytes() for p in stored(tmp_path)) == sorted([photo, pdf, video])
    assert sorted(r[0] for r in rows(db.path, "SELECT dc_id FROM tg_files")) == [4, 4, 5]
    assert world.requests["auth.ExportAuthorization"] == world.requests["auth.ImportAuthorization"] == 2
    assert world.requests_by_dc[4]["upload.GetFile"] == 1 + 3  # the photo's one part, the PDF's three
    assert world.requests_by_dc[5]["upload.GetFile"] == 2


async def test_a_forward_of_the_same_pdf_in_another_channel_is_downloaded_once(world, reader, db, tmp_path):
    src, dst = world.add_channel("source", "Source"), world.add_channel("copier", "Copier")
    pdf = blob(300_000)
    msg = world.post(src, "original", media=world.document(pdf, file_name="a.pdf"))
    world.forward(src, 1, dst)
    await poll(world, reader, db, src, dst)
    worker = downloader(world, reader, db, tmp_path)

    first, second = await worker.run_once(), await worker.run_once()

    assert (first.done, second.done) == (1, 0)
    assert world.bytes_served[msg.media.document.id] == len(pdf)
    assert len(rows(db.path, "SELECT * FROM message_media")) == 2
    assert len(stored(tmp_path)) == 1


async def test_a_photo_whose_reference_expired_after_polling_is_refreshed_and_arrives(
        world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    photo = blob(40_000)
    world.post(ch, "picture", media=world.photo(photo))
    await poll(world, reader, db, ch)
    world.expire_file_references()
    world.reset_requests()

    report = await downloader(world, reader, db, tmp_path).run_once()

    assert report.done == 1
    assert [p.read_bytes() for p in stored(tmp_path)] == [photo]
    assert world.requests["channels.GetMessages"] == 1


async def test_a_photo_reference_expiring_during_the_download_is_reread_once_and_retried_once(
        world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    world.post(ch, "a", media=world.photo(blob(40_000, seed=1)))
    world.post(ch, "b", media=world.photo(blob(40_000, seed=2)))
    await poll(world, reader, db, ch)
    a_id, b_id = sorted(queue(db))
    world.reset_requests()
    # a: expired once (the retry succeeds); b: expired on the retry too (recorded as failed)
    world.inject_error("upload.GetFile", (400, "FILE_REFERENCE_EXPIRED"),
                       when=lambda r: r.location.id == a_id)
    world.inject_error("upload.GetFile", (400, "FILE_REFERENCE_EXPIRED"), times=2,
                       when=lambda r: r.location.id == b_id)

    report = await downloader(world, reader, db, tmp_path, concurrency=1).run_once()

    assert (report.done, report.failed) == (1, 1)
    assert queue(db)[a_id][0] == "done"
    assert queue(db)[b_id][0] == "failed" and "FileReferenceExpired" in queue(db)[b_id][3]
    assert world.requests["channels.GetMessages"] == 4  # each file: read, then re-read once


async def test_the_policy_skips_an_unwanted_kind_and_a_file_over_the_cap_naming_why(
        world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    world.post(ch, "clip", media=sim_media.video(size=150_001))
    world.post(ch, "big", media=world.document(blob(3 * MB), mime_type="application/pdf", file_name="b.pdf"))
    world.post(ch, "small", media=world.document(blob(1000), file_name="s.txt"))
    await poll(world, reader, db, ch)
    settings = load_settings(environ={"CHANWATCH_MEDIA": "photo,document", "CHANWATCH_MEDIA_MAX_MB": "1"})
    policy = MediaPolicy.from_settings(settings.media_kinds, settings.media_max_mb)

    report = await downloader(world, reader, db, tmp_path, policy).run_once()

    assert (report.skipped, report.done) == (2, 1)
    reasons = sorted(r[3] for r in queue(db).values() if r[0] == "skipped")
    assert "3145728 bytes" in reasons[0] and "cap of 1 MB" in reasons[0]
    assert "kind video" in reasons[1]
    assert world.bytes_served.total() == 1000
    assert (await downloader(world, reader, db, tmp_path, policy).run_once()).skipped == 0  # never due again


async def test_a_long_flood_midway_leaves_no_file_keeps_it_due_and_the_next_run_completes_it_once(
        world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    pdf = blob(MB)
    world.post(ch, "doc", media=world.document(pdf, file_name="d.pdf"))
    await poll(world, reader, db, ch)
    world.inject_flood("upload.GetFile", 600, after=3)
    worker = downloader(world, reader, db, tmp_path)

    stopped = await worker.run_once()

    assert stopped.done == 0 and "600s" in (stopped.stopped or "")
    assert stored(tmp_path) == []
    [(state, *_)] = queue(db).values()
    assert state == "queued"
    finished = await worker.run_once()
    assert finished.done == 1
    assert [p.read_bytes() for p in stored(tmp_path)] == [pdf]


async def a_pdf_whose_third_chunk_never_comes(world: World, reader, db) -> bytes:
    """A polled 1 MB PDF (queued) whose download will stall: the third GetFile is never answered."""
    ch = world.add_channel("files", "Files")
    pdf = blob(MB)
    world.post(ch, "doc", media=world.document(pdf, file_name="d.pdf"))
    await poll(world, reader, db, ch)
    world.inject_error("upload.GetFile", "timeout", after=2)
    return pdf


async def test_a_run_cancelled_mid_download_leaves_no_file_and_the_next_run_completes_it(
        world, reader, db, tmp_path):
    pdf = await a_pdf_whose_third_chunk_never_comes(world, reader, db)
    worker = downloader(world, reader, db, tmp_path)

    stall = world.next_stall()
    task = asyncio.create_task(worker.run_once())
    await stall
    assert len(list((tmp_path / "media" / "tmp").iterdir())) == 1  # the download is under way
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert stored(tmp_path) == []
    assert [r[0] for r in queue(db).values()] == ["queued"]
    restarted = downloader(world, reader, db, tmp_path)  # a new daemon: a new store, a new worker
    assert (await restarted.run_once()).done == 1
    assert [p.read_bytes() for p in stored(tmp_path)] == [pdf]
    assert [r[1] for r in queue(db).values()] == [hashlib.sha256(pdf).hexdigest()]  # hashes right


async def test_a_file_telegram_refuses_is_recorded_failed_with_its_reason_and_backoff(
        world, reader, db, tmp_path, caplog):
    ch = world.add_channel("files", "Files")
    world.post(ch, "doc", media=world.document(blob(5000), file_name="d.pdf"))
    world.post(ch, "ok", media=world.document(blob(5000, seed=9), file_name="ok.pdf"))
    await poll(world, reader, db, ch)
    bad = min(queue(db))
    world.inject_error("upload.GetFile", (400, "FILE_ID_INVALID"), times=1000,
                       when=lambda r: r.location.id == bad)
    worker = downloader(world, reader, db, tmp_path)

    report = await worker.run_once()

    assert (report.done, report.failed) == (1, 1)
    state, _, attempts, error, retry_at = queue(db)[bad]
    assert (state, attempts) == ("failed", 1) and "FileIdInvalidError" in error
    assert retry_at is not None
    assert (await worker.run_once()).failed == 0  # not due before its retry time
    world.advance(61)
    assert (await worker.run_once()).failed == 1
    assert queue(db)[bad][2] == 2
    failures = [r for r in caplog.records
                if r.name == "chanwatch.media" and "FileIdInvalid" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info is None for r in failures)


async def test_the_service_runs_a_media_job_every_30_s_scaled_and_none_with_media_off(
        world, reader, bot_client, db, tmp_path):
    ch = world.add_channel("files", "Files")
    world.post(ch, "doc", media=world.document(blob(5000), file_name="d.pdf"))
    settings = Settings(db_path=tmp_path / "archive.db", channels=("files",))
    service = Service(settings, db, reader, bot_client, scheduler=paused_scheduler(), now=lambda: world.now,
                      time_scale=10)
    await service.start()
    job = service.scheduler.get_job("media")
    assert job.trigger.interval == timedelta(seconds=3)
    assert job.max_instances == 1 and job.coalesce is True
    await service.poll_cycle()
    await service.media_cycle()
    assert [r[0] for r in queue(db).values()] == ["done"]
    assert len(list((tmp_path / "media").rglob("*.pdf"))) == 1
    await service.stop()

    off = Service(Settings(db_path=tmp_path / "archive.db", media_kinds=frozenset()), db, reader, bot_client,
                  scheduler=paused_scheduler())
    await off.start()
    assert off.scheduler.get_job("media") is None and off.scheduler.get_job("poll") is not None
    await off.stop()


@contextlib.contextmanager
def small_disk(point: Path) -> Iterator[bool]:
    """A 1 MiB tmpfs mounted at `point` (True), or False where this container may not mount one."""
    point.mkdir(parents=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)],
                                 capture_output=True, timeout=30, check=False).returncode == 0
    except OSError:
        mounted = False
    try:
        yield mounted
    finally:
        if mounted and subprocess.run(["umount", str(point)], timeout=30, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], timeout=30, check=True)


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """This process may not write a file past `limit` bytes (EFBIG): a real write failure of our own
    process, for where no small disk can be mounted."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


async def test_a_full_media_disk_stops_the_run_in_one_line_keeps_the_file_due_and_text_goes_on(
        world, reader, db, tmp_path, caplog):
    ch = world.add_channel("files", "Files")
    pdf = blob(3 * MB)
    world.post(ch, "doc", media=world.document(pdf, file_name="d.pdf"))
    await poll(world, reader, db, ch)
    with small_disk(tmp_path / "media") as mounted:
        worker = downloader(world, reader, db, tmp_path)
        with contextlib.nullcontext() if mounted else file_size_limit(MB):
            report = await worker.run_once()
        assert report.done == 0 and stored(tmp_path) == []  # nothing half-written counts as stored
        [(state, sha256, *_)] = queue(db).values()
        assert sha256 is None and state in (("queued",) if mounted else ("queued", "failed"))
        if mounted:
            assert "is full" in (report.stopped or "")
            lines = [r for r in caplog.records if r.name == "chanwatch.media" and r.levelno >= 30]
            assert len(lines) == 1 and lines[0].exc_info is None
            paused = await db.run(media_status)  # recorded in the archive, for /status
            assert paused.full_since is not None and "is full" in (paused.stopped or "")
            subprocess.run(["mount", "-o", "remount,size=8m", str(tmp_path / "media")], check=True)
        world.post(ch, "text goes on")  # archiving text is not held up by the media disk
        await make_poller(db, reader, world).poll_once()
        assert rows(db.path, "SELECT count(*) FROM messages")[0][0] == 2
        world.advance(3600)
        assert (await worker.run_once()).done == 1  # room again: the file arrives, once
        assert [p.read_bytes() for p in stored(tmp_path)] == [pdf]
        assert (await db.run(media_status)).full_since is None  # a run ran to the end: no more warning


async def test_a_photo_edited_into_a_video_keeps_both_files_and_a_version_naming_the_photo(
        world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    photo, video = blob(40_000, seed=7), blob(900_000, seed=8)
    msg = world.post(ch, "the signing ceremony", media=world.photo(photo))
    await poll(world, reader, db, ch)
    worker = downloader(world, reader, db, tmp_path)
    assert (await worker.run_once()).done == 1

    world.advance(600)
    world.edit(ch, msg.id, "the signing ceremony", media=world.document(
        video, mime_type="video/mp4", file_name="ceremony.mp4",
        attributes=[types.DocumentAttributeVideo(duration=12, w=640, h=360)]))
    await make_poller(db, reader, world).recheck_once()
    assert (await worker.run_once()).done == 1  # the new file; the photo stays

    assert sorted(p.read_bytes() for p in stored(tmp_path)) == sorted([photo, video])
    [(version_media,)] = rows(db.path, "SELECT media FROM message_versions")
    assert json.loads(version_media)["kind"] == "photo"
    assert rows(db.path, "SELECT media_kind, edited FROM posts") == [("video", 1)]
    links = rows(db.path, "SELECT replaced_at IS NULL FROM message_media ORDER BY linked_at")
    assert [tuple(r) for r in links] == [(0,), (1,)]  # the photo's link kept, marked replaced


async def test_a_link_previews_photo_is_downloaded_as_a_photo(world, reader, db, tmp_path):
    ch = world.add_channel("files", "Files")
    picture = blob(30_000, seed=9)
    world.post(ch, "read the statement https://example.org/note", media=sim_media.webpage(
        "https://example.org/note", title="Statement", photo=world.photo(picture)))
    await poll(world, reader, db, ch)
    assert [tuple(r) for r in rows(db.path, "SELECT kind, state FROM tg_files")] == [("photo", "queued")]
    assert (await downloader(world, reader, db, tmp_path).run_once()).done == 1
    assert [p.read_bytes() for p in stored(tmp_path)] == [picture]


async def test_a_download_telegram_stops_answering_gives_up_after_a_minute_without_data(
        world, reader, db, tmp_path):
    pdf = await a_pdf_whose_third_chunk_never_comes(world, reader, db)
    worker = downloader(world, reader, db, tmp_path)
    with LoopClock() as clock:
        report = await drive(world, clock, worker.run_once(), give_up_after=4 * REQUEST_TIMEOUT)
    assert report.failed == 1 and stored(tmp_path) == []  # the media job is free again: no hang
    [(state, _, attempts, reason, _)] = queue(db).values()
    assert (state, attempts) == ("failed", 1) and "no data from Telegram for 60s" in reason
    world.advance(3600)
    assert (await worker.run_once()).done == 1
    assert [p.read_bytes() for p in stored(tmp_path)] == [pdf]
