"""The download queue: files queued with their messages, one row per Telegram file, links that
survive media-only edits, and how a download ends (done, failed with backoff, skipped)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from storage.database import run_in_transaction
from storage.ingest import ingest, ingest_batch
from storage.media_queue import (
    carriers,
    claim_due,
    files_of_post,
    mark_done,
    mark_failed,
    mark_skipped,
    media_status,
    record_run,
    retry_delay,
)
from storage.records import Batch, Media
from tests.storage.factories import EMBASSY, MFA, STATEMENT, T0, batch, fwd, msg

PHOTO = Media(kind="photo", size=1000, mime_type="image/jpeg", file_id=555, dc_id=2)
VIDEO = Media(kind="video", size=9000, mime_type="video/mp4", file_name="clip.mp4", file_id=777, dc_id=4)
LATER = T0 + timedelta(hours=1)


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


def queue(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT file_id, kind, state, channel_id, message_id FROM tg_files ORDER BY file_id"
    ).fetchall()


def links(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT channel_id, message_id, file_id, replaced_at IS NULL FROM message_media"
        " ORDER BY channel_id, message_id, file_id"
    ).fetchall()


def test_a_stored_message_queues_its_file_and_links_to_it(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    assert [tuple(r) for r in queue(conn)] == [(555, "photo", "queued", MFA.id, 1)]
    assert [tuple(r) for r in links(conn)] == [(MFA.id, 1, 555, 1)]


def test_a_rolled_back_ingest_leaves_no_queue_row(conn):
    def ingest_then_fail(c: sqlite3.Connection) -> None:
        ingest(c, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), T0)
        assert c.execute("SELECT count(*) FROM tg_files").fetchone()[0] == 1  # written, then rolled back
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        run_in_transaction(conn, ingest_then_fail)
    assert queue(conn) == [] and links(conn) == []
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_a_forward_of_a_queued_file_adds_a_link_and_no_queue_row(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 9, MFA, 1, STATEMENT, media=PHOTO)), now=LATER)
    assert [tuple(r) for r in queue(conn)] == [(555, "photo", "queued", MFA.id, 1)]  # the first carrier
    assert [tuple(r) for r in links(conn)] == [(MFA.id, 1, 555, 1), (EMBASSY.id, 9, 555, 1)]
    assert carriers(conn, 555) == [(MFA.id, 1), (EMBASSY.id, 9)]


def test_carriers_put_a_deleted_message_after_the_live_ones(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 9, MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    ingest_batch(conn, Batch(MFA, deleted_ids=(1,), seen_at=LATER), now=LATER)
    assert carriers(conn, 555)[0] == (MFA.id, 1)  # the queue row's own message still leads
    conn.execute("UPDATE tg_files SET channel_id = ?, message_id = 9", (EMBASSY.id,))
    ingest_batch(conn, Batch(EMBASSY, deleted_ids=(9,), seen_at=LATER), now=LATER)
    ingest_batch(conn, batch(MFA, msg(MFA, 2, "another", media=PHOTO)), now=LATER)
    assert carriers(conn, 555) == [(EMBASSY.id, 9), (MFA.id, 2), (MFA.id, 1)]


def test_a_media_only_edit_keeps_the_old_file_linked_and_queues_the_new(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    edited = msg(MFA, 1, STATEMENT, media=VIDEO, edit_date=LATER)
    result = ingest_batch(conn, batch(MFA, edited), now=LATER)
    assert result.messages_updated == 1
    assert [tuple(r) for r in links(conn)] == [(MFA.id, 1, 555, 0), (MFA.id, 1, 777, 1)]
    assert [r[0] for r in queue(conn)] == [555, 777]
    assert '"file_id":777' in conn.execute("SELECT media FROM messages").fetchone()[0]
    # the same video again changes nothing; the photo coming back makes its old link current again
    assert ingest_batch(conn, batch(MFA, edited), now=LATER).messages_unchanged == 1
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO, edit_date=LATER + timedelta(hours=1))))
    assert [tuple(r) for r in links(conn)] == [(MFA.id, 1, 555, 1), (MFA.id, 1, 777, 0)]


def test_media_without_a_file_id_queues_nothing_and_keeps_the_link(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    desktop = Media(kind="photo", size=1000)  # a Desktop export of the same message: no file id
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=desktop, edit_date=LATER)), now=LATER)
    ingest_batch(conn, batch(MFA, msg(MFA, 2, "a poll", media=Media(kind="poll"))), now=LATER)
    assert [tuple(r) for r in links(conn)] == [(MFA.id, 1, 555, 1)]
    assert len(queue(conn)) == 1


def test_a_web_page_preview_photo_is_queued_as_a_photo(conn):
    page = Media(kind="webpage", url="https://mid.ru", title="MFA", file_id=888, dc_id=2)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=page)), now=T0)
    assert [tuple(r) for r in queue(conn)] == [(888, "photo", "queued", MFA.id, 1)]


def test_claim_due_returns_queued_files_oldest_first_up_to_the_limit(conn):
    for n, minutes in ((1, 30), (2, 0), (3, 10)):
        media = Media(kind="photo", size=10, file_id=100 + n)
        queued_at = T0 + timedelta(minutes=minutes)
        ingest_batch(conn, batch(MFA, msg(MFA, n, f"post {n}", media=media)), now=queued_at)
    due = claim_due(conn, T0 + timedelta(hours=1), 2)
    assert [(f.file_id, f.channel_id, f.message_id, f.attempts) for f in due] == [(102, MFA.id, 2, 0),
                                                                                  (103, MFA.id, 3, 0)]


def test_done_records_the_content_once_and_leaves_the_queue(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "a", media=PHOTO), msg(MFA, 2, "b", media=VIDEO)), now=T0)
    mark_done(conn, 555, "ab" * 32, 1000, "image/jpeg", "ab/ab/" + "ab" * 32 + ".jpg", LATER)
    mark_done(conn, 777, "ab" * 32, 1000, "image/jpeg", "ab/ab/" + "ab" * 32 + ".jpg", LATER)  # same bytes
    assert claim_due(conn, LATER, 10) == []
    assert media_status(conn) == media_status(conn).__class__(done=2, stored_files=1, stored_bytes=1000)
    assert [f.path for f in files_of_post(conn, 1)] == ["ab/ab/" + "ab" * 32 + ".jpg"]


def test_a_failed_download_counts_keeps_its_reason_and_waits_doubling(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=PHOTO)), now=T0)
    mark_failed(conn, 555, "FILE_REFERENCE_EXPIRED", T0)
    assert claim_due(conn, T0 + retry_delay(1) - timedelta(seconds=1), 10) == []
    again = claim_due(conn, T0 + retry_delay(1), 10)
    assert [(f.file_id, f.attempts) for f in again] == [(555, 1)]
    mark_failed(conn, 555, "timeout", T0)
    row = conn.execute("SELECT state, attempts, last_error, retry_at FROM tg_files").fetchone()
    assert tuple(row) == ("failed", 2, "timeout", (T0 + timedelta(minutes=2)).isoformat())
    assert retry_delay(1) == timedelta(minutes=1) and retry_delay(30) == timedelta(hours=1)
    assert media_status(conn).failed == 1


def test_a_skipped_file_is_never_due_again(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=VIDEO)), now=T0)
    mark_skipped(conn, 777, "larger than CHANWATCH_MEDIA_MAX_SIZE")
    assert claim_due(conn, LATER + timedelta(days=30), 10) == []
    assert conn.execute("SELECT state, last_error FROM tg_files").fetchone()[0] == "skipped"
    assert media_status(conn).skipped == 1


def test_files_of_post_lists_each_file_of_an_album_once_in_order(conn):
    first = Media(kind="photo", size=10, file_id=1)
    second = Media(kind="video", size=20, file_id=2)
    album = batch(MFA, msg(MFA, 1, STATEMENT, grouped_id=9, media=first),
                  msg(MFA, 2, "", grouped_id=9, media=second, minutes=0))
    ingest_batch(conn, album, now=T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 5, MFA, 1, STATEMENT, media=first)), now=T0)
    post_id = conn.execute("SELECT post_id FROM messages WHERE message_id = 1").fetchone()[0]
    files = files_of_post(conn, post_id)
    assert [(f.file_id, f.kind, f.state, f.path) for f in files] == [(1, "photo", "queued", None),
                                                                     (2, "video", "queued", None)]


def test_a_full_media_disk_is_reported_since_its_first_run_until_a_run_ends_normally(conn):
    assert media_status(conn).full_since is None  # no run yet
    full = "the disk holding the media store is full"
    run_in_transaction(conn, record_run, T0, full, True)
    run_in_transaction(conn, record_run, LATER, "Telegram asked to wait 900s", False)  # still not done
    run_in_transaction(conn, record_run, LATER + timedelta(hours=1), full, True)
    status = media_status(conn)
    assert (status.stopped, status.full_since) == (full, "2025-12-17T10:00:00+00:00")
    run_in_transaction(conn, record_run, LATER + timedelta(hours=2), None, False)  # ran to the end
    assert (media_status(conn).stopped, media_status(conn).full_since) == (None, None)
