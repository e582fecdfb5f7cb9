"""The FTS5 expressions the query compiler writes, as PostgreSQL tsqueries (storage/tsquery.py)."""

from __future__ import annotations

import pytest

from storage.query import parse
from storage.tsquery import tsquery


def test_a_column_s_phrase_is_adjacent_lexemes_carrying_that_column_s_mark():
    assert tsquery('words : "foreign minister"') == "('foreign' <-> 'minister')"
    assert tsquery('stems : "санкц"') == "'~санкц'"
    assert tsquery('tags : "mfa"') == "'#mfa'"


def test_no_lexeme_asks_for_a_weight_which_the_gin_index_could_only_recheck():
    for expression in ['words : "a"', 'stems : "b" *', '(tags : "c") OR (words : "d e")']:
        assert ":A" not in tsquery(expression) and ":B" not in tsquery(expression)
        assert ":C" not in tsquery(expression)


def test_a_prefix_applies_to_the_phrase_s_last_token_only():
    assert tsquery('words : "new sanc" *') == "('new' <-> 'sanc':*)"
    assert tsquery('stems : "санк" *') == "'~санк':*"


def test_not_binds_tightest_then_and_then_or_as_in_fts5():
    a, b, c = ('words : "a"', 'words : "b"', 'words : "c"')
    assert tsquery(f"({a}) OR ({b}) AND ({c})") == "('a' | ('b' & 'c'))"
    assert tsquery(f"({a}) AND ({b}) NOT ({c})") == "('a' & ('b' & !'c'))"
    assert tsquery(f"(({a}) OR ({b})) NOT ({c})") == "(('a' | 'b') & !'c')"


def test_a_quote_in_a_token_stays_inside_its_lexeme():
    assert tsquery('words : "it\'s"') == "'it''s'"
    assert tsquery('words : "say ""hi"""') == "('say' <-> '\"hi\"')"


@pytest.mark.parametrize(
    "text", ["", 'words "a"', 'title : "a"', '(words : "a"', 'words : "a")', 'words : ""'])
def test_what_the_compiler_never_writes_is_refused(text):
    with pytest.raises(ValueError):
        tsquery(text)


@pytest.mark.parametrize(
    "query", ["Канада", '"new sanctions"', "санк*", "#Sanctions", "canada -visa OR arctic"])
def test_every_expression_the_compiler_writes_translates(query):
    expression = parse(query).fts_expression()
    assert expression is not None and tsquery(expression)
