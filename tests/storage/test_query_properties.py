"""Properties of the query language.

1. `parse` never raises anything but `QueryError`, whatever the input, and what it accepts compiles to
   SQL that carries no query text (only bound parameters) and that SQLite and FTS5 accept.
2. A rule matches a post exactly when searching for the rule's text finds that post: for archives
   built through `ingest_batch` and queries using every operator and filter,
   search(query) == {post | query.matches(load_docs(post))}.
3. The newest-first walk big archives use, stepping through the date index a post at a time (ties
   in date included), yields exactly the sorted results; a page past a tiny count limit shows the
   same posts, with a total that is exact or a true lower bound.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.query import QueryError, parse
from storage.records import Batch, Channel, ForwardHeader, MessageRecord
from storage.search import load_docs, register_functions, search, walk

# -- 1. fuzzing the parser ------------------------------------------------------------------------

PIECES = [
    '"', "(", ")", "-", "*", "#", ":", "@", " ", "  ", "\n", " OR ", " NOT ", " AND ", "OR", "NOT",
    "channel:", "from:", "since:", "until:", "lang:", "is:", "sort:", "foo:", "-100", "1234",
    "2025-12-01", "2025-02-30", "forward", "deleted", "edited", "rank", "ru", "canada", "Канада", "санкций",
    "covid-19", "lavr", "ёлка", "Café", "🇷🇺", "😀", "!!!", "_", "'", ";", "\\", "%", "\x00", "ß", "İ",
]

fuzz_queries = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=25).map("".join),
    st.text(max_size=60),
)

ALLOWED_SQL_WORDS = {
    "p", "id", "IN", "SELECT", "rowid", "FROM", "posts_fts", "WHERE", "MATCH", "NOT", "AND", "OR",
    "EXISTS", "messages", "m", "JOIN", "channels", "c", "ON", "channel_id", "post_id", "lower",
    "username", "origin_username", "IS", "NULL", "origin_channel_id", "origin_title", "chanwatch_name",
    "date", "language", "edited", "deleted_at", "relation",
}


def _fuzz_db() -> sqlite3.Connection:
    conn = connect_sync(":memory:")
    register_functions(conn)
    channel = Channel(1, "alpha", "Alpha", watched=True)
    record = MessageRecord(1, 1, datetime(2025, 12, 1, tzinfo=UTC), "canada sanctions #tag covid-19")
    ingest_batch(conn, Batch(channel, (record,)))
    return conn


FUZZ_DB = _fuzz_db()
FUZZ_DOC = load_docs(FUZZ_DB, [1])[0]


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_queries)
def test_parse_raises_only_query_error_and_sql_holds_no_query_text(text):
    try:
        query = parse(text)
    except QueryError as error:
        assert 0 <= error.position <= len(text)
        assert error.hint
        return
    sql, params = query.to_sql()
    # the one literal is fixed text (a partial index's condition), never query text
    assert "'" not in sql.replace("m.relation = 'copy'", "") and '"' not in sql
    assert sql.count("?") == len(params)
    assert set(re.findall(r"[A-Za-z_]+", sql)) <= ALLOWED_SQL_WORDS
    # SQLite and FTS5 accept it, and the matcher runs
    FUZZ_DB.execute(f"SELECT count(*) FROM posts p WHERE {sql}", params).fetchone()
    assert isinstance(query.matches(FUZZ_DOC), bool)
    search(FUZZ_DB, query)


WRAPPERS = [
    "({} OR channel:x)", "(channel:x {})", "-({})", "NOT ({})", "(from:y OR {} c)", "-{}",
    "(a OR -({}))", "({} OR (b c))", "(-(-{}) OR is:edited)",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WRAPPERS), max_size=14), st.sampled_from(["canada", "channel:z", '"a b"']))
def test_deepest_accepted_queries_fit_sqlite(wrappers, leaf):
    """Whatever nesting the parser accepts, SQLite's parser stack and FTS5 accept too."""
    text = leaf
    for wrapper in wrappers:
        text = wrapper.format(text)
    try:
        query = parse("a " + text + " sort:rank")
    except QueryError as error:
        assert error.message in ("query nested too deeply", "the query only excludes")
        return
    search(FUZZ_DB, query)
    list(walk(FUZZ_DB, query))  # its SQL wraps the condition once more


# -- 2. search == matcher -------------------------------------------------------------------------

DAY0 = datetime(2025, 12, 1, 8, 0, tzinfo=UTC)

ORIGIN = Channel(201, "mfarussia", "Russian MFA 🇷🇺", watched=True)
WATCHED = (
    Channel(101, "alpha", "Alpha News", watched=True),
    Channel(102, "Beta", "Бета канал", watched=True),
    Channel(103, None, "Gamma Ёлка", watched=True),
)

VOCAB = [
    "Canada", "Канада", "Канаде", "Канады", "канадой", "sanction", "sanctions", "sanctioned",
    "санкция", "санкции", "санкций", "foreign", "minister", "ministers", "Foreign Minister",
    "Лавров", "Лаврова", "Lavrov", "visa", "visas", "arctic", "covid-19", "ёлка", "елка", "Café",
    "cafe", "2025", "new", "новые", "#RussiaAfrica", "#Канада", "#sanctions", "#visa",
]
SEPARATORS = [" ", " ", ", ", ". ", "! ", "\n", " — "]

LONG = "Foreign Minister Lavrov on new sanctions against Canada and visas #RussiaAfrica"
"""Long enough (dedup.COPY_MIN_WORDS) that a second original with this text is a `copy` sighting."""

_random_texts = st.lists(
    st.tuples(st.sampled_from(VOCAB), st.sampled_from(SEPARATORS)), max_size=8
).map(lambda parts: "".join(w + s for w, s in parts).strip())
texts = st.one_of(_random_texts, _random_texts, _random_texts, st.just(LONG))


@dataclass(frozen=True)
class Plan:
    """An archive to build: originals per channel, forwards of origin posts, edits, deletions."""

    originals: list[tuple[int, int, str, int]]  # (channel index, message id, text, hours after DAY0)
    forwards: list[tuple[int, int, int, bool | str]]  # (channel index, origin message id, hours, names)
    """A forward's names: False for none (a hidden origin), True for ORIGIN's, or a title it shows then
    (a renamed channel's: the title `from:` compares must be the one stored)."""
    edits: list[tuple[int, str]]  # (index into originals, new text)
    deletions: list[int]  # indexes into originals
    archived_edited: dict[int, bool] = field(default_factory=dict)
    """Originals (by index) that already carry an edit_date when first archived: True when Telegram
    hides that edit (`edit_hide`), False when it shows it."""


RENAMED = ("Бета  канал!", "GAMMA Ёлка", "Russian MFA", "Café ❄ Ёлка 2025")
"""Titles a forward may show its origin under, besides ORIGIN's: each matches some from: leaf, or
none, by its folded words."""


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    count = draw(st.integers(1, 10))
    originals = []
    for message_id in range(1, count + 1):
        channel = draw(st.integers(0, 3))  # 3: the origin channel
        originals.append((channel, message_id, draw(texts), draw(st.integers(0, 24 * 6))))
    origin_ids = [m for c, m, _, _ in originals if c == 3] + [90, 91]  # 90, 91: never seen as originals
    forwards = draw(st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(origin_ids), st.integers(0, 24 * 6),
                  st.one_of(st.booleans(), st.sampled_from(RENAMED))),
        max_size=5,
    ))
    edits = draw(st.lists(st.tuples(st.integers(0, count - 1), texts), max_size=2))
    deletions = draw(st.lists(st.integers(0, count - 1), max_size=2))
    archived_edited = draw(st.dictionaries(st.integers(0, count - 1), st.booleans(), max_size=3))
    return Plan(originals, forwards, edits, deletions, archived_edited)


def plan_records(plan: Plan) -> dict[int, list[MessageRecord]]:
    """The plan's originals and forwards as records, by channel index (3 is the origin channel)."""
    channels = (*WATCHED, ORIGIN)
    records: dict[int, list[MessageRecord]] = {i: [] for i in range(4)}
    origin_texts = {m: t for c, m, t, _ in plan.originals if c == 3}
    for index, (channel, message_id, body, hours) in enumerate(plan.originals):
        ident = channels[channel].id
        date = DAY0 + timedelta(hours=hours)
        edit = {}
        if index in plan.archived_edited:  # edited before we first saw it, shown or hidden
            hidden = plan.archived_edited[index]
            edit = dict(edit_date=date + timedelta(minutes=30), raw={"edit_hide": hidden})
        records[channel].append(MessageRecord(ident, message_id, date, body, **edit))
    for n, (channel, origin_id, hours, names) in enumerate(plan.forwards):
        header = ForwardHeader(
            from_peer_type="channel", from_peer_id=ORIGIN.id, channel_post=origin_id,
            date=DAY0 + timedelta(hours=hours), origin_username=ORIGIN.username if names else None,
            origin_title=(names if isinstance(names, str) else ORIGIN.title) if names else None,
        )
        body = origin_texts.get(origin_id, f"forwarded Канада {origin_id}")
        records[channel].append(MessageRecord(
            WATCHED[channel].id, 1000 + n, DAY0 + timedelta(hours=hours + 1), body, forward=header
        ))
    return records


def build(plan: Plan, make: Callable[[], sqlite3.Connection] | None = None) -> sqlite3.Connection:
    """Ingest the plan into a new archive (`make`'s, else SQLite in memory): origin channel first,
    then the others, then edits and deletions."""
    conn = make() if make is not None else connect_sync(":memory:")
    channels = (*WATCHED, ORIGIN)
    records = plan_records(plan)
    for index in (3, 0, 1, 2):
        if records[index]:
            ingest_batch(conn, Batch(channels[index], tuple(records[index])))
    for k, (index, body) in enumerate(plan.edits):
        channel, message_id, _, hours = plan.originals[index]
        edited = MessageRecord(
            channels[channel].id, message_id, DAY0 + timedelta(hours=hours), body,
            edit_date=DAY0 + timedelta(days=10, minutes=k),
        )
        ingest_batch(conn, Batch(channels[channel], (edited,)))
    for index in plan.deletions:
        channel, message_id, _, _ = plan.originals[index]
        ingest_batch(conn, Batch(channels[channel], deleted_ids=(message_id,)))
    return conn


LEAVES = [
    "canada", "Канаде", "санкций", "sanctioned", "minister", "lavrov", "Лаврову", "visa", "arctic",
    "covid-19", "ёлки", "cafe", "2025", "forwarded", "new", "Новый",
    '"foreign minister"', '"Канада санкции"', '"new sanctions"', '"елка"', '"Café"', '"visas"',
    "санк*", "lav*", "кана*", "ca*", "v*", "min*",
    "#RussiaAfrica", "#канада", "#Sanctions", "#visa",
    "channel:alpha", "channel:BETA", "channel:103", "channel:-100103", "channel:@alpha", "channel:201",
    "from:mfarussia", 'from:"Russian MFA"', "from:201", 'from:"Бета канал"', "from:alpha",
    "from:102", 'from:"gamma ёлка"', 'from:"cafe елка 2025"',
    "since:2025-12-03", "until:2025-12-03", "since:2025-12-06", "until:2025-12-01",
    "lang:ru", "lang:en", "is:forward", "is:original", "is:copy", "is:edited", "is:deleted",
]

leaf_queries = st.sampled_from(LEAVES)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, children).map(lambda ab: f"{ab[0]} {ab[1]}"),
        st.tuples(children, children).map(lambda ab: f"({ab[0]} OR {ab[1]})"),
        st.tuples(children, children).map(lambda ab: f"{ab[0]} OR {ab[1]}"),
        st.tuples(children, children).map(lambda ab: f"{ab[0]} -({ab[1]})"),
        st.tuples(children, children).map(lambda ab: f"{ab[0]} NOT {ab[1]}"),
        st.tuples(children, children).map(lambda ab: f"{ab[0]} -(-{ab[1]})"),
    )


queries = st.tuples(
    st.recursive(leaf_queries, _extend, max_leaves=6), st.sampled_from(["", " sort:rank"])
).map("".join)


def check(conn: sqlite3.Connection, text: str) -> None:
    try:
        query = parse(text)
    except QueryError as error:
        assert error.message == "the query only excludes", text
        return
    ids = [r[0] for r in conn.execute("SELECT id FROM posts")]
    expected = {doc.post_id for doc in load_docs(conn, ids) if query.matches(doc)}
    page = search(conn, query, limit=10_000)
    assert {p.id for p in page.posts} == expected, (text, query.to_sql())
    assert page.total == len(expected) and page.total_exact
    if query.sort == "date":
        order = [p.id for p in page.posts]
        assert [i for hits in walk(conn, query, first_step=1) for i in hits] == order, text
        capped = search(conn, query, limit=2, offset=1, count_limit=1)
        assert [p.id for p in capped.posts] == order[1:3], text
        if capped.total_exact:
            assert capped.total == len(expected), text
        else:  # a lower bound, and at least one past the page when there is more
            assert min(len(expected), 4) <= capped.total <= len(expected), text


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(), st.lists(queries, min_size=1, max_size=12))
def test_search_finds_exactly_what_the_matcher_matches(plan, query_texts):
    conn = build(plan)
    for text in query_texts:
        check(conn, text)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plans(), st.lists(queries, min_size=1, max_size=12))
def test_search_on_postgresql_finds_exactly_what_the_matcher_matches(pg_scratch, plan, query_texts):
    """Property 2 on PostgreSQL: its tsvector index, tsqueries and SQL (`from:` by title through
    `origin_names`) find what the matcher (and so SQLite) finds; fewer examples, each costs more there."""
    conn = build(plan, pg_scratch)
    for text in query_texts:
        check(conn, text)


def test_the_generated_archives_exercise_the_filters():
    """A fixed plan through `build`: forwards, edits and deletions really produce what queries test."""
    plan = Plan(
        originals=[(3, 1, "Канада санкции", 0), (0, 2, "arctic visa", 30), (2, 3, "ёлка", 100)],
        forwards=[(1, 1, 2, True), (0, 90, 5, False)],
        edits=[(1, "arctic visas new")],
        deletions=[2],
        archived_edited={0: True, 2: False},
    )
    conn = build(plan)
    for text in ["is:forward", "is:edited", "is:deleted", "channel:beta", "from:mfarussia", "new",
                 "lang:ru until:2025-12-01", "channel:103 OR channel:alpha"]:
        check(conn, text)
        assert search(conn, text).total > 0, text
    assert {p.text for p in search(conn, "is:edited").posts} == {"arctic visas new", "ёлка"}
    forwarded = search(conn, "channel:beta").posts[0]
    assert {s.relation for s in forwarded.sightings} == {"original", "forward"}
    assert replace(forwarded, sightings=()).text == "Канада санкции"
