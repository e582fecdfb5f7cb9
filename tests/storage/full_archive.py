"""A small archive that has rows in every table of the schema, written by storage's own functions:
what a copy of a whole archive (`storage.migrate_db`) must carry over. `fill` runs on either backend.

It holds forwards and a copy of one statement (one post, several sightings), an album, an edited
message (versions), deletions, engagement readings with reactions, media (queued, done, failed) and
the media worker's run, subscribers, rules and alerts (sent, failed, pending), readers, leases,
an account's channels and the dispatcher role; Telegram ids past 2^31 (a channel, a grouped id, a
negative access hash), Russian text, emoji, NULLs and ISO dates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from storage.database import run_in_transaction
from storage.ingest import ingest_batch
from storage.leases import DISPATCHER, can_read, claim, take_role
from storage.media_queue import mark_done, mark_failed, record_run
from storage.outbox import mark_failed as alert_failed
from storage.outbox import mark_sent
from storage.peers import Peer, remember_peer
from storage.records import Batch, Channel, Media
from storage.rules import add_rule, ensure_subscriber, set_mode
from tests.storage.factories import EMBASSY, EMBASSY_UK, MFA, STATEMENT, STATEMENT_RU, T0, batch, fwd, msg
from tests.storage.outbox_helpers import queue_alert

BIG = Channel(5_000_000_123, "big_ids", "Канал 🦊 с большим id", -8_765_432_109_876_543_210, watched=True)
"""A channel whose id and access hash need 64 bits."""
PHOTO = Media(kind="photo", size=1000, mime_type="image/jpeg", file_id=5_555_555_555_555, dc_id=2)
VIDEO = Media(kind="video", size=9000, mime_type="video/mp4", file_name="clip.mp4", file_id=777, dc_id=4)
GROUP = 9_123_456_789_012_345_678
COPY_TEXT = ("A long enough statement that another channel copies word for word without any forward "
             "header at all, so dedup finds it by fingerprint")
QUERIES = ("sanctions", "санкций", "#MFA", "lavrov canada", "is:edited", "is:deleted", "is:copy",
           "channel:rusembc", "statement -canada", "фото*", "lang:ru")
"""Queries whose answers a copy of this archive must give as the original does."""


def fill(conn: Any) -> None:
    """Write the archive (see the module's docstring) into the empty archive `conn`."""
    later = T0 + timedelta(hours=1)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT, views=1200, forwards=30, replies=None,
                                      reactions={"👍": 12, "paid": 1}),
                             msg(MFA, 11, STATEMENT_RU, minutes=1, media=PHOTO, views=900),
                             msg(MFA, 12, COPY_TEXT, minutes=2)), now=T0)
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 500, MFA, 10, STATEMENT, views=40),
                             msg(EMBASSY, 501, COPY_TEXT, minutes=20)), now=T0)
    ingest_batch(conn, batch(EMBASSY_UK, fwd(EMBASSY_UK, 700, MFA, 11, STATEMENT_RU, minutes=9, media=PHOTO)),
                 now=T0)
    album = [msg(BIG, n, "Альбом: фотографии с места событий" if n == 1 else "", minutes=30 + n,
                 grouped_id=GROUP, media=VIDEO if n == 2 else None) for n in (1, 2, 3)]
    ingest_batch(conn, batch(BIG, *album, msg(BIG, 4, "Пост, который удалят 🙈", minutes=40)), now=T0)
    # an edit keeps the earlier text as a version; a deletion keeps the message, marked
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT + " (updated)", edit_date=later, views=1500,
                                      reactions={"👍": 15, "🔥": 2})), now=later)
    ingest_batch(conn, Batch(BIG, deleted_ids=(4,), seen_at=later, deleted_via="sweep"), now=later)
    # media: one file downloaded, one failed; the worker's last run
    mark_done(conn, PHOTO.file_id, "ab" * 32, 1000, "image/jpeg", "ab/ab/" + "ab" * 32 + ".jpg", later)
    mark_failed(conn, VIDEO.file_id, "FILE_REFERENCE_EXPIRED", later)
    record_run(conn, later, "disk full", True)
    # subscribers, rules, the outbox
    ensure_subscriber(conn, 42, T0)
    ensure_subscriber(conn, -1_001_234_567_890, T0, allowed=False)
    set_mode(conn, 42, "digest", "0 9 * * *")
    rule, _ = add_rule(conn, 42, "sanctions canada", T0)
    add_rule(conn, 42, "санкции", T0)
    add_rule(conn, -1_001_234_567_890, "#MFA", T0)
    posts = [r[0] for r in conn.execute("SELECT id FROM posts ORDER BY id")]
    sent = queue_alert(conn, 42, posts[0], [rule.id], T0)
    failed = queue_alert(conn, 42, posts[1], [rule.id], T0)
    queue_alert(conn, -1_001_234_567_890, posts[0], [], later)
    mark_sent(conn, [sent], later)
    alert_failed(conn, failed, "Forbidden: bot was blocked by the user", later)
    # readers sharing the archive: leases, a private channel one account joined, the dispatcher
    period = timedelta(minutes=2)
    run_in_transaction(conn, lambda c: can_read(c, 501, BIG.id, -1))
    run_in_transaction(conn, claim, "host-a:101", 501, later, period)
    run_in_transaction(conn, claim, "host-b:202", None, later + timedelta(seconds=5), period)
    run_in_transaction(conn, take_role, DISPATCHER, "host-a:101", later, period)
    # how the bot reaches the chats that wrote to it (a user, a basic group, a supergroup)
    for chat_id, peer in ((42, Peer("user", 42, -9_000_000_000_000_000_001)), (-777, Peer("chat", 777, None)),
                          (-1_001_234_567_890, Peer("channel", 1_234_567_890, 5))):
        run_in_transaction(conn, remember_peer, chat_id, peer, later)
