"""bot.normalize against real Telegram messages (shared fixtures) and hand-built TL objects."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telethon.extensions import BinaryReader
from telethon.tl import types
from telethon.tl.alltlobjects import LAYER

from bot.normalize import MEDIA_KINDS, entity_dict, is_content, json_safe, media_of, normalize
from storage.records import MessageRecord
from tests.bot.tl_from_dict import parse_datetime, tl_from_dict
from tests.real_fixtures import real

FIXTURES_LAYER = 229
"""The TL layer (Telethon 1.45) that knows every field of the real fixtures."""

REAL = real("telethon_dicts")
BLOOMBERG = REAL / "bloomberg_1488156064.txt"
PATRIOT = REAL / "britishnewspatriot_1799276919.txt"
FIXTURE_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$")
WHEN = datetime(2025, 12, 17, 10, 0, tzinfo=UTC)


def load(path: Path) -> list[dict]:
    """Every NDJSON line of a fixture file as a dict."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


ALL_LINES = [(p.name, i, d) for p in (BLOOMBERG, PATRIOT) for i, d in enumerate(load(p), 1)]


def fixture_as_json_safe(value):
    """What `json_safe` must produce for a fixture value: dates as ISO UTC, everything else as is."""
    if isinstance(value, dict):
        return {k: fixture_as_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fixture_as_json_safe(v) for v in value]
    if isinstance(value, str) and FIXTURE_DATE.match(value):
        return parse_datetime(value).isoformat()
    return value


def assert_subset(expected, actual, path="$", dropped=frozenset()):
    """Every key of `expected` is in `actual` with an equal value (recursively), except fields the
    installed (older) layer does not have: `dropped` holds their 'Type.field' names."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            if f"{expected.get('_')}.{key}" in dropped:
                continue
            assert key in actual, f"{path}.{key} missing"
            assert_subset(value, actual[key], f"{path}.{key}", dropped)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{path}[{i}]", dropped)
    else:
        assert expected == actual, f"{path}: {expected!r} != {actual!r}"


def msg(**kwargs) -> types.Message:
    """A hand-built channel post with sensible defaults."""
    base = dict(id=10, peer_id=types.PeerChannel(777), date=WHEN, message="hello", post=True)
    base.update(kwargs)
    return types.Message(**base)


def by_id(path: Path) -> dict[int, dict]:
    """Fixture lines of one file keyed by message id."""
    return {d["id"]: d for d in load(path)}


# --- every real line ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "line", "data"), ALL_LINES, ids=[f"{n}:{i}" for n, i, _ in ALL_LINES])
def test_every_real_message(name, line, data):
    dropped: list[str] = []
    message = tl_from_dict(data, dropped=dropped)
    if LAYER >= FIXTURES_LAYER:  # a layer as new as the fixtures' knows every field Telegram sent;
        assert dropped == []     # older Telethon (>= 1.36 is supported) drops the newer fields
    record = normalize(message)

    assert record.channel_id == data["peer_id"]["channel_id"]
    assert record.message_id == data["id"]
    assert record.date == parse_datetime(data["date"]) and record.date.tzinfo is UTC
    assert record.text == (data["message"] or "")
    assert record.views == data["views"] and record.forwards == data["forwards"]
    assert (record.edit_date is None) == (data["edit_date"] is None)
    assert len(record.entities) == len(data["entities"])
    assert (record.forward is None) == (data["fwd_from"] is None)
    assert (record.media is None) == (data["media"] is None)
    if record.media is not None:
        assert record.media.kind in MEDIA_KINDS

    # raw is JSON, and equals the original dict (dates as ISO) for every field that was present.
    json.dumps(record.raw)
    assert_subset(fixture_as_json_safe(data), record.raw, dropped=frozenset(dropped))


@pytest.mark.parametrize(("name", "line", "data"), ALL_LINES, ids=[f"{n}:{i}" for n, i, _ in ALL_LINES])
def test_real_message_survives_tl_bytes_and_raw_round_trips(name, line, data):
    record = normalize(tl_from_dict(data))
    # Serialised to real MTProto bytes and parsed back by Telethon itself: same record.
    reparsed = BinaryReader(bytes(tl_from_dict(data))).tgread_object()
    assert dataclasses.replace(normalize(reparsed), raw=None) == dataclasses.replace(record, raw=None)
    # Our stored raw rebuilds the same message: normalising it again changes nothing.
    assert normalize(tl_from_dict(record.raw)) == record


# --- provenance in britishnewspatriot -----------------------------------------------------------


def test_patriot_forward_provenance():
    records = [normalize(tl_from_dict(d)) for d in load(PATRIOT)]
    forwards = [r.forward for r in records if r.forward is not None]
    assert len(records) == 20 and len(forwards) == 17

    from_channels = [f for f in forwards if f.from_peer_type == "channel"]
    assert len(from_channels) == 16
    assert all(f.channel_post and f.from_peer_id and f.from_name is None for f in from_channels)

    hidden = [f for f in forwards if f.from_peer_type is None]
    assert len(hidden) == 1
    assert hidden[0].from_peer_id is None and hidden[0].channel_post is None
    assert hidden[0].from_name == "Jordan"
    assert hidden[0].date == datetime(2023, 5, 1, 19, 24, 14, tzinfo=UTC)


def test_patriot_specific_forward_and_author():
    data = by_id(PATRIOT)
    first = normalize(tl_from_dict(data[2482]))
    assert first.text == "@redpillboy"
    assert first.forward.from_peer_type == "channel"
    assert (first.forward.from_peer_id, first.forward.channel_post) == (1724102370, 16072)
    assert first.forward.date == datetime(2023, 5, 17, 18, 38, 59, tzinfo=UTC)
    signed = [normalize(tl_from_dict(d)).forward for d in data.values() if d["fwd_from"]]
    assert {f.post_author for f in signed if f.post_author} == {"wim visscher", "Kathy..."}


def test_origin_filled_from_chats_mapping_bare_or_marked_ids():
    data = by_id(PATRIOT)[2482]
    origin = types.Channel(
        id=1724102370, title="Origin News", photo=types.ChatPhotoEmpty(), date=WHEN,
        username="originnews", broadcast=True, access_hash=42,
    )
    for key in (1724102370, -1001724102370):
        fwd = normalize(tl_from_dict(data), chats={key: origin}).forward
        assert (fwd.origin_username, fwd.origin_title) == ("originnews", "Origin News")
    # Another channel in the mapping, or no mapping: left empty, nothing raised.
    other = types.Channel(id=5, title="x", photo=types.ChatPhotoEmpty(), date=WHEN)
    assert normalize(tl_from_dict(data), chats={5: other}).forward.origin_title is None
    assert normalize(tl_from_dict(data)).forward.origin_username is None


def test_origin_uses_collectible_usernames_and_forbidden_channels():
    fwd = types.MessageFwdHeader(date=WHEN, from_id=types.PeerChannel(9), channel_post=3)
    collectible = types.Channel(
        id=9, title="Nine", photo=types.ChatPhotoEmpty(), date=WHEN,
        usernames=[types.Username("old", active=False), types.Username("nine", active=True)],
    )
    assert normalize(msg(fwd_from=fwd), chats={9: collectible}).forward.origin_username == "nine"
    forbidden = types.ChannelForbidden(id=9, access_hash=1, title="Gone")
    header = normalize(msg(fwd_from=fwd), chats={9: forbidden}).forward
    assert (header.origin_username, header.origin_title) == (None, "Gone")


def test_origin_falls_back_to_telethon_forward_chat():
    fwd = types.MessageFwdHeader(date=WHEN, from_id=types.PeerChannel(9), channel_post=3)
    message = msg(fwd_from=fwd)

    class FakeForward:
        chat = types.Channel(id=9, title="Nine", photo=types.ChatPhotoEmpty(), date=WHEN, username="n9")

    message._forward = FakeForward()
    assert normalize(message).forward.origin_username == "n9"
    assert normalize(message, chats={}).forward.origin_title == "Nine"


def test_saved_from_and_user_and_chat_origins():
    fwd = types.MessageFwdHeader(
        date=WHEN, from_id=types.PeerUser(31), saved_from_peer=types.PeerChat(44),
        saved_from_msg_id=5, post_author="A",
    )
    header = normalize(msg(fwd_from=fwd)).forward
    assert (header.from_peer_type, header.from_peer_id) == ("user", 31)
    saved = (header.saved_from_peer_type, header.saved_from_peer_id, header.saved_from_msg_id)
    assert saved == ("chat", 44, 5)
    assert header.post_author == "A" and header.channel_post is None


# --- bloomberg: counts, URL entities, web pages, photos ------------------------------------------


def test_bloomberg_counts_entities_and_webpage():
    record = normalize(tl_from_dict(by_id(BLOOMBERG)[3148]))
    assert (record.channel_id, record.views, record.forwards) == (1488156064, 11849, 95)
    assert record.entities == ({"type": "url", "offset": 220, "length": 24},)
    url = record.text[220:220 + 24]
    assert url == "https://bloom.bg/4lzgWdi"
    assert record.media.kind == "webpage"
    assert record.media.url == url
    assert record.media.title == "Grab Fares Topping $1,000 Stun Singapore Ride-Hailing Users"
    assert record.media.extra["site_name"] == "Bloomberg.com" and record.media.extra["has_photo"]
    assert record.edit_date == datetime(2025, 8, 20, 5, 54, 55, tzinfo=UTC)
    assert record.raw["reactions"]["results"][0]["count"] == 44


def test_bloomberg_totals():
    records = [normalize(tl_from_dict(d)) for d in load(BLOOMBERG)]
    assert len(records) == 40
    kinds = {r.media.kind for r in records if r.media}
    assert {"webpage", "photo"} <= kinds
    assert all(r.views and r.views > 0 for r in records)
    assert sum(r.forwards for r in records) > 0
    urls = [e for r in records for e in r.entities if e["type"] == "url"]
    assert urls and all(e["length"] > 0 for e in urls)
    photo = next(r.media for r in records if r.media and r.media.kind == "photo")
    assert photo.size and photo.extra["width"] and photo.extra["height"]


def test_replies_counter_from_real_message():
    record = normalize(tl_from_dict(by_id(PATRIOT)[2483]))
    assert record.replies == 0 and record.media.kind == "webpage"


# --- hand-built: every media kind -----------------------------------------------------------------


def document(*attributes, mime="application/octet-stream", size=1234):
    """A real `Document` TL object with the given attributes."""
    return types.Document(
        id=1, access_hash=2, file_reference=b"\x01\x02", date=WHEN, mime_type=mime, size=size,
        dc_id=2, attributes=list(attributes),
    )


def poll_media():
    """A closed quiz poll, question as `TextWithEntities` as in current layers."""
    answers = [types.PollAnswer(types.TextWithEntities(t, []), bytes([i])) for i, t in enumerate("yn")]
    layer_fields = {"hash": 0} if "hash" in inspect.signature(types.Poll.__init__).parameters else {}
    poll = types.Poll(id=1, question=types.TextWithEntities("Agree?", []), answers=answers,
                      closed=True, quiz=True, **layer_fields)  # `hash` came with a later layer
    return types.MessageMediaPoll(poll=poll, results=types.PollResults(total_voters=12))


STICKER_SET = types.InputStickerSetEmpty()
MEDIA_CASES = {
    "photo": types.MessageMediaPhoto(photo=types.Photo(
        id=1, access_hash=2, file_reference=b"x", date=WHEN, dc_id=2, sizes=[
            types.PhotoStrippedSize("i", b"\x01\x02"),
            types.PhotoSize("m", 320, 200, 10_000),
            types.PhotoSizeProgressive("y", 1280, 800, [1000, 50_000, 90_000]),
        ])),
    "video": types.MessageMediaDocument(video=True, document=document(
        types.DocumentAttributeVideo(duration=12.5, w=640, h=360),
        types.DocumentAttributeFilename("clip.mp4"), mime="video/mp4")),
    "document": types.MessageMediaDocument(document=document(
        types.DocumentAttributeFilename("report.pdf"), mime="application/pdf", size=99)),
    "audio": types.MessageMediaDocument(document=document(
        types.DocumentAttributeAudio(duration=200, title="Song", performer="Band"), mime="audio/mpeg")),
    "voice": types.MessageMediaDocument(voice=True, document=document(
        types.DocumentAttributeAudio(duration=7, voice=True, waveform=b"\x00\x10"), mime="audio/ogg")),
    "sticker": types.MessageMediaDocument(document=document(
        types.DocumentAttributeImageSize(512, 512),
        types.DocumentAttributeSticker(alt="😀", stickerset=STICKER_SET), mime="image/webp")),
    "gif": types.MessageMediaDocument(document=document(
        types.DocumentAttributeVideo(duration=3, w=320, h=240), types.DocumentAttributeAnimated(),
        mime="video/mp4")),
    "webpage": types.MessageMediaWebPage(webpage=types.WebPage(
        id=1, url="https://example.org/a", display_url="example.org/a", hash=0, title="A", site_name="Ex")),
    "poll": poll_media(),
    "geo": types.MessageMediaGeo(geo=types.GeoPoint(long=-75.7, lat=45.4, access_hash=0)),
    "contact": types.MessageMediaContact(phone_number="+100", first_name="Ann", last_name="", vcard="",
                                         user_id=5),
    "other": types.MessageMediaUnsupported(),
}


@pytest.mark.parametrize("kind", list(MEDIA_CASES))
def test_each_media_kind(kind):
    record = normalize(msg(media=MEDIA_CASES[kind]))
    assert record.media.kind == kind
    json.dumps(record.raw)
    json.dumps(record.media.extra)
    assert normalize(tl_from_dict(record.raw)) == record


def test_media_details():
    photo = media_of(MEDIA_CASES["photo"])
    assert (photo.size, photo.extra["width"], photo.extra["height"]) == (90_000, 1280, 800)
    video = media_of(MEDIA_CASES["video"])
    assert (video.file_name, video.mime_type, video.size) == ("clip.mp4", "video/mp4", 1234)
    assert video.extra == {"width": 640, "height": 360, "duration": 12.5}
    doc = media_of(MEDIA_CASES["document"])
    assert (doc.file_name, doc.mime_type, doc.size) == ("report.pdf", "application/pdf", 99)
    audio = media_of(MEDIA_CASES["audio"])
    assert audio.extra == {"performer": "Band", "audio_title": "Song", "duration": 200}
    assert media_of(MEDIA_CASES["sticker"]).extra == {"emoji": "😀", "width": 512, "height": 512}
    poll = media_of(MEDIA_CASES["poll"])
    assert poll.extra == {"question": "Agree?", "answers": ["y", "n"], "closed": True, "quiz": True,
                          "total_voters": 12}
    assert media_of(MEDIA_CASES["geo"]).extra == {"lat": 45.4, "long": -75.7}
    contact = media_of(MEDIA_CASES["contact"])
    assert contact.extra == {"first_name": "Ann", "phone_number": "+100", "user_id": 5}
    assert media_of(MEDIA_CASES["other"]).extra == {"tl": "MessageMediaUnsupported"}


def test_files_carry_telegrams_photo_or_document_id_and_dc():
    assert (media_of(MEDIA_CASES["photo"]).file_id, media_of(MEDIA_CASES["photo"]).dc_id) == (1, 2)
    for kind in ("video", "document", "audio", "voice", "sticker", "gif"):
        media = media_of(MEDIA_CASES[kind])
        assert (media.file_id, media.dc_id) == (1, 2), kind
    for kind in ("webpage", "poll", "geo", "contact", "other"):  # no file (a page without a photo)
        assert media_of(MEDIA_CASES[kind]).file_id is None, kind
    assert media_of(types.MessageMediaPhoto(photo=types.PhotoEmpty(id=9))).file_id is None


def test_a_web_page_carries_its_preview_photos_id():
    photo = types.Photo(id=77, access_hash=2, file_reference=b"x", date=WHEN, dc_id=4,
                        sizes=[types.PhotoSize("m", 320, 200, 10_000)])
    page = types.WebPage(id=1, url="https://example.org/a", display_url="example.org/a", hash=0, photo=photo)
    media = media_of(types.MessageMediaWebPage(webpage=page))
    assert (media.kind, media.file_id, media.dc_id) == ("webpage", 77, 4)
    record = normalize(msg(media=types.MessageMediaWebPage(webpage=page)))
    assert normalize(tl_from_dict(record.raw)).media == media


def test_round_video_venue_live_dice():
    rnd = types.MessageMediaDocument(round=True, document=document(
        types.DocumentAttributeVideo(duration=5, w=240, h=240, round_message=True), mime="video/mp4"))
    assert media_of(rnd).kind == "video" and media_of(rnd).extra["round"] is True
    venue = types.MessageMediaVenue(geo=types.GeoPoint(1.0, 2.0, 0), title="Hall", address="Main St",
                                    provider="", venue_id="", venue_type="")
    assert media_of(venue).kind == "geo" and media_of(venue).extra["title"] == "Hall"
    live = types.MessageMediaGeoLive(geo=types.GeoPointEmpty(), period=60)
    assert media_of(live).extra == {"live_period": 60}
    dice = types.MessageMediaDice(value=6, emoticon="🎲")
    assert media_of(dice).kind == "other" and media_of(dice).extra["value"] == 6


@pytest.mark.parametrize(
    ("page", "url", "state"),
    [
        (types.WebPageEmpty(id=1), None, "empty"),
        (types.WebPageEmpty(id=1, url="https://x.test"), "https://x.test", "empty"),
        (types.WebPagePending(id=1, date=WHEN, url="https://y.test"), "https://y.test", "pending"),
        (types.WebPageNotModified(), None, "notmodified"),
    ],
)
def test_incomplete_webpages(page, url, state):
    record = normalize(msg(media=types.MessageMediaWebPage(webpage=page)))
    assert record.media.kind == "webpage" and record.media.url == url
    assert record.media.extra == {"state": state}
    json.dumps(record.raw)


def test_missing_or_empty_media():
    assert normalize(msg(media=None)).media is None
    assert normalize(msg(media=types.MessageMediaEmpty())).media is None
    gone_photo = media_of(types.MessageMediaPhoto(photo=types.PhotoEmpty(id=3), ttl_seconds=10))
    assert gone_photo.kind == "photo" and gone_photo.extra == {"ttl_seconds": 10, "unavailable": True}
    gone_doc = media_of(types.MessageMediaDocument(document=types.DocumentEmpty(id=3)))
    assert gone_doc.kind == "document" and gone_doc.extra == {"unavailable": True}
    old_style_poll = poll_media()
    old_style_poll.poll.question = "Plain?"  # layers before 181 carried a plain string
    assert media_of(old_style_poll).extra["question"] == "Plain?"


# --- hand-built: every entity kind -------------------------------------------------------------


ENTITY_PAYLOAD = {"url": "https://e.test", "user_id": 77, "language": "python", "document_id": 5_000_000_001,
                  "date": WHEN}


def entity_classes():
    """Every MessageEntity* class of the installed layer."""
    return sorted(
        (c for n, c in vars(types).items() if n.startswith("MessageEntity") and isinstance(c, type)),
        key=lambda c: c.__name__,
    )


def build_entity(cls, offset=1, length=3):
    """An instance of `cls` at `offset`/`length`, required payload filled."""
    params = inspect.signature(cls.__init__).parameters
    kwargs = {"offset": offset, "length": length}
    for name, p in params.items():
        if name in ("self", "offset", "length") or p.default is not inspect.Parameter.empty:
            continue
        kwargs[name] = ENTITY_PAYLOAD.get(name, "")
    return cls(**kwargs)


@pytest.mark.parametrize("cls", entity_classes(), ids=lambda c: c.__name__)
def test_every_entity_kind(cls):
    entity = build_entity(cls)
    d = entity_dict(entity)
    expected = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__.removeprefix("MessageEntity")).lower()
    assert d["type"] == expected and (d["offset"], d["length"]) == (1, 3)
    for name in ("url", "user_id", "language", "document_id"):
        if hasattr(entity, name):
            assert d[name] == ENTITY_PAYLOAD[name]
        else:
            assert name not in d
    json.dumps(d)


def test_entity_examples_in_a_message():
    text = "Bold #tag link 🙂 code"
    entities = [
        types.MessageEntityBold(0, 4),
        types.MessageEntityHashtag(5, 4),
        types.MessageEntityTextUrl(10, 4, url="https://t.me/x"),
        types.MessageEntityCustomEmoji(15, 2, document_id=5368324170671202286),
        types.MessageEntityPre(18, 4, language="py"),
        types.MessageEntityMentionName(0, 4, user_id=1),
        types.MessageEntityBlockquote(0, 4, collapsed=True),
    ]
    record = normalize(msg(message=text, entities=entities))
    assert record.text == text
    assert record.entities == (
        {"type": "bold", "offset": 0, "length": 4},
        {"type": "hashtag", "offset": 5, "length": 4},
        {"type": "text_url", "offset": 10, "length": 4, "url": "https://t.me/x"},
        {"type": "custom_emoji", "offset": 15, "length": 2, "document_id": 5368324170671202286},
        {"type": "pre", "offset": 18, "length": 4, "language": "py"},
        {"type": "mention_name", "offset": 0, "length": 4, "user_id": 1},
        {"type": "blockquote", "offset": 0, "length": 4, "collapsed": True},
    )
    input_mention = types.InputMessageEntityMentionName(0, 1, user_id=types.InputUser(8, 9))
    assert entity_dict(input_mention) == {"type": "mention_name", "offset": 0, "length": 1, "user_id": 8}


# --- scalar fields, service messages, errors ---------------------------------------------------


def test_scalar_fields():
    message = msg(
        edit_date=datetime(2025, 12, 17, 11, 0, tzinfo=UTC), views=5, forwards=2, grouped_id=13_000_000_000,
        post_author="Editor", replies=types.MessageReplies(replies=3, replies_pts=1),
        reply_to=types.MessageReplyHeader(reply_to_msg_id=9),
    )
    record = normalize(message)
    assert record == MessageRecord(
        channel_id=777, message_id=10, date=WHEN, text="hello",
        edit_date=datetime(2025, 12, 17, 11, 0, tzinfo=UTC),
        views=5, forwards=2, replies=3, reply_to=9, grouped_id=13_000_000_000, post_author="Editor",
        raw=record.raw,
    )
    assert record.raw["date"] == "2025-12-17T10:00:00+00:00"
    story_reply = msg(reply_to=types.MessageReplyStoryHeader(peer=types.PeerChannel(1), story_id=2))
    assert normalize(story_reply).reply_to is None


def test_naive_dates_are_taken_as_utc_and_text_is_never_none():
    record = normalize(msg(date=datetime(2024, 1, 2, 3, 4, 5), message=None))
    assert record.date == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert record.text == ""


def test_service_and_empty_messages_are_not_content():
    service = types.MessageService(id=1, peer_id=types.PeerChannel(777), date=WHEN,
                                   action=types.MessageActionPinMessage())
    empty = types.MessageEmpty(id=2, peer_id=types.PeerChannel(777))
    assert is_content(msg()) and not is_content(service) and not is_content(empty) and not is_content(None)
    for message in (service, empty):
        with pytest.raises(ValueError, match="not a content message"):
            normalize(message)


def test_non_channel_messages_are_rejected():
    with pytest.raises(ValueError, match="not from a channel"):
        normalize(msg(peer_id=types.PeerUser(5)))


def test_json_safe():
    value = {
        "when": datetime(2024, 1, 1, 12, tzinfo=UTC), "naive": datetime(2024, 1, 1, 12),
        "b": b"\xff\x00", "t": (1, 2), "peer": types.PeerChannel(3), 4: {"s": {7}},
    }
    assert json_safe(value) == {
        "when": "2024-01-01T12:00:00+00:00", "naive": "2024-01-01T12:00:00+00:00", "b": "/wA=",
        "t": [1, 2], "peer": {"_": "PeerChannel", "channel_id": 3}, "4": {"s": [7]},
    }


# --- property: anything normalised stays JSON and rebuilds to the same record ------------------


entity_strategy = st.builds(
    build_entity, st.sampled_from(entity_classes()), st.integers(0, 50), st.integers(1, 50),
)
fwd_strategy = st.none() | st.builds(
    lambda pid, post, name, kind: types.MessageFwdHeader(
        date=WHEN, from_id=None if kind is None else kind(pid), channel_post=post, from_name=name),
    st.integers(1, 2**40), st.none() | st.integers(1, 10**6), st.none() | st.text(max_size=20),
    st.sampled_from([None, types.PeerChannel, types.PeerUser, types.PeerChat]),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    text=st.text(max_size=200),
    entities=st.lists(entity_strategy, max_size=5),
    media=st.sampled_from([None, *MEDIA_CASES.values()]),
    fwd=fwd_strategy,
    views=st.none() | st.integers(0, 2**31 - 1),
    seconds=st.integers(0, 2**31 - 1),
)
def test_property_raw_round_trip(text, entities, media, fwd, views, seconds):
    when = datetime.fromtimestamp(seconds, UTC)
    message = msg(message=text, entities=entities, media=media, fwd_from=fwd, views=views, date=when)
    record = normalize(message)
    json.loads(json.dumps(record.raw))
    assert record.raw["message"] == text and record.text.startswith(text)  # then what the media shows
    assert normalize(tl_from_dict(record.raw)) == record
