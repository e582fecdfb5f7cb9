"""The percolator: which posts alert which chats, through the real ingest, and how it keeps its rule
index in step with rules changed on this or another connection."""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from datetime import timedelta

import pytest

from storage.database import connect_sync, run_in_transaction
from storage.ingest import ingest_batch
from storage.percolator import Percolator
from storage.query import parse
from storage.records import Batch
from storage.rule_index import requirement
from storage.rules import add_rule, remove_rule, set_allowed
from storage.search import load_docs
from tests.storage.factories import (
    EMBASSY,
    EMBASSY_UK,
    MFA,
    STATEMENT,
    STATEMENT_RU,
    T0,
    batch,
    fwd,
    msg,
)

MFA_SANCTIONS = "МИД России: ответ на новые антироссийские санкций Канады последует"


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    """An empty archive, once on SQLite and once on PostgreSQL."""
    return archive


@pytest.fixture
def lite() -> sqlite3.Connection:
    """An SQLite archive, whose ids are reused after a delete (PostgreSQL's identity columns never
    reuse one)."""
    return connect_sync(":memory:")


def alerts(conn: sqlite3.Connection) -> list[tuple[int, int, list[int]]]:
    """(chat_id, post_id, rule_ids) of every alert row."""
    return [(r[0], r[1], json.loads(r[2])) for r in conn.execute(
        "SELECT chat_id, post_id, rule_ids FROM alerts ORDER BY chat_id, post_id")]


def post_id(conn: sqlite3.Connection, channel_id: int, message_id: int) -> int:
    return conn.execute("SELECT post_id FROM messages WHERE channel_id = ? AND message_id = ?",
                        (channel_id, message_id)).fetchone()[0]


def rule(conn: sqlite3.Connection, chat_id: int, query: str) -> int:
    return add_rule(conn, chat_id, query)[0].id


# -- who gets alerted -----------------------------------------------------------------------------


@pytest.mark.parametrize("forwards_first", [False, True])
def test_a_post_forwarded_by_three_embassies_alerts_once(conn, forwards_first):
    sanctions = rule(conn, 1, "sanctions OR санкции")
    percolator = Percolator()
    original = batch(MFA, msg(MFA, 7, MFA_SANCTIONS))
    forwards = [
        batch(ch, fwd(ch, 40 + n, MFA, 7, MFA_SANCTIONS)) for n, ch in enumerate((EMBASSY, EMBASSY_UK))
    ]
    third = batch(EMBASSY, fwd(EMBASSY, 60, MFA, 7, MFA_SANCTIONS, minutes=20))
    order = [*forwards, third, original] if forwards_first else [original, *forwards, third]
    for b in order:
        ingest_batch(conn, b, after=percolator)
    post = post_id(conn, MFA.id, 7)
    assert alerts(conn) == [(1, post, [sanctions])]
    assert conn.execute("SELECT count(*) FROM messages WHERE post_id = ?", (post,)).fetchone()[0] == 4



def test_history_older_than_max_age_is_archived_without_alerting(conn):
    sanctions = rule(conn, 1, "sanctions OR санкции")
    percolator = Percolator(max_age=timedelta(hours=48))
    now = T0 + timedelta(days=3)
    old, fresh = msg(MFA, 7, MFA_SANCTIONS), msg(MFA, 8, MFA_SANCTIONS + " #Canada", minutes=2 * 24 * 60)
    ingest_batch(conn, batch(MFA, old, fresh), now, after=percolator)
    assert alerts(conn) == [(1, post_id(conn, MFA.id, 8), [sanctions])]

def test_two_rules_of_one_chat_make_one_row_and_two_chats_two_rows(conn):
    canada = rule(conn, 1, "canada")
    lavrov = rule(conn, 1, "lavr*")
    other = rule(conn, 2, '"foreign minister"')
    rule(conn, 2, "arctic")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT), msg(MFA, 11, "Arctic council meets")),
                 after=Percolator())
    post = post_id(conn, MFA.id, 10)
    assert alerts(conn)[:1] == [(1, post, [canada, lavrov])]
    assert (2, post, [other]) in alerts(conn)
    assert len([a for a in alerts(conn) if a[1] == post]) == 2


def test_alert_is_stamped_with_the_ingest_time(conn):
    rule(conn, 1, "canada")
    now = T0 + timedelta(days=3)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT)), now=now, after=Percolator())
    assert conn.execute("SELECT created_at, sent_at, attempts FROM alerts").fetchone()[:] == (
        "2025-12-20T10:00:00+00:00", None, 0)


def test_posts_matching_no_rule_and_chats_without_rules_get_nothing(conn):
    rule(conn, 1, "arctic -council")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT), msg(MFA, 11, "Arctic council")),
                 after=Percolator())
    assert alerts(conn) == []


@pytest.mark.parametrize("query, text, alerted", [
    ("lavr*", "Лавров and Lavrov", True),
    ("лавр*", "Сергей Лавров", True),
    ("lavr*", "Laverne", False),
    ('"new sanctions"', "new sanctions announced", True),
    ('"new sanctions"', "sanctions, new ones", False),
    ("#MFA", "statement #MFA", True),
    ("#MFA", "statement by the MFA", False),
    ("channel:mfarussia", "anything at all", True),
    ("channel:rusembc", "anything at all", False),
    ("from:1001", "anything at all", True),
    ("lang:ru", "Заявление", True),
    ("lang:ru", "Statement", False),
    ("is:original", "Statement", True),
    ("is:forward", "Statement", False),
    ("since:2025-12-01", "Statement", True),
    ("until:2025-12-01", "Statement", False),
    ("covid-19", "the covid 19 crisis", True),
    ("covid-19", "19 covid", False),
    ("canada -visa", "Canada visa", False),
    ("(canada OR arctic) -(visa OR is:forward)", "arctic", True),
])
def test_every_kind_of_term_alerts_exactly_when_it_matches(conn, query, text, alerted):
    rule(conn, 1, query)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, text)), after=Percolator())
    assert bool(alerts(conn)) is alerted


def test_a_forward_of_an_alerted_post_adds_nothing_even_for_a_channel_rule(conn):
    percolator = Percolator()
    rule(conn, 1, "canada")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT)), after=percolator)
    rule(conn, 2, "channel:rusembc")
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 50, MFA, 10, STATEMENT)), after=percolator)
    assert [a[0] for a in alerts(conn)] == [1]


# -- edits ----------------------------------------------------------------------------------------


def edited(message_id: int, text: str, hours: int, channel=MFA):
    return msg(channel, message_id, text, edit_date=T0 + timedelta(hours=hours))


def test_an_edit_that_adds_a_watched_word_alerts_once(conn):
    percolator = Percolator()
    arctic = rule(conn, 1, "arctic")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Statement on Canada")), after=percolator)
    assert alerts(conn) == []
    ingest_batch(conn, batch(MFA, edited(10, "Statement on Canada and the Arctic", 1)), after=percolator)
    post = post_id(conn, MFA.id, 10)
    assert alerts(conn) == [(1, post, [arctic])]
    ingest_batch(conn, batch(MFA, edited(10, "Statement on the Arctic", 2)), after=percolator)
    ingest_batch(conn, batch(MFA, edited(10, "Statement", 3)), after=percolator)
    ingest_batch(conn, batch(MFA, edited(10, "Arctic again", 4)), after=percolator)
    assert alerts(conn) == [(1, post, [arctic])]


def test_an_edit_that_merges_a_message_into_a_post_showing_the_same_text_alerts_is_edited(conn):
    """The post's words stay; the edit makes it `is:edited` (its origin is the message just edited)."""
    percolator = Percolator()
    is_edited = rule(conn, 1, "is:edited")
    ingest_batch(conn, batch(MFA, msg(MFA, 1, ""), msg(MFA, 2, STATEMENT)), after=percolator)
    ingest_batch(conn, batch(MFA, edited(1, STATEMENT, 1)), after=percolator)  # joins message 2's post
    assert post_id(conn, MFA.id, 1) == post_id(conn, MFA.id, 2)
    assert alerts(conn) == [(1, post_id(conn, MFA.id, 2), [is_edited])]
    ingest_batch(conn, batch(MFA, edited(1, "Canada", 2)), after=percolator)
    assert len(alerts(conn)) == 1


def test_a_rule_added_after_a_post_turned_is_edited_is_not_alerted_by_its_next_edit(conn):
    percolator = Percolator()
    ingest_batch(conn, batch(MFA, msg(MFA, 1, ""), msg(MFA, 2, STATEMENT)), after=percolator)
    ingest_batch(conn, batch(MFA, edited(1, STATEMENT, 1)), after=percolator)  # is:edited from now on
    assert conn.execute("SELECT edited_at FROM posts WHERE id = ?", (post_id(conn, MFA.id, 1),)).fetchone()[0]
    rule(conn, 1, "is:edited")
    ingest_batch(conn, batch(MFA, edited(1, "Canada", 2)), after=percolator)
    assert alerts(conn) == []  # it matched before this edit: a rule added since gets no alert for it


def test_an_edit_merging_in_a_post_that_read_edited_already_does_not_alert_a_rule_added_since(conn):
    """Found by the property test: post A was edited to the statement, then a rule `is:edited` came;
    post B's message edited to the same words merges A in. The post read so, edited, before the rule."""
    percolator = Percolator()
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "")), after=percolator)
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 2, "")), after=percolator)
    ingest_batch(conn, batch(MFA, edited(1, STATEMENT, 1)), after=percolator)
    rule(conn, 1, "is:edited")
    ingest_batch(conn, batch(EMBASSY, edited(2, STATEMENT, 2, channel=EMBASSY)), after=percolator)
    assert post_id(conn, MFA.id, 1) == post_id(conn, EMBASSY.id, 2)
    assert alerts(conn) == []


def test_such_an_edit_does_not_alert_a_rule_added_since_that_the_words_matched_before(conn):
    percolator = Percolator()
    ingest_batch(conn, batch(MFA, msg(MFA, 1, ""), msg(MFA, 2, STATEMENT)), after=percolator)
    rule(conn, 1, "sanctions")  # added after the post was stored: its words matched already
    ingest_batch(conn, batch(MFA, edited(1, STATEMENT, 1)), after=percolator)
    assert alerts(conn) == []


def test_an_edit_of_a_post_that_already_matched_adds_no_row(conn):
    percolator = Percolator()
    canada = rule(conn, 1, "canada")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Statement on Canada")), after=percolator)
    rule(conn, 1, "lavrov")  # newly matched, but chat 1 was alerted about this post already
    ingest_batch(conn, batch(MFA, edited(10, "Lavrov on Canada", 1)), after=percolator)
    assert alerts(conn) == [(1, post_id(conn, MFA.id, 10), [canada])]


def test_an_edit_alerts_another_chat_whose_rule_it_newly_matches(conn):
    percolator = Percolator()
    canada = rule(conn, 1, "canada")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Statement on Canada")), after=percolator)
    lavrov = rule(conn, 2, "lavrov")
    canada2 = rule(conn, 2, "canada")
    ingest_batch(conn, batch(MFA, edited(10, "Lavrov on Canada", 1)), after=percolator)
    post = post_id(conn, MFA.id, 10)
    assert alerts(conn) == [(1, post, [canada]), (2, post, [lavrov, canada2])]


def test_a_rule_added_later_does_not_alert_old_posts_even_when_they_are_edited(conn):
    percolator = Percolator()
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Statement on Canada")), after=percolator)
    rule(conn, 1, "canada")
    ingest_batch(conn, batch(MFA, msg(MFA, 11, "Arctic news")), after=percolator)
    ingest_batch(conn, batch(MFA, edited(10, "Statement on Canada.", 1)), after=percolator)  # a typo fix
    assert alerts(conn) == []


def test_an_edit_that_only_the_forwards_text_matched_before_does_not_alert(conn):
    """Forward first (its text is the post's first version), then the original with a newer edit."""
    percolator = Percolator()
    rule(conn, 1, "canada")
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 50, MFA, 10, "Statement on Canada")))
    ingest_batch(conn, batch(MFA, edited(10, "Statement on Canada and visas", 1)), after=percolator)
    assert alerts(conn) == []


def test_is_edited_rule_alerts_at_the_first_edit(conn):
    percolator = Percolator()
    watched = rule(conn, 1, "canada is:edited")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Statement on Canada")), after=percolator)
    assert alerts(conn) == []
    ingest_batch(conn, batch(MFA, edited(10, "Statement on Canada, corrected", 1)), after=percolator)
    assert alerts(conn) == [(1, post_id(conn, MFA.id, 10), [watched])]


def test_is_edited_rule_alerts_at_the_first_edit_of_a_post_holding_an_edited_copy(conn):
    """Each message's first kept version counts as unedited, not only the first one of the post: an
    edit of a copy does not make the post edited, so the original's first edit alerts."""
    percolator = Percolator()
    watched = rule(conn, 1, "is:edited")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT)), after=percolator)
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 60, STATEMENT.upper(), minutes=30)), after=percolator)
    copy = msg(EMBASSY, 60, "Our comment: " + STATEMENT, minutes=30, edit_date=T0 + timedelta(hours=1))
    ingest_batch(conn, batch(EMBASSY, copy), after=percolator)
    assert alerts(conn) == [] and post_id(conn, EMBASSY.id, 60) == post_id(conn, MFA.id, 10)
    ingest_batch(conn, batch(MFA, edited(10, "Statement on Canada", 2)), after=percolator)
    assert alerts(conn) == [(1, post_id(conn, MFA.id, 10), [watched])]


# -- deletions, inactive rules, denied chats ------------------------------------------------------


def test_a_post_deleted_in_its_first_batch_never_alerts(conn):
    rule(conn, 1, "canada")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT), deleted_ids=(10,)), after=Percolator())
    assert alerts(conn) == []


def test_an_edit_of_a_deleted_post_never_alerts(conn):
    percolator = Percolator()
    rule(conn, 1, "arctic")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Statement")), after=percolator)
    ingest_batch(conn, Batch(MFA, deleted_ids=(10,)), after=percolator)
    ingest_batch(conn, batch(MFA, edited(10, "Arctic statement", 1), deleted_ids=(10,)), after=percolator)
    assert alerts(conn) == []


def test_a_post_with_a_live_sighting_still_alerts(conn):
    rule(conn, 1, "canada")
    percolator = Percolator()
    ingest_batch(conn, batch(EMBASSY, fwd(EMBASSY, 50, MFA, 10, STATEMENT), fwd(EMBASSY, 51, MFA, 11, "x"),
                             deleted_ids=(51,)), after=percolator)
    ingest_batch(conn, batch(EMBASSY_UK, fwd(EMBASSY_UK, 60, MFA, 10, STATEMENT), deleted_ids=(60,)),
                 after=percolator)
    assert [a[1] for a in alerts(conn)] == [post_id(conn, EMBASSY.id, 50)]


def test_inactive_rules_and_denied_chats_do_not_alert(conn):
    percolator = Percolator()
    rule(conn, 1, "canada")
    gone = rule(conn, 2, "canada")
    rule(conn, 3, "canada")
    set_allowed(conn, 1, False)
    conn.execute("UPDATE rules SET active = 0 WHERE id = ?", (gone,))
    conn.execute("UPDATE subscribers SET allowed = 0 WHERE chat_id = 3")  # denied, rule still active
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT)), after=percolator)
    assert alerts(conn) == []
    set_allowed(conn, 3, True)
    ingest_batch(conn, batch(MFA, msg(MFA, 11, "Canada again")), after=percolator)
    assert [a[0] for a in alerts(conn)] == [3]


# -- keeping the index up to date -----------------------------------------------------------------


def test_a_rule_added_between_two_ingests_is_picked_up(conn):
    percolator = Percolator()
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Canada")), after=percolator)
    canada = rule(conn, 1, "canada")
    ingest_batch(conn, batch(MFA, msg(MFA, 11, "Canada again")), after=percolator)
    assert alerts(conn) == [(1, post_id(conn, MFA.id, 11), [canada])]


def test_a_rule_removed_and_its_id_reused_by_a_new_one_is_noticed(lite):
    conn = lite
    percolator = Percolator()
    rule(conn, 1, "arctic")
    old = rule(conn, 1, "canada")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Arctic")), after=percolator)
    remove_rule(conn, old)
    new = rule(conn, 1, "visa")
    assert new == old  # SQLite reuses the highest rowid
    ingest_batch(conn, batch(MFA, msg(MFA, 11, "Canada visa")), after=percolator)
    assert [a[2] for a in alerts(conn)] == [[1], [new]]
    assert percolator.match(conn, [post_id(conn, MFA.id, 11)]) == {post_id(conn, MFA.id, 11): [new]}


def test_rules_changed_on_another_connection_are_picked_up(tmp_path):
    path = tmp_path / "archive.db"
    ingester, cli = connect_sync(path), connect_sync(path)
    percolator = Percolator()
    ingest_batch(ingester, batch(MFA, msg(MFA, 10, "Canada")), after=percolator)
    arctic = rule(cli, 1, "arctic")
    ingest_batch(ingester, batch(MFA, msg(MFA, 11, "Arctic")), after=percolator)
    set_allowed(cli, 1, False)
    ingest_batch(ingester, batch(MFA, msg(MFA, 12, "Arctic again")), after=percolator)
    assert alerts(ingester) == [(1, post_id(ingester, MFA.id, 11), [arctic])]


def test_an_unchanged_rule_set_is_not_reread_and_old_rules_are_not_reparsed(conn):
    percolator = Percolator()
    rule(conn, 1, "canada")
    first = percolator.refresh(conn)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "x")))  # writes that are not rules change nothing
    assert percolator.refresh(conn) is first
    rule(conn, 2, "arctic")
    second = percolator.refresh(conn)
    assert second is not first and len(second) == 2
    assert second.rules[0].query is first.rules[0].query


def test_a_rolled_back_rule_change_is_not_mistaken_for_a_later_one(conn):
    percolator = Percolator()
    rule(conn, 1, "arctic")
    percolator.refresh(conn)

    def add_and_fail(c: sqlite3.Connection) -> None:
        rule(c, 1, "canada")
        percolator.refresh(c)
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        run_in_transaction(conn, add_and_fail)
    visa = rule(conn, 1, "visa")  # the same id and the same number of changes as the rolled-back rule
    assert [r.id for r in percolator.refresh(conn).rules] == [1, visa]
    assert percolator.refresh(conn).rules[1].query.text == "visa"


def test_only_rules_sharing_a_required_token_are_tried(conn):
    queries = ["canada", "sanctions OR санкции", "lavr*", "arctic", "#visa", "channel:rusembc",
               "since:2025-01-01", '"foreign minister" visa', "visa OR is:forward"]
    for n, query in enumerate(queries):
        rule(conn, n + 1, query)
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Минister Lavrov comments on new санкций")))
    index = Percolator().refresh(conn)
    [doc] = load_docs(conn, [1])
    candidates, sure = index.candidates(doc)
    assert sorted(index.rules[p].query.text for p in candidates) == sorted(
        ["sanctions OR санкции", "lavr*", "since:2025-01-01"])
    assert [index.rules[p].query.text for p in sure] == ["sanctions OR санкции"]
    assert [r.query.text for r in index.match(doc)] == ["sanctions OR санкции", "lavr*", "since:2025-01-01"]


@pytest.mark.parametrize("query, keys", [
    ("canada", {("stems", "canada")}),
    ("canada -visa", {("stems", "canada")}),
    ("lang:ru санкции", {("stems", "санкц")}),
    ("channel:rusembc OR #MFA", {("channel", "rusembc"), ("tags", "mfa")}),
    ('"foreign minister"', {("words", "minister")}),
    ("lavr*", {("prefix", "lavr")}),
    ("from:1001", {("origin", "1001")}),
    ("is:edited", {("is", "edited")}),
    ("since:2025-01-01", None),
    ("canada OR since:2025-01-01", None),
    ("-canada since:2025-01-01", None),
])
def test_requirement_of_each_node(query, keys):
    need = requirement(parse(query).root)
    assert (need.keys if need else None) == (frozenset(keys) if keys is not None else None)


# -- failures ---------------------------------------------------------------------------------------


def test_a_rule_stored_unparsable_is_skipped_and_the_rest_work(conn, caplog):
    canada = rule(conn, 1, "canada")
    conn.execute("INSERT INTO rules (chat_id, query, created_at) VALUES (1, 'canada OR', 'x')")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, "Canada")), after=Percolator())
    assert [a[2] for a in alerts(conn)] == [[canada]]
    assert "does not parse" in caplog.text


def test_a_failing_percolation_loses_the_alerts_not_the_batch(conn, caplog):
    rule(conn, 1, "canada")
    conn.execute("DROP TABLE alerts")
    caplog.set_level(logging.ERROR, logger="chanwatch.percolator")
    result = ingest_batch(conn, batch(MFA, msg(MFA, 10, "Canada")), after=Percolator())
    assert result.new_post_ids and conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 1
    assert "percolation failed" in caplog.text


def test_match_lists_the_matching_posts_and_their_active_rules(conn):
    a, b = rule(conn, 1, "canada"), rule(conn, 2, "#MFA")
    rule(conn, 3, "arctic")
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT), msg(MFA, 11, STATEMENT_RU), msg(MFA, 12, "x")))
    ids = [post_id(conn, MFA.id, m) for m in (10, 11, 12)]
    assert Percolator().match(conn, [*ids, 999]) == {ids[0]: [a, b]}
    assert Percolator().match(conn, []) == {}


@pytest.mark.parametrize("order", list(itertools.permutations(["mfa", "emb", "uk"])))
def test_the_scenario_in_every_order_gives_one_alert_per_chat(conn, order):
    rule(conn, 1, "sanctions OR санкции")
    rule(conn, 2, "channel:rusembc")
    batches = {
        "mfa": batch(MFA, msg(MFA, 7, MFA_SANCTIONS)),
        "emb": batch(EMBASSY, fwd(EMBASSY, 40, MFA, 7, MFA_SANCTIONS)),
        "uk": batch(EMBASSY_UK, fwd(EMBASSY_UK, 41, MFA, 7, MFA_SANCTIONS)),
    }
    percolator = Percolator()
    for name in order:
        ingest_batch(conn, batches[name], after=percolator)
    post = post_id(conn, MFA.id, 7)
    # channel:rusembc alerts only if the embassy's sighting is the one that created the post
    expected = [(1, post, [1])] + ([(2, post, [2])] if order[0] == "emb" else [])
    assert alerts(conn) == expected
