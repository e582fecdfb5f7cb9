"""The web-preview parser (`bot/web/preview.py`) on every real page in tests/fixtures/real/web_preview
(SOURCES.md says where each comes from), on generated pages for what those pages lack, and on pages
whose markup changed or was cut short."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.web.preview import WebForward, parse_count, parse_embed, parse_embed_page, parse_page
from storage.text import utf16_len

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real" / "web_preview"
TOPWAR = "tme_s_topwar_official_2023_ru_full_forwards_albums_videos.html"
XKCD = "tme_s_xkcdru_2021_ru_browser_saved_236posts_edited_service.html"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _span(text: str, entity: dict) -> str:
    """The text an entity covers, counted in UTF-16 code units as Telegram counts."""
    encoded = text.encode("utf-16-le")
    return encoded[entity["offset"] * 2:(entity["offset"] + entity["length"]) * 2].decode("utf-16-le")


# --- the full t.me/s page: forwards, albums, videos, the header, load-more -----------------------


def test_topwar_page_reads_every_message_and_splits_albums_into_their_parts():
    page = parse_page(_read(TOPWAR))
    assert page.skipped == ()
    ids = [p.message_id for p in page.posts]
    assert ids == [70989, 70990, 70992, 70993, 70994, 70995, 70996, 70997, 70998, 70999,
                   71000, 71001, 71002, 71003, 71004, 71005, 71006, 71007, 71008]
    albums = {p.grouped_id: p.album for p in page.posts if p.grouped_id is not None}
    assert albums == {70992: (70992, 70993, 70994), 71000: (71000, 71001, 71002, 71003, 71004, 71005)}
    by_id = {p.message_id: p for p in page.posts}
    # The caption is on the part the page is keyed by; the other parts carry only their media.
    assert by_id[70992].text.startswith("Сегодня ночью в Республике Адыгея упал")
    assert by_id[70993].text == "" and by_id[70994].text == ""
    assert [by_id[i].media.kind for i in (70992, 70993, 70994)] == ["photo", "photo", "video"]
    assert by_id[70994].media.extra == {"duration": 16}
    assert all(by_id[i].date == datetime(2023, 2, 28, 10, 52, 36, tzinfo=UTC) for i in range(71000, 71006))


def test_topwar_page_reads_the_channel_header_and_the_load_more_id():
    page = parse_page(_read(TOPWAR))
    assert page.before == 70989
    channel = page.channel
    assert channel is not None
    assert (channel.username, channel.title, channel.subscribers) == ("topwar_official", "Военное обозрение",
                                                                      109000)
    assert channel.description.startswith("Официальный канал сайта topwar.ru\n\nДля обратной связи:")
    assert channel.channel_id == 1084368520  # from the posts' data-view


def test_topwar_forward_headers_name_the_origin_channel_and_post():
    by_id = {p.message_id: p for p in parse_page(_read(TOPWAR)).posts}
    forwards = {i: p.forward for i, p in by_id.items() if p.forward is not None}
    assert forwards == {
        70996: WebForward("yaremshooter", 1066, "Военкор Ярем"),
        70998: WebForward("Belarus_VPO", 34301, "БелВПО"),
        71006: WebForward("vysokygovorit", 10899, "Старше Эдды"),
        71007: WebForward("dimsmirnov175", 44655, "Пул N3"),
        71008: WebForward("ImpNavigator", 4580, "ImpNavigator"),
    }


def test_topwar_posts_keep_views_as_shown_and_written_out():
    by_id = {p.message_id: p for p in parse_page(_read(TOPWAR)).posts}
    assert (by_id[70989].views_text, by_id[70989].views) == ("37.2K", 37200)
    assert (by_id[70998].views_text, by_id[70998].views) == ("29.0K", 29000)
    assert (by_id[71008].views_text, by_id[71008].views) == ("14.9K", 14900)
    assert by_id[70989].date == datetime(2023, 2, 28, 7, 47, 53, tzinfo=UTC)
    assert not any(p.edited for p in by_id.values())


def test_topwar_text_reads_links_mentions_bold_and_line_breaks_with_utf16_offsets():
    by_id = {p.message_id: p for p in parse_page(_read(TOPWAR)).posts}
    post = by_id[70996]
    # The page was re-indented: newlines inside the markup are layout, `<br/>` are the real breaks.
    assert "подошли к самолетику в Бахмуте на расстояние 180 метров, пока не" in post.text
    assert "настолько.\n\nКроме этого" in post.text
    link, mention = post.entities
    assert link == {"type": "text_url", "offset": 80, "length": 24, "url": "https://t.me/infantmilitario/93419"}
    assert _span(post.text, link) == "на расстояние 180 метров"
    assert mention["type"] == "mention" and _span(post.text, mention) == "@yaremshooter"
    assert post.text.endswith("@yaremshooter")
    assert post.media.kind == "webpage"
    assert (post.media.url, post.media.title) == ("http://t.me/infantmilitario/93419", "Милитарист")
    assert post.media.extra["site_name"] == "Telegram"
    bold = by_id[70997].entities
    assert [_span(by_id[70997].text, e) for e in bold] == ["проведена тренировка ",
                                                          "задействованы истребители"]
    # Bold around `<br/><br/>` keeps the line breaks it covers.
    assert _span(by_id[70998].text, by_id[70998].entities[0]).endswith("Балтийское море\n\n")


def test_topwar_videos_read_duration_and_thumbnail():
    by_id = {p.message_id: p for p in parse_page(_read(TOPWAR)).posts}
    assert by_id[71006].media.kind == "video" and by_id[71006].media.extra == {"duration": 177}
    assert by_id[71007].media.extra == {"duration": 101}
    assert by_id[71008].media.url.startswith("https://cdn4.telegram-cdn.org/file/LgZvW0dnBvW8")
    assert by_id[71008].media.file_id is None


# --- the browser-saved page: 236 messages, edits, service messages, times in the saver's zone ---


def test_browser_saved_page_skips_the_service_messages_and_reads_the_rest():
    page = parse_page(_read(XKCD))
    assert page.skipped == ((1, "service message"), (6, "service message"), (7, "service message"))
    assert len(page.posts) == 233
    assert page.posts[0].message_id == 4 and page.posts[-1].message_id == 242
    assert page.before is None  # scrolled back to the channel's start: no load-more link left
    assert sum(p.edited for p in page.posts) == 23
    assert [p.message_id for p in page.posts if p.edited][:6] == [4, 5, 8, 13, 14, 20]


def test_browser_saved_page_dates_come_from_the_utc_datetime_not_the_shown_time():
    by_id = {p.message_id: p for p in parse_page(_read(XKCD)).posts}
    # Shown as "17:41" in the saver's zone (UTC+7); the datetime attribute says 10:41 UTC.
    assert by_id[4].date == datetime(2019, 9, 15, 10, 41, 15, tzinfo=UTC)
    assert by_id[4].views == 56 and by_id[4].views_text == "56"
    assert by_id[242].date == datetime(2021, 3, 15, 9, 16, tzinfo=UTC)
    assert by_id[4].channel_id is None  # the saved DOM lost data-view


def test_browser_saved_page_reads_hashtags_mentions_urls_and_the_header():
    page = parse_page(_read(XKCD))
    by_id = {p.message_id: p for p in page.posts}
    post = by_id[5]
    assert post.text.startswith("Маятник Фуко\nПоверьте")
    assert post.text.endswith("#xkcd #2201 @xkcdru")  # "#2201" is not a hashtag: no link, no entity
    assert [(e["type"], _span(post.text, e)) for e in post.entities] == [
        ("bold", "Маятник Фуко\n"), ("hashtag", "#xkcd"), ("mention", "@xkcdru")]
    assert [(e["type"], _span(by_id[13].text, e)) for e in by_id[13].entities][0] == ("url", "xkcd.com")
    assert by_id[85].media.kind == "gif"  # looped, autoplaying, no duration
    assert (page.channel.username, page.channel.title, page.channel.subscribers) == ("xkcdru", "xkcd_ru", 78)
    assert page.channel.description == ("Веб-комиксы xkcd и другие на русском. Обновления по возможности "
                                        "ежедневно. 18+")


# --- the raw 2026 page ---------------------------------------------------------------------------


def test_raw_2026_page_reads_the_photo_post_and_skips_channel_created():
    page = parse_page(_read("prstnk_eprst_tme_s.html"))
    assert page.skipped == ((1, "service message"),)
    (post,) = page.posts
    assert (post.username, post.message_id, post.views, post.channel_id) == ("prstnk_eprst", 2, 1, 3976510481)
    assert post.date == datetime(2026, 5, 30, 22, 25, 8, tzinfo=UTC)
    assert post.text == ("Как Штапаков травит цинк в Смольном\nЗашли в мастерскую офорта — сняли весь "
                         "процесс: грунтовка, игла, кислота.\n#репортаж")
    assert post.entities == ({"type": "hashtag", "offset": 110, "length": 9},)
    assert post.media.kind == "photo" and post.media.url.startswith("https://cdn4.telesco.pe/file/XS-2wXZ8")
    assert page.channel.subscribers == 1 and page.before is None


# --- embed pages and the poll fragment ----------------------------------------------------------


def test_embed_of_a_reply_gives_the_id_replied_to_and_the_hidden_link():
    post = parse_embed(_read("embed_meduzalive_40957_2021_ru_reply.html"))
    assert post is not None
    assert (post.username, post.message_id, post.reply_to, post.views) == ("meduzalive", 40957, 40953, 75500)
    assert post.channel_id == 1036240821
    assert post.text == ("Обыск у главного редактора «Важных историй» Романа Анина продолжается уже пятый "
                         "час подряд, сообщает журналист Алеся Мароховская.")
    (link,) = post.entities
    assert _span(post.text, link) == "сообщает" and link["type"] == "text_url"
    assert post.media is None


def test_embed_of_a_service_message_gives_nothing_and_says_why():
    html = _read("embed_meduzalive_1_2021_ru_service_message.html")
    assert parse_embed(html) is None
    assert parse_embed_page(html).skipped == ((1, "service message"),)


def test_embed_of_an_edited_video_reads_the_edited_mark_and_duration():
    post = parse_embed(_read("embed_tvrain_42161_2021_ru_video_edited.html"))
    assert post.edited and post.media.kind == "video" and post.media.extra == {"duration": 48}
    assert post.date == datetime(2021, 4, 9, 13, 0, 54, tzinfo=UTC)
    assert (post.views_text, post.views) == ("80.3K", 80300)
    assert post.text.endswith("перехватить ему горло тканью\n\nВидео: Дождь")


def test_embed_of_a_photo_album_gives_its_seven_parts_and_the_asked_part_with_the_caption():
    html = _read("embed_tvrain_42166_2021_ru_album_photos.html")
    parts = parse_embed_page(html).posts
    assert [p.message_id for p in parts] == list(range(42166, 42173))
    assert {p.grouped_id for p in parts} == {42166} and all(p.media.kind == "photo" for p in parts)
    post = parse_embed(html)
    assert post.message_id == 42166 and post.album == tuple(range(42166, 42173))
    assert post.text.startswith("Сегодня умер принц Филипп")
    assert _span(post.text, post.entities[0]) == "в галерее Дождя"


def test_embed_of_a_video_album_gives_three_videos_with_their_durations():
    parts = parse_embed_page(_read("embed_tvrain_42053_2021_ru_album_videos.html")).posts
    assert [(p.message_id, p.media.kind, p.media.extra["duration"]) for p in parts] == [
        (42053, "video", 11), (42054, "video", 11), (42055, "video", 13)]
    # A layout space before `<br/>` is not text.
    assert "«санитарному делу»\n\nВидео: Василий Крестьянинов" in parts[0].text


def test_poll_fragment_reads_question_options_voters_and_makes_them_the_text():
    page = parse_page(_read("fragment_it_begin_488_2023_ru_poll.html"))
    assert page.channel is None
    (post,) = page.posts
    assert (post.username, post.message_id, post.views) == ("it_begin", 488, 1100)
    assert post.media.kind == "poll"
    assert post.media.extra["question"] == "Как лучше?"
    assert post.media.extra["answers"] == ["Несколько постов в день", "Один пост в несколько дней",
                                           "Свой вариант в комментарии"]
    assert post.media.extra["total_voters"] == 222 and post.media.extra["multiple_choice"] is True
    assert post.text == ("Как лучше?\nНесколько постов в день\nОдин пост в несколько дней\n"
                         "Свой вариант в комментарии")


# --- generated pages: every entity kind, media kinds the real pages lack -----------------------

_MESSAGE = """<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message
 js-widget_message" data-post="genchan/{id}"><div class="tgme_widget_message_bubble">
<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name"
 href="https://t.me/genchan"><span dir="auto">Gen</span></a></div>{body}
<div class="tgme_widget_message_footer compact js-message_footer"><div class="tgme_widget_message_info short
 js-message_info"><span class="tgme_widget_message_views">{views}</span><span class="copyonly"> views</span>
<span class="tgme_widget_message_from_author" dir="auto">Jane&nbsp;Roe</span><span
 class="tgme_widget_message_meta"><a class="tgme_widget_message_date" href="https://t.me/genchan/{id}"><time
 datetime="2024-01-02T03:04:05+00:00" class="time">03:04</time></a></span></div></div></div></div></div>"""


def _message(message_id: int, body: str, views: str = "7") -> str:
    return _MESSAGE.format(id=message_id, body=body, views=views)


_ALL_ENTITIES = (
    '<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from&nbsp;<span'
    ' class="tgme_widget_message_forwarded_from_name">Hidden Person</span></div>'
    '<div class="tgme_widget_message_text js-message_text" dir="auto">'
    """<i class="emoji" style="background-image:url('//telegram.org/img/emoji/40/F09F9880.png')">"""
    "<b>😀</b></i>"
    " <b>Bold</b> <i>it</i> <u>un</u> <s>st</s> <code>c</code><br/>"
    '<pre><code class="language-python">x = 1<br/>y</code></pre><br/>'
    """<a href="https://example.com/page" target="_blank" rel="noopener" """
    """onclick="return confirm('Open this link?\\n\\n'+this.href);">hidden</a>"""
    ' <a href="https://example.com/" target="_blank" rel="noopener">example.com</a>'
    ' <a href="?q=%23tag">#tag</a> <a href="?q=%24USD">$USD</a>'
    ' <a href="https://t.me/durov" target="_blank">@durov</a>'
    ' <a href="mailto:a@b.co">a@b.co</a> <a href="tel:+123">+123</a><br/>'
    '<tg-spoiler>secret</tg-spoiler> <span class="tg-spoiler">also</span> '
    """<tg-emoji emoji-id="5368324170671202286"><i class="emoji" style=""><b>👍</b></i></tg-emoji><br/>"""
    "<blockquote>quote</blockquote><br/><blockquote expandable>long</blockquote></div>"
)


def test_generated_message_with_every_entity_kind_gives_the_api_offsets_in_utf16():
    (post,) = parse_page(_message(10, _ALL_ENTITIES, views="1.2M")).posts
    assert post.text == ("😀 Bold it un st c\nx = 1\ny\nhidden example.com #tag $USD @durov a@b.co +123\n"
                         "secret also 👍\nquote\nlong")
    assert utf16_len(post.text) == 100
    assert list(post.entities) == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "italic", "offset": 8, "length": 2},
        {"type": "underline", "offset": 11, "length": 2},
        {"type": "strike", "offset": 14, "length": 2},
        {"type": "code", "offset": 17, "length": 1},
        {"type": "pre", "offset": 19, "length": 7, "language": "python"},
        {"type": "text_url", "offset": 27, "length": 6, "url": "https://example.com/page"},
        {"type": "url", "offset": 34, "length": 11},
        {"type": "hashtag", "offset": 46, "length": 4},
        {"type": "cashtag", "offset": 51, "length": 4},
        {"type": "mention", "offset": 56, "length": 6},
        {"type": "email", "offset": 63, "length": 6},
        {"type": "phone_number", "offset": 70, "length": 4},
        {"type": "spoiler", "offset": 75, "length": 6},
        {"type": "spoiler", "offset": 82, "length": 4},
        {"type": "custom_emoji", "offset": 87, "length": 2, "document_id": 5368324170671202286},
        {"type": "blockquote", "offset": 90, "length": 5},
        {"type": "blockquote", "offset": 96, "length": 4, "collapsed": True},
    ]
    assert post.forward == WebForward(username=None, message_id=None, name="Hidden Person")
    assert (post.views, post.views_text, post.post_author) == (1_200_000, "1.2M", "Jane Roe")


_MEDIA = {
    21: ('<a class="tgme_widget_message_voice_player js-message_voice_player"><audio'
         ' class="tgme_widget_message_voice js-message_voice" src="https://cdn.example/v.ogg"></audio>'
         '<time class="tgme_widget_message_voice_duration js-message_voice_duration">0:07</time></a>'),
    22: ('<div class="tgme_widget_message_roundvideo_player js-message_roundvideo_player"><i'
         ' class="tgme_widget_message_roundvideo_thumb"'
         """ style="background-image:url('//cdn.example/r.jpg')"></i>"""
         '<time class="tgme_widget_message_roundvideo_duration">0:12</time></div>'),
    23: ('<a class="tgme_widget_message_document_wrap" href="https://t.me/genchan/23"><div'
         ' class="tgme_widget_message_document_icon accent_bg"></div>'
         '<div class="tgme_widget_message_document">'
         '<div class="tgme_widget_message_document_title accent_color" dir="auto">My Vibe.pdf</div>'
         '<div class="tgme_widget_message_document_extra" dir="auto">113.9 KB</div></div></a>'),
    24: ('<a class="tgme_widget_message_document_wrap" href="https://t.me/genchan/24"><div'
         ' class="tgme_widget_message_document_icon accent_bg audio"></div>'
         '<div class="tgme_widget_message_document">'
         '<div class="tgme_widget_message_document_title accent_color" dir="auto">Song</div>'
         '<div class="tgme_widget_message_document_extra" dir="auto">Singer</div></div></a>'),
    25: ('<div class="tgme_widget_message_sticker_wrap media_supported_cont"><a'
         ' href="https://t.me/addstickers/SomeSet"><i class="tgme_widget_message_sticker js-sticker_image"'
         ' data-webp="https://cdn.example/s.webp"></i></a></div>'),
    26: ('<a class="tgme_widget_message_location_wrap"'
         ' href="https://maps.google.com/maps?q=55.75,37.61&ll=55.75,37.61">'
         '<div class="tgme_widget_message_location"'
         """ style="background-image:url('https://cdn.example/map.png')"></div></a>"""),
    27: ('<div class="tgme_widget_message_contact_wrap">'
         '<div class="tgme_widget_message_contact_name">Ann Lee</div>'
         '<div class="tgme_widget_message_contact_phone">+44 20 0000 0000</div></div>'),
}


def test_generated_media_of_every_kind_the_real_pages_lack():
    page = parse_page("".join(_message(i, body) for i, body in _MEDIA.items()))
    assert page.skipped == ()
    media = {p.message_id: p.media for p in page.posts}
    assert (media[21].kind, media[21].extra) == ("voice", {"duration": 7})
    assert (media[22].kind, media[22].extra, media[22].url) == ("video", {"round": True, "duration": 12},
                                                                 "https://cdn.example/r.jpg")
    assert (media[23].kind, media[23].file_name, media[23].size) == ("document", "My Vibe.pdf", 116633)
    assert media[23].extra == {"size_text": "113.9 KB"}
    assert (media[24].kind, media[24].extra) == ("audio", {"audio_title": "Song", "performer": "Singer"})
    assert (media[25].kind, media[25].url, media[25].extra) == ("sticker", "https://cdn.example/s.webp",
                                                                 {"set": "SomeSet"})
    assert (media[26].kind, media[26].extra) == ("geo", {"lat": 55.75, "long": 37.61})
    assert (media[27].kind, media[27].extra["name"]) == ("contact", "Ann Lee")
    assert {p.message_id: p.text for p in page.posts}[27] == "Ann Lee"  # as the API path shows a contact


def test_forward_from_a_private_channel_keeps_the_post_id_without_a_username():
    header = ('<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from&nbsp;<a'
              ' class="tgme_widget_message_forwarded_from_name" href="https://t.me/c/1234567/89">Closed</a></div>'
              '<div class="tgme_widget_message_text js-message_text">text</div>')
    (post,) = parse_page(_message(30, header)).posts
    assert post.forward == WebForward(username=None, message_id=89, name="Closed")


# --- changed and cut markup: skipped with reasons, never half-read, never an exception ----------


def test_renamed_text_class_skips_every_post_with_its_id_and_the_unknown_block():
    html = _read(TOPWAR).decode().replace("tgme_widget_message_text", "tgme_widget_message_body")
    page = parse_page(html)
    assert page.posts == ()
    assert [i for i, _ in page.skipped] == [70989, 70990, 70992, 70995, 70996, 70997, 70998, 70999, 71000,
                                            71006, 71007, 71008]
    assert all(why.startswith("unknown block <div class=") and "tgme_widget_message_body" in why
               for _, why in page.skipped)


def test_renamed_date_attribute_skips_posts_for_want_of_a_date():
    page = parse_page(_read(TOPWAR).decode().replace("datetime=", "data-when="))
    assert page.posts == () and len(page.skipped) == 12
    assert set(why for _, why in page.skipped) == {"no date (time[datetime])"}


def test_unreadable_views_skip_that_post_only():
    html = _read(TOPWAR).decode().replace(">37.2K<", ">lots<")
    page = parse_page(html)
    assert page.skipped == ((70989, "views unreadable: 'lots'"),)
    assert len(page.posts) == 18


def test_page_cut_inside_a_post_keeps_the_whole_posts_and_skips_the_cut_one():
    html = _read(TOPWAR).decode()
    cut = html[: html.index("Подземные тоннели")]  # inside the last post's text, before its date
    page = parse_page(cut)
    assert page.skipped == ((71008, "no date (time[datetime])"),)
    assert page.posts[-1].message_id == 71007


def test_a_message_keyed_twice_by_data_post_is_read_once():
    html = _message(31, '<div class="tgme_widget_message_text">once</div>').replace(
        '<div class="tgme_widget_message_wrap js-widget_message_wrap">',
        '<div class="tgme_widget_message_wrap js-widget_message_wrap" data-post="genchan/31">')
    page = parse_page(html)
    assert [(p.message_id, p.text) for p in page.posts] == [(31, "once")] and page.skipped == ()


def test_page_without_messages_is_empty_not_an_error():
    assert parse_page(b"<html><body>Too Many Requests</body></html>") == parse_page("")
    assert parse_page("").posts == () and parse_page("").channel is None


@pytest.mark.parametrize(("text", "count"), [("56", 56), ("1.1K", 1100), ("37.2K", 37200), ("29.0K", 29000),
                                             ("1.2M", 1_200_000), ("3B", 3_000_000_000), ("", None)])
def test_counts_are_written_out_as_shown(text, count):
    assert parse_count(text) == count


def test_a_count_that_is_not_one_is_an_error():
    with pytest.raises(ValueError):
        parse_count("1.2Q")
