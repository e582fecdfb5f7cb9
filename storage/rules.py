"""Subscribers and their rules: the saved searches that alerts are made from.

Plain synchronous functions on a `sqlite3.Connection` (run them with `Database.run` /
`Database.transaction` from async code). A rule's query is validated with the query language's
parser before it is stored, so a stored rule always parses.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

from storage.query import parse
from storage.records import Rule, Subscriber, iso

MODES = ("instant", "digest")
USER_PAUSE = "paused with /pause"
MAX_RULES = 200  # rules a chat may keep through /subscribe
"""The pause reason of a chat that paused itself; any other reason was set by the dispatcher."""


class RuleError(ValueError):
    """A request about subscribers or rules that cannot be done (unknown rule, bad mode...)."""


def _now(now: datetime | None) -> str:
    return iso(now or datetime.now(UTC))


def _subscriber(row: sqlite3.Row | tuple) -> Subscriber:
    chat_id, mode, schedule, tz, paused, reason = row[:6]
    return Subscriber(chat_id, mode, schedule, tz, bool(paused), reason)


def _rule(row: sqlite3.Row | tuple) -> Rule:
    rule_id, chat_id, query, active, created_at = row[:5]
    return Rule(rule_id, chat_id, query, bool(active), created_at)


_SUBSCRIBER_COLUMNS = "chat_id, mode, digest_schedule, timezone, paused, paused_reason"
_RULE_COLUMNS = "id, chat_id, query, active, created_at"


def ensure_subscriber(conn: sqlite3.Connection, chat_id: int, now: datetime | None = None, *,
                      allowed: bool = True) -> Subscriber:
    """Return the subscriber for `chat_id`, creating it (instant mode) if it is new.

    `allowed` applies only to a new row: callers are trusted paths (config, CLI, an admin, or a
    command from a chat that already passed the access check); an existing denial is kept.
    """
    conn.execute(
        "INSERT INTO subscribers (chat_id, allowed, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (chat_id) DO NOTHING",
        (chat_id, int(allowed), _now(now)),
    )
    found = get_subscriber(conn, chat_id)
    assert found is not None
    return found


def get_subscriber(conn: sqlite3.Connection, chat_id: int) -> Subscriber | None:
    """The subscriber row for `chat_id`, or None."""
    sql = f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers WHERE chat_id = ?"
    row = conn.execute(sql, (chat_id,)).fetchone()
    return _subscriber(row) if row else None


def list_subscribers(conn: sqlite3.Connection) -> list[Subscriber]:
    """Every subscriber, by chat id."""
    rows = conn.execute(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscribers ORDER BY chat_id").fetchall()
    return [_subscriber(r) for r in rows]


def set_mode(conn: sqlite3.Connection, chat_id: int, mode: str, schedule: str | None = None,
             timezone: str | None = None) -> Subscriber:
    """Switch a chat to `instant` or `digest` (optionally with its own cron schedule and time zone)."""
    if mode not in MODES:
        raise RuleError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    ensure_subscriber(conn, chat_id)
    conn.execute(
        "UPDATE subscribers SET mode = ?, digest_schedule = ?, timezone = COALESCE(?, timezone)"
        " WHERE chat_id = ?",
        (mode, schedule if mode == "digest" else None, timezone, chat_id),
    )
    return get_subscriber(conn, chat_id)  # type: ignore[return-value]


def set_paused(conn: sqlite3.Connection, chat_id: int, paused: bool, reason: str | None = None) -> Subscriber:
    """Pause (with a reason shown to admins) or resume a chat's alerts; alerts keep queueing."""
    ensure_subscriber(conn, chat_id)
    conn.execute(
        "UPDATE subscribers SET paused = ?, paused_reason = ? WHERE chat_id = ?",
        (int(paused), reason if paused else None, chat_id),
    )
    return get_subscriber(conn, chat_id)  # type: ignore[return-value]


def resume_after_contact(conn: sqlite3.Connection, chat_id: int) -> bool:
    """The chat wrote to the bot: if the dispatcher had paused it as unreachable, resume it.

    A chat the bot could not reach (it never wrote, or it had blocked the bot) can be reached once
    it writes; a pause the chat asked for (/pause) stays. Returns True when it resumed.
    """
    cur = conn.execute(
        "UPDATE subscribers SET paused = 0, paused_reason = NULL"
        " WHERE chat_id = ? AND paused = 1 AND coalesce(paused_reason, '') != ?",
        (chat_id, USER_PAUSE),
    )
    return cur.rowcount == 1


def is_allowed(conn: sqlite3.Connection, chat_id: int) -> bool:
    """True when an admin allowed this chat (the alert chat and admins are allowed by config)."""
    row = conn.execute("SELECT allowed FROM subscribers WHERE chat_id = ?", (chat_id,)).fetchone()
    return bool(row and row[0])


def set_allowed(conn: sqlite3.Connection, chat_id: int, allowed: bool, now: datetime | None = None) -> None:
    """Allow a chat to use the bot, or deny it (its rules are deactivated, nothing more is sent)."""
    ensure_subscriber(conn, chat_id, now)
    conn.execute("UPDATE subscribers SET allowed = ? WHERE chat_id = ?", (int(allowed), chat_id))
    if not allowed:
        conn.execute("UPDATE rules SET active = 0 WHERE chat_id = ?", (chat_id,))


def add_rule(conn: sqlite3.Connection, chat_id: int, query: str,
             now: datetime | None = None, *, limit: int | None = None) -> tuple[Rule, bool]:
    """Store `query` as a rule of `chat_id`; returns (rule, created). Raises QueryError if it does not parse.

    Adding a query the chat already has returns the existing rule (re-activated), so seeding rules
    from the config at every start is idempotent. With `limit`, a chat that already has that many
    rules gets a RuleError for a new query (the bot's /subscribe keeps chats to `MAX_RULES`).
    """
    query = query.strip()
    parse(query)
    if limit is not None:
        have, same = conn.execute(
            "SELECT count(*), coalesce(sum(CASE WHEN query = ? THEN 1 ELSE 0 END), 0) FROM rules"
            " WHERE chat_id = ?", (query, chat_id)).fetchone()
        if have >= limit and not same:
            raise RuleError(f"this chat has {have} rules, the most it can have; "
                            "remove some with /unsubscribe")
    ensure_subscriber(conn, chat_id, now)
    cur = conn.execute(
        "INSERT INTO rules (chat_id, query, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (chat_id, query) DO NOTHING",
        (chat_id, query, _now(now)),
    )
    created = cur.rowcount == 1
    if not created:
        conn.execute("UPDATE rules SET active = 1 WHERE chat_id = ? AND query = ?", (chat_id, query))
    row = conn.execute(f"SELECT {_RULE_COLUMNS} FROM rules WHERE chat_id = ? AND query = ?",
                       (chat_id, query)).fetchone()
    return _rule(row), created


def seed_alert_chat(conn: sqlite3.Connection, chat_id: int, queries: Iterable[str],
                    now: datetime | None = None) -> list[Rule]:
    """CHANWATCH_ALERT_CHAT is a trusted, allowed subscriber with a rule per CHANWATCH_KEYWORDS entry."""
    ensure_subscriber(conn, chat_id, now, allowed=True)
    set_allowed(conn, chat_id, True, now)
    return seed_rules(conn, chat_id, queries, now)


def seed_rules(conn: sqlite3.Connection, chat_id: int, queries: Iterable[str],
               now: datetime | None = None) -> list[Rule]:
    """Make sure `chat_id` has a rule for each query (CHANWATCH_KEYWORDS at start); idempotent."""
    return [add_rule(conn, chat_id, q, now)[0] for q in queries if q.strip()]


def list_rules(conn: sqlite3.Connection, chat_id: int | None = None, *,
               active_only: bool = False) -> list[Rule]:
    """Rules of one chat (or of all chats), oldest first."""
    sql = f"SELECT {_RULE_COLUMNS} FROM rules WHERE 1 = 1"
    args: list[object] = []
    if chat_id is not None:
        sql += " AND chat_id = ?"
        args.append(chat_id)
    if active_only:
        sql += " AND active = 1"
    return [_rule(r) for r in conn.execute(sql + " ORDER BY id", args).fetchall()]


def active_rules(conn: sqlite3.Connection) -> list[Rule]:
    """Rules that can alert: active, of an allowed chat (paused chats still collect alerts)."""
    rows = conn.execute(
        f"SELECT {', '.join('r.' + c.strip() for c in _RULE_COLUMNS.split(','))} FROM rules r"
        " JOIN subscribers s ON s.chat_id = r.chat_id WHERE r.active = 1 AND s.allowed = 1 ORDER BY r.id"
    ).fetchall()
    return [_rule(r) for r in rows]


def get_rule(conn: sqlite3.Connection, rule_id: int) -> Rule | None:
    """One rule by id, or None."""
    row = conn.execute(f"SELECT {_RULE_COLUMNS} FROM rules WHERE id = ?", (rule_id,)).fetchone()
    return _rule(row) if row else None


def remove_rule(conn: sqlite3.Connection, rule_id: int, chat_id: int | None = None) -> Rule:
    """Delete a rule (only from `chat_id` when given, so one chat cannot remove another's rules)."""
    rule = get_rule(conn, rule_id)
    if rule is None or (chat_id is not None and rule.chat_id != chat_id):
        raise RuleError(f"no rule with id {rule_id}" + ("" if chat_id is None else " in this chat"))
    conn.execute("DELETE FROM rules WHERE id = ?", (rule_id,))
    return rule
