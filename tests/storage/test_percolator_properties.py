"""Property: the alerts the percolator queues are what searching for each rule finds.

Archives are generated as in test_query_properties (originals, forwards, edits, deletions, now
sometimes deleted in the very batch that brings them) and ingested batch by batch with the
percolator as the after-ingest hook; rules (every operator and filter) belong to three chats and
some are added half-way. After each batch the new alert rows must be exactly:

- for each new post that is not deleted everywhere, one row per chat whose active rules `search`
  finds it with (unless a post merged into it alerted that chat already), listing those rules;
- for each edited post (not new, not deleted everywhere), one row per chat not yet alerted about it
  that has a rule `search` finds it with now but would find it with none of the texts the post
  showed before (each tried on the archive as it is now: only the text differs).

A message that links two posts merges them; their alert rows move along (same ids), so the rows a
batch added are those with new ids, and a post's earlier texts include those of posts merged into it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.percolator import Percolator
from storage.query import Query, QueryError, parse
from storage.records import Batch, IngestResult, MessageRecord
from storage.rules import add_rule
from storage.search import search
from storage.text import analyse
from tests.storage.test_query_properties import DAY0, ORIGIN, WATCHED, Plan, plan_records, plans, queries

CHANNELS = (*WATCHED, ORIGIN)


@dataclass(frozen=True)
class RulePlan:
    """Rules as (chat, query text); those from `later` on are added after batch `added_after`."""

    rules: list[tuple[int, str]]
    later: int
    added_after: int


rule_plans = st.lists(st.tuples(st.integers(1, 3), queries), min_size=1, max_size=8).flatmap(
    lambda rules: st.builds(RulePlan, st.just(rules), st.integers(0, len(rules)), st.integers(0, 6))
)


def batches(plan: Plan, early_deletions: bool) -> list[Batch]:
    """The plan as the batches a poller would hand over: one per channel, then each edit and deletion.

    With `early_deletions` a deleted message goes in the same batch that first brings it.
    """
    records = plan_records(plan)
    deleted: dict[int, list[int]] = {i: [] for i in range(4)}
    late: list[Batch] = []
    for index in plan.deletions:
        channel, message_id, _, _ = plan.originals[index]
        if early_deletions:
            deleted[channel].append(message_id)
        else:
            late.append(Batch(CHANNELS[channel], deleted_ids=(message_id,)))
    out = [
        Batch(CHANNELS[i], tuple(records[i]), deleted_ids=tuple(deleted[i]))
        for i in (3, 0, 1, 2) if records[i] or deleted[i]
    ]
    for k, (index, body) in enumerate(plan.edits):
        channel, message_id, _, hours = plan.originals[index]
        out.append(Batch(CHANNELS[channel], (MessageRecord(
            CHANNELS[channel].id, message_id, DAY0 + timedelta(hours=hours), body,
            edit_date=DAY0 + timedelta(days=10, minutes=k),
        ),)))
    return out + late


class Oracle:
    """Expected alert rows from `search` alone.

    It remembers every text each post has shown (and whether that text had changed since the post
    was archived: as the percolator documents, a first version counts as unedited even when Telegram
    showed it edited); an edit is new to a rule when searching finds the post now but would find it
    with none of those earlier texts, each tried on a copy of the archive as it is now with only the
    post's text put back.
    """

    def __init__(self, conn: sqlite3.Connection, rules: list[tuple[int, str]]) -> None:
        self.conn = conn
        self.rules: dict[str, Query] = {}
        for _, text in rules:
            try:
                self.rules[text.strip()] = parse(text.strip())
            except QueryError as error:
                assert error.message == "the query only excludes", text
        self.shown: dict[int, dict[tuple[str, bool], None]] = {}

    def found(self, conn: sqlite3.Connection | None = None) -> dict[str, set[int]]:
        return {text: {p.id for p in search(conn or self.conn, q, limit=100_000).posts}
                for text, q in self.rules.items()}

    def dead(self) -> set[int]:
        return {r[0] for r in self.conn.execute(
            "SELECT post_id FROM messages GROUP BY post_id HAVING count(deleted_at) = count(*)")}

    def found_with_text(self, post: int, body: str, edited: bool) -> dict[str, set[int]]:
        scratch = sqlite3.connect(":memory:")
        self.conn.backup(scratch)
        a = analyse(body)
        scratch.execute(
            "UPDATE posts SET text = ?, words = ?, stems = ?, tags = ?, language = ?, edited_at = ?, "
            "edited = ? WHERE id = ?",
            (body, a.words, a.stems, a.tags, a.language, "x" if edited else None, int(edited), post))
        return self.found(scratch)

    def expected(self, result: IngestResult, active: dict[int, str], rule_chats: dict[int, int],
                 before: set[tuple[int, int]]) -> set[tuple[int, int, tuple[int, ...]]]:
        found, dead = self.found(), self.dead()
        texts = {rid: text for rid, text in active.items() if text in self.rules}
        out = set()
        new = set(result.new_post_ids)

        def matching(chat: int, post: int, found: dict[str, set[int]]) -> tuple[int, ...]:
            return tuple(sorted(r for r, t in texts.items() if rule_chats[r] == chat and post in found[t]))

        for post in new - dead:
            for chat in set(rule_chats.values()):
                # a new post may hold an older one, merged into it with its alerts
                if (chat, post) not in before and (ids := matching(chat, post, found)):
                    out.add((chat, post, ids))
        for post in set(result.edited_post_ids) - new - dead:
            earlier = [self.found_with_text(post, *shown) for shown in self.shown.get(post, ())]
            for chat in set(rule_chats.values()):
                ids = matching(chat, post, found)
                if (chat, post) not in before and any(
                        all(post not in f[texts[r]] for f in earlier) for r in ids):
                    out.add((chat, post, ids))
        for post, body, edited_at in self.conn.execute("SELECT id, text, edited_at FROM posts"):
            self.shown.setdefault(post, {})[(body, edited_at is not None)] = None
        return out

    def follow_merges(self, before: dict[tuple[int, int], int]) -> None:
        """A post a message merged into another showed its texts as part of that one."""
        for (channel, message), post in sightings(self.conn).items():
            old = before.get((channel, message))
            if old is not None and old != post and old in self.shown:
                self.shown.setdefault(post, {}).update(self.shown.pop(old))


def sightings(conn: sqlite3.Connection) -> dict[tuple[int, int], int]:
    return {(r[0], r[1]): r[2] for r in conn.execute("SELECT channel_id, message_id, post_id FROM messages")}


def alert_rows(conn: sqlite3.Connection) -> dict[int, tuple[int, int, tuple[int, ...]]]:
    """Alert rows by id: a merge of two posts moves the alerts of one to the other, keeping their ids."""
    return {r[0]: (r[1], r[2], tuple(json.loads(r[3])))
            for r in conn.execute("SELECT id, chat_id, post_id, rule_ids FROM alerts")}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), rule_plans, st.booleans())
def test_alerts_are_what_search_finds_among_new_and_newly_matching_posts(plan, rule_plan, early):
    conn = connect_sync(":memory:")
    oracle = Oracle(conn, rule_plan.rules)
    percolator = Percolator()
    active: dict[int, str] = {}
    chats: dict[int, int] = {}

    def add(rules: list[tuple[int, str]]) -> None:
        for chat, text in rules:
            try:
                stored, _ = add_rule(conn, chat, text)
            except QueryError:
                continue
            active[stored.id], chats[stored.id] = stored.query, chat

    add(rule_plan.rules[:rule_plan.later])
    for n, b in enumerate(batches(plan, early)):
        if n == rule_plan.added_after:
            add(rule_plan.rules[rule_plan.later:])
        before, carried = alert_rows(conn), sightings(conn)
        result = ingest_batch(conn, b, after=percolator)
        oracle.follow_merges(carried)
        rows = alert_rows(conn)
        alerted = {(c, p) for i, (c, p, _) in rows.items() if i in before}  # where they are now
        expected = oracle.expected(result, active, chats, alerted)
        assert {row for i, row in rows.items() if i not in before} == expected, (n, b, result)
