"""Telethon `Message` -> `storage.records.MessageRecord`: pure functions, no I/O, no client needed.

Everything is read from the raw TL fields (`message.message`, `fwd_from`, `media`, ...), never from
Telethon's client-bound conveniences (`.text`, `.file`), so a message rebuilt from a stored dict or
built by hand normalises exactly like one fresh from the network.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from telethon.tl import types
from telethon.tl.tlobject import TLObject

from bot.names import username_of
from storage.records import ForwardHeader, Media, MessageRecord
from storage.shown import Part, shown_text

__all__ = [
    "MEDIA_KINDS",
    "entity_dict",
    "forward_header",
    "is_content",
    "json_safe",
    "media_of",
    "media_text",
    "normalize",
    "peer_type_and_id",
    "reaction_counts",
]

MEDIA_KINDS = (
    "photo", "video", "document", "audio", "voice", "sticker", "gif",
    "webpage", "poll", "geo", "contact", "other",
)

# Entity fields copied next to type/offset/length when the entity carries them.
_ENTITY_EXTRA_FIELDS = ("url", "user_id", "language", "document_id", "collapsed")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_MARKED_CHANNEL_OFFSET = 1_000_000_000_000  # Bot API style marked ids: -100<id>


def is_content(message: object) -> bool:
    """True for a real content `Message`; False for `MessageService`, `MessageEmpty` and the rest.

    Service messages (pins, title changes, channel creation) are not posts, so the poller skips them.
    """
    return isinstance(message, types.Message)


def normalize(
    message: types.Message,
    *,
    chats: Mapping[int, Any] | None = None,
) -> MessageRecord:
    """Turn one channel `Message` into a `MessageRecord`.

    `chats` maps channel ids (bare, or Telethon's marked `-100...` ids) to the `Channel` TL objects of
    the same answer, so a forward's origin username/title can be filled. Raises ValueError for
    anything `is_content` rejects (service/empty messages) and for messages outside a channel.
    """
    if not is_content(message):
        raise ValueError(
            f"not a content message ({type(message).__name__}); check is_content() before normalize()"
        )
    peer = message.peer_id
    if not isinstance(peer, types.PeerChannel):
        raise ValueError(f"message {message.id} is not from a channel (peer {type(peer).__name__})")
    if message.date is None:
        raise ValueError(f"message {message.id} has no date")

    replies = message.replies.replies if isinstance(message.replies, types.MessageReplies) else None
    reply_to = (
        message.reply_to.reply_to_msg_id if isinstance(message.reply_to, types.MessageReplyHeader) else None
    )
    text, entities = shown_text(message.message or "", [entity_dict(e) for e in (message.entities or ())],
                                media_text(message.media))
    return MessageRecord(
        channel_id=peer.channel_id,
        message_id=message.id,
        date=_utc(message.date),
        text=text,
        entities=entities,
        edit_date=_utc(message.edit_date),
        views=message.views,
        forwards=message.forwards,
        replies=replies,
        reply_to=reply_to,
        grouped_id=message.grouped_id,
        post_author=message.post_author,
        media=media_of(message.media),
        forward=forward_header(message, chats=chats),
        raw=json_safe(message.to_dict()),
        reactions=reaction_counts(message.reactions),
    )


def reaction_key(reaction: object) -> str | None:
    """How one reaction is named in `MessageRecord.reactions`: the emoji, `custom:<document_id>` or
    `paid`; None for a kind we do not know (it is left out rather than guessed)."""
    if isinstance(reaction, types.ReactionEmoji):
        return reaction.emoticon
    if isinstance(reaction, types.ReactionCustomEmoji):
        return f"custom:{reaction.document_id}"
    if isinstance(reaction, types.ReactionPaid):
        return "paid"
    return None


def reaction_counts(reactions: object) -> dict[str, int] | None:
    """`MessageReactions.results` as counts per reaction; None when the message carries no reactions
    field (unknown, which is not the same as none: `{}`)."""
    if not isinstance(reactions, types.MessageReactions):
        return None
    counts: dict[str, int] = {}
    for result in reactions.results:
        key = reaction_key(result.reaction)
        if key is not None:
            counts[key] = counts.get(key, 0) + result.count
    return counts


# --- JSON safety --------------------------------------------------------------------------------


def json_safe(obj: Any) -> Any:
    """Make `obj` (typically a `to_dict()` tree) encodable by `json.dumps` without losing data.

    datetimes become ISO-8601 UTC text (naive ones are taken as UTC), bytes become standard
    base64 text, TL objects their `to_dict()`, tuples/sets lists; anything else unknown its `str`.
    """
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [json_safe(v) for v in obj]
    if isinstance(obj, datetime):
        return _utc(obj).isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, TLObject):
        return json_safe(obj.to_dict())
    return str(obj)


def _utc(value: datetime | None) -> datetime | None:
    """Aware UTC datetime (Telethon already gives UTC; naive values are assumed to be UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --- entities -----------------------------------------------------------------------------------


def entity_type_name(entity: object) -> str:
    """`MessageEntityTextUrl` -> `text_url`, `InputMessageEntityMentionName` -> `mention_name`."""
    name = type(entity).__name__
    for prefix in ("InputMessageEntity", "MessageEntity"):
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix):]
            break
    return _CAMEL.sub("_", name).lower()


def entity_dict(entity: object) -> dict[str, Any]:
    """One message entity as a JSON-able dict: type, offset, length and its payload fields."""
    out: dict[str, Any] = {
        "type": entity_type_name(entity),
        "offset": getattr(entity, "offset", 0),
        "length": getattr(entity, "length", 0),
    }
    for name in _ENTITY_EXTRA_FIELDS:
        value = getattr(entity, name, None)
        if value is None or (name == "collapsed" and not value):
            continue
        if name == "user_id" and not isinstance(value, int):
            value = getattr(value, "user_id", None)  # InputMessageEntityMentionName carries an InputUser
            if value is None:
                continue
        out[name] = value
    return out


# --- peers and forwards -------------------------------------------------------------------------


def peer_type_and_id(peer: object) -> tuple[str | None, int | None]:
    """(`channel`|`user`|`chat`, bare id) of a Peer; (None, None) for None or unknown peers."""
    if isinstance(peer, types.PeerChannel):
        return "channel", peer.channel_id
    if isinstance(peer, types.PeerUser):
        return "user", peer.user_id
    if isinstance(peer, types.PeerChat):
        return "chat", peer.chat_id
    return None, None


def forward_header(message: types.Message, *, chats: Mapping[int, Any] | None = None) -> ForwardHeader | None:
    """The message's `fwd_from` as a `ForwardHeader`, or None when it is not a forward.

    The origin's username/title come from `chats` when it holds the origin; otherwise from
    Telethon's `message.forward.chat` when the client resolved it; otherwise they stay None.
    """
    fwd = getattr(message, "fwd_from", None)
    if not isinstance(fwd, types.MessageFwdHeader):
        return None
    peer_type, peer_id = peer_type_and_id(fwd.from_id)
    saved_type, saved_id = peer_type_and_id(fwd.saved_from_peer)
    username = title = None
    if peer_type in ("channel", "chat") and peer_id is not None:
        origin = _lookup_chat(chats, peer_type, peer_id)
        if origin is None:
            origin = _forward_chat(message)
        if origin is not None:
            username, title = username_of(origin), getattr(origin, "title", None)
    return ForwardHeader(
        from_peer_type=peer_type,
        from_peer_id=peer_id,
        channel_post=fwd.channel_post,
        from_name=fwd.from_name,
        date=_utc(fwd.date),
        post_author=fwd.post_author,
        saved_from_peer_type=saved_type,
        saved_from_peer_id=saved_id,
        saved_from_msg_id=fwd.saved_from_msg_id,
        origin_username=username,
        origin_title=title,
    )


def _lookup_chat(chats: Mapping[int, Any] | None, peer_type: str, peer_id: int) -> Any | None:
    """Find the origin in `chats` by bare id or by Telethon's marked id (-100<id> / -<id>)."""
    if not chats:
        return None
    marked = -(_MARKED_CHANNEL_OFFSET + peer_id) if peer_type == "channel" else -peer_id
    for key in (peer_id, marked):
        found = chats.get(key)
        if found is not None and getattr(found, "id", peer_id) == peer_id:
            return found
    return None


def _forward_chat(message: object) -> Any | None:
    """Telethon's resolved `message.forward.chat`, if the message came through a client."""
    try:
        forward = getattr(message, "forward", None)
        return getattr(forward, "chat", None) if forward is not None else None
    except Exception:  # a half-initialised custom object must never break normalisation
        return None


# --- media --------------------------------------------------------------------------------------


def media_of(media: object) -> Media | None:
    """Summarise a `MessageMedia*` as a `Media` (None for no media or `MessageMediaEmpty`)."""
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return None
    if isinstance(media, types.MessageMediaPhoto):
        return _photo_media(media)
    if isinstance(media, types.MessageMediaDocument):
        return _document_media(media)
    if isinstance(media, types.MessageMediaWebPage):
        return _webpage_media(media.webpage)
    if isinstance(media, types.MessageMediaPoll):
        return _poll_media(media)
    if isinstance(media, types.MessageMediaVenue):
        extra = _geo_extra(media.geo)
        extra.update(_present(title=media.title or None, address=media.address or None))
        return Media(kind="geo", extra=extra)
    if isinstance(media, types.MessageMediaGeoLive):
        extra = _geo_extra(media.geo)
        extra["live_period"] = media.period
        return Media(kind="geo", extra=extra)
    if isinstance(media, types.MessageMediaGeo):
        return Media(kind="geo", extra=_geo_extra(media.geo))
    if isinstance(media, types.MessageMediaContact):
        extra = _present(
            first_name=media.first_name or None,
            last_name=media.last_name or None,
            phone_number=media.phone_number or None,
            user_id=media.user_id or None,
        )
        return Media(kind="contact", extra=extra)
    extra: dict[str, Any] = {"tl": type(media).__name__}
    if isinstance(media, types.MessageMediaDice):
        extra.update(emoticon=media.emoticon, value=media.value)
    return Media(kind="other", extra=extra)


def _photo_media(media: types.MessageMediaPhoto) -> Media:
    """A photo: pixel size and byte size of its largest rendition."""
    photo = media.photo
    extra = _present(spoiler=getattr(media, "spoiler", None) or None, ttl_seconds=media.ttl_seconds)
    size = None
    if isinstance(photo, types.Photo):
        best = _largest_size(photo.sizes)
        if best is not None:
            extra.update(width=best[0], height=best[1])
            size = best[2]
    else:
        extra["unavailable"] = True  # PhotoEmpty / None: expired or restricted
    return Media(kind="photo", size=size, mime_type="image/jpeg" if size else None, extra=extra,
                 **_file_ids(photo))


def _file_ids(file: object) -> dict[str, int]:
    """`file_id` and `dc_id` of a `Photo` or `Document` (nothing for the Empty kinds): the same in
    every forward, so the download queue fetches one file once."""
    if isinstance(file, types.Photo | types.Document):
        return {"file_id": file.id, "dc_id": file.dc_id}
    return {}


def _largest_size(sizes: list[Any] | None) -> tuple[int, int, int | None] | None:
    """(w, h, bytes) of the largest `PhotoSize`/`PhotoSizeProgressive`, thumbnails ignored."""
    best: tuple[int, int, int | None] | None = None
    for s in sizes or ():
        if isinstance(s, types.PhotoSize):
            candidate = (s.w, s.h, s.size)
        elif isinstance(s, types.PhotoSizeProgressive):
            candidate = (s.w, s.h, max(s.sizes) if s.sizes else None)
        elif isinstance(s, types.PhotoCachedSize):
            candidate = (s.w, s.h, len(s.bytes))
        else:
            continue
        if best is None or candidate[0] * candidate[1] > best[0] * best[1]:
            best = candidate
    return best


def _document_media(media: types.MessageMediaDocument) -> Media:
    """A document, classified by its attributes into sticker/gif/video/voice/audio/document."""
    doc = media.document
    if not isinstance(doc, types.Document):
        return Media(kind="document", extra={"unavailable": True})
    attrs = {type(a): a for a in doc.attributes or ()}
    extra: dict[str, Any] = {}
    kind = "document"
    video = attrs.get(types.DocumentAttributeVideo)
    audio = attrs.get(types.DocumentAttributeAudio)
    sticker = attrs.get(types.DocumentAttributeSticker)
    if sticker is not None:
        kind = "sticker"
        if sticker.alt:
            extra["emoji"] = sticker.alt
    elif types.DocumentAttributeAnimated in attrs:
        kind = "gif"
    elif video is not None:
        kind = "video"
        if video.round_message or getattr(media, "round", None):
            extra["round"] = True
    elif audio is not None:
        kind = "voice" if (audio.voice or getattr(media, "voice", None)) else "audio"
        extra.update(_present(performer=audio.performer, audio_title=audio.title))
    size_attr = video or attrs.get(types.DocumentAttributeImageSize)
    if size_attr is not None:
        extra.update(width=size_attr.w, height=size_attr.h)
    duration = (video or audio).duration if (video or audio) is not None else None
    if duration is not None:
        extra["duration"] = duration
    if getattr(media, "spoiler", None):  # flags newer than some layers: read defensively
        extra["spoiler"] = True
    filename = attrs.get(types.DocumentAttributeFilename)
    return Media(
        kind=kind,
        file_name=filename.file_name if filename is not None else None,
        size=doc.size,
        mime_type=doc.mime_type or None,
        extra=extra,
        **_file_ids(doc),
    )


def _webpage_media(page: object) -> Media:
    """A link preview; `WebPageEmpty`/`WebPagePending`/`WebPageNotModified` keep what they have."""
    if isinstance(page, types.WebPage):
        extra = _present(
            site_name=page.site_name,
            type=page.type,
            display_url=page.display_url,
            author=page.author,
            duration=page.duration,
        )
        if page.photo is not None:
            extra["has_photo"] = True
        if page.document is not None:
            extra["has_document"] = True
        return Media(kind="webpage", url=page.url, title=page.title, extra=extra, **_file_ids(page.photo))
    extra = {"state": type(page).__name__.removeprefix("WebPage").lower() or "unknown"}
    return Media(kind="webpage", url=getattr(page, "url", None), extra=extra)


def _poll_media(media: types.MessageMediaPoll) -> Media:
    """A poll: its question, answer texts and state (question is `TextWithEntities` since layer 181)."""
    poll = media.poll
    question = _plain(poll.question)
    answers = [_plain(a.text) for a in poll.answers or ()]
    extra: dict[str, Any] = {"question": question, "answers": answers}
    extra.update(_present(closed=poll.closed or None, quiz=poll.quiz or None,
                          multiple_choice=poll.multiple_choice or None))
    results = media.results
    if isinstance(results, types.PollResults) and results.total_voters is not None:
        extra["total_voters"] = results.total_voters
    return Media(kind="poll", extra=extra)


def media_text(media: object) -> list[Part]:
    """The text a message's media shows besides the caption (`storage.shown`), in the order Telegram
    shows it, with entities where the layer carries them (TextWithEntities)."""
    if isinstance(media, types.MessageMediaPoll) and isinstance(media.poll, types.Poll):
        poll = media.poll
        return [_with_entities(poll.question), *(_with_entities(a.text) for a in poll.answers or ())]
    todo_type = getattr(types, "MessageMediaToDo", None)  # layer 206 on
    if todo_type is not None and isinstance(media, todo_type):
        todo = media.todo
        return [_with_entities(todo.title), *(_with_entities(item.title) for item in todo.list or ())]
    if isinstance(media, types.MessageMediaInvoice):
        return [(media.title or "", ()), (media.description or "", ())]
    if isinstance(media, types.MessageMediaGame) and isinstance(media.game, types.Game):
        return [(media.game.title or "", ()), (media.game.description or "", ())]
    if isinstance(media, types.MessageMediaVenue):
        return [(media.title or "", ()), (media.address or "", ())]
    if isinstance(media, types.MessageMediaContact):
        return [(" ".join(n for n in (media.first_name, media.last_name) if n), ())]
    if isinstance(media, types.MessageMediaGiveaway | types.MessageMediaGiveawayResults):
        return [(getattr(media, "prize_description", None) or "", ())]
    story = getattr(media, "story", None) if isinstance(media, types.MessageMediaStory) else None
    if isinstance(story, types.StoryItem) and story.caption:
        return [(story.caption, [entity_dict(e) for e in story.entities or ()])]
    return []


def _with_entities(text: object) -> Part:
    """A `TextWithEntities` (or a plain str of older layers) as a text part."""
    if isinstance(text, str):
        return text, ()
    return getattr(text, "text", None) or "", [entity_dict(e) for e in getattr(text, "entities", None) or ()]


def _plain(text: object) -> str:
    """Text of a `TextWithEntities` (new layers) or a plain str (old layers)."""
    if isinstance(text, str):
        return text
    return getattr(text, "text", None) or ""


def _geo_extra(geo: object) -> dict[str, Any]:
    """Latitude/longitude of a `GeoPoint` (nothing for `GeoPointEmpty`)."""
    if isinstance(geo, types.GeoPoint):
        return {"lat": geo.lat, "long": geo.long}
    return {}


def _present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not None."""
    return {k: v for k, v in values.items() if v is not None}
