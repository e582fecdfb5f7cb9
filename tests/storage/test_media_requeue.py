"""A fetch on demand: skipped and failed files queued again, due now, and claims narrowed to them."""

from __future__ import annotations

from datetime import timedelta

from storage.database import connect_sync, run_in_transaction
from storage.ingest import ingest_batch
from storage.media_queue import claim_due, files_by_id, mark_done, mark_failed, mark_skipped, requeue
from storage.records import Media
from tests.storage.factories import EMBASSY, MFA, STATEMENT, T0, batch, msg


def _archive():
    conn = connect_sync(":memory:")
    for number in range(1, 5):
        media = Media(kind="video", size=10, mime_type="video/mp4", file_id=number, dc_id=2)
        ingest_batch(conn, batch(MFA, msg(MFA, number, f"{STATEMENT} {number}", media=media)), now=T0)
    run_in_transaction(conn, mark_skipped, 1, "kind video is not downloaded")
    run_in_transaction(conn, mark_failed, 2, "RPCError: boom", T0)  # due again a minute later
    run_in_transaction(conn, mark_done, 3, "ab" * 32, 10, "video/mp4", "ab/ab/x.mp4", T0)
    return conn


def test_requeue_makes_skipped_and_failed_files_due_now_and_leaves_done_and_queued_ones():
    conn = _archive()
    assert [f.file_id for f in claim_due(conn, T0, 10)] == [4]  # 2 waits for its retry time
    assert run_in_transaction(conn, requeue, [1, 2, 3, 4, 99]) == 2
    assert [(f.file_id, f.state) for f in files_by_id(conn, [1, 2, 3, 4, 99])] == [
        (1, "queued"), (2, "queued"), (3, "done"), (4, "queued")]
    assert sorted(f.file_id for f in claim_due(conn, T0, 10)) == [1, 2, 4]


def test_claim_due_with_file_ids_claims_only_those():
    conn = _archive()
    run_in_transaction(conn, requeue, [1, 2])
    later = T0 + timedelta(hours=2)
    assert [f.file_id for f in claim_due(conn, later, 10, [2])] == [2]
    assert claim_due(conn, later, 10, []) == []
    assert [f.file_id for f in claim_due(conn, later, 10, [3, 4])] == [4]  # a done file is never due


def test_claim_due_with_channel_ids_claims_only_the_files_of_those_channels(archive):
    """A reader among several downloads the files of the channels it holds, no others."""
    for channel, number in ((MFA, 5), (EMBASSY, 6)):
        media = Media(kind="photo", size=10, mime_type="image/jpeg", file_id=number, dc_id=2)
        ingest_batch(archive, batch(channel, msg(channel, number, f"{STATEMENT} {number}", media=media)),
                     now=T0)
    assert [f.file_id for f in claim_due(archive, T0, 10, channel_ids=[EMBASSY.id])] == [6]
    assert [f.file_id for f in claim_due(archive, T0, 10, channel_ids=[MFA.id, EMBASSY.id])] == [5, 6]
    assert claim_due(archive, T0, 10, channel_ids=[]) == []
    assert claim_due(archive, T0, 10, [6], [MFA.id]) == []  # both narrowings hold
