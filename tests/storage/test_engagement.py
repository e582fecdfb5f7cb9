"""storage.engagement: the widening schedule, readings at ingest and by the job, what is due."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from storage import engagement
from storage.engagement import SCHEDULE, due, end_past_horizon, next_due, offsets, write_readings
from storage.ingest import ingest_batch
from storage.records import Channel, Reading, iso
from tests.storage.factories import EMBASSY, MFA, T0, batch, msg

H = timedelta(hours=1)


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


def stats(conn: sqlite3.Connection, message_id: int, channel_id: int = MFA.id) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        "SELECT at, views, forwards, replies, reactions FROM message_stats"
        " WHERE channel_id = ? AND message_id = ? ORDER BY at", (channel_id, message_id))]


def message(conn: sqlite3.Connection, message_id: int) -> sqlite3.Row:
    return conn.execute("SELECT * FROM messages WHERE channel_id = ? AND message_id = ?",
                        (MFA.id, message_id)).fetchone()


# --- the schedule ---------------------------------------------------------------------------------


def test_the_schedule_widens_from_an_hour_to_fourteen_days():
    assert SCHEDULE[0] == H and SCHEDULE[-1] == timedelta(days=14)
    gaps = [b - a for a, b in zip(SCHEDULE, SCHEDULE[1:], strict=False)]
    assert gaps == sorted(gaps)


def test_next_due_is_the_first_point_after_now_without_catching_up():
    assert next_due(T0, T0, 14) == T0 + H
    assert next_due(T0, T0 + 5 * H, 14) == T0 + 6 * H  # 1 h and 3 h are past: not read late
    assert next_due(T0, T0 + 6 * H, 14) == T0 + 12 * H
    assert next_due(T0, T0 + timedelta(days=14), 14) is None


def test_the_horizon_bounds_the_schedule_and_ends_it_with_a_reading_at_the_horizon():
    assert offsets(3)[-1] == timedelta(days=3) and all(o <= timedelta(days=3) for o in offsets(3))
    assert offsets(30)[-1] == timedelta(days=30) and offsets(30)[:-1] == SCHEDULE
    assert offsets(0) == () and next_due(T0, T0, 0) is None


# --- ingest ---------------------------------------------------------------------------------------


def test_a_new_message_is_read_at_insert_and_scheduled_for_the_next_point(conn):
    seen = T0 + 5 * H  # archived late: 5 h after it was posted
    record = msg(MFA, 1, "hi", views=100, forwards=2, reactions={"👍": 3})
    ingest_batch(conn, batch(MFA, record, seen_at=seen), now=seen)
    assert stats(conn, 1) == [(iso(seen), 100, 2, None, '{"👍":3}')]
    assert message(conn, 1)["stats_due"] == iso(T0 + 6 * H)


def test_an_old_message_is_read_once_and_never_scheduled(conn):
    seen = T0 + timedelta(days=20)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "old", views=5), seen_at=seen), now=seen)
    assert len(stats(conn, 1)) == 1
    assert message(conn, 1)["stats_due"] is None


def test_a_message_without_any_count_writes_no_reading(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "bare"), seen_at=T0), now=T0)
    assert stats(conn, 1) == [] and message(conn, 1)["stats_due"] == iso(T0 + H)


def test_changed_counts_on_a_reread_are_a_reading_not_an_edit(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=10, reactions={"👍": 1}), seen_at=T0), now=T0)
    later = T0 + 2 * H
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=50, reactions={"👍": 4, "🔥": 1}), seen_at=later),
                 now=later)
    assert [r[:2] for r in stats(conn, 1)] == [(iso(T0), 10), (iso(later), 50)]
    row = message(conn, 1)
    assert (row["views"], json.loads(row["reactions"])) == (50, {"👍": 4, "🔥": 1})
    assert conn.execute("SELECT count(*) FROM message_versions").fetchone()[0] == 0
    assert conn.execute("SELECT edited, edited_at FROM posts").fetchone()[:] == (0, None)


def test_a_reread_with_the_same_counts_adds_nothing(conn):
    first = batch(MFA, msg(MFA, 1, "hi", views=10, reactions={"👍": 1}), seen_at=T0)
    ingest_batch(conn, first, now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=10, reactions={"👍": 1}), seen_at=T0 + H),
                 now=T0 + H)
    assert len(stats(conn, 1)) == 1


# --- the job's readings and what is due -----------------------------------------------------------


def test_a_readings_row_updates_the_latest_counts_and_moves_the_schedule(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=10), seen_at=T0), now=T0)
    at = T0 + H
    written = write_readings(conn, [Reading(MFA.id, 1, iso(at) or "", 40, 3, 1, {"❤": 2})], 14)
    assert written == 1
    row = message(conn, 1)
    assert (row["views"], row["forwards"], row["replies"], row["reactions"]) == (40, 3, 1, '{"❤":2}')
    assert row["stats_due"] == iso(T0 + 3 * H)
    assert row["edit_date"] is None


def test_a_reading_with_no_counts_moves_the_schedule_but_stores_no_row(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=10), seen_at=T0), now=T0)
    assert write_readings(conn, [Reading(MFA.id, 1, iso(T0 + H) or "")], 14) == 0
    assert len(stats(conn, 1)) == 1 and message(conn, 1)["views"] == 10
    assert message(conn, 1)["stats_due"] == iso(T0 + 3 * H)


def test_a_deleted_message_is_never_due_again(conn):
    two = (msg(MFA, 1, "hi", views=10), msg(MFA, 2, "yo", views=1))
    ingest_batch(conn, batch(MFA, *two, seen_at=T0), now=T0)
    ingest_batch(conn, batch(MFA, deleted_ids=(1,), seen_at=T0 + H), now=T0 + H)
    assert due(conn, T0 + 2 * H) == {MFA.id: [2]}
    assert end_past_horizon(conn, T0 + 2 * H, 14) == 1
    assert message(conn, 1)["stats_due"] is None


def test_due_groups_by_channel_oldest_first_and_is_bounded(conn):
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 7, "e", views=1, minutes=-30), seen_at=T0), now=T0)
    ingest_batch(conn, batch(MFA, *(msg(MFA, i, f"m{i}", views=i) for i in (1, 2, 3)), seen_at=T0), now=T0)
    assert due(conn, T0) == {}
    assert due(conn, T0 + H) == {EMBASSY.id: [7], MFA.id: [1, 2, 3]}
    assert list(due(conn, T0 + H)) == [EMBASSY.id, MFA.id]  # its reading is due 30 min earlier
    assert sum(map(len, due(conn, T0 + H, limit=2).values())) == 2


def test_channels_the_api_cannot_ask_fill_no_round(conn):
    web = Channel(-3, "webonly", "Read by web", None, watched=True)  # no access hash: read by its preview
    ingest_batch(conn, batch(web, *(msg(web, i, f"w{i}", views=i) for i in (1, 2, 3)), seen_at=T0), now=T0)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "m", views=1, minutes=30), seen_at=T0), now=T0)
    assert due(conn, T0 + 2 * H, limit=1) == {MFA.id: [1]}  # not the web channel's older ones


def test_a_smaller_horizon_unschedules_messages_past_it(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=1), seen_at=T0), now=T0)
    write_readings(conn, [Reading(MFA.id, 1, iso(T0 + timedelta(days=2)) or "", 5)], 14)
    assert message(conn, 1)["stats_due"] == iso(T0 + timedelta(days=4))
    assert end_past_horizon(conn, T0 + timedelta(days=3), 1) == 1  # its 4 d point lies past 1 d
    assert due(conn, T0 + timedelta(days=5)) == {}


def test_the_reading_at_the_horizon_is_taken_though_the_round_comes_after_it(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=1), seen_at=T0), now=T0)
    write_readings(conn, [Reading(MFA.id, 1, iso(T0 + timedelta(days=7)) or "", 5)], 14)
    late = T0 + timedelta(days=14, minutes=5)
    assert end_past_horizon(conn, late, 14) == 0 and due(conn, late) == {MFA.id: [1]}
    assert end_past_horizon(conn, T0 + timedelta(days=15, minutes=1), 14) == 1  # a day late: not taken


def test_the_last_reading_ends_the_schedule(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hi", views=1), seen_at=T0), now=T0)
    write_readings(conn, [Reading(MFA.id, 1, iso(T0 + timedelta(days=14)) or "", 9)], 14)
    assert message(conn, 1)["stats_due"] is None


def test_readings_of_pairs_answers_with_ids_in_order():
    readings = engagement.readings_of(MFA.id, T0, [5, 6], [(1, 2, 3), (4, None, None)], {6: {"👍": 1}})
    assert [(r.message_id, r.views, r.reactions) for r in readings] == [(5, 1, None), (6, 4, {"👍": 1})]
