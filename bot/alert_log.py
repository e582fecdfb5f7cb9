"""Alerts printed in the log while no bot is configured (`chanwatch run` with no TG_BOT_TOKEN).

The percolator queues alerts in the outbox whether or not a bot exists. Without one, the daemon's
`outbox log` job prints each pending alert once, as one line (chat, post link, matched rules, the
text's first line), and records that it did (`alerts.logged_at`, `storage.outbox.mark_logged`), so a
restart does not print it again. The alerts stay pending: once a bot is configured, its dispatcher
sends them, except those that waited longer than CHANWATCH_ALERT_MAX_AGE hours (`expire_stale`,
run at the start with a bot: given up and kept, so a bot added weeks later does not flood its chats).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.alerts import rules_of
from bot.clock import Clock, utcnow
from storage.database import Database
from storage.faults import explain
from storage.outbox import expire_logged, mark_logged, unlogged
from storage.records import Alert, Post, Rule
from storage.search import load_posts

__all__ = ["TEXT_CHARS", "AlertLog", "alert_line"]

log = logging.getLogger("chanwatch.alerts")

TEXT_CHARS = 120  # the first line of the post's text is cut to this many characters


def alert_line(alert: Alert, post: Post | None, rules: Sequence[Rule]) -> str:
    """One log line for a pending alert: `alert for chat 501: https://t.me/x/5 · rules: a; b · text`."""
    link = "(post gone)"
    text = ""
    if post is not None:
        url = post.origin_url or (post.sightings[0].url if post.sightings else None)
        link = url or f"post {post.id}"
        first = next((line.strip() for line in post.text.splitlines() if line.strip()), "")
        text = first if len(first) <= TEXT_CHARS else first[:TEXT_CHARS - 1] + "…"
    matched = "; ".join(r.query for r in rules) or "(rules removed)"
    line = f"alert for chat {alert.chat_id}: {link} · rules: {matched}"
    return f"{line} · {text}" if text else line


def _unlogged_with_context(conn: sqlite3.Connection, limit: int
                           ) -> list[tuple[Alert, Post | None, list[Rule]]]:
    alerts = unlogged(conn, limit)
    posts = {p.id: p for p in load_posts(conn, [a.post_id for a in alerts])}
    rules = rules_of(conn, alerts)
    return [(alert, posts.get(alert.post_id), [rules[r] for r in alert.rule_ids if r in rules])
            for alert in alerts]


class AlertLog:
    """Prints pending alerts in the log, once each, while no bot sends them."""

    def __init__(self, db: Database, *, now: Clock = utcnow, logger: logging.Logger = log,
                 batch: int = 100) -> None:
        self.db = db
        self.now = now
        self.log = logger
        self.batch = batch

    async def log_pending(self) -> int:
        """Print every pending alert not logged yet, one line each, and remember them; how many.
        Never raises: an archive error is one warning line, the next run tries again."""
        total = 0
        try:
            while True:
                found = await self.db.run(_unlogged_with_context, self.batch)
                if not found:
                    return total
                for alert, post, rules in found:
                    self.log.info("%s", alert_line(alert, post, rules))
                await self.db.transaction(mark_logged, [a.id for a, _, _ in found], self.now())
                total += len(found)
                if len(found) < self.batch:
                    return total
        except sqlite3.Error as exc:
            self.log.warning("could not log the pending alerts: %s", explain(exc, self.db.path, daemon=True))
        except Exception:
            self.log.exception("could not log the pending alerts; the next run tries again")
        return total


async def expire_stale(db: Database, max_age_hours: int, now: datetime,
                       logger: logging.Logger = log) -> int:
    """With a bot at last: give up the logged alerts older than `max_age_hours` (0: none), saying how
    many in one line; the younger ones are sent as usual."""
    if not max_age_hours:
        return 0
    reason = (f"waited more than {max_age_hours} h for a bot (CHANWATCH_ALERT_MAX_AGE); "
              "printed in the log instead")
    expired = await db.transaction(expire_logged, now - timedelta(hours=max_age_hours), reason)
    if expired:
        logger.info("%d alert(s) logged while no bot was configured are older than "
                    "CHANWATCH_ALERT_MAX_AGE=%d h: not sent", expired, max_age_hours)
    return expired
