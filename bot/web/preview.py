"""Telegram's public web preview read into plain dataclasses: a channel page (`t.me/s/<name>`,
`?before=<id>`) with `parse_page`, one post's `?embed=1` page with `parse_embed`. Pure: no I/O.

What the page carries, and how it is read so the records match what the API path stores:

- Text and entities. `<br>` is a newline; bold, italic, underline, strike, code, pre (with its
  language), spoilers, blockquotes (expandable ones `collapsed`), links, hashtags, cashtags,
  mentions, e-mail and phone links and custom emoji (their alt text, `document_id` from `emoji-id`)
  become entity dicts of the shape `bot.normalize.entity_dict` gives, offsets and lengths in UTF-16
  code units; an emoji drawn as an image is its alt text. A link whose `onclick` asks "Open this
  link?" is a `text_url` (a hidden link), one showing its own address a `url`, `@name` linking to
  t.me/name a `mention`, `?q=%23tag` a `hashtag`. Telegram writes line breaks only as `<br>`, so
  a raw newline in the markup (a re-indented or saved page) is layout and reads as one space; the
  text is trimmed at both ends, as Telegram trims a message.
- Views: `views_text` keeps what the page shows ("51.7K"); `views` is that number written out
  (51,700). Telegram shows one decimal above 999, so the true count is within one unit of the last
  shown digit (here 51,600–51,800): approximate, never more precise than shown.
- Media: kind as `bot.normalize` names it (photo, video, gif, voice, audio, document, sticker,
  webpage, poll, geo, contact, other); `Media.url` the preview image (thumbnail, map) and, for a
  link preview `webpage`, the linked page as the API path stores it (its image in
  `extra["image_url"]`). No file ids: the page has none. Durations in seconds; a document's size is
  `extra["size_text"]` as shown ("113.9 KB") and `size` that in bytes (approximate). A poll's
  question and options are in `extra` and appended to the text by `storage.shown.shown_text`, as
  the API path does.
- Albums: each part is its own `WebPost` with its own id (the `?single` links), sharing
  `grouped_id` (the album's smallest message id: the page does not show Telegram's grouped_id) and
  `album` (every part's id); the caption goes to the part the page is keyed by (`data-post`).
- `channel_id`: the channel's bare id where the page carries it (`data-view`, `data-peer`); None
  in a page saved from a browser after its scripts ran.

A post whose markup cannot be read whole — no date, an unreadable id or count, a block of a kind
this module does not know — is not returned half-read: it is listed in `WebPage.skipped` with its
id and why. Service messages (channel created, photo changed, pins) are skipped the same way, as
the API path skips them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from storage.records import Media
from storage.shown import Part, shown_text
from storage.text import utf16_len

__all__ = ["WebChannel", "WebForward", "WebPage", "WebPost", "parse_count", "parse_embed",
           "parse_embed_page", "parse_page"]


@dataclass(frozen=True, slots=True)
class WebChannel:
    """The channel header of a `t.me/s` page. `subscribers` is the counter written out ("1.2K" ->
    1200, approximate as views are); `channel_id` the bare id the page's posts carry, if any."""

    username: str
    title: str | None
    subscribers: int | None
    description: str | None
    channel_id: int | None = None


@dataclass(frozen=True, slots=True)
class WebForward:
    """A post's "Forwarded from" header: the origin's username and post id from its link; only a
    `name` when the header has no link (a hidden sender); no username but an id for a private
    channel's post (a t.me/c/ link)."""

    username: str | None
    message_id: int | None
    name: str | None


@dataclass(frozen=True, slots=True)
class WebPost:
    """One channel message as the web preview shows it (see the module docstring for each field)."""

    username: str
    message_id: int
    date: datetime
    text: str
    entities: tuple[dict[str, Any], ...]
    edited: bool
    views: int | None
    views_text: str | None
    post_author: str | None
    media: Media | None
    grouped_id: int | None
    reply_to: int | None
    forward: WebForward | None
    channel_id: int | None = None
    album: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class WebPage:
    """A page read: its channel header (None on embed pages and fragments), its posts in page
    order (oldest first), the `before` id of its "load more" link (None at the channel's start) and
    the posts not returned, as (id or None, why)."""

    channel: WebChannel | None
    posts: tuple[WebPost, ...]
    before: int | None
    skipped: tuple[tuple[int | None, str], ...] = field(default=())


class _Unreadable(Exception):
    """A post this module will not return half-read; the message says why."""


class _Service(_Unreadable):
    """A service message (not a post)."""


# --- entry points --------------------------------------------------------------------------------


def parse_page(html: str | bytes) -> WebPage:
    """Read a `t.me/s/<name>` page (or any fragment holding message blocks).

    >>> parse_page('<div class="tgme_widget_message" data-post="a/1"></div>').skipped
    ((1, 'no date (time[datetime])'),)
    """
    tree = LexborHTMLParser(html)
    posts, skipped = _messages(tree)
    return WebPage(channel=_channel(tree, posts), posts=tuple(posts), before=_before(tree),
                   skipped=tuple(skipped))


def parse_embed_page(html: str | bytes) -> WebPage:
    """Read a `t.me/<name>/<id>?embed=1` page: its post, or every part of its album."""
    tree = LexborHTMLParser(html)
    posts, skipped = _messages(tree)
    return WebPage(channel=None, posts=tuple(posts), before=None, skipped=tuple(skipped))


def parse_embed(html: str | bytes) -> WebPost | None:
    """The post an `?embed=1` page shows (for an album, the part the page is for); None for a
    service message or a post that cannot be read whole (`parse_embed_page` says why)."""
    tree = LexborHTMLParser(html)
    block = tree.css_first("[data-post]")
    if block is None:
        return None
    posts, _ = _messages(tree)
    wanted = _post_ref(block.attributes.get("data-post"))
    for post in posts:
        if wanted is not None and post.message_id == wanted[1]:
            return post
    return None


def parse_count(text: str | None) -> int | None:
    """A count as the page shows it, written out: "56" -> 56, "51.7K" -> 51700, "1.2M" -> 1200000;
    None for None or empty. Raises ValueError for anything else.

    >>> parse_count("51.7K")
    51700
    """
    if text is None or not text.strip():
        return None
    match = _COUNT.fullmatch(text.strip().replace("\xa0", " "))
    if match is None:
        raise ValueError(f"not a count: {text!r}")
    try:
        number = Decimal(match.group(1).replace(",", ".").replace(" ", ""))
    except InvalidOperation as exc:
        raise ValueError(f"not a count: {text!r}") from exc
    return int(number * _SCALE[match.group(2).upper()])


_COUNT = re.compile(r"(\d[\d ]*(?:[.,]\d+)?)\s*([KMBkmb]?)")
_SCALE = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


# --- the page ------------------------------------------------------------------------------------


def _messages(tree: LexborHTMLParser) -> tuple[list[WebPost], list[tuple[int | None, str]]]:
    """Every message block of the page read, or listed as skipped with why."""
    posts: list[WebPost] = []
    skipped: list[tuple[int | None, str]] = []
    for block in tree.css("[data-post]"):
        if _keyed_ancestor(block):
            continue  # one message: only its outermost element keyed by data-post counts
        ref = _post_ref(block.attributes.get("data-post"))
        if ref is None:
            skipped.append((None, f"unreadable data-post {block.attributes.get('data-post')!r}"))
            continue
        try:
            posts.extend(_read_message(block, *ref))
        except _Unreadable as exc:
            skipped.append((ref[1], str(exc)))
    return posts, skipped


def _channel(tree: LexborHTMLParser, posts: list[WebPost]) -> WebChannel | None:
    """The channel header (`.tgme_channel_info`); None where the page has none."""
    info = tree.css_first(".tgme_channel_info")
    if info is None:
        return None
    username = _plain(info.css_first(".tgme_channel_info_header_username")).lstrip("@") or None
    if username is None:
        main = tree.css_first("main[data-url]")
        username = (main.attributes.get("data-url") or "").strip("/") or None if main else None
    if username is None:
        return None
    title = _plain(info.css_first(".tgme_channel_info_header_title")) or None
    subscribers = None
    for counter in info.css(".tgme_channel_info_counter"):
        kind = _plain(counter.css_first(".counter_type")).lower()
        if kind.startswith(("subscriber", "member")):
            try:
                subscribers = parse_count(_plain(counter.css_first(".counter_value")))
            except ValueError:
                subscribers = None
    description_node = info.css_first(".tgme_channel_info_description")
    description = _Text.read(description_node)[0] or None if description_node is not None else None
    ids = {p.channel_id for p in posts if p.username.lower() == username.lower() and p.channel_id}
    return WebChannel(username=username, title=title, subscribers=subscribers, description=description,
                      channel_id=ids.pop() if len(ids) == 1 else None)


def _before(tree: LexborHTMLParser) -> int | None:
    """The id of the "load more" link above the posts (`data-before`), None when the page starts
    at the channel's first post."""
    for node in tree.css(".tme_messages_more[data-before], .js-messages_more[data-before]"):
        value = node.attributes.get("data-before") or ""
        if value.isdigit():
            return int(value)
    return None


# --- one message ---------------------------------------------------------------------------------

# Blocks a message bubble may hold, by the class that names them; anything else makes the post
# unreadable rather than half-read (a renamed class, a new kind of content).
_KNOWN_BLOCKS = (
    "tgme_widget_message_bubble_tail", "tgme_widget_message_bubble_logo", "tgme_widget_message_author",
    "tgme_widget_message_forwarded_from", "tgme_widget_message_reply", "tgme_widget_message_text",
    "tgme_widget_message_footer", "tgme_widget_message_photo_wrap", "tgme_widget_message_video_player",
    "tgme_widget_message_roundvideo_player", "tgme_widget_message_voice_player",
    "tgme_widget_message_document_wrap", "tgme_widget_message_sticker_wrap",
    "tgme_widget_message_tgsticker_wrap", "tgme_widget_message_videosticker_wrap",
    "tgme_widget_message_grouped_wrap", "tgme_widget_message_link_preview", "tgme_widget_message_poll",
    "tgme_widget_message_location_wrap", "tgme_widget_message_venue_wrap", "tgme_widget_message_contact_wrap",
    "tgme_widget_message_service_photo", "message_media_not_supported_wrap",
    "tgme_widget_message_inline_keyboard", "tgme_widget_message_reactions",
)
_NOT_OWN = ("tgme_widget_message_reply", "tgme_widget_message_link_preview",
            "tgme_widget_message_forwarded_from")
_TME = re.compile(r"^(?:https?:)?//(?:www\.)?(?:t\.me|telegram\.me)/(?:s/)?([A-Za-z0-9_]+)(?:/(\d+))?/?"
                  r"(?:[?#].*)?$")


def _read_message(block: LexborNode, username: str, message_id: int) -> list[WebPost]:
    """One message block as its post (or its album's parts); raises `_Unreadable` with why."""
    classes = _classes(block)
    if "service_message" in classes:
        raise _Service("service message")
    bubble = block.css_first(".tgme_widget_message_bubble")
    if bubble is None:
        raise _Unreadable("no message bubble (.tgme_widget_message_bubble)")
    for child in bubble.iter():
        names = _classes(child)
        if not names.intersection(_KNOWN_BLOCKS):
            raise _Unreadable(f"unknown block <{child.tag} class={' '.join(sorted(names)) or '-'}>")
    if "tgme_widget_message_service_photo" in _child_classes(bubble):
        raise _Service("service message")
    label = _own(bubble, ".message_media_not_supported_label")
    if label is not None and _plain(label).lower() == "service message":
        raise _Service("service message")

    date = _date(bubble)
    info = _own(bubble, ".tgme_widget_message_info")
    meta = _own(bubble, ".tgme_widget_message_meta")
    edited = meta is not None and "edited" in _plain(meta).lower()
    views_node = info.css_first(".tgme_widget_message_views") if info is not None else None
    views_text = _plain(views_node) or None if views_node is not None else None
    try:
        views = parse_count(views_text)
    except ValueError as exc:
        raise _Unreadable(f"views unreadable: {views_text!r}") from exc
    author_node = info.css_first(".tgme_widget_message_from_author") if info is not None else None
    post_author = _plain(author_node) or None if author_node is not None else None
    forward = _forward(bubble)
    reply_to = _reply_to(bubble, username)
    text_node = _text_node(bubble)
    caption, entities = _Text.read(text_node) if text_node is not None else ("", ())
    channel_id = _channel_id(block)

    common = dict(username=username, date=date, edited=edited, views=views, views_text=views_text,
                  post_author=post_author, reply_to=reply_to, forward=forward, channel_id=channel_id)
    grouped = _own(bubble, ".tgme_widget_message_grouped_wrap")
    if grouped is not None:
        parts = _album_parts(grouped, username)
        ids = tuple(part_id for part_id, _ in parts)
        holder = message_id if message_id in ids else ids[0]
        return [
            WebPost(message_id=part_id, text=caption if part_id == holder else "",
                    entities=entities if part_id == holder else (), media=media,
                    grouped_id=min(ids), album=ids, **common)
            for part_id, media in parts
        ]
    media, parts_text = _media(bubble)
    text, entities = shown_text(caption, entities, parts_text)
    if not text and media is None:
        raise _Unreadable("no text and no media")
    return [WebPost(message_id=message_id, text=text, entities=entities, media=media, grouped_id=None,
                    **common)]


def _date(bubble: LexborNode) -> datetime:
    """The post's date from the footer's `time[datetime]` (UTC whatever the page's zone)."""
    node = _own(bubble, ".tgme_widget_message_date time[datetime]") or _own(bubble, "time[datetime]")
    if node is None:
        raise _Unreadable("no date (time[datetime])")
    value = node.attributes.get("datetime") or ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _Unreadable(f"date unreadable: {value!r}") from exc
    if parsed.tzinfo is None:
        raise _Unreadable(f"date without a zone: {value!r}")
    return parsed.astimezone(UTC)


def _forward(bubble: LexborNode) -> WebForward | None:
    """The "Forwarded from" header: link -> origin username and post id; a name alone -> hidden."""
    header = bubble.css_first(".tgme_widget_message_forwarded_from")
    if header is None:
        return None
    name_node = header.css_first(".tgme_widget_message_forwarded_from_name")
    if name_node is None:
        raise _Unreadable("forward header without a name")
    name = _plain(name_node) or None
    href = name_node.attributes.get("href") if name_node.tag == "a" else None
    if not href:
        return WebForward(username=None, message_id=None, name=name)
    private = re.match(r"^(?:https?:)?//(?:t\.me|telegram\.me)/c/\d+/(\d+)", href)
    if private:  # a private channel's post: its id, but no username to join it by
        return WebForward(username=None, message_id=int(private.group(1)), name=name)
    link = _TME.match(href)
    if link is None:
        raise _Unreadable(f"forward link unreadable: {href!r}")
    return WebForward(username=link.group(1), message_id=int(link.group(2)) if link.group(2) else None,
                      name=name)


def _reply_to(bubble: LexborNode, username: str) -> int | None:
    """The id the post replies to, from the reply block's link (a reply in the same channel)."""
    reply = bubble.css_first(".tgme_widget_message_reply")
    if reply is None:
        return None
    link = _TME.match(reply.attributes.get("href") or "")
    if link is None or link.group(2) is None:
        raise _Unreadable(f"reply link unreadable: {reply.attributes.get('href')!r}")
    if link.group(1).lower() != username.lower():
        return None  # a reply to another chat: the API names that chat, the page does not say how
    return int(link.group(2))


def _text_node(bubble: LexborNode) -> LexborNode | None:
    """The message's own text block: not a reply's or a link preview's, the outermost when nested."""
    found = [n for n in bubble.css(".tgme_widget_message_text") if _outside(n, bubble, _NOT_OWN)]
    outer = [n for n in found if _outside(n, bubble, ("tgme_widget_message_text",))]
    if len(outer) > 1:
        raise _Unreadable(f"{len(outer)} text blocks")
    return outer[0] if outer else None


def _channel_id(block: LexborNode) -> int | None:
    """The channel's bare id from `data-peer` ("c<id>_…") or `data-view` (base64 JSON, "c": -id)."""
    peer = block.attributes.get("data-peer") or ""
    match = re.match(r"c(\d+)_", peer)
    if match:
        return int(match.group(1))
    view = block.attributes.get("data-view")
    if not view:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(view + "=" * (-len(view) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    value = data.get("c") if isinstance(data, dict) else None
    return abs(value) if isinstance(value, int) and value else None


# --- media ---------------------------------------------------------------------------------------

_PART_CLASSES = ("tgme_widget_message_photo_wrap", "tgme_widget_message_video_player",
                 "tgme_widget_message_roundvideo_player", "tgme_widget_message_document_wrap",
                 "tgme_widget_message_voice_player")


def _album_parts(grouped: LexborNode, username: str) -> list[tuple[int, Media]]:
    """Each album part's id (its `?single` link) and media, in the order shown."""
    parts: list[tuple[int, Media]] = []
    for node in grouped.iter():
        _album_collect(node, username, parts)
    if not parts:
        raise _Unreadable("album without parts")
    return parts


def _album_collect(node: LexborNode, username: str, parts: list[tuple[int, Media]]) -> None:
    if not _classes(node).intersection(_PART_CLASSES):
        for child in node.iter():
            _album_collect(child, username, parts)
        return
    link = _TME.match(node.attributes.get("href") or "")
    if link is None or link.group(2) is None:
        raise _Unreadable(f"album part without an id: {node.attributes.get('href')!r}")
    media, _ = _media(node, album_part=True)
    if media is None:
        raise _Unreadable(f"album part {link.group(2)} of an unknown kind")
    parts.append((int(link.group(2)), media))


def _media(scope: LexborNode, album_part: bool = False) -> tuple[Media | None, list[Part]]:
    """The media a bubble (or one album part) shows, and the text parts it adds (`shown_text`)."""
    if (node := _find(scope, "tgme_widget_message_photo_wrap")) is not None:
        return Media(kind="photo", url=_background(node)), []
    if (node := _find(scope, "tgme_widget_message_roundvideo_player")) is not None:
        extra = {"round": True, **_duration(node, ".tgme_widget_message_roundvideo_duration")}
        thumb = node.css_first(".tgme_widget_message_roundvideo_thumb")
        return Media(kind="video", url=_background(thumb) if thumb else None, extra=extra), []
    if (node := _find(scope, "tgme_widget_message_video_player")) is not None:
        return _video(node), []
    if (node := _find(scope, "tgme_widget_message_voice_player")) is not None or (
            node := _find(scope, "tgme_widget_message_voice")) is not None:
        return Media(kind="voice", extra=_duration(node, ".tgme_widget_message_voice_duration")), []
    if (node := _find(scope, "tgme_widget_message_document_wrap")) is not None:
        return _document(node), []
    if album_part:
        return None, []
    for wrap in ("tgme_widget_message_sticker_wrap", "tgme_widget_message_tgsticker_wrap",
                 "tgme_widget_message_videosticker_wrap"):
        if (node := _find(scope, wrap)) is not None:
            return _sticker(node), []
    if (node := _find(scope, "tgme_widget_message_poll")) is not None:
        return _poll(node, scope)
    if (node := _find(scope, "tgme_widget_message_location_wrap")) is not None or (
            node := _find(scope, "tgme_widget_message_venue_wrap")) is not None:
        return _location(node)
    if (node := _find(scope, "tgme_widget_message_contact_wrap")) is not None:
        return _contact(node)
    if (node := scope.css_first(".tgme_widget_message_link_preview")) is not None:
        return _link_preview(node), []
    label = _own(scope, ".message_media_not_supported_label")
    if label is not None:
        return Media(kind="other", extra={"not_shown": _plain(label)}), []
    return None, []


def _video(node: LexborNode) -> Media:
    """A video, or a GIF: the page plays a GIF looped and shows it no duration."""
    thumb = node.css_first(".tgme_widget_message_video_thumb")
    duration = _duration(node, ".message_video_duration")
    video = node.css_first("video")
    looped = video is not None and "loop" in video.attributes and "autoplay" in video.attributes
    kind = "gif" if looped and not duration else "video"
    return Media(kind=kind, url=_background(thumb) if thumb is not None else None, extra=duration)


def _document(node: LexborNode) -> Media:
    """A file (name and size as shown) or a music file (title and performer)."""
    title = _plain(node.css_first(".tgme_widget_message_document_title")) or None
    extra_text = _plain(node.css_first(".tgme_widget_message_document_extra")) or None
    icon = node.css_first(".tgme_widget_message_document_icon")
    if "audio" in _classes(node) or (icon is not None and "audio" in _classes(icon)):
        return Media(kind="audio", extra=_present(audio_title=title, performer=extra_text,
                                                  **_duration(node, "time")))
    return Media(kind="document", file_name=title, size=_size(extra_text),
                 extra=_present(size_text=extra_text))


def _sticker(node: LexborNode) -> Media:
    """A sticker: its image and, from its link, the sticker set."""
    image = node.css_first("[data-webp]")
    url = image.attributes.get("data-webp") if image is not None else None
    if url is None:
        inner = node.css_first("i, img, video")
        url = (_background(inner) or inner.attributes.get("src")) if inner is not None else None
    link = node.css_first("a[href]")
    href = link.attributes.get("href") or "" if link is not None else ""
    pack = re.search(r"/addstickers/([A-Za-z0-9_]+)", href)
    return Media(kind="sticker", url=url, extra={"set": pack.group(1)} if pack else {})


def _poll(node: LexborNode, bubble: LexborNode) -> tuple[Media, list[Part]]:
    """A poll: question, options, voters; its text joins the post's (as `shown_text` does)."""
    question = _plain(node.css_first(".tgme_widget_message_poll_question"))
    options = [_plain(o) for o in node.css(".tgme_widget_message_poll_option_text")]
    percents = [_plain(p) for p in node.css(".tgme_widget_message_poll_option_percent")]
    kind = _plain(node.css_first(".tgme_widget_message_poll_type"))
    if not question or not options:
        raise _Unreadable("poll without a question or options")
    voters_node = _own(bubble, ".tgme_widget_message_voters")
    try:
        voters = parse_count(_plain(voters_node)) if voters_node is not None else None
    except ValueError as exc:
        raise _Unreadable("poll voters unreadable") from exc
    extra: dict[str, Any] = {"question": question, "answers": options}
    extra.update(_present(
        percents=percents if len(percents) == len(options) else None,
        poll_type=kind or None,
        quiz=True if "quiz" in kind.lower() else None,
        multiple_choice=True if "multiple" in _classes(node) else None,
        total_voters=voters,
    ))
    return Media(kind="poll", extra=extra), [(question, ()), *((o, ()) for o in options)]


def _location(node: LexborNode) -> tuple[Media, list[Part]]:
    """A location (latitude, longitude from the map link) or a venue (its title and address)."""
    query = parse_qs(urlsplit(node.attributes.get("href") or "").query)
    extra: dict[str, Any] = {}
    for key in ("q", "ll", "center"):
        match = re.fullmatch(r"(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)", (query.get(key) or [""])[0])
        if match:
            extra.update(lat=float(match.group(1)), long=float(match.group(2)))
            break
    title = _plain(node.css_first(".tgme_widget_message_venue_title")) or None
    address = _plain(node.css_first(".tgme_widget_message_venue_address")) or None
    extra.update(_present(title=title, address=address))
    image = node.css_first(".tgme_widget_message_location")
    return Media(kind="geo", url=_background(image) if image is not None else None, extra=extra), [
        (title or "", ()), (address or "", ())]


def _contact(node: LexborNode) -> tuple[Media, list[Part]]:
    """A shared contact: the name shown (and the phone when the page shows it)."""
    name = _plain(node.css_first(".tgme_widget_message_contact_name"))
    phone = _plain(node.css_first(".tgme_widget_message_contact_phone")) or None
    return Media(kind="contact", extra=_present(name=name or None, phone_number=phone)), [(name, ())]


def _link_preview(node: LexborNode) -> Media:
    """A link preview: the page's URL, site name, title, description and image."""
    image = node.css_first(".link_preview_image, .link_preview_right_image")
    description = node.css_first(".link_preview_description")
    extra = _present(
        site_name=_plain(node.css_first(".link_preview_site_name")) or None,
        description=(_Text.read(description)[0] or None) if description is not None else None,
        image_url=_background(image),
    )
    return Media(kind="webpage", url=node.attributes.get("href"),
                 title=_plain(node.css_first(".link_preview_title")) or None, extra=extra)


def _duration(node: LexborNode, selector: str) -> dict[str, int]:
    """{"duration": seconds} from a "1:02:03" / "2:57" label, else nothing."""
    label = node.css_first(selector)
    text = _plain(label) if label is not None else ""
    if not re.fullmatch(r"\d+(?::\d{1,2}){1,2}", text):
        return {}
    seconds = 0
    for piece in text.split(":"):
        seconds = seconds * 60 + int(piece)
    return {"duration": seconds}


_SIZE = re.compile(r"(\d+(?:[.,]\d+)?)\s*(B|KB|MB|GB|TB)", re.IGNORECASE)
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _size(text: str | None) -> int | None:
    """Bytes from a size as shown ("113.9 KB" -> 116634): approximate, as precise as shown."""
    match = _SIZE.search(text or "")
    if match is None:
        return None
    return int(Decimal(match.group(1).replace(",", ".")) * _SIZE_UNITS[match.group(2).upper()])


def _background(node: LexborNode | None) -> str | None:
    """The URL of a `background-image:url('…')` style, made absolute (`//host` -> https)."""
    if node is None:
        return None
    match = re.search(r"background-image:\s*url\((['\"]?)(.*?)\1\)", node.attributes.get("style") or "")
    if match is None:
        return None
    url = match.group(2)
    return "https:" + url if url.startswith("//") else url


# --- text and entities ---------------------------------------------------------------------------

_SIMPLE = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
           "ins": "underline", "s": "strike", "strike": "strike", "del": "strike", "code": "code",
           "tg-spoiler": "spoiler"}
_LAYOUT_BREAK = re.compile(r"[ \t\r\f]*\n[ \t\r\n\f]*")


class _Text:
    """Plain text and entities (UTF-16 offsets) from a message text block."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0  # UTF-16 code units so far
        self.last = ""  # the last character written
        self.space = False  # a layout break read as a space, written only if text follows on its line
        self.entities: list[dict[str, Any]] = []

    @classmethod
    def read(cls, node: LexborNode | None) -> tuple[str, tuple[dict[str, Any], ...]]:
        """(text, entities) of `node`, trimmed at both ends as Telegram trims a message."""
        reader = cls()
        if node is not None:
            reader.children(node, in_pre=False)
        return reader.finish()

    def write(self, text: str) -> None:
        if text:
            self.pieces.append(text)
            self.length += utf16_len(text)
            self.last = text[-1]

    def text(self, text: str, in_pre: bool) -> None:
        """A text node: layout newlines (indentation of the markup) read as one space."""
        if in_pre:
            self.flush()
            self.write(text)
            return
        for index, chunk in enumerate(_LAYOUT_BREAK.split(text)):
            if index and self.pieces and self.last not in " \n":
                self.space = True
            if chunk:
                self.flush()
                self.write(chunk)

    def flush(self) -> None:
        """Write the pending layout space (text or an inline element follows on the same line)."""
        if self.space:
            self.space = False
            self.write(" ")

    def children(self, node: LexborNode, in_pre: bool) -> None:
        for child in node.iter(include_text=True):
            self.node(child, in_pre)

    def node(self, node: LexborNode, in_pre: bool) -> None:
        tag = node.tag
        if node.is_text_node:
            self.text(node.text_content or "", in_pre)
            return
        if tag in ("-comment", "script", "style", "svg"):
            return
        if tag == "br":
            self.space = False  # a space before a line break is not shown
            self.write("\n")
            return
        self.flush()
        classes = _classes(node)
        if tag == "i" and "emoji" in classes:
            self.write(node.text(deep=True))  # an emoji drawn as an image: its alt text, no bold
            return
        start = self.length
        entity: dict[str, Any] | None = None
        if tag == "tg-emoji":
            self.write(node.text(deep=True))
            emoji_id = node.attributes.get("emoji-id") or ""
            entity = {"type": "custom_emoji"} | ({"document_id": int(emoji_id)} if emoji_id.isdigit() else {})
        elif tag == "pre":
            entity = {"type": "pre", "language": _language(node)}
            self.children(node, in_pre=True)
        elif tag == "code" and in_pre:
            self.children(node, in_pre=True)
        elif tag in _SIMPLE:
            entity = {"type": _SIMPLE[tag]}
            self.children(node, in_pre)
        elif tag == "span" and "tg-spoiler" in classes:
            entity = {"type": "spoiler"}
            self.children(node, in_pre)
        elif tag == "blockquote":
            entity = {"type": "blockquote"}
            if "expandable" in node.attributes or "expandable" in classes:
                entity["collapsed"] = True
            self.children(node, in_pre)
        elif tag == "a":
            self.children(node, in_pre)
            entity = _link_entity(node, _text_since(self, start))
        else:
            self.children(node, in_pre)  # layout spans and unknown inline tags: their text only
        if entity is not None and self.length > start:
            self.entities.append({"type": entity.pop("type"), "offset": start, "length": self.length - start,
                                  **entity})

    def finish(self) -> tuple[str, tuple[dict[str, Any], ...]]:
        text = "".join(self.pieces)
        body = text.strip(" \t\r\n")
        lead = utf16_len(text[: len(text) - len(text.lstrip(" \t\r\n"))])
        end = utf16_len(body)
        out: list[dict[str, Any]] = []
        for entity in self.entities:
            start = max(entity["offset"] - lead, 0)
            stop = min(entity["offset"] + entity["length"] - lead, end)
            if stop > start:
                out.append({**entity, "offset": start, "length": stop - start})
        out.sort(key=lambda e: (e["offset"], -e["length"]))
        return body, tuple(out)


def _text_since(reader: _Text, start: int) -> str:
    """The text written since UTF-16 offset `start`."""
    text = "".join(reader.pieces)
    encoded = text.encode("utf-16-le")
    return encoded[start * 2:].decode("utf-16-le")


def _language(pre: LexborNode) -> str:
    """A pre block's language (`language-x` class on it or its code), "" as the API gives none."""
    for node in (pre, pre.css_first("code")):
        if node is None:
            continue
        if node.attributes.get("data-language"):
            return node.attributes["data-language"] or ""
        for name in _classes(node):
            if name.startswith("language-"):
                return name[len("language-"):]
    return ""


def _link_entity(a: LexborNode, shown: str) -> dict[str, Any]:
    """What a link in the text is: hashtag, cashtag, mention, e-mail, phone, url or text_url."""
    href = a.attributes.get("href") or ""
    query = parse_qs(urlsplit(href).query).get("q", [""])[0]
    if query.startswith("#") and shown.startswith("#"):
        return {"type": "hashtag"}
    if query.startswith("$") and shown.startswith("$"):
        return {"type": "cashtag"}
    if href.startswith("mailto:"):
        return {"type": "email"}
    if href.startswith("tel:"):
        return {"type": "phone_number"}
    user = re.fullmatch(r"tg://user\?id=(\d+)", href)
    if user:
        return {"type": "mention_name", "user_id": int(user.group(1))}
    link = _TME.match(href)
    if shown.startswith("@") and link and not link.group(2) and link.group(1).lower() == shown[1:].lower():
        return {"type": "mention"}
    if "confirm(" not in (a.attributes.get("onclick") or "") and _same_address(shown, href):
        return {"type": "url"}
    return {"type": "text_url", "url": href}


def _same_address(shown: str, href: str) -> bool:
    """True when a link shows its own address (an auto-detected URL): scheme, `www.`, case and a
    trailing slash aside."""
    def bare(value: str) -> str:
        value = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value.strip().lower())
        return value.removeprefix("www.").rstrip("/")
    return bool(shown.strip()) and bare(shown) == bare(href)


# --- small helpers -------------------------------------------------------------------------------


def _post_ref(value: str | None) -> tuple[str, int] | None:
    """("name", id) from a `data-post` value "name/123"."""
    match = re.fullmatch(r"([A-Za-z0-9_]+)/(\d+)", (value or "").strip())
    return (match.group(1), int(match.group(2))) if match else None


def _keyed_ancestor(node: LexborNode) -> bool:
    """True when an ancestor of `node` also carries `data-post`."""
    parent = node.parent
    while parent is not None:
        if parent.is_element_node and "data-post" in parent.attributes:
            return True
        parent = parent.parent
    return False


def _classes(node: LexborNode) -> set[str]:
    return set((node.attributes.get("class") or "").split())


def _child_classes(node: LexborNode) -> set[str]:
    return {name for child in node.iter() for name in _classes(child)}


def _find(scope: LexborNode, name: str) -> LexborNode | None:
    """`scope` itself when it has class `name`, else its first own descendant that has it."""
    if name in _classes(scope):
        return scope
    for node in scope.css(f".{name}"):
        if _outside(node, scope, _NOT_OWN):
            return node
    return None


def _own(scope: LexborNode, selector: str) -> LexborNode | None:
    """The first match of `selector` in `scope` that is not inside a reply, preview or forward."""
    for node in scope.css(selector):
        if _outside(node, scope, _NOT_OWN):
            return node
    return None


def _outside(node: LexborNode, scope: LexborNode, names: Iterable[str]) -> bool:
    """True when no ancestor of `node` below `scope` has one of the classes `names`."""
    wanted = set(names)
    parent = node.parent
    while parent is not None and parent.mem_id != scope.mem_id:
        if _classes(parent) & wanted:
            return False
        parent = parent.parent
    return True


def _plain(node: LexborNode | None) -> str:
    """A node's text, layout whitespace collapsed and trimmed; "" for None."""
    if node is None:
        return ""
    return " ".join(node.text(deep=True).split())


def _present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not None."""
    return {k: v for k, v in values.items() if v is not None}
