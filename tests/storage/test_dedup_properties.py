"""Property: deduplication does not depend on the order messages arrive in.

A generated world: an origin channel posts statements (short, copyable or long texts, some edited
later), two channels forward some of them and post header-less copies of some (before or after the
statement, near and far in time, case and spacing changed). It reaches the archive two ways:

- imported, as `chanwatch import` reads Telegram Desktop exports: one batch per channel, each
  message as it stands now (edited text and edit_date), forwards without the original's id or date
  (as `storage.exchange.desktop_record` builds them);
- polled, as the poller hands batches over: pages of each channel (new messages forward, or history
  backwards), forwards with the full header (`bot/normalize.py`), and each edit as a later batch of
  the origin channel.

Every order of the channels' batches, and pages interleaved at random, give the same posts: for each
post its origin, date, text, edited flag and the set of (channel, message id, relation) sightings,
whatever the post ids. Re-ingesting every batch changes nothing.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from storage import dedup, text
from storage.database import connect_sync
from storage.dialect import dialect_of
from storage.ingest import ingest_batch
from storage.records import Batch, Channel, ForwardHeader, MessageRecord
from tests.storage.factories import T0
from tests.storage.test_ingest import snapshot

ORIGIN = Channel(1001, "MFARussia", "Russian MFA", watched=True)
FORWARDERS = (Channel(2002, "rusembc", "Russia in Canada", watched=True),
              Channel(3003, "RussianEmbassyUK", "Russian Embassy UK", watched=True))
CHANNELS = (ORIGIN, *FORWARDERS)

VOCAB = ("Canada sanctions Lavrov minister statement embassy Arctic visa talks treaty санкции Канада "
         "заявление посольство министр Арктика визы переговоры договор 2025").split()
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
SECOND = timedelta(seconds=1)
OFFSETS = (  # from a statement to a copy of it: around the copy windows, before and after
    timedelta(0), HOUR, 2 * DAY, dedup.COPY_WINDOW, dedup.COPY_WINDOW + SECOND, 10 * DAY,
    30 * DAY, 30 * DAY + SECOND, 40 * DAY,
)
DELAYS = (timedelta(minutes=5), 2 * HOUR, 2 * DAY, 5 * DAY, 35 * DAY)  # from a statement to a forward


@dataclass(frozen=True)
class Statement:
    text: str
    date: datetime
    edit: tuple[str, datetime] | None  # the new text and when


@dataclass(frozen=True)
class World:
    statements: tuple[Statement, ...]
    forwards: tuple[tuple[int, int, timedelta], ...]  # (forwarder, statement, delay)
    copies: tuple[tuple[int, int, timedelta, bool, bool], ...]
    """(forwarder, statement, offset (negative: before it), of the edited text, case changed)"""


words = st.sampled_from(VOCAB)
texts = st.one_of(
    st.lists(words, min_size=1, max_size=dedup.COPY_MIN_WORDS - 1),  # too short to tell a copy
    st.lists(words, min_size=dedup.COPY_MIN_WORDS, max_size=20),
    st.lists(words, min_size=100, max_size=110),
).map(" ".join)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    count = draw(st.integers(1, 3))
    statements = []
    for _ in range(count):
        date = T0 + draw(st.integers(0, 24 * 45)) * HOUR
        edit = None
        if draw(st.booleans()):
            edit = (draw(texts), date + draw(st.sampled_from([HOUR, 4 * DAY])))
        statements.append(Statement(draw(texts), date, edit))
    said = [s.text for s in statements] + [s.edit[0] for s in statements if s.edit]
    assume(len({text.analyse(t).fingerprint for t in said}) == len(said))  # one statement per text
    forwards = draw(st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, count - 1), st.sampled_from(DELAYS)),
        max_size=4, unique_by=lambda f: f[:2],
    ))
    copies = draw(st.lists(st.tuples(
        st.integers(0, 1), st.integers(0, count - 1),
        st.sampled_from(OFFSETS).flatmap(lambda o: st.sampled_from([o, -o])), st.booleans(), st.booleans(),
    ), max_size=4))
    return World(tuple(statements), tuple(forwards), tuple(copies))


def _text_at(statement: Statement, when: datetime) -> str:
    """The statement's text as a forward or copy made at `when` carries it."""
    if statement.edit is not None and when >= statement.edit[1]:
        return statement.edit[0]
    return statement.text


@dataclass(frozen=True)
class Archive:
    """The world as batches: each channel's pages in id order, and the origin's later edits."""

    pages: tuple[tuple[Batch, ...], ...]  # per channel
    edits: tuple[Batch, ...]
    ids: dict[tuple[str, int], int]  # ('statement' | 'forward' | 'copy', index) -> message id


def imported(world: World) -> Archive:
    """Desktop exports: every message as it is now; forwards name the origin channel only."""
    return _archive(world, polled=False, page=10_000)


def polled(world: World, page: int) -> Archive:
    """The poller's batches: forwards with the full header, edits as later batches."""
    return _archive(world, polled=True, page=page)


def _archive(world: World, polled: bool, page: int) -> Archive:
    made: list[list[tuple[datetime, str, int, dict]]] = [[], [], []]  # per channel: date, kind, index, fields
    for n, s in enumerate(world.statements):
        fields: dict = {"text": s.text}
        if s.edit is not None and not polled:
            fields = {"text": s.edit[0], "edit_date": s.edit[1]}
        made[0].append((s.date, "statement", n, fields))
    ids = _numbered(made[0])
    for n, (channel, statement, delay) in enumerate(world.forwards):
        s = world.statements[statement]
        header = ForwardHeader(from_peer_type="channel", from_peer_id=ORIGIN.id, origin_title=ORIGIN.title)
        if polled:
            header = replace(header, channel_post=ids[("statement", statement)], date=s.date,
                             origin_username=ORIGIN.username)
        made[channel + 1].append((s.date + delay, "forward", n,
                                  {"text": _text_at(s, s.date + delay), "forward": header}))
    for n, (channel, statement, offset, edited, upper) in enumerate(world.copies):
        s = world.statements[statement]
        body = s.edit[0] if edited and s.edit is not None else s.text
        body = f"  {body.upper()} " if upper else body
        made[channel + 1].append((s.date + offset, "copy", n, {"text": body}))
    for channel in (1, 2):
        ids.update(_numbered(made[channel]))
    pages = []
    for c, channel in enumerate(CHANNELS):
        records = sorted((MessageRecord(channel.id, ids[(kind, n)], date, **fields)
                          for date, kind, n, fields in made[c]), key=lambda r: r.message_id)
        chunks = [tuple(records[k:k + page]) for k in range(0, len(records), page)]
        pages.append(tuple(Batch(channel, chunk, cursor=chunk[-1].message_id) for chunk in chunks))
    edits = tuple(
        Batch(ORIGIN, (MessageRecord(ORIGIN.id, ids[("statement", n)], s.date, edit[0], edit_date=edit[1]),))
        for n, s in enumerate(world.statements) if polled and (edit := s.edit) is not None
    )
    return Archive(tuple(pages), edits, ids)


def _numbered(made: list[tuple[datetime, str, int, dict]]) -> dict[tuple[str, int], int]:
    """A channel's message ids: in date order, as Telegram numbers them."""
    return {(kind, n): i for i, (_, kind, n, _) in enumerate(sorted(made, key=lambda m: m[:3]), 1)}


NOW = T0 + 90 * DAY


Make = Callable[[], sqlite3.Connection]


def in_memory() -> sqlite3.Connection:
    return connect_sync(":memory:")


def build(batches: list[Batch], make: Make = in_memory) -> sqlite3.Connection:
    conn = make()
    for b in batches:
        ingest_batch(conn, b, NOW)
    if dialect_of(conn).is_sqlite:  # the index follows merges
        conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('integrity-check')")
    return conn


def canonical(conn: sqlite3.Connection) -> frozenset[tuple]:
    """The posts whatever their ids: origin, date, text, edited flag and sightings of each."""
    out = set()
    for post_id, *facts in conn.execute(
        "SELECT id, origin_channel_id, origin_message_id, date, text, edited FROM posts"
    ):
        sightings = frozenset(tuple(r) for r in conn.execute(
            "SELECT channel_id, message_id, relation FROM messages WHERE post_id = ?", (post_id,)
        ))
        out.add((*facts, sightings))
    return frozenset(out)


def channel_orders(archive: Archive) -> list[list[Batch]]:
    """Whole channels one after another, in every order; the origin's edits right after it, or last."""
    out = []
    for order in itertools.permutations(range(len(CHANNELS))):
        for edits_last in (False, True):
            batches: list[Batch] = []
            for c in order:
                batches += archive.pages[c]
                if c == 0 and not edits_last:
                    batches += archive.edits
            out.append(batches + (list(archive.edits) if edits_last else []))
    return out


@st.composite
def interleavings(draw: st.DrawFn, archive: Archive) -> list[Batch]:
    """The channels' pages interleaved, each channel's read forward or (history) backwards; the
    origin's edits after its pages."""
    queues = []
    for c in range(len(CHANNELS)):
        pages = list(archive.pages[c])
        if draw(st.booleans()):
            pages.reverse()
        queues.append(pages + (list(archive.edits) if c == 0 else []))
    turns = draw(st.permutations([c for c, queue in enumerate(queues) for _ in queue]))
    return [queues[c].pop(0) for c in turns]


def post_of(conn: sqlite3.Connection, channel: Channel, message_id: int) -> int:
    return conn.execute("SELECT post_id FROM messages WHERE channel_id = ? AND message_id = ?",
                        (channel.id, message_id)).fetchone()[0]


def check_what_the_posts_are(conn: sqlite3.Connection, world: World, archive: Archive, polled: bool) -> None:
    """Beyond any order: forwards meet their original; copies theirs; short texts are never copies."""
    def where(kind: str, n: int) -> int:
        made = {"forward": world.forwards, "copy": world.copies}
        channel = ORIGIN if kind == "statement" else FORWARDERS[made[kind][n][0]]
        return post_of(conn, channel, archive.ids[(kind, n)])

    for n, (_, statement, delay) in enumerate(world.forwards):
        s = world.statements[statement]
        now = s.edit[0] if s.edit is not None else s.text  # what the export holds
        if polled or _text_at(s, s.date + delay) == now:
            assert where("forward", n) == where("statement", statement), ("forward", n)
    for n, (_, statement, offset, edited, _) in enumerate(world.copies):
        s = world.statements[statement]
        body = s.edit[0] if edited and s.edit is not None else s.text
        analysed = text.analyse(body)
        archived = {s.text, s.edit[0]} if polled and s.edit is not None else {s.edit[0] if s.edit else s.text}
        if analysed.word_count < dedup.COPY_MIN_WORDS:
            assert conn.execute("SELECT count(*) FROM messages WHERE post_id = ?",
                                (where("copy", n),)).fetchone()[0] == 1, ("short copy", n)
        elif body in archived and abs(offset) <= dedup.copy_window(analysed.word_count):
            assert where("copy", n) == where("statement", statement), ("copy", n)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_importing_desktop_exports_in_any_order_gives_the_same_posts(world):
    imports_give_the_same_posts(world, in_memory)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.integers(1, 3), st.data())
def test_polling_in_any_order_and_interleaving_gives_the_same_posts(world, page, data):
    polls_give_the_same_posts(world, page, data, in_memory)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.booleans(), st.data())
def test_ingesting_every_batch_again_changes_nothing(world, poll, data):
    ingesting_again_changes_nothing(world, poll, data, in_memory)


# The same properties on PostgreSQL, with fewer examples: each costs ~5x there (a round trip per
# statement), and the generated worlds exercise the same ingest code as on SQLite.
PG_EXAMPLES = 20
_PG = settings(max_examples=PG_EXAMPLES, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@_PG
@given(worlds())
def test_importing_desktop_exports_in_any_order_gives_the_same_posts_on_postgresql(pg_scratch, world):
    imports_give_the_same_posts(world, pg_scratch)


@_PG
@given(worlds(), st.integers(1, 3), st.data())
def test_polling_in_any_order_and_interleaving_gives_the_same_posts_on_postgresql(
    pg_scratch, world, page, data,
):
    polls_give_the_same_posts(world, page, data, pg_scratch)


@_PG
@given(worlds(), st.booleans(), st.data())
def test_ingesting_every_batch_again_changes_nothing_on_postgresql(pg_scratch, world, poll, data):
    ingesting_again_changes_nothing(world, poll, data, pg_scratch)


def imports_give_the_same_posts(world: World, make: Make) -> None:
    archive = imported(world)
    orders = channel_orders(archive)[::2]  # no edits to place
    first = build(orders[0], make)
    check_what_the_posts_are(first, world, archive, polled=False)
    expected = canonical(first)
    for batches in orders[1:]:
        assert canonical(build(batches, make)) == expected, [b.channel.username for b in batches]


def polls_give_the_same_posts(world: World, page: int, data: st.DataObject, make: Make) -> None:
    archive = polled(world, page)
    orders = channel_orders(archive) + [data.draw(interleavings(archive)) for _ in range(4)]
    first = build(orders[0], make)
    check_what_the_posts_are(first, world, archive, polled=True)
    expected = canonical(first)
    for batches in orders[1:]:
        got = canonical(build(batches, make))
        assert got == expected, [(b.channel.username, b.messages) for b in batches]


def ingesting_again_changes_nothing(world: World, poll: bool, data: st.DataObject, make: Make) -> None:
    archive = polled(world, 2) if poll else imported(world)
    batches = data.draw(interleavings(archive))
    conn = build(batches, make)
    before = snapshot(conn)
    for b in batches:
        result = ingest_batch(conn, b, NOW + DAY)
        assert (result.messages_new, result.messages_updated, result.new_post_ids) == (0, 0, ())
    assert snapshot(conn) == before
