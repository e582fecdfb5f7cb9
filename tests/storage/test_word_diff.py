"""Word diffs between versions: runs that give both texts back, replacements as one change, the
original spelling kept (Cyrillic, punctuation, spacing), and the terminal and HTML renderings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.word_diff import html_diff, terminal_diff, tokens, word_diff


def sides(runs: list[tuple[str, str]]) -> tuple[str, str]:
    old = "".join(text for op, text in runs if op != "insert")
    new = "".join(text for op, text in runs if op != "delete")
    return old, new


@pytest.mark.parametrize(("old", "new"), [
    ("", "new text"), ("old text", ""), ("same", "same"),
    ("Заявление  МИД\nРоссии.", "Заявление МИД РФ!"), ("a, b; c", "a b c"), ("👍 ok", "👎 ok"),
])
def test_the_runs_give_both_texts_back_exactly(old, new) -> None:
    assert sides(word_diff(old, new)) == (old, new)


PIECES = st.sampled_from(["a", "b", "Канада", " ", "  ", ",", ".", "\n", "ё", "🇷🇺", "x y"])
TEXTS = st.lists(PIECES, max_size=12).map("".join)


@given(TEXTS, TEXTS)
def test_any_two_texts_give_runs_that_rebuild_both_with_no_empty_run(old, new) -> None:
    runs = word_diff(old, new)
    assert sides(runs) == (old, new)
    assert all(text for _, text in runs)


def test_an_inserted_word_is_one_insert_run() -> None:
    assert word_diff("new sanctions against Russia", "new illegal sanctions against Russia") == [
        ("equal", "new "), ("insert", "illegal "), ("equal", "sanctions against Russia")]


def test_a_deleted_word_is_one_delete_run() -> None:
    assert word_diff("the new sanctions", "the sanctions") == [
        ("equal", "the "), ("delete", "new "), ("equal", "sanctions")]


def test_a_replaced_phrase_is_one_delete_then_one_insert() -> None:
    assert word_diff("said the foreign minister today", "said the spokeswoman today") == [
        ("equal", "said the "), ("delete", "foreign minister"), ("insert", "spokeswoman"),
        ("equal", " today")]


def test_cyrillic_words_keep_their_spelling_and_case_changes_count() -> None:
    assert word_diff("Заявление МИД России", "Заявление МИД РФ") == [
        ("equal", "Заявление МИД "), ("delete", "России"), ("insert", "РФ")]
    assert word_diff("ёлка", "Ёлка") == [("delete", "ёлка"), ("insert", "Ёлка")]


def test_punctuation_is_its_own_token() -> None:
    assert tokens("Hello, world!") == ["Hello", ",", " ", "world", "!"]
    assert word_diff("Hello, world.", "Hello world!") == [
        ("equal", "Hello"), ("delete", ","), ("equal", " world"), ("delete", "."), ("insert", "!")]


def test_terminal_rendering_marks_changes_and_colours_only_when_asked() -> None:
    runs = word_diff("the new sanctions", "the harsh sanctions")
    assert terminal_diff(runs) == "the [-new-]{+harsh+} sanctions"
    coloured = terminal_diff(runs, colour=True)
    assert "\x1b[31m[-new-]\x1b[0m" in coloured and "\x1b[32m{+harsh+}\x1b[0m" in coloured


def test_long_unchanged_stretches_are_cut_around_the_change() -> None:
    old = "word " * 100 + "old " + "tail " * 100
    shown = terminal_diff(word_diff(old, old.replace("old", "new")), context=20)
    assert "[-old-]{+new+}" in shown
    assert shown.startswith("…") and shown.endswith("…") and len(shown) < 80


def test_html_rendering_escapes_everything_inside_del_and_ins() -> None:
    runs = word_diff("a <b>bold</b> claim & more", "a <script>alert(1)</script> claim & more")
    shown = html_diff(runs)
    tags = shown.replace("<del>", "").replace("</del>", "").replace("<ins>", "").replace("</ins>", "")
    assert "<" not in tags and ">" not in tags  # only our own tags: the post's are text
    assert "&lt;" in shown and "&amp; more" in shown and "<ins>script</ins>" in shown
