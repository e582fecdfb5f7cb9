"""The query parser: every construct, every error with its position and hint, the SQL it compiles to."""

from __future__ import annotations

import pytest

from storage.query import (
    And,
    Filter,
    Not,
    Or,
    QueryError,
    Text,
    parse,
)
from storage.records import PostDoc


def stems(*tokens: str) -> Text:
    return Text("stems", tokens)


# -- constructs ----------------------------------------------------------------------------------


def test_terms_are_anded_and_stemmed():
    assert parse("Canada sanctions").root == And((stems("canada"), stems("sanction")))
    assert parse("Канаде санкций").root == And((stems("канад"), stems("санкц")))


def test_explicit_and_is_the_same_as_juxtaposition():
    assert parse("canada AND sanctions").root == parse("canada sanctions").root


def test_or_binds_looser_than_and():
    assert parse("a b OR c").root == Or((And((stems("a"), stems("b"))), stems("c")))


def test_parentheses_group():
    assert parse("a (b OR c)").root == And((stems("a"), Or((stems("b"), stems("c")))))


def test_nested_operators_are_flattened():
    assert parse("a OR (b OR c)").root == Or((stems("a"), stems("b"), stems("c")))
    assert parse("(a b) c").root == And((stems("a"), stems("b"), stems("c")))


def test_negation_forms():
    expected = And((stems("canada"), Not(stems("visa"))))
    assert parse("canada -visa").root == expected
    assert parse("canada NOT visa").root == expected
    assert parse("canada -(visa OR arctic)").root == And(
        (stems("canada"), Not(Or((stems("visa"), stems("arctic")))))
    )
    assert parse("a --b").root == And((stems("a"), Not(Not(stems("b")))))


def test_lowercase_or_and_not_are_words():
    assert parse("a or b").root == And((stems("a"), stems("or"), stems("b")))
    assert parse("not").root == stems("not")


def test_phrase_is_folded_words_not_stems():
    assert parse('"Foreign Ministers"').root == Text("words", ("foreign", "ministers"))
    assert parse('"Ёлка"').root == Text("words", ("елка",))


def test_quoted_keyword_is_a_word():
    assert parse('"OR"').root == Text("words", ("or",))


def test_term_with_several_tokens_is_a_stem_phrase():
    assert parse("covid-19").root == stems("covid", "19")


def test_prefix():
    assert parse("Lavr*").root == Text("words", ("lavr",), prefix=True)
    assert parse("КАНА*").root == Text("words", ("кана",), prefix=True)


def test_hashtag():
    assert parse("#RussiaAfrica").root == Text("tags", ("russiaafrica",))
    assert parse("#Russia_Africa").root == Text("tags", ("russiaafrica",))


def test_filters():
    root = parse(
        "x channel:rusembc from:MFARussia since:2025-12-01 until:2025-12-31 lang:RU is:Forward"
    ).root
    assert isinstance(root, And)
    assert root.children[1:] == (
        Filter("channel", "rusembc"),
        Filter("from", "MFARussia"),
        Filter("since", "2025-12-01"),
        Filter("until", "2025-12-31"),
        Filter("lang", "ru"),
        Filter("is", "forward"),
    )


def test_filter_values_may_be_quoted_and_at_prefixed():
    assert parse('x from:"Russian MFA"').root == And((stems("x"), Filter("from", "Russian MFA")))
    assert parse("x channel:@rusembc").root == And((stems("x"), Filter("channel", "rusembc")))


def test_filter_keys():
    assert parse("x channel:RusEmbC").root.children[1].keys == {"rusembc"}
    assert parse("x channel:-1001234").root.children[1].keys == {"-1001234", "1234"}
    assert parse('x from:"Russian  MFA 🇷🇺"').root.children[1].keys == {
        "russian  mfa 🇷🇺", "russian mfa"
    }


def test_until_is_inclusive_of_its_day():
    assert parse("x until:2025-12-31").root.children[1].bound == "2026-01-01"
    assert parse("x until:9999-12-31").root.children[1].bound > "9999-12-31T23:59:59+00:00"


def test_negated_filters():
    assert parse("x -channel:rusembc").root == And((stems("x"), Not(Filter("channel", "rusembc"))))
    assert parse("x NOT is:forward").root == And((stems("x"), Not(Filter("is", "forward"))))


def test_filters_alone_are_a_query():
    assert parse("channel:rusembc").root == Filter("channel", "rusembc")


def test_sort_option():
    q = parse("canada sort:rank")
    assert q.sort == "rank"
    assert q.root == stems("canada")
    assert parse("canada").sort == "date"
    assert parse("sort:DATE canada").sort == "date"


@pytest.mark.parametrize("query", [
    "🎙 canada", "canada 🎙", "🎙canada", "canada !!!", "— canada —", "🎙 AND canada", "canada AND 🎙",
])
def test_symbols_beside_words_are_passed_over(query):
    """Emoji and punctuation are no term of their own: posts are indexed without them."""
    assert parse(query).root == stems("canada")


def test_symbols_between_terms_leave_the_terms_as_they_were():
    assert parse("🇨🇦 canada — sanctions -visa 🎙").root == parse("canada sanctions -visa").root
    assert parse("(🎙 canada OR arctic) !").root == parse("canada OR arctic").root


@pytest.mark.parametrize("code", ["ru", "uk", "en", "RU", "En"])
def test_lang_takes_every_language_the_archive_assigns(code):
    assert parse(f"x lang:{code}").root.children[1] == Filter("lang", code.lower())


def test_lang_codes_are_exactly_what_language_detection_gives():
    from storage import text

    assert {text.language("Заявление МИД"), text.language("Заява МЗС України"),
            text.language("Statement by the Ministry")} == set(text.LANGUAGES)


def test_query_keeps_its_text():
    assert parse("canada  sanctions").text == "canada  sanctions"


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message", "position", "hint"),
    [
        ("", "empty query", 0, "e.g. canada"),
        ("   ", "empty query", 0, "e.g. canada"),
        ("sort:date", "empty query", 0, "e.g. canada"),
        ('canada "foreign minister', "unbalanced quote", 7, 'close the phrase with "'),
        ('from:"Russian MFA', "unbalanced quote", 5, 'from:"Russian MFA"'),
        ("(canada OR arctic", "unbalanced parentheses", 0, "add )"),
        ("canada)", "unbalanced parentheses", 6, "remove it"),
        (") canada", "unbalanced parentheses", 0, "remove it"),
        ("()", "empty parentheses", 0, "(canada OR arctic)"),
        ("OR canada", "dangling OR", 0, "both sides"),
        ("canada OR", "dangling OR", 7, "both sides"),
        ("canada OR OR arctic", "dangling OR", 7, "both sides"),
        ("(canada OR) x", "dangling OR", 8, "both sides"),
        ("AND canada", "dangling AND", 0, "both sides"),
        ("canada NOT", "dangling NOT", 7, "canada NOT visa"),
        ("canada NOT OR x", "dangling NOT", 7, "canada NOT visa"),
        ("canada -", "a lone -", 7, "canada -visa"),
        ("canada - visa", "a lone -", 7, "canada -visa"),
        ("(canada -)", "a lone -", 8, "canada -visa"),
        ("canada foo:bar", "unknown filter foo:", 7, "channel:, from:, since:, until:, lang:, is:, sort:"),
        ("x since:2025-1-1", "bad date", 8, "YYYY-MM-DD"),
        ("x until:2025-02-30", "no such day", 8, "until:2025-12-31"),
        ("x is:pinned", "unknown is:pinned", 5, "is:forward, is:original, is:copy, is:edited, is:deleted"),
        ("x lang:russian", "unknown lang:russian", 7, "use one of lang:ru, lang:uk, lang:en"),
        ("x lang:xx", "unknown lang:xx", 7, "e.g. canada lang:en"),
        ("x LANG:FR", "unknown lang:fr", 7, "tells languages apart by script"),
        ("x channel:", "channel: needs a value", 2, "channel:rusembc"),
        ('x from:""', "from: needs a value", 2, "from:MFARussia"),
        ("x channel:@", "channel: needs a value", 2, "channel:rusembc"),
        ("x sort:size", "unknown sort order", 7, "sort:date"),
        ("(x sort:date)", "sort: is not a filter", 3, "on its own"),
        ("x -sort:date", "sort: is not a filter", 3, "on its own"),
        ("x OR sort:date", "sort: is not a filter", 5, "on its own"),
        ("-visa", "the query only excludes", 0, "add something to look for"),
        ("NOT visa -canada", "the query only excludes", 0, "add something to look for"),
        ("-channel:x", "the query only excludes", 0, "add something to look for"),
        ("a OR -b", "the query only excludes", 0, "add something to look for"),
        ("🇷🇺", "nothing to search for in '🇷🇺'", 0, "letters or digits"),
        ("🎙 !!!", "nothing to search for in '🎙'", 0, "symbols and emoji are not searched"),
        ("🎙 sort:rank", "nothing to search for in '🎙'", 0, "e.g. canada"),
        ("🎙 OR canada", "nothing to search for in '🎙'", 0, "e.g. canada"),
        ("canada OR 🎙", "nothing to search for in '🎙'", 10, "e.g. canada"),
        ("canada (🎙)", "nothing to search for in '🎙'", 8, "e.g. canada"),
        ("canada -🎙", "nothing to leave out in '🎙'", 8, "canada -visa"),
        ("canada NOT —", "nothing to leave out in '—'", 11, "canada NOT visa"),
        ("🎙 -visa", "the query only excludes", 0, "add something to look for"),
        ('x ""', "phrase without words", 2, '"foreign minister"'),
        ('x "?!"', "phrase without words", 2, '"foreign minister"'),
        ("x *", "a prefix must be one word", 2, "lavr*"),
        ("x covid-1*", "a prefix must be one word", 2, "lavr*"),
        ("x #", "hashtag without letters", 2, "#RussiaAfrica"),
        ("x #!!", "hashtag without letters", 2, "#RussiaAfrica"),
        ("x #Russia-Africa", "a hashtag is letters, digits and _ only", 2, "is the tag #Russia"),
        ("(" * 40 + "x" + ")" * 40, "query nested too deeply", 12, "at most 12"),
        ("-" * 40 + "x y", "query nested too deeply", 12, "at most 12"),
        (" ".join(["x"] * 201), "too many terms", 400, "at most 200"),
        ("x \ud800", "invalid character", 2, "plain text"),
    ],
)
def test_errors(query, message, position, hint):
    with pytest.raises(QueryError) as caught:
        parse(query)
    error = caught.value
    assert error.message == message
    assert error.position == position
    assert hint in error.hint
    assert str(error) == f"{message} at position {position}: {error.hint}"


def test_error_str_format():
    with pytest.raises(QueryError) as caught:
        parse('canada "foreign')
    assert str(caught.value) == (
        'unbalanced quote at position 7: close the phrase with " — e.g. "foreign minister"'
    )


def test_positive_rule():
    parse("canada -visa")
    parse("-visa canada")
    parse("(a OR b) -c")
    parse("channel:x -canada")


# -- SQL -----------------------------------------------------------------------------------------


def test_pure_text_compiles_to_one_match():
    sql, params = parse('canada -visa (arctic OR "foreign minister") -lav* #mfa').to_sql()
    assert sql == "p.id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)"
    assert params == [
        '((stems : "canada") AND ((stems : "arctic") OR (words : "foreign minister")) AND (tags : "mfa"))'
        ' NOT ((stems : "visa") OR (words : "lav" *))'
    ]


def test_mixed_query_keeps_text_in_one_match_and_filters_in_sql():
    sql, params = parse("canada sanctions -visa channel:rusembc").to_sql()
    assert sql.count("MATCH ?") == 1
    assert params[0] == '((stems : "canada") AND (stems : "sanction")) NOT ((stems : "visa"))'
    assert params[1:] == ["rusembc"]


def test_or_with_a_filter():
    sql, params = parse("canada OR arctic OR channel:rusembc").to_sql()
    assert sql.startswith("p.id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?) OR p.id IN (SELECT")
    assert params == ['(stems : "canada") OR (stems : "arctic")', "rusembc"]


def test_negated_text_alone_becomes_not_in():
    sql, params = parse("channel:x -visa").to_sql()
    assert "p.id NOT IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)" in sql
    assert params == ['(stems : "visa")', "x"]


def test_query_text_only_reaches_sql_as_parameters():
    sql, params = parse("""x channel:"a'b" from:"'; DROP TABLE posts; --" "it's" """).to_sql()
    assert "'" not in sql and "DROP" not in sql
    assert "a'b" in params


def test_rank_match():
    assert parse("canada channel:x").rank_match() == '(stems : "canada")'
    assert parse("canada OR arctic").rank_match() == '(stems : "canada") OR (stems : "arctic")'
    assert parse("canada OR channel:x").rank_match() is None
    assert parse("channel:x -canada").rank_match() is None


# -- matcher and required tokens -----------------------------------------------------------------


def doc(text_words: str, **kw) -> PostDoc:
    from storage import text

    tokens = text.words(text_words)
    base = dict(
        post_id=1, words=tuple(tokens), stems=tuple(text.stems(tokens)),
        tags=frozenset(text.hashtags(text_words)), date="2025-12-17T10:00:00+00:00", lang="en",
        origin=frozenset({"mfarussia", "1001", "russian mfa"}), channels=frozenset({"rusembc", "2002"}),
        relations=frozenset({"forward"}), edited=False, deleted=False,
    )
    base.update(kw)
    return PostDoc(**base)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sanction", True),
        ("Sanctioned canada", True),
        ('"new sanctions"', True),
        ('"new sanction"', False),
        ('"sanctions new"', False),
        ("sanc*", True),
        ("anct*", False),
        ("#MFA", True),
        ("mfa -#mfa", False),
        ("covid-19", True),
        ("19-covid", False),
        ("canada OR zzz", True),
        ("canada -zzz", True),
        ("channel:RUSEMBC", True),
        ("channel:-1002002", True),
        ("channel:mfarussia", False),
        ("from:@mfarussia", True),
        ('from:"Russian — MFA!"', True),
        ("from:-1001001", True),
        ("since:2025-12-17 until:2025-12-17", True),
        ("since:2025-12-18", False),
        ("until:2025-12-16", False),
        ("lang:en", True),
        ("lang:ru", False),
        ("is:forward", True),
        ("is:original", False),
        ("is:edited", False),
        ("is:deleted", False),
    ],
)
def test_matcher(query, expected):
    post = doc("New sanctions against Canada, covid-19 #MFA")
    assert parse(query).matches(post) is expected
