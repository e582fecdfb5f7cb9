"""Alert percolation: match new and newly-edited canonical posts against the active rules inside the
ingest transaction, and queue one `alerts` row per (chat, post) listing every rule of that chat it matched.

Rules are indexed by what a matching post must hold (`storage.rule_index`), so a post is tried only
against rules it could match, plus the few rules that need nothing in particular. The index is
rebuilt only when the rules or the subscribers' `allowed` flags changed, which a per-connection
counter (temporary triggers) and SQLite's `data_version` (commits by other connections) tell cheaply.

An edit alerts only when it makes a rule match that matched no earlier version of the post (its kept
versions and the text its forwards carry), so a typo fix in an old post does not alert a rule added
since; `is:edited` counts the first version as unedited, so such a rule alerts at the first edit.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from storage import text as tx
from storage.dialect import dialect_of
from storage.query import Query, QueryError, parse
from storage.records import IngestResult, PostDoc, Rule, parse_iso
from storage.rule_index import IndexedRule, Requirement, RuleIndex, requirement
from storage.rules import active_rules
from storage.search import load_docs

log = logging.getLogger("chanwatch.percolator")

_CHUNK = 500  # post ids per IN (...) list

# -- noticing rule changes ------------------------------------------------------------------------

_TRIGGER_PREFIX = "chanwatch_percolator_"
_TRIGGERS = {
    "rules_insert": "AFTER INSERT ON main.rules",
    "rules_update": "AFTER UPDATE ON main.rules",
    "rules_delete": "AFTER DELETE ON main.rules",
    "subscribers_insert": "AFTER INSERT ON main.subscribers",
    "subscribers_update": "AFTER UPDATE OF allowed ON main.subscribers",
    "subscribers_delete": "AFTER DELETE ON main.subscribers",
}
_TRIGGER_NAMES = tuple(_TRIGGER_PREFIX + name for name in _TRIGGERS)
_MARKS = ", ".join("?" * len(_TRIGGERS))
_changes = 0
_changes_lock = threading.Lock()
_warned = False


def _rules_changed() -> None:
    """Called by the temporary triggers for each changed row; never goes back, even on a rollback."""
    global _changes
    with _changes_lock:
        _changes += 1


def _watch(conn: sqlite3.Connection) -> None:
    """Temporary triggers (this connection only; nothing is written to the archive) that call
    `_rules_changed` whenever a rule or a subscriber's `allowed` changes on this connection."""
    conn.create_function("chanwatch_rules_changed", 0, _rules_changed)
    for name, event in _TRIGGERS.items():
        conn.execute(
            f"CREATE TEMP TRIGGER IF NOT EXISTS {_TRIGGER_PREFIX}{name} {event} "
            "BEGIN SELECT chanwatch_rules_changed(); END"
        )
    _rules_changed()  # a connection watched afresh may reuse a closed one's id(): never look unchanged


def _change_state(conn: sqlite3.Connection) -> tuple[int, int, int] | None:
    """A value that differs whenever the active rules may have changed; None if it cannot be known.

    The triggers count this connection's writes; `PRAGMA data_version` changes when any other
    connection (the CLI, another process) committed.
    """
    global _warned
    if not dialect_of(conn).is_sqlite:
        return None  # PostgreSQL: no temp triggers nor data_version; its rules are read every time
    try:
        installed = conn.execute(
            f"SELECT count(*) FROM temp.sqlite_master WHERE type = 'trigger' AND name IN ({_MARKS})",
            _TRIGGER_NAMES,
        ).fetchone()[0]
        if installed != len(_TRIGGERS):
            _watch(conn)
        version = conn.execute("PRAGMA main.data_version").fetchone()[0]
    except sqlite3.Error as exc:
        if not _warned:
            log.warning("cannot watch rule changes cheaply (%s): reading the rules every time", exc)
            _warned = True
        return None
    return (id(conn), _changes, version)


# -- the percolator -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    query: Query
    need: Requirement | None


class Percolator:
    """Matches new/edited canonical posts against active rules inside the ingest transaction.

    Call it as an `AfterIngest` hook (`ingest(..., after=percolator)`, `Poller(after_ingest=...)`).
    A new post alerts every chat with a matching rule; an edited post alerts a chat when a rule of it
    matches the new text but matched no earlier version of the post, and the chat has no alert for
    it yet. A post whose sightings are all deleted never alerts.
    """

    def __init__(self, max_age: timedelta | None = None) -> None:
        """`max_age`: a new post whose original date is older than this when first seen (history of
        a newly watched channel) is archived without alerting; None alerts whatever its age."""
        self.max_age = max_age
        self._index = RuleIndex(())
        self._rules_key: tuple[tuple[int, int, str], ...] | None = None
        self._state: tuple[int, int, int] | None = None
        self._parsed: dict[str, _Parsed | None] = {}

    # -- rules ------------------------------------------------------------------------------------

    @property
    def index(self) -> RuleIndex:
        """The rule index as of the last call (for benchmarks and diagnostics)."""
        return self._index

    def refresh(self, conn: sqlite3.Connection) -> RuleIndex:
        """Bring the index up to date with the active rules (a cheap check when nothing changed)."""
        state = _change_state(conn)
        if state is not None and state == self._state:
            return self._index
        rules = active_rules(conn)
        key = tuple((r.id, r.chat_id, r.query) for r in rules)
        if key != self._rules_key:
            self._rebuild(rules)
            self._rules_key = key
        self._state = state
        return self._index

    def _rebuild(self, rules: Sequence[Rule]) -> None:
        parsed: dict[str, _Parsed | None] = {}
        entries = []
        for rule in rules:
            if rule.query not in parsed:
                parsed[rule.query] = self._parsed[rule.query] if rule.query in self._parsed else _parse(rule)
            item = parsed[rule.query]
            if item is None:
                continue
            exact = item.need is not None and item.need.exact
            entries.append((IndexedRule(rule.id, rule.chat_id, item.query, exact), item.need))
        self._parsed = parsed
        self._index = RuleIndex(entries)
        log.info("percolator: %d active rules indexed", len(self._index))

    # -- matching ---------------------------------------------------------------------------------

    def match(self, conn: sqlite3.Connection, post_ids: Sequence[int]) -> dict[int, list[int]]:
        """post_id -> ids of the active rules matching it, for the given posts that match any.

        Plain matching: deleted posts and posts already alerted are matched like any other.
        """
        index = self.refresh(conn)
        out: dict[int, list[int]] = {}
        if not len(index):
            return out
        for doc in _docs(conn, post_ids):
            matched = index.match(doc)
            if matched:
                out[doc.post_id] = [r.id for r in matched]
        return out

    def __call__(self, conn: sqlite3.Connection, result: IngestResult) -> None:
        """The AfterIngest hook: queue alerts for the batch's new and edited posts."""
        new = list(dict.fromkeys(result.new_post_ids))
        fresh = set(new)
        edited = [p for p in result.edited_post_ids if p not in fresh]
        if not new and not edited:
            return
        conn.execute("SAVEPOINT chanwatch_percolate")
        try:
            count = self._percolate(conn, new, edited, set(result.flagged_post_ids))
        except Exception:
            # Alerts for this batch are lost, the archive is not: log it and let the ingest commit.
            conn.execute("ROLLBACK TO chanwatch_percolate")
            log.exception("percolation failed for posts %s", (new + edited)[:20])
        else:
            if count:
                log.debug("percolator: %d alerts queued", count)
        finally:
            conn.execute("RELEASE chanwatch_percolate")

    def _percolate(self, conn: sqlite3.Connection, new: list[int], edited: list[int],
                   flagged: Collection[int] = ()) -> int:
        index = self.refresh(conn)
        if not len(index):
            return 0
        rows: list[tuple[int, int, str]] = []
        stamps: dict[int, str] = {}  # filled by `_recent` when it reads them, so no post is read twice
        new_docs = self._recent(conn, _docs(conn, new), stamps)
        dead = _dead(conn, [d.post_id for d in new_docs if d.deleted])
        for doc in new_docs:
            if doc.post_id in dead:
                continue
            for chat_id, rules in _by_chat(index.match(doc)).items():
                rows.append((chat_id, doc.post_id, _json([r.id for r in rules])))
        if edited:
            rows += self._edits(conn, index, edited, flagged)
        if not rows:
            return 0
        unread = [p for p in dict.fromkeys(r[1] for r in rows) if p not in stamps]
        if unread:
            stamps.update(_stamps(conn, unread))
        conn.executemany(
            """INSERT INTO alerts (chat_id, post_id, rule_ids, created_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (chat_id, post_id) DO NOTHING""",
            [(chat_id, post_id, rule_ids, stamps[post_id]) for chat_id, post_id, rule_ids in rows],
        )
        return len(rows)

    def _recent(self, conn: sqlite3.Connection, docs: list[PostDoc], seen: dict[int, str]) -> list[PostDoc]:
        """The docs young enough to alert (all of them without `max_age`); the stamps it reads are
        added to `seen`."""
        if self.max_age is None or not docs:
            return docs
        seen.update(_stamps(conn, [d.post_id for d in docs]))
        out = []
        for doc in docs:
            date, first_seen = parse_iso(doc.date), parse_iso(seen[doc.post_id])
            if date is None or first_seen is None or first_seen - date <= self.max_age:
                out.append(doc)
        return out

    def _edits(self, conn: sqlite3.Connection, index: RuleIndex, post_ids: list[int],
               flagged: Collection[int] = ()) -> list[tuple[int, int, str]]:
        """Rows for edited posts that newly match a rule of a chat not yet alerted about them. A
        `flagged` post kept its words and only became `is:edited`: it read so, unedited, before."""
        docs = _docs(conn, post_ids)
        dead = _dead(conn, [d.post_id for d in docs if d.deleted])
        rows = []
        for doc in docs:
            if doc.post_id in dead:
                continue
            chats = _by_chat(index.match(doc))
            if not chats:
                continue
            # by (chat_id, post_id): the UNIQUE index answers, there is none on post_id alone
            chats = {c: rules for c, rules in chats.items() if not _alerted(conn, c, doc.post_id)}
            if not chats:
                continue
            earlier = _earlier_docs(conn, doc)
            if doc.post_id in flagged:
                earlier.append(replace(doc, edited=False))
            for chat_id, rules in chats.items():
                if any(not any(r.query.matches(old) for old in earlier) for r in rules):
                    rows.append((chat_id, doc.post_id, _json([r.id for r in rules])))
        return rows


def _parse(rule: Rule) -> _Parsed | None:
    """The rule's query and requirement; None (logged) for a stored query that no longer parses."""
    try:
        query = parse(rule.query)
    except QueryError as exc:
        log.warning("rule %d (%r) does not parse, skipped: %s", rule.id, rule.query, exc)
        return None
    return _Parsed(query, requirement(query.root))


def _json(rule_ids: list[int]) -> str:
    """The JSON list of rule ids, as json.dumps would write it compactly (this runs per alert)."""
    return "[" + ",".join(map(str, rule_ids)) + "]"


def _by_chat(rules: list[IndexedRule]) -> dict[int, list[IndexedRule]]:
    """The matched rules grouped by the chat that owns them (one alert row per chat)."""
    out: dict[int, list[IndexedRule]] = {}
    for rule in rules:
        out.setdefault(rule.chat_id, []).append(rule)
    return out


def _docs(conn: sqlite3.Connection, post_ids: Sequence[int]) -> list[PostDoc]:
    return load_docs(conn, post_ids) if post_ids else []


def _alerted(conn: sqlite3.Connection, chat_id: int, post_id: int) -> bool:
    row = conn.execute("SELECT 1 FROM alerts WHERE chat_id = ? AND post_id = ?", (chat_id, post_id))
    return row.fetchone() is not None


def _stamps(conn: sqlite3.Connection, post_ids: list[int]) -> dict[int, str]:
    """When each post became alert-worthy: its last edit, else when it was first seen (the ingest time,
    so alerts follow the caller's clock rather than the wall clock)."""
    out: dict[int, str] = {}
    for start in range(0, len(post_ids), _CHUNK):
        chunk = post_ids[start:start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        out.update((r[0], r[1]) for r in conn.execute(
            f"SELECT id, coalesce(edited_at, first_seen) FROM posts WHERE id IN ({marks})", chunk))
    return out


def _dead(conn: sqlite3.Connection, post_ids: list[int]) -> set[int]:
    """The posts among `post_ids` whose every sighting is deleted."""
    dead: set[int] = set()
    for start in range(0, len(post_ids), _CHUNK):
        chunk = post_ids[start:start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        dead.update(r[0] for r in conn.execute(
            f"""SELECT post_id FROM messages WHERE post_id IN ({marks})
                GROUP BY post_id HAVING count(deleted_at) = count(*)""",
            chunk,
        ))
    return dead


def _earlier_docs(conn: sqlite3.Connection, doc: PostDoc) -> list[PostDoc]:
    """The post as it read before: every kept version of its messages, and the text its forwards
    carry, each with the post's other facts as they are now. A message's first version counts as not
    edited (a post merged from two can hold two messages with versions).
    """
    current = conn.execute("SELECT text FROM posts WHERE id = ?", (doc.post_id,)).fetchone()[0]
    versions = conn.execute(
        """SELECT v.text, v.channel_id, v.message_id FROM message_versions v
           JOIN messages m ON m.channel_id = v.channel_id AND m.message_id = v.message_id
           WHERE m.post_id = ? ORDER BY v.id""",
        (doc.post_id,),
    ).fetchall()
    forwarded = {r[0] for r in conn.execute(
        "SELECT text FROM messages WHERE post_id = ? AND relation = 'forward'", (doc.post_id,)
    )} - {current}
    texts: dict[tuple[str, bool], None] = {}
    seen: set[tuple[int, int]] = set()  # messages whose first version came already
    for body, channel_id, message_id in versions:
        texts[(body, (channel_id, message_id) in seen)] = None
        seen.add((channel_id, message_id))
    for body in forwarded:
        texts[(body, False)] = None
    return [_with_text(doc, body, edited) for body, edited in texts]


def _with_text(doc: PostDoc, body: str, edited: bool) -> PostDoc:
    a = tx.analyse(body)
    return replace(
        doc, words=tuple(a.words.split()), stems=tuple(a.stems.split()), tags=frozenset(a.tags.split()),
        lang=a.language, edited=edited,
    )
