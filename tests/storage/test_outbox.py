"""The alert outbox: what is due, marking sent, failure backoff, giving up, deferral and counts."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from storage.outbox import (
    MAX_ATTEMPTS,
    backoff,
    claim_random_ids,
    counts,
    defer,
    expire_logged,
    get_alerts,
    mark_failed,
    mark_logged,
    mark_sent,
    pending_digest,
    pending_instant,
    sent_delays,
    unlogged,
)
from storage.records import iso
from storage.rules import set_allowed, set_mode, set_paused
from tests.storage.factories import EMBASSY, MFA, T0, msg
from tests.storage.outbox_helpers import archive, queue_alert

ALICE, BOB = 501, 502


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


@pytest.fixture
def posts(conn: sqlite3.Connection) -> list[int]:
    return archive(conn, msg(MFA, 1, "first sanctions post"), msg(MFA, 2, "second"), msg(EMBASSY, 3, "third"))


def test_pending_instant_lists_unsent_alerts_oldest_first_with_their_rules(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0], [7, 9])
    b = queue_alert(conn, BOB, posts[1], [8])
    due = pending_instant(conn, T0)
    assert [(x.id, x.chat_id, x.post_id, x.rule_ids) for x in due] == [
        (a, ALICE, posts[0], (7, 9)), (b, BOB, posts[1], (8,))]
    assert len(pending_instant(conn, T0, limit=1)) == 1


def test_sent_alerts_are_no_longer_pending_and_keep_their_first_sent_time(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    b = queue_alert(conn, ALICE, posts[1])
    mark_sent(conn, [a], T0)
    mark_sent(conn, [a], T0 + timedelta(hours=1))
    assert [x.id for x in pending_instant(conn, T0)] == [b]
    assert get_alerts(conn, ALICE)[0].sent_at == iso(T0)


def test_paused_denied_and_digest_chats_get_nothing_instantly(conn, posts) -> None:
    queue_alert(conn, ALICE, posts[0])
    queue_alert(conn, BOB, posts[1])
    queue_alert(conn, 503, posts[2])
    set_paused(conn, ALICE, True, "blocked the bot")
    set_allowed(conn, BOB, False)
    set_mode(conn, 503, "digest")
    assert pending_instant(conn, T0) == []
    assert [x.chat_id for x in pending_digest(conn, 503, T0)] == [503]
    assert pending_digest(conn, ALICE, T0) == []  # paused: nothing, even in a digest


def test_digest_alerts_are_not_sent_instantly_and_instant_ones_not_in_a_digest(conn, posts) -> None:
    queue_alert(conn, ALICE, posts[0])
    assert pending_digest(conn, ALICE, T0) == []
    set_mode(conn, ALICE, "digest")
    assert pending_instant(conn, T0) == []
    assert len(pending_digest(conn, ALICE, T0)) == 1


def test_a_failure_backs_off_exponentially_from_30_seconds_capped_at_an_hour(conn, posts) -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4, 7, 8, 30)] == [
        30, 60, 120, 240, 1920, 3600, 3600]
    a = queue_alert(conn, ALICE, posts[0])
    mark_failed(conn, a, "RPCError 500: INTERNAL", T0)
    [row] = get_alerts(conn)
    assert (row.attempts, row.last_error, row.next_try_at) == (1, "RPCError 500: INTERNAL",
                                                              iso(T0 + timedelta(seconds=30)))
    assert pending_instant(conn, T0 + timedelta(seconds=29)) == []
    assert [x.id for x in pending_instant(conn, T0 + timedelta(seconds=30))] == [a]


def test_an_alert_is_given_up_after_the_last_attempt_and_keeps_its_error(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    for i in range(MAX_ATTEMPTS + 3):
        mark_failed(conn, a, f"failure {i}", T0)
    [row] = get_alerts(conn)
    assert row.attempts == MAX_ATTEMPTS and row.last_error == f"failure {MAX_ATTEMPTS - 1}"
    assert row.sent_at is None and row.next_try_at is None
    assert pending_instant(conn, T0 + timedelta(days=30)) == []
    assert counts(conn) == {"pending": 0, "sent": 0, "failed": 1}


def test_long_errors_are_kept_short(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    mark_failed(conn, a, "x" * 5000, T0)
    assert len(get_alerts(conn)[0].last_error or "") == 500


def test_defer_holds_alerts_without_counting_a_failure(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    defer(conn, [a], T0 + timedelta(minutes=5), "flood wait 300 s")
    [row] = get_alerts(conn)
    assert (row.attempts, row.last_error) == (0, "flood wait 300 s")
    assert pending_instant(conn, T0 + timedelta(minutes=4)) == []
    assert len(pending_instant(conn, T0 + timedelta(minutes=5))) == 1


def test_counts_pending_sent_and_failed(conn, posts) -> None:
    assert counts(conn) == {"pending": 0, "sent": 0, "failed": 0}
    a, b, c = (queue_alert(conn, ALICE, p) for p in posts)
    mark_sent(conn, [a], T0)
    mark_failed(conn, b, "boom", T0)
    assert counts(conn) == {"pending": 2, "sent": 1, "failed": 0}
    assert c


def test_marking_an_unknown_or_sent_alert_failed_changes_nothing(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    mark_sent(conn, [a], T0)
    mark_failed(conn, a, "late error", T0)
    mark_failed(conn, 999, "no such alert", T0)
    [row] = get_alerts(conn)
    assert (row.attempts, row.last_error) == (0, None)


def test_sent_delays_run_from_the_post_to_the_send_and_leave_out_alerts_made_later(conn) -> None:
    posted_early, posted_late = archive(conn, msg(MFA, 1, "sanctions", minutes=-5), msg(MFA, 2, "later"))
    early = queue_alert(conn, ALICE, posted_early, created_at=T0)  # made when the post was stored
    late = queue_alert(conn, ALICE, posted_late, created_at=T0)
    by_rule = queue_alert(conn, BOB, posted_early, created_at=T0 + timedelta(hours=1))  # a rule added later
    mark_sent(conn, [early], T0 + timedelta(seconds=30))
    mark_sent(conn, [late, by_rule], T0 + timedelta(seconds=2))
    assert sent_delays(conn) == [2.0, 330.0]  # oldest send first; the later-made alert is not a delay
    assert sent_delays(conn, since=T0 + timedelta(seconds=10)) == [330.0]


def test_a_logged_alert_is_not_listed_for_the_log_again_but_stays_pending_for_a_bot(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    b = queue_alert(conn, ALICE, posts[1])
    assert [x.id for x in unlogged(conn)] == [a, b]
    mark_logged(conn, [a], T0)
    assert [x.id for x in unlogged(conn)] == [b]
    assert [x.id for x in pending_instant(conn, T0)] == [a, b]  # logging is no delivery


def test_sent_given_up_and_undeliverable_alerts_are_not_logged(conn, posts) -> None:
    sent = queue_alert(conn, ALICE, posts[0])
    mark_sent(conn, [sent], T0)
    failed = queue_alert(conn, ALICE, posts[1])
    for _ in range(MAX_ATTEMPTS):
        conn.execute("UPDATE alerts SET next_try_at = NULL WHERE id = ?", (failed,))
        mark_failed(conn, failed, "boom", T0)
    queue_alert(conn, BOB, posts[2])
    set_allowed(conn, BOB, False, T0)
    assert unlogged(conn) == []


def test_alerts_that_waited_in_the_log_too_long_are_given_up_and_younger_or_unlogged_ones_kept(
        conn, posts) -> None:
    old = queue_alert(conn, ALICE, posts[0], created_at=T0)
    young = queue_alert(conn, ALICE, posts[1], created_at=T0 + timedelta(hours=5))
    unlogged_old = queue_alert(conn, BOB, posts[2], created_at=T0)
    mark_logged(conn, [old, young], T0 + timedelta(hours=5))
    assert expire_logged(conn, T0 + timedelta(hours=1), "too old") == 1
    assert [x.id for x in pending_instant(conn, T0 + timedelta(days=1))] == [young, unlogged_old]
    given_up = get_alerts(conn, ALICE)[0]
    assert given_up.id == old and given_up.last_error == "too old" and counts(conn)["failed"] == 1


def test_a_random_id_is_given_at_the_first_claim_and_never_changed_after(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    b = queue_alert(conn, ALICE, posts[1])
    assert get_alerts(conn, ALICE)[0].random_id is None
    first = claim_random_ids(conn, [a])
    assert set(first) == {a} and -2**63 <= first[a] < 2**63
    again = claim_random_ids(conn, [a, b, 999_999])  # the unknown id is left out
    assert again[a] == first[a] and set(again) == {a, b} and again[b] != again[a]
    assert [x.random_id for x in get_alerts(conn, ALICE)] == [again[a], again[b]]


def test_a_random_id_keeps_the_full_signed_64_bit_range(conn, posts) -> None:
    a = queue_alert(conn, ALICE, posts[0])
    b = queue_alert(conn, ALICE, posts[1])
    conn.execute("UPDATE alerts SET random_id = ? WHERE id = ?", (-2**63, a))
    conn.execute("UPDATE alerts SET random_id = ? WHERE id = ?", (2**63 - 1, b))
    assert claim_random_ids(conn, [a, b]) == {a: -2**63, b: 2**63 - 1}
