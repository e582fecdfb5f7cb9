"""Two readers ingesting into one PostgreSQL archive at once end with the archive a serial ingest makes.

Readers divide the channels (storage/leases.py), but every channel forwards the same origins, so two
readers often ingest the same origin post, through different forwards, in the same instant; a
channel read by one reader can also be re-read by another after a lease changes hands. Under
PostgreSQL's READ COMMITTED, two such transactions see none of each other's rows: without
`storage.ingest`'s lock the loser of the race fails on a unique key, or both make a post for one
origin. Each round here gives two threads, each with its own connection, batches that overlap
(forwards of the same origins, header-less copies of one text in both readers' channels, a batch both
readers read, an origin re-read, the origin's edits), in an order shuffled per round, and starts them
together at every step; the archive must equal the one a serial ingest of the same batches makes.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.location import ServerUrl
from storage.records import Batch, Channel, ForwardHeader, MessageRecord
from tests.pg_support import fresh_schema
from tests.storage.factories import T0
from tests.storage.test_dedup_properties import NOW, canonical

VOCAB = ("Canada sanctions Lavrov minister statement embassy Arctic visa talks treaty санкции Канада "
         "заявление посольство министр Арктика визы переговоры договор 2025").split()
ROUNDS = 25


def _channel(round_no: int, n: int) -> Channel:
    cid = 10_000 + 10 * round_no + n
    return Channel(cid, f"chan{cid}", f"Channel {cid}", watched=True)


def _round(rng: random.Random, round_no: int) -> tuple[list[Batch], list[Batch]]:
    """One round's batches for readers A and B: A reads the origin (and its edits) and one forwarder,
    B another forwarder and the origin's first page again; both read one shared channel."""
    origin, fwd_a, fwd_b, shared = (_channel(round_no, n) for n in range(4))
    statements = []
    for mid in range(1, rng.randint(3, 6) + 1):
        words = rng.choice((3, 9, 12, 110))  # too short to be a copy, copyable, long
        statements.append(MessageRecord(origin.id, mid, T0 + timedelta(minutes=10 * mid),
                                        " ".join(rng.choices(VOCAB, k=words))))

    def forwards(channel: Channel, first_id: int) -> list[MessageRecord]:
        out = []
        for n, s in enumerate(rng.sample(statements, rng.randint(1, len(statements)))):
            header = ForwardHeader(from_peer_type="channel", from_peer_id=origin.id,
                                   channel_post=s.message_id, date=s.date, origin_username=origin.username,
                                   origin_title=origin.title)
            out.append(MessageRecord(channel.id, first_id + n, s.date + timedelta(minutes=5 + n), s.text,
                                     forward=header))
        return out

    def copies(channel: Channel, first_id: int) -> list[MessageRecord]:  # the same words, no header
        return [MessageRecord(channel.id, first_id + n, s.date + timedelta(hours=1 + n), s.text)
                for n, s in enumerate(rng.sample(statements, rng.randint(0, len(statements))))]

    def pages(channel: Channel, records: list[MessageRecord]) -> list[Batch]:
        size = rng.randint(1, 3)
        return [Batch(channel, tuple(records[k:k + size]), cursor=records[k:k + size][-1].message_id)
                for k in range(0, len(records), size)]

    origin_pages = pages(origin, statements)
    edits = [Batch(origin, (MessageRecord(origin.id, s.message_id, s.date, s.text + " (updated)",
                                          edit_date=s.date + timedelta(hours=2)),))
             for s in rng.sample(statements, rng.randint(0, 2))]
    both = Batch(shared, tuple(forwards(shared, 1)), cursor=None)
    reader_a = [*origin_pages, *pages(fwd_a, forwards(fwd_a, 1) + copies(fwd_a, 100)), both]
    reader_b = [*pages(fwd_b, forwards(fwd_b, 1) + copies(fwd_b, 100)), both, origin_pages[0]]
    rng.shuffle(reader_a)
    rng.shuffle(reader_b)
    return reader_a + edits, reader_b


def archive_facts(conn: Any) -> dict[str, Any]:
    """What a serial ingest settles whatever the order: the posts (origin, date, text, edited flag,
    sightings), every message's text, edit date and relation, and the kept versions."""
    return {
        "posts": canonical(conn),
        "messages": sorted(tuple(r) for r in conn.execute(
            "SELECT channel_id, message_id, text, edit_date, relation, deleted_at FROM messages")),
        "versions": sorted(tuple(r) for r in conn.execute(
            "SELECT channel_id, message_id, edit_date, text FROM message_versions")),
    }


Rounds = list[tuple[list[Batch], list[Batch]]]


def _serially(url: ServerUrl, rounds: Rounds) -> dict[str, Any]:
    conn = connect_sync(url)
    try:
        for reader_a, reader_b in rounds:
            for b in reader_a + reader_b:
                ingest_batch(conn, b, NOW)
        return archive_facts(conn)
    finally:
        conn.close()


def _at_once(url: ServerUrl, rounds: Rounds) -> tuple[dict[str, Any], list[str]]:
    """Each round's two lists ingested by two threads with a connection each, both starting every
    step together; the archive's facts and every error that escaped an ingest."""
    conns = [connect_sync(url), connect_sync(url)]
    barrier = threading.Barrier(2, timeout=120)
    errors: list[str] = []

    def reader(n: int) -> None:
        for lists in rounds:
            mine = lists[n]
            for step in range(max(len(lists[0]), len(lists[1]))):
                barrier.wait()
                if step < len(mine):
                    try:
                        ingest_batch(conns[n], mine[step], NOW)
                    except Exception as exc:  # noqa: BLE001 - what escaped is the finding
                        errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        return archive_facts(conns[0]), errors
    finally:
        for conn in conns:
            conn.close()


def test_two_readers_ingesting_the_same_origins_at_once_end_as_a_serial_ingest(pg_url):
    rng = random.Random(17)
    rounds = [_round(rng, n) for n in range(ROUNDS)]
    got, errors = _at_once(pg_url, rounds)
    with fresh_schema() as serial_url:
        expected = _serially(serial_url, rounds)
    assert errors == []
    assert got["posts"] == expected["posts"]  # one post per origin, each sighting once
    assert got == expected
