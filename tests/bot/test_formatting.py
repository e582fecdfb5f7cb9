"""Formatting: escaping, highlights, snippets, sightings lines and the 4096-character limit."""

from __future__ import annotations

import re
from dataclasses import fields, replace

from hypothesis import given
from hypothesis import strategies as st

from bot.formatting import (
    LIMIT,
    DigestEntry,
    DigestGroup,
    carried_by,
    cut,
    escape,
    highlight,
    media_badge,
    pack,
    pack_keyed,
    render_alert,
    render_digest,
    render_post,
    rules_line,
    snippet,
    utf16_len,
)
from storage.records import Post, PostFile, Sighting


def make_post(text: str, sightings: tuple[Sighting, ...] = ()) -> Post:
    return Post(
        id=1, key="tg:1001:10", text=text, entities=(), date="2025-12-17T10:00:00+00:00", lang="en",
        media_kind=None, origin_channel_id=1001, origin_username="MFARussia", origin_title="Russian MFA",
        origin_message_id=10, origin_author=None, first_seen="2025-12-17T10:01:00+00:00", edited_at=None,
        sightings=sightings,
    )


ORIGINAL = Sighting(1001, "MFARussia", "Russian MFA", 10, "2025-12-17T10:00:00+00:00", "original")
FORWARDS = tuple(
    Sighting(2000 + i, name, None, 500 + i, "2025-12-17T10:05:00+00:00", "forward")
    for i, name in enumerate(["rusembc", "RussianEmbassyUK", "RusEmbUSA"])
)


def test_post_with_markup_characters_renders_as_text():
    html = render_post(make_post("Use <b>bold</b> & *stars* _here_"))
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; *stars* _here_" in html
    assert "<b>bold</b>" not in html


def test_highlight_wraps_only_the_spans_and_escapes_the_rest():
    text = "sanctions & <more> sanctions"
    assert highlight(text, [(0, 9), (19, 28)]) == "<b>sanctions</b> &amp; &lt;more&gt; <b>sanctions</b>"


def test_snippet_centres_on_the_first_match_with_ellipses():
    text = "word " * 300 + "SANCTIONS" + " tail" * 300
    start = text.index("SANCTIONS")
    result = snippet(text, [(start, start + 9)], size=200)
    assert result.startswith("…") and result.endswith("…") and "<b>SANCTIONS</b>" in result
    assert len(result) < 260


def test_carried_by_names_one_channel_and_counts_the_rest():
    post = make_post("x", (ORIGINAL, *FORWARDS))
    assert carried_by(post) == "forwarded by rusembc, +2 more"
    assert carried_by(make_post("x", (ORIGINAL,))) is None


def test_render_post_links_origin_and_sightings():
    html = render_post(make_post("Statement", (ORIGINAL, *FORWARDS)))
    assert '<a href="https://t.me/MFARussia/10">2025-12-17 10:00 UTC</a>' in html
    assert '<a href="https://t.me/rusembc/500">rusembc/500</a>' in html


def test_a_ten_thousand_character_post_stays_under_the_limit():
    html = render_post(make_post("Заявление " * 1000, (ORIGINAL, *FORWARDS)))
    assert utf16_len(html) <= LIMIT


def test_cut_stops_at_a_word_boundary():
    assert cut("alpha beta gamma delta", 14) == "alpha beta…"
    assert cut("short", 14) == "short"


@given(st.lists(st.text(min_size=0, max_size=3000), min_size=1, max_size=12))
def test_pack_never_exceeds_the_limit_and_never_splits_a_tag(texts):
    blocks = [f"<b>{escape(t)}</b>" for t in texts]
    for message in pack(blocks).messages:
        assert utf16_len(message) <= LIMIT
        assert message.count("<b>") == message.count("</b>")
        assert not re.search(r"&[a-z]*$", message)


def test_an_alert_names_its_rules_and_counts_those_beyond_five():
    assert rules_line(["a <b>"]) == "🔔 Matched rule: <code>a &lt;b&gt;</code>"
    line = rules_line([f"rule{i}" for i in range(7)])
    assert line.count("<code>") == 5 and line.endswith("+2 more")


def test_an_alert_of_a_long_escaping_heavy_post_keeps_its_highlight_within_the_limit():
    text = '&"<>' * 2000 + " SANCTIONS " + '&"<>' * 2000
    start = text.index("SANCTIONS")
    post = make_post(text, (ORIGINAL, *FORWARDS))
    [message] = render_alert(post, ["sanctions"], [(start, start + 9)]).messages
    assert utf16_len(message) <= LIMIT and "<b>SANCTIONS</b>" in message


def test_a_digest_groups_by_rule_with_counts_and_splits_between_posts_keeping_keys():
    posts = [DigestEntry(make_post(f"post {i} " + "words " * 150, (ORIGINAL, *FORWARDS)), i)
             for i in range(40)]
    groups = [DigestGroup("canada", tuple(posts[:30])), DigestGroup("arctic <x>", tuple(posts[30:]))]
    messages = render_digest(groups, "Digest")
    assert len(messages) > 1
    assert all(utf16_len(text) <= LIMIT for text, _ in messages)
    assert [k for _, keys in messages for k in keys] == list(range(40))
    joined = "\n".join(text for text, _ in messages)
    assert "40 posts" in messages[0][0]
    assert "<code>canada</code> — 30 posts" in joined and "<code>arctic &lt;x&gt;</code> — 10 posts" in joined
    for text, keys in messages:  # every post sits wholly in the message that carries its key
        for k in keys:
            assert f"post {k} " in text


def test_pack_keyed_cuts_an_oversized_block_and_keeps_every_key_in_order():
    out = pack_keyed([("a", [1]), ("x " * 5000, [2]), ("b " * 1500, [3]), ("c", [])])
    assert [k for _, keys in out for k in keys] == [1, 2, 3]
    assert len(out) == 2 and all(utf16_len(text) <= LIMIT for text, _ in out)
    assert "…" in out[0][0] and out[1][0].endswith("c")


# -- media badges --------------------------------------------------------------------------------

def a_file(kind: str, size: int | None, mime: str | None = None, name: str | None = None) -> PostFile:
    return PostFile(file_id=size or 1, kind=kind, state="queued", size=size, mime_type=mime, file_name=name,
                    sha256=None, path=None)


def test_a_post_with_several_files_is_marked_with_their_count_and_total_size():
    post = replace(make_post("Album"), media_kind="photo")
    files = [a_file("photo", 300_000), a_file("photo", 400_000), a_file("video", 2 * 1024 * 1024)]
    assert render_post(post, files=files).split("\n")[1] == "📎 3 files · 2.7 MB"


def test_a_document_badge_names_its_type_escaped_and_a_link_preview_has_none():
    post = replace(make_post(""), media_kind="document")
    html = render_post(post, files=[a_file("document", 5_000, "application/x-foo", "a.<B>")])
    assert html.split("\n")[1] == "📄 file · 4.9 KB"
    assert "[document]" not in html  # the badge says it already
    assert media_badge(post, [a_file("document", 10, None, "notes.docx")]) == "📄 DOCX · 10 B"
    preview = replace(make_post("see https://example.org"), media_kind="webpage")
    assert media_badge(preview, [a_file("photo", 1000)]) is None
    assert media_badge(replace(make_post("x"), media_kind="video")) == "🎞 video"  # known from the message


def test_status_counts_the_media_queue_and_warns_when_downloads_failed():
    from bot.command_text import status_text
    from storage.records import MediaStatus
    from storage.stats import ArchiveStats
    stats = ArchiveStats(**{f.name: 0 for f in fields(ArchiveStats)} | {"last_poll": None,
                                                                        "channel_errors": ()})
    media = MediaStatus(queued=4, done=120, skipped=2, failed=1, stored_files=118,
                        stored_bytes=int(1.2 * 1024 ** 3))
    assert "\n⚠️ Media: 120 stored (1.2 GB) · 4 queued · 2 skipped · 1 failed\n" in status_text(stats, media)
    assert "\nMedia: 0 stored (0 B) · 0 queued" in status_text(stats, MediaStatus())
    assert "Media" not in status_text(stats)
    assert "paused" not in status_text(stats, media)


def test_status_warns_while_a_full_media_disk_pauses_downloads():
    from bot.command_text import status_text
    from storage.records import MediaStatus
    from storage.stats import ArchiveStats
    stats = ArchiveStats(**{f.name: 0 for f in fields(ArchiveStats)} | {"last_poll": None,
                                                                        "channel_errors": ()})
    paused = MediaStatus(queued=3, stopped="the disk holding the media store /m is full: free some space",
                         full_since="2025-12-17T14:05:09+00:00")
    assert ("\n⚠️ media downloads paused: the disk holding the media store is full (since 14:05 UTC)\n"
            in status_text(stats, paused))
    flood = MediaStatus(queued=3, stopped="Telegram asked to wait 900s (get_file)")
    assert "paused" not in status_text(stats, flood)
