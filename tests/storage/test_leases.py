"""Leases, on SQLite and PostgreSQL: readers divide the watched channels fairly, a dead reader's
channels are taken over once its leases lapse, private channels go only to an account that can read
them, one dispatcher."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest

from storage.channels import load_channel, load_watched, pending_names, upsert_channel
from storage.database import connect_sync, run_in_transaction
from storage.leases import DISPATCHER, can_read, claim, holds, release, role_holder, status, take_role
from storage.records import Channel, iso
from tests.storage.factories import T0

PERIOD = timedelta(minutes=2)
ALICE, BOB = 501, 502  # reading accounts


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """Ten watched public channels, on each backend."""
    conn = archive
    for n in range(10):
        upsert_channel(conn, Channel(100 + n, f"chan{n}", f"Channel {n}", 1, watched=True), iso(T0))
    return conn


def tx(conn: sqlite3.Connection, fn, *args):
    return run_in_transaction(conn, fn, *args)


def test_a_lone_reader_takes_every_watched_channel(conn):
    got = tx(conn, claim, "r1", ALICE, T0, PERIOD)
    assert got.held == tuple(range(100, 110)) and got.gained == got.held and got.share == 10


def test_two_readers_split_the_channels_within_two_rounds_and_never_share_one(conn):
    tx(conn, claim, "r1", ALICE, T0, PERIOD)
    b = tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=10), PERIOD)
    assert b.held == () and b.share == 5  # r1's leases have not lapsed: nothing taken from it
    a = tx(conn, claim, "r1", ALICE, T0 + timedelta(seconds=20), PERIOD)
    assert len(a.held) == 5 and len(a.released) == 5  # beyond its share now that r2 is alive
    b = tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=30), PERIOD)
    assert len(b.held) == 5 and not set(a.held) & set(b.held)
    at = T0 + timedelta(seconds=31)
    for channel in range(100, 110):
        assert holds(conn, "r1", channel, at) != holds(conn, "r2", channel, at)


def test_a_dead_readers_channels_are_taken_over_once_its_leases_lapse(conn):
    tx(conn, claim, "r1", ALICE, T0, PERIOD)
    tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=1), PERIOD)
    tx(conn, claim, "r1", ALICE, T0 + timedelta(seconds=2), PERIOD)
    b = tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=3), PERIOD)
    assert len(b.held) == 5
    # r1 dies: no more claims. Before its leases lapse, r2 takes nothing of its
    early = tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=60), PERIOD)
    assert early.held == b.held
    late = tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=2) + PERIOD, PERIOD)  # r1's lapsed
    assert late.held == tuple(range(100, 110)) and late.readers == 1
    assert not holds(conn, "r1", 100, T0 + timedelta(seconds=2) + PERIOD)


def test_a_private_channel_goes_only_to_a_reader_whose_account_can_read_it(conn):
    upsert_channel(conn, Channel(200, None, "Private", 9, watched=True), iso(T0))
    bob = tx(conn, claim, "r2", BOB, T0, PERIOD)
    assert 200 not in bob.held
    tx(conn, can_read, ALICE, 200, 77)
    tx(conn, can_read, ALICE, 200)  # seen again without a hash: the one it had stays
    alice = tx(conn, claim, "r1", ALICE, T0 + timedelta(seconds=1), PERIOD)
    assert 200 in alice.held
    assert [tuple(r) for r in conn.execute("SELECT access_hash FROM account_channels")] == [(77,)]


def test_a_reader_without_an_account_leases_only_what_the_web_preview_shows(conn):
    upsert_channel(conn, Channel(200, None, "Private", 9, watched=True), iso(T0))
    web = tx(conn, claim, "web", None, T0, PERIOD)
    assert 200 not in web.held and len(web.held) == 10


def test_an_unwatched_channel_is_let_go(conn):
    tx(conn, claim, "r1", ALICE, T0, PERIOD)
    conn.execute("UPDATE channels SET watched = 0 WHERE id = 104")
    again = tx(conn, claim, "r1", ALICE, T0 + timedelta(seconds=5), PERIOD)
    assert 104 not in again.held and len(again.held) == 9


def test_a_clean_stop_frees_leases_and_roles_at_once(conn):
    tx(conn, claim, "r1", ALICE, T0, PERIOD)
    assert tx(conn, take_role, DISPATCHER, "r1", T0, PERIOD)
    tx(conn, release, "r1")
    assert role_holder(conn, DISPATCHER, T0) is None
    assert tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=1), PERIOD).held == tuple(range(100, 110))


def test_one_dispatcher_until_its_role_lapses(conn):
    assert tx(conn, take_role, DISPATCHER, "r1", T0, PERIOD)
    assert not tx(conn, take_role, DISPATCHER, "r2", T0 + timedelta(seconds=30), PERIOD)
    assert tx(conn, take_role, DISPATCHER, "r1", T0 + timedelta(seconds=60), PERIOD)  # renewed
    assert not tx(conn, take_role, DISPATCHER, "r2", T0 + timedelta(seconds=60) + PERIOD / 2, PERIOD)
    later = T0 + timedelta(seconds=60) + PERIOD
    assert tx(conn, take_role, DISPATCHER, "r2", later, PERIOD)  # r1 stopped renewing: taken over
    assert role_holder(conn, DISPATCHER, later) == "r2"


def test_status_lists_readers_their_channels_roles_and_lease_ages(conn):
    tx(conn, claim, "r1", ALICE, T0, PERIOD)
    tx(conn, take_role, DISPATCHER, "r1", T0, PERIOD)
    tx(conn, claim, "r2", BOB, T0 + timedelta(seconds=1), PERIOD)
    readers, leases = status(conn, T0 + timedelta(seconds=2), PERIOD)
    assert [(r.name, r.account_id, r.alive, r.channels, r.roles) for r in readers] == [
        ("r1", ALICE, True, 10, (DISPATCHER,)), ("r2", BOB, True, 0, ())]
    assert {lease.reader for lease in leases} == {"r1"} and leases[0].name == "chan0"
    readers, leases = status(conn, T0 + PERIOD * 2, PERIOD)
    assert [r.alive for r in readers] == [False, False] and all(lease.lapsed for lease in leases)


def test_each_account_reads_a_channel_with_its_own_access_hash(conn):
    # before any account is recorded (an archive from before schema v15), the stored hash is everyone's
    assert {s.access_hash for s in load_watched(conn, ALICE)} == {1}
    tx(conn, can_read, ALICE, 100, 7001)
    tx(conn, can_read, BOB, 101, 8001)
    by_id = {s.id: s.access_hash for s in load_watched(conn, ALICE)}
    assert by_id[100] == 7001 and by_id[101] is None and by_id[102] == 1
    assert load_channel(conn, channel_id=101, account_id=BOB).access_hash == 8001
    assert load_channel(conn, username="chan0", account_id=BOB).access_hash is None  # alice's is not bob's
    assert load_channel(conn, channel_id=100).access_hash == 1  # no account: the channel's own
    # what an account must resolve itself: the channels another account's hash is recorded for
    assert pending_names(conn, None, account_id=ALICE) == ["chan1"]
    assert pending_names(conn, None, account_id=BOB, channel_ids=[100, 105]) == ["chan0"]
    assert pending_names(conn, None, account_id=BOB, channel_ids=[]) == []
    assert pending_names(conn, None) == []  # no account: every channel has a stored hash


def test_readers_claiming_at_the_same_moment_on_postgresql_never_both_hold_a_channel(pg_url):
    """Three readers, each with its own connection, claim at once round after round (`SKIP LOCKED`):
    the channels each claim returns never overlap, and the division ends fair."""
    conns = [connect_sync(pg_url) for _ in range(3)]
    try:
        for n in range(30):
            upsert_channel(conns[0], Channel(100 + n, f"chan{n}", f"Channel {n}", 1, watched=True), iso(T0))
        rounds = 12
        barrier = threading.Barrier(len(conns))
        held: dict[tuple[int, int], frozenset[int]] = {}

        def reader(index: int) -> None:
            for r in range(rounds):
                barrier.wait(timeout=30)
                got = tx(conns[index], claim, f"r{index}", ALICE, T0 + r * PERIOD / 3, PERIOD)
                held[(r, index)] = frozenset(got.held)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(conns))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(held) == rounds * len(conns)  # no thread failed
        for r in range(rounds):
            sets = [held[(r, i)] for i in range(len(conns))]
            assert sum(len(s) for s in sets) == len(frozenset().union(*sets))  # pairwise disjoint
        last = [held[(rounds - 1, i)] for i in range(len(conns))]
        assert sorted(len(s) for s in last) == [10, 10, 10] and len(frozenset().union(*last)) == 30
    finally:
        for conn in conns:
            conn.close()


def test_a_reader_not_seen_for_a_day_is_forgotten_at_the_next_claim(conn):
    tx(conn, claim, "old-host:77", ALICE, T0, PERIOD)
    tx(conn, claim, "r1", ALICE, T0 + timedelta(hours=23), PERIOD)
    assert [r.name for r in status(conn, T0 + timedelta(hours=23), PERIOD)[0]] == ["old-host:77", "r1"]
    tx(conn, claim, "r1", ALICE, T0 + timedelta(days=1, minutes=1), PERIOD)
    assert [r.name for r in status(conn, T0 + timedelta(days=1, minutes=1), PERIOD)[0]] == ["r1"]
