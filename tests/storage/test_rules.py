"""Subscribers and rules: validation, idempotent seeding, access flags, ownership on removal."""

from __future__ import annotations

import sqlite3

import pytest

from storage.database import connect_sync
from storage.query import QueryError
from storage.rules import (
    RuleError,
    active_rules,
    add_rule,
    ensure_subscriber,
    get_subscriber,
    is_allowed,
    list_rules,
    remove_rule,
    seed_rules,
    set_allowed,
    set_mode,
    set_paused,
)


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


def test_seeding_rules_twice_keeps_one_rule_per_query(conn: sqlite3.Connection) -> None:
    first = seed_rules(conn, 42, ["sanctions OR санкции", "arctic", "  "])
    again = seed_rules(conn, 42, ["sanctions OR санкции", "arctic"])
    assert [r.id for r in first] == [r.id for r in again]
    assert [r.query for r in list_rules(conn, 42)] == ["sanctions OR санкции", "arctic"]


def test_a_rule_that_does_not_parse_is_refused_and_nothing_is_stored(conn: sqlite3.Connection) -> None:
    with pytest.raises(QueryError):
        add_rule(conn, 42, '"unclosed')
    assert list_rules(conn) == []


def test_a_chat_cannot_remove_another_chats_rule(conn: sqlite3.Connection) -> None:
    rule, _ = add_rule(conn, 1, "arctic")
    with pytest.raises(RuleError):
        remove_rule(conn, rule.id, chat_id=2)
    assert remove_rule(conn, rule.id, chat_id=1) == rule
    assert list_rules(conn) == []


def test_denying_a_chat_stops_its_rules_and_a_new_rule_does_not_reallow_it(conn: sqlite3.Connection) -> None:
    add_rule(conn, 1, "arctic")
    set_allowed(conn, 1, False)
    assert not is_allowed(conn, 1)
    assert active_rules(conn) == []
    add_rule(conn, 1, "canada")
    assert not is_allowed(conn, 1)
    assert [r.query for r in active_rules(conn)] == []


def test_unknown_chats_are_not_allowed(conn: sqlite3.Connection) -> None:
    assert not is_allowed(conn, 999)
    ensure_subscriber(conn, 999, allowed=False)
    assert not is_allowed(conn, 999)


def test_mode_and_pause_round_trip(conn: sqlite3.Connection) -> None:
    set_mode(conn, 5, "digest", "0 9 * * 1-5", "Europe/Moscow")
    set_paused(conn, 5, True, "bot was blocked")
    sub = get_subscriber(conn, 5)
    assert sub is not None
    assert (sub.mode, sub.digest_schedule, sub.timezone, sub.paused, sub.paused_reason) == (
        "digest", "0 9 * * 1-5", "Europe/Moscow", True, "bot was blocked")
    with pytest.raises(RuleError):
        set_mode(conn, 5, "hourly")
    assert set_paused(conn, 5, False).paused_reason is None


def test_version_1_archives_forget_the_default_utc_zone_and_keep_a_chosen_one(tmp_path) -> None:
    from storage.database import _migrations

    path = tmp_path / "v1.db"
    raw = sqlite3.connect(path)
    raw.executescript(_migrations()[0] + "\nPRAGMA user_version = 1;")
    raw.execute("INSERT INTO subscribers (chat_id, created_at) VALUES (1, 'x')")
    raw.execute("INSERT INTO subscribers (chat_id, timezone, created_at) VALUES (2, 'Europe/Moscow', 'x')")
    raw.execute("INSERT INTO rules (chat_id, query, created_at) VALUES (1, 'arctic', 'x')")
    raw.commit()
    raw.close()
    conn = connect_sync(path)
    assert [get_subscriber(conn, c).timezone for c in (1, 2)] == [None, "Europe/Moscow"]
    assert [r.query for r in list_rules(conn, 1)] == ["arctic"]


def test_a_chat_at_its_rule_limit_may_re_add_a_rule_but_not_add_a_new_one(conn):
    for word in ("canada", "arctic", "visa"):
        add_rule(conn, 7, word, limit=3)
    rule, created = add_rule(conn, 7, "arctic", limit=3)
    assert (rule.query, created) == ("arctic", False)
    with pytest.raises(RuleError, match="has 3 rules, the most it can have"):
        add_rule(conn, 7, "sanctions", limit=3)
    assert add_rule(conn, 8, "sanctions", limit=3)[1] is True  # another chat has its own limit
    assert [r.query for r in list_rules(conn, 7)] == ["canada", "arctic", "visa"]
