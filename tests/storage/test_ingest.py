"""Ingest: provenance, the dedup rules in every arrival order, merges, idempotency, edits, deletions."""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import replace
from datetime import UTC, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.database import SCHEMA_VERSION, connect_sync
from storage.dialect import dialect_of
from storage.ingest import ingest_batch
from storage.ingest_rows import json_text as _json
from storage.outbox import mark_sent
from storage.percolator import Percolator
from storage.records import Batch, ForwardHeader, MessageRecord, iso
from storage.rules import add_rule
from storage.text import analyse as text_analyse
from storage.tsquery import MARKS
from tests.storage.factories import (
    EMBASSY,
    EMBASSY_UK,
    MFA,
    PHOTO,
    STATEMENT,
    STATEMENT_RU,
    T0,
    batch,
    fwd,
    msg,
)


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """The archive, once on SQLite and once on PostgreSQL: every test here runs on both."""
    return archive


@pytest.fixture
def lite() -> sqlite3.Connection:
    """An SQLite archive, for what only SQLite can show (its query plans)."""
    return connect_sync(":memory:")


def posts(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM posts ORDER BY id").fetchall()


def sightings(conn: sqlite3.Connection, post_id: int) -> list[tuple[int, int, str]]:
    return [tuple(r) for r in conn.execute(
        "SELECT channel_id, message_id, relation FROM messages WHERE post_id = ?"
        " ORDER BY channel_id, message_id", (post_id,),
    )]


def snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    tables = ["channels", "posts", "post_keys", "messages", "message_versions"]
    return {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in tables}


def fts_ids(conn: sqlite3.Connection, match: str) -> list[int]:
    """The posts the full-text index finds for an FTS5 expression (the few forms used here: `a OR b`,
    `stems : "word"`, `prefix*`), on PostgreSQL through the same expression as a tsquery."""
    if dialect_of(conn).is_sqlite:
        return [r[0] for r in conn.execute("SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?", (match,))]
    terms = []
    for term in match.split(" OR "):
        column, _, word = term.rpartition(" : ")
        word = word.strip('"')
        prefix = ":*" if word.endswith("*") else ""
        terms.append("'" + MARKS.get(column, "") + word.removesuffix("*") + "'" + prefix)
    query = " | ".join(terms)
    return [r[0] for r in conn.execute(
        "SELECT id FROM posts WHERE fts @@ CAST(? AS tsquery) ORDER BY id", (query,))]


SCENARIO = {
    "mfa": batch(MFA, msg(MFA, 10, STATEMENT), msg(MFA, 11, STATEMENT_RU, minutes=1)),
    "embassy": batch(
        EMBASSY,
        fwd(EMBASSY, 500, MFA, 10, STATEMENT),
        fwd(EMBASSY, 501, MFA, 11, STATEMENT_RU, origin_minutes=1),
        msg(EMBASSY, 502, "Консульский приём 20 декабря не проводится", minutes=30),
    ),
    "uk": batch(EMBASSY_UK, fwd(EMBASSY_UK, 70, MFA, 10, STATEMENT)),
}


@pytest.mark.parametrize("order", list(itertools.permutations(SCENARIO)))
def test_original_and_forwards_meet_in_one_post_in_any_arrival_order(conn, order):
    for name in order:
        ingest_batch(conn, SCENARIO[name])
    rows = posts(conn)
    assert len(rows) == 3
    statement = next(p for p in rows if p["text"] == STATEMENT)
    assert statement["key"] == "tg:1001:10"
    assert statement["origin_username"] == "MFARussia"
    assert statement["origin_message_id"] == 10
    assert sightings(conn, statement["id"]) == [
        (1001, 10, "original"), (2002, 500, "forward"), (3003, 70, "forward"),
    ]


def test_forward_keeps_every_header_field_and_the_raw_json(conn):
    header = ForwardHeader(
        from_peer_type="channel", from_peer_id=MFA.id, channel_post=10, from_name=None,
        date=T0, post_author="Мария Захарова", saved_from_peer_type="channel",
        saved_from_peer_id=MFA.id, saved_from_msg_id=10,
    )
    record = msg(EMBASSY, 500, STATEMENT, minutes=5, forward=header, views=812, forwards=3, replies=1)
    ingest_batch(conn, batch(EMBASSY, record))
    row = conn.execute("SELECT * FROM messages").fetchone()
    assert (row["fwd_from_type"], row["fwd_from_id"], row["fwd_channel_post"]) == ("channel", 1001, 10)
    assert row["fwd_date"] == "2025-12-17T10:00:00+00:00"
    assert row["fwd_post_author"] == "Мария Захарова"
    assert (row["fwd_saved_from_type"], row["fwd_saved_from_id"], row["fwd_saved_from_msg_id"]) == (
        "channel", 1001, 10,
    )
    assert (row["views"], row["forwards"], row["replies"]) == (812, 3, 1)
    assert '"message":"Statement by Foreign Minister' in row["raw"]
    post = posts(conn)[0]
    assert post["origin_author"] == "Мария Захарова"
    assert post["date"] == "2025-12-17T10:00:00+00:00"  # the original's date, not the forward's


def test_forward_learns_origin_names_from_a_channel_seen_earlier(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hello")))
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 5, MFA, 99, "other text", with_names=False)))
    post = conn.execute("SELECT * FROM posts WHERE key = 'tg:1001:99'").fetchone()
    assert (post["origin_username"], post["origin_title"]) == ("MFARussia", "Russian MFA 🇷🇺")


def test_reingesting_the_same_batch_changes_nothing(conn):
    for b in SCENARIO.values():
        ingest_batch(conn, b)
    before = snapshot(conn)
    results = [ingest_batch(conn, b) for b in SCENARIO.values()]
    assert snapshot(conn) == before
    assert all(r.messages_new == 0 and r.messages_updated == 0 for r in results)
    assert sum(r.messages_unchanged for r in results) == 6


def test_edit_keeps_the_old_text_and_reindexes_the_post(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Canada announced new sanctions")))
    edited = msg(MFA, 10, "Canada announced new restrictions", edit_date=T0 + timedelta(hours=1))
    result = ingest_batch(conn, batch(MFA, edited))
    assert result.edits == 1 and result.edited_post_ids == (1,)
    versions = conn.execute("SELECT text, edit_date FROM message_versions").fetchall()
    assert [tuple(v) for v in versions] == [("Canada announced new sanctions", None)]
    assert posts(conn)[0]["text"] == "Canada announced new restrictions"
    assert posts(conn)[0]["edited_at"] is not None
    assert fts_ids(conn, 'stems : "restrict"') == [1]
    assert fts_ids(conn, 'stems : "sanction"') == []
    # the same edit again, and an older copy of the message, change nothing
    assert ingest_batch(conn, batch(MFA, edited)).messages_unchanged == 1
    assert ingest_batch(conn, batch(MFA, msg(MFA, 10, "Canada announced new sanctions"))).edits == 0
    second = msg(MFA, 10, "Canada announced restrictions", edit_date=T0 + timedelta(hours=2))
    ingest_batch(conn, batch(MFA, second))
    assert conn.execute("SELECT count(*) FROM message_versions").fetchone()[0] == 2


def test_an_edit_that_removes_the_text_leaves_the_post_without_it(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT, media=PHOTO)))
    result = ingest_batch(conn, batch(MFA, msg(MFA, 10, "", media=PHOTO, edit_date=T0 + timedelta(hours=1))))
    [post] = posts(conn)
    assert (post["text"], post["edited"], result.edited_post_ids) == ("", 1, (post["id"],))
    assert fts_ids(conn, 'stems : "lavrov"') == []


def test_deleted_message_keeps_its_content_and_is_marked(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT), msg(MFA, 11, "second")))
    seen = T0 + timedelta(days=1)
    result = ingest_batch(conn, Batch(MFA, deleted_ids=(10, 999), seen_at=seen))
    assert result.deletions == 1
    row = conn.execute("SELECT text, deleted_at FROM messages WHERE message_id = 10").fetchone()
    assert tuple(row) == (STATEMENT, "2025-12-18T10:00:00+00:00")
    assert fts_ids(conn, 'stems : "lavrov"') == [1]
    assert ingest_batch(conn, Batch(MFA, deleted_ids=(10,), seen_at=seen)).deletions == 0


def test_cursor_only_moves_forward(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "a"), cursor=10))
    ingest_batch(conn, batch(MFA, msg(MFA, 3, "b"), cursor=3))
    assert conn.execute("SELECT cursor FROM channels WHERE id = ?", (MFA.id,)).fetchone()[0] == 10


def test_hidden_user_forwards_of_one_message_are_one_post(conn):
    header = ForwardHeader(from_name="Anonymous Reader", date=T0)
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 1, "Photo from the rally", forward=header)))
    ingest_batch(conn, batch(EMBASSY_UK, msg(EMBASSY_UK, 9, "Photo from the rally", forward=header)))
    other = replace(header, date=T0 + timedelta(days=2))
    ingest_batch(conn, batch(EMBASSY_UK, msg(EMBASSY_UK, 10, "Photo from the rally", forward=other)))
    rows = posts(conn)
    assert len(rows) == 2
    assert rows[0]["origin_title"] == "Anonymous Reader" and rows[0]["origin_channel_id"] is None
    assert len(sightings(conn, rows[0]["id"])) == 2


@pytest.mark.parametrize("copy_first", [False, True])
def test_copy_without_header_is_a_sighting_of_the_earlier_post(conn, copy_first):
    original = batch(MFA, msg(MFA, 10, STATEMENT))
    copy = batch(EMBASSY, msg(EMBASSY, 600, "  " + STATEMENT.upper() + " ", minutes=40))
    for b in ([copy, original] if copy_first else [original, copy]):
        ingest_batch(conn, b)
    rows = posts(conn)
    assert len(rows) == 1
    assert rows[0]["origin_username"] == "MFARussia" and rows[0]["key"] == "tg:1001:10"
    assert sightings(conn, rows[0]["id"]) == [(1001, 10, "original"), (2002, 600, "copy")]


def test_short_or_old_identical_texts_are_not_copies(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "Good morning!")))
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 1, "Good morning!")))
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 2, STATEMENT)))
    ingest_batch(conn, batch(MFA, msg(MFA, 2, STATEMENT, minutes=60 * 24 * 10)))
    assert len(posts(conn)) == 4


@pytest.mark.parametrize("reverse", [False, True])
def test_album_parts_are_one_post_and_forwarded_albums_join_it(conn, reverse):
    album = [
        msg(MFA, 20, "", grouped_id=77, media=PHOTO),
        msg(MFA, 21, "Лавров встретился с Арагчи", grouped_id=77, media=PHOTO),
        msg(MFA, 22, "", grouped_id=77, media=PHOTO),
    ]
    forwarded = [
        fwd(EMBASSY, 800, MFA, 20, "", grouped_id=5, media=PHOTO),
        fwd(EMBASSY, 801, MFA, 21, "Лавров встретился с Арагчи", grouped_id=5, media=PHOTO),
        fwd(EMBASSY, 802, MFA, 22, "", grouped_id=5, media=PHOTO),
    ]
    batches = [batch(MFA, *album), batch(EMBASSY, *forwarded)]
    for b in reversed(batches) if reverse else batches:
        ingest_batch(conn, b)
    rows = posts(conn)
    assert len(rows) == 1
    assert rows[0]["text"] == "Лавров встретился с Арагчи" and rows[0]["media_kind"] == "photo"
    assert len(sightings(conn, rows[0]["id"])) == 6


@pytest.mark.parametrize("forward_first", [False, True])
def test_forward_without_post_id_finds_the_original_by_text(conn, forward_first):
    """Telegram Desktop exports name the origin channel but drop the original message id."""
    header = ForwardHeader(from_peer_type="channel", from_peer_id=MFA.id, origin_title=MFA.title)
    exported = batch(EMBASSY, msg(EMBASSY, 500, STATEMENT_RU, minutes=5, forward=header))
    original = batch(MFA, msg(MFA, 11, STATEMENT_RU))
    for b in ([exported, original] if forward_first else [original, exported]):
        ingest_batch(conn, b)
    rows = posts(conn)
    assert len(rows) == 1
    assert (rows[0]["key"], rows[0]["origin_message_id"]) == ("tg:1001:11", 11)
    assert sightings(conn, rows[0]["id"]) == [(1001, 11, "original"), (2002, 500, "forward")]


def test_failed_batch_writes_nothing(conn):
    good = msg(EMBASSY, 1, "fine")
    bad = msg(MFA, 2, "from another channel")
    with pytest.raises(ValueError, match="not the batch's channel"):
        ingest_batch(conn, Batch(EMBASSY, (good, bad), cursor=2))
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM channels").fetchone()[0] == 0


def test_fresh_database_migrates_from_version_zero_and_reopens(tmp_path):
    path = tmp_path / "archive.db"
    conn = connect_sync(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "hello")))
    conn.close()
    again = connect_sync(path)
    assert again.execute("SELECT count(*) FROM posts").fetchone()[0] == 1


def test_newer_schema_than_known_is_refused_with_a_clear_message(tmp_path):
    from storage.database import StorageError

    path = tmp_path / "future.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.close()
    with pytest.raises(StorageError, match="newer than this chanwatch knows"):
        connect_sync(path)


def test_a_channel_repeating_its_own_text_keeps_the_first_message_as_the_original(
    conn: sqlite3.Connection,
) -> None:
    ingest_batch(conn, batch(MFA, msg(MFA, 140, STATEMENT)))
    ingest_batch(conn, batch(MFA, msg(MFA, 141, STATEMENT, minutes=2)))
    [post] = posts(conn)
    assert post["origin_message_id"] == 140
    assert sightings(conn, post["id"]) == [(MFA.id, 140, "original"), (MFA.id, 141, "copy")]


def test_a_short_text_repeated_by_its_channel_is_two_posts(conn: sqlite3.Connection) -> None:
    ingest_batch(conn, batch(MFA, msg(MFA, 140, "Брифинг"), msg(MFA, 141, "Брифинг", minutes=2)))
    assert [p["origin_message_id"] for p in posts(conn)] == [140, 141]


# -- within one batch: what a message wrote, the next one sees ---------------------------------

_CHANNELS = (MFA, EMBASSY, EMBASSY_UK)
_TEXTS = ("", "Брифинг", STATEMENT, STATEMENT_RU, STATEMENT + " ёлка", "Лавров встретился с Арагчи")
_ref_dates = st.integers(0, 6).map(lambda d: T0 + timedelta(days=d))
_headers = st.one_of(
    st.none(),
    st.builds(ForwardHeader, from_peer_type=st.just("channel"), from_peer_id=st.sampled_from([1001, 2002]),
              channel_post=st.one_of(st.none(), st.integers(1, 6)), date=st.one_of(st.none(), _ref_dates)),
    st.builds(ForwardHeader, from_peer_type=st.just("user"), from_peer_id=st.just(7), date=_ref_dates),
)
_records = st.builds(
    lambda number, day, body, edit, header, group, media: (number, dict(
        date=T0 + timedelta(days=day), text=body, edit_date=edit, forward=header, grouped_id=group,
        media=media, views=number, raw={"id": number}, entities=({"type": "bold"},) if day else ())),
    st.integers(1, 6), st.integers(0, 6), st.sampled_from(_TEXTS),
    st.one_of(st.none(), _ref_dates), _headers, st.sampled_from([None, 1]), st.sampled_from([None, PHOTO]),
)


def _batch_of(channel: int, records: list) -> Batch:
    return Batch(_CHANNELS[channel], tuple(
        MessageRecord(_CHANNELS[channel].id, number, **fields) for number, fields in records
    ))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 2), st.lists(_records, max_size=4)), max_size=3),
    st.integers(0, 2), st.lists(_records, min_size=1, max_size=8),
)
def test_a_batch_is_ingested_as_its_messages_one_by_one_in_id_order(new_archive, history, channel, records):
    """Ingest reads per batch what its messages look up; each must still see what earlier ones
    wrote: repeats of a message id, album siblings, copies, keys and posts made in the batch."""
    now = T0 + timedelta(days=30)
    whole, single = new_archive(), new_archive()
    for conn in (whole, single):
        for index, items in history:
            ingest_batch(conn, _batch_of(index, items), now)
    target = _batch_of(channel, records)
    result = ingest_batch(whole, target, now)
    ordered = sorted(target.messages, key=lambda r: r.message_id)
    singles = [ingest_batch(single, Batch(target.channel, (r,)), now) for r in ordered]
    assert snapshot(whole) == snapshot(single)
    assert fts_ids(whole, "sanctions OR санкци*") == fts_ids(single, "sanctions OR санкци*")
    assert (result.messages_new, result.messages_updated, result.messages_unchanged, result.edits) == (
        sum(r.messages_new for r in singles), sum(r.messages_updated for r in singles),
        sum(r.messages_unchanged for r in singles), sum(r.edits for r in singles),
    )
    assert result.new_post_ids == tuple(p for r in singles for p in r.new_post_ids)
    assert result.edited_post_ids == tuple(dict.fromkeys(p for r in singles for p in r.edited_post_ids))


def test_a_message_twice_in_one_batch_is_stored_then_updated_by_its_edit(conn):
    first = msg(MFA, 10, STATEMENT, views=5)
    edited = replace(first, text=STATEMENT + " (updated)", edit_date=T0 + timedelta(hours=1), views=9)
    result = ingest_batch(conn, batch(MFA, first, edited))
    assert (result.messages_new, result.messages_updated, result.edits) == (1, 1, 1)
    row = conn.execute("SELECT text, views FROM messages").fetchone()
    assert tuple(row) == (STATEMENT + " (updated)", 9)
    assert [r[0] for r in conn.execute("SELECT text FROM message_versions")] == [STATEMENT]
    assert posts(conn)[0]["text"] == STATEMENT + " (updated)"


def test_album_parts_in_one_batch_join_the_post_the_first_part_made(conn):
    result = ingest_batch(conn, batch(
        MFA, msg(MFA, 20, "", grouped_id=77, media=PHOTO), msg(MFA, 21, STATEMENT_RU, grouped_id=77),
    ))
    [post] = posts(conn)
    assert result.new_post_ids == (post["id"],)
    assert post["text"] == STATEMENT_RU and fts_ids(conn, "санкц*") == [post["id"]]


def test_a_copy_of_a_text_posted_earlier_in_the_same_batch_joins_its_post(conn):
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 1, STATEMENT), msg(EMBASSY, 2, STATEMENT, minutes=3)))
    [post] = posts(conn)
    assert sightings(conn, post["id"]) == [(EMBASSY.id, 1, "original"), (EMBASSY.id, 2, "copy")]


def test_a_forward_without_post_id_is_adopted_by_an_original_later_in_the_batch(conn):
    header = ForwardHeader(from_peer_type="channel", from_peer_id=MFA.id)
    ingest_batch(conn, batch(
        MFA, msg(MFA, 5, STATEMENT_RU, minutes=5, forward=header), msg(MFA, 11, STATEMENT_RU),
    ))
    [post] = posts(conn)
    assert (post["key"], post["origin_message_id"]) == ("tg:1001:11", 11)


@given(st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), st.timezones())))
def test_iso_renders_every_datetime_as_its_utc_second(value):
    """`iso` returns early for aware UTC datetimes on a whole second; all give the general form."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    assert iso(value) == aware.astimezone(UTC).replace(microsecond=0).isoformat()


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
))
def test_json_columns_are_what_json_dumps_writes(value):
    assert _json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# -- any arrival order: links, merges and the settled original ----------------------------------

DESKTOP_HEADER = ForwardHeader(from_peer_type="channel", from_peer_id=MFA.id, origin_title=MFA.title)
"""A forward as a Telegram Desktop export gives it: the origin channel, no post id, no date."""


def batches_in(order: tuple[str, ...], named: dict[str, Batch]) -> list[Batch]:
    return [named[name] for name in order]


ADOPTION = {
    "copy": batch(EMBASSY_UK, msg(EMBASSY_UK, 70, STATEMENT, minutes=20)),
    "desktop forward": batch(EMBASSY, msg(EMBASSY, 500, STATEMENT, minutes=30, forward=DESKTOP_HEADER)),
    "original": batch(MFA, msg(MFA, 10, STATEMENT)),
}


@pytest.mark.parametrize("order", list(itertools.permutations(ADOPTION)))
def test_a_copy_joins_the_original_whatever_came_first_even_a_header_less_forward(conn, order):
    """The issue's case: copy, then a Desktop forward, then the original, which took the forward's
    post and skipped the copy check; the copy stayed a post of its own."""
    for b in batches_in(order, ADOPTION):
        ingest_batch(conn, b)
    [post] = posts(conn)
    assert (post["key"], post["origin_message_id"], post["text"]) == ("tg:1001:10", 10, STATEMENT)
    assert sightings(conn, post["id"]) == [
        (MFA.id, 10, "original"), (EMBASSY.id, 500, "forward"), (EMBASSY_UK.id, 70, "copy"),
    ]
    before = snapshot(conn)
    for b in ADOPTION.values():
        ingest_batch(conn, b)
    assert snapshot(conn) == before


BRIDGE = {  # the copy and the forward are four days apart: only the original links both
    "copy": batch(EMBASSY_UK, msg(EMBASSY_UK, 70, STATEMENT, minutes=3 * 24 * 60)),
    "desktop forward": batch(EMBASSY, msg(EMBASSY, 500, STATEMENT, minutes=7 * 24 * 60,
                                          forward=DESKTOP_HEADER)),
    "original": batch(MFA, msg(MFA, 10, STATEMENT)),
}


@pytest.mark.parametrize("order", list(itertools.permutations(BRIDGE)))
def test_a_message_linking_two_posts_merges_them(conn, order):
    for b in batches_in(order, BRIDGE):
        ingest_batch(conn, b)
    [post] = posts(conn)
    assert sightings(conn, post["id"]) == [
        (MFA.id, 10, "original"), (EMBASSY.id, 500, "forward"), (EMBASSY_UK.id, 70, "copy"),
    ]
    assert fts_ids(conn, 'stems : "lavrov"') == [post["id"]]
    assert conn.execute("SELECT count(*) FROM post_keys WHERE post_id != ?", (post["id"],)).fetchone()[0] == 0


def test_a_merge_keeps_one_alert_per_chat_and_the_one_already_sent(conn):
    percolator = Percolator()
    add_rule(conn, 1, "lavrov")
    add_rule(conn, 2, "canada")
    ingest_batch(conn, BRIDGE["copy"], after=percolator)
    ingest_batch(conn, BRIDGE["desktop forward"], after=percolator)
    copied, forwarded = (r[0] for r in conn.execute("SELECT id FROM posts ORDER BY id"))
    sent = conn.execute("SELECT id FROM alerts WHERE chat_id = 1 AND post_id = ?", (copied,)).fetchone()[0]
    mark_sent(conn, [sent], T0)
    ingest_batch(conn, BRIDGE["original"], after=percolator)
    [post] = posts(conn)
    rows = conn.execute("SELECT id, chat_id, post_id, sent_at IS NOT NULL FROM alerts ORDER BY chat_id")
    assert [tuple(r)[1:] for r in rows] == [(1, post["id"], 1), (2, post["id"], 0)]
    assert conn.execute("SELECT id FROM alerts WHERE chat_id = 1").fetchone()[0] == sent


@pytest.mark.parametrize("order", list(itertools.permutations([0, 2, 4])))
def test_copies_each_within_the_window_of_another_are_one_post_in_any_order(conn, order):
    """A chain: day 0 and day 4 are too far apart, day 2 links them (the posts are whatever links)."""
    channels = {0: MFA, 2: EMBASSY, 4: EMBASSY_UK}
    for day in order:
        ingest_batch(conn, batch(channels[day], msg(channels[day], 1, STATEMENT, minutes=day * 24 * 60)))
    [post] = posts(conn)
    assert post["origin_channel_id"] == MFA.id
    assert sightings(conn, post["id"]) == [(MFA.id, 1, "original"), (EMBASSY.id, 1, "copy"),
                                           (EMBASSY_UK.id, 1, "copy")]


def test_copies_too_far_apart_with_nothing_between_are_two_posts(conn):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT)))
    ingest_batch(conn, batch(EMBASSY_UK, msg(EMBASSY_UK, 1, STATEMENT, minutes=4 * 24 * 60)))
    assert len(posts(conn)) == 2


EDITED_INTO_A_COPY = {
    "original": batch(MFA, msg(MFA, 10, "Statement on Canada")),
    "edit": batch(MFA, msg(MFA, 10, STATEMENT, edit_date=T0 + timedelta(hours=1))),
    "copy of the edited text": batch(EMBASSY_UK, msg(EMBASSY_UK, 70, STATEMENT, minutes=90)),
}


@pytest.mark.parametrize("order", [("original", "edit", "copy of the edited text"),
                                   ("original", "copy of the edited text", "edit"),
                                   ("copy of the edited text", "original", "edit")])
def test_an_edit_links_what_its_new_text_links(conn, order):
    for b in batches_in(order, EDITED_INTO_A_COPY):
        ingest_batch(conn, b)
    [post] = posts(conn)
    assert (post["text"], post["origin_message_id"], post["edited"]) == (STATEMENT, 10, 1)
    assert sightings(conn, post["id"]) == [(MFA.id, 10, "original"), (EMBASSY_UK.id, 70, "copy")]


@pytest.mark.parametrize("forward_first", [False, True])
def test_album_parts_are_one_post_whichever_part_a_forward_named_first(conn, forward_first):
    """A forward of the album's captioned part alone, then the album: its parts meet on the album."""
    album = batch(MFA, msg(MFA, 20, "", grouped_id=77, media=PHOTO),
                  msg(MFA, 21, STATEMENT_RU, grouped_id=77, media=PHOTO), msg(MFA, 22, "", grouped_id=77))
    forwarded = batch(EMBASSY, fwd(EMBASSY, 800, MFA, 21, STATEMENT_RU, media=PHOTO))
    for b in [forwarded, album] if forward_first else [album, forwarded]:
        ingest_batch(conn, b)
    [post] = posts(conn)
    assert (post["text"], post["origin_message_id"], post["media_kind"]) == (STATEMENT_RU, 20, "photo")
    assert sightings(conn, post["id"]) == [
        (MFA.id, 20, "original"), (MFA.id, 21, "original"), (MFA.id, 22, "original"),
        (EMBASSY.id, 800, "forward"),
    ]


# -- copies of long texts ------------------------------------------------------------------------


def words_of(count: int) -> str:
    """A statement of exactly `count` words, as storage.text counts them."""
    vocabulary = "The minister said that new sanctions against Canada will be answered in kind".split()
    return " ".join(itertools.islice(itertools.cycle(vocabulary), count))


@pytest.mark.parametrize("sign", [1, -1], ids=["copy after", "copy before"])
@pytest.mark.parametrize(("words", "apart", "one_post"), [
    (99, timedelta(days=3), True),
    (99, timedelta(days=3, seconds=1), False),
    (99, timedelta(days=7), False),
    (100, timedelta(days=7), True),
    (100, timedelta(days=30), True),
    (100, timedelta(days=30, seconds=1), False),
])
def test_a_re_post_is_a_copy_within_3_days_or_within_30_from_100_words(conn, sign, words, apart, one_post):
    text = words_of(words)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, text)))
    ingest_batch(conn, batch(EMBASSY, replace(msg(EMBASSY, 600, text), date=T0 + sign * apart)))
    assert len(posts(conn)) == (1 if one_post else 2)


def test_words_are_counted_as_the_index_tokenises_them(conn):
    text = words_of(98) + " covid-19"  # 99 words apart by spaces, 100 tokens
    assert len(text.split()) == 99 and text_analyse(text).word_count == 100
    ingest_batch(conn, batch(MFA, msg(MFA, 10, text)))
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 600, text.upper(), minutes=10 * 24 * 60)))
    [post] = posts(conn)
    assert sightings(conn, post["id"]) == [(MFA.id, 10, "original"), (EMBASSY.id, 600, "copy")]


def test_the_copy_lookup_reads_index_ranges_even_for_the_30_day_window(lite):
    conn = lite
    text = words_of(120)
    for day in range(0, 60, 5):  # marks of the text all along, and other posts' dates around them
        ingest_batch(conn, batch(EMBASSY_UK, msg(EMBASSY_UK, day + 1, text, minutes=day * 24 * 60),
                                 msg(EMBASSY_UK, day + 2, f"Arctic news {day}", minutes=day * 24 * 60)))
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, text, minutes=40 * 24 * 60)))
    conn.set_trace_callback(None)
    lookups = [sql for sql in statements if "fingerprint = " in sql or "key BETWEEN" in sql]
    assert lookups
    for sql in lookups:
        steps = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        assert not [s for s in steps if s.startswith("SCAN") and ("posts" in s or "post_keys" in s)], steps
