"""The simulator serves real file bytes to Telethon's own downloads, under Telegram's rules."""

from __future__ import annotations

import random

import pytest
from telethon import TelegramClient, errors, types
from telethon.tl.functions.upload import GetFileRequest

from bot.simulator import SimUser, World, media

MB = 1024 * 1024


def blob(size: int, seed: int = 1) -> bytes:
    """``size`` seeded random bytes: a file content no slicing mistake can reproduce by accident."""
    return random.Random(seed).randbytes(size)


def location(msg: types.Message, *, thumb_size: str = "", **override: object) -> object:
    """The GetFile location of a message's document or photo (``override`` replaces fields)."""
    if isinstance(msg.media, types.MessageMediaPhoto):
        p = msg.media.photo
        fields = dict(id=p.id, access_hash=p.access_hash, file_reference=p.file_reference,
                      thumb_size=thumb_size or p.sizes[-1].type)
        fields.update(override)
        return types.InputPhotoFileLocation(**fields)
    d = msg.media.document
    fields = dict(id=d.id, access_hash=d.access_hash, file_reference=d.file_reference, thumb_size=thumb_size)
    fields.update(override)
    return types.InputDocumentFileLocation(**fields)


async def test_a_3_mb_document_downloads_with_its_exact_bytes_in_chunks_that_obey_the_rules(
        world: World, reader: TelegramClient, tmp_path) -> None:
    ch = world.add_channel("filechan", "Files")
    data = blob(3 * MB + 12_345)  # not a multiple of the chunk size: the last chunk is short
    world.post(ch, "report", media=world.document(data, mime_type="application/pdf", file_name="r.pdf"))
    msg = await reader.get_messages(ch.input_peer, ids=1)

    path = await reader.download_media(msg, file=str(tmp_path / "r.pdf"))

    assert (tmp_path / "r.pdf").read_bytes() == data
    assert path == str(tmp_path / "r.pdf")
    assert world.file_rule_violations == []
    assert world.requests["upload.GetFile"] == -(-len(data) // (128 * 1024))  # Telethon's 128 KB parts
    assert world.bytes_served == {msg.media.document.id: len(data)}


async def test_a_photo_downloads_its_largest_size_and_the_thumbnail_serves_smaller_bytes(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("filechan", "Files")
    data = blob(70_000)
    world.post(ch, "pic", media=world.photo(data, w=1280, h=960))
    msg = await reader.get_messages(ch.input_peer, ids=1)

    sizes = msg.media.photo.sizes
    assert [(s.type, s.size) for s in sizes] == [("m", len(media.thumb_bytes(data))), ("y", len(data))]
    assert await reader.download_media(msg, file=bytes) == data
    thumb = await reader.download_media(msg, file=bytes, thumb="m")
    assert thumb == media.thumb_bytes(data) and len(thumb) < len(data)
    assert world.file_rule_violations == []


async def test_a_photo_wider_than_1280_px_has_its_full_size_as_type_w(world: World) -> None:
    photo = world.photo(b"x" * 5000, w=2560, h=1440).photo
    assert [s.type for s in photo.sizes] == ["m", "w"]
    assert photo.sizes[0].w == 320 and photo.sizes[1].size == 5000


@pytest.mark.parametrize(("offset", "limit", "error"), [
    (100, 4096, errors.OffsetInvalidError),            # offset not 4 KB-aligned
    (0, 1000, errors.LimitInvalidError),               # limit not a multiple of 4 KB
    (0, 3 * 4096, errors.LimitInvalidError),           # a multiple of 4 KB that does not divide 1 MB
    (0, 2 * MB, errors.LimitInvalidError),             # more than 1 MB
    (MB - 4096, 8192, errors.LimitInvalidError),       # crosses the 1 MB boundary
])
async def test_a_chunk_request_breaking_the_rules_gets_telegrams_error_and_is_recorded(
        world: World, reader: TelegramClient, offset: int, limit: int, error: type) -> None:
    ch = world.add_channel("filechan", "Files")
    world.post(ch, "doc", media=world.document(blob(3 * MB)))
    msg = await reader.get_messages(ch.input_peer, ids=1)

    with pytest.raises(error):
        await reader(GetFileRequest(location(msg), offset=offset, limit=limit))

    assert len(world.file_rule_violations) == 1
    assert world.bytes_served.total() == 0


async def test_chunks_never_cross_a_megabyte_the_last_is_short_and_past_the_end_is_empty(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("filechan", "Files")
    data = blob(MB + 5000)
    world.post(ch, "doc", media=world.document(data))
    msg = await reader.get_messages(ch.input_peer, ids=1)

    first = await reader(GetFileRequest(location(msg), offset=MB - 4096, limit=4096, precise=True))
    last = await reader(GetFileRequest(location(msg), offset=MB, limit=MB, cdn_supported=True))
    past = await reader(GetFileRequest(location(msg), offset=2 * MB, limit=4096))

    assert first.bytes == data[MB - 4096:MB]
    assert last.bytes == data[MB:] and len(last.bytes) == 5000
    assert past.bytes == b""
    assert world.file_rule_violations == []


async def test_a_wrong_access_hash_or_an_unknown_size_is_refused(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("filechan", "Files")
    world.post(ch, "doc", media=world.document(blob(10_000)))
    world.post(ch, "pic", media=world.photo(blob(10_000)))
    doc, pic = await reader.get_messages(ch.input_peer, ids=[1, 2])

    with pytest.raises(errors.FileIdInvalidError):
        await reader(GetFileRequest(location(doc, access_hash=doc.media.document.access_hash + 1), 0, 4096))
    with pytest.raises(errors.LocationInvalidError):
        await reader(GetFileRequest(location(pic, thumb_size="x"), 0, 4096))
    assert world.bytes_served.total() == 0


async def test_an_expired_reference_fails_and_a_reread_message_downloads_fine(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("filechan", "Files")
    data = blob(20_000)
    world.post(ch, "pic", media=world.photo(data))
    stale = await reader.get_messages(ch.input_peer, ids=1)

    world.expire_file_references()

    with pytest.raises(errors.FileReferenceExpiredError):
        await reader.download_media(stale, file=bytes)
    with pytest.raises(errors.FileReferenceInvalidError):  # a reference the file never had
        await reader(GetFileRequest(location(stale, file_reference=b"forged"), 0, 4096))
    fresh = await reader.get_messages(ch.input_peer, ids=1)
    assert fresh.media.photo.file_reference != stale.media.photo.file_reference
    assert await reader.download_media(fresh, file=bytes) == data


async def test_telethon_refetches_a_document_whose_reference_expired_and_finishes_the_download(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("filechan", "Files")
    data = blob(300_000)
    world.post(ch, "doc", media=world.document(data))
    stale = await reader.get_messages(ch.input_peer, ids=1)
    world.expire_file_references(stale.media.document.id)
    world.reset_requests()

    assert await reader.download_media(stale, file=bytes) == data
    assert world.requests["channels.GetMessages"] == 1  # Telethon re-read the message once


async def test_expiring_one_file_leaves_the_others_references_alone(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("filechan", "Files")
    world.post(ch, "a", media=world.document(blob(5000, seed=1)))
    world.post(ch, "b", media=world.document(blob(5000, seed=2)))
    a, b = await reader.get_messages(ch.input_peer, ids=[1, 2])

    world.expire_file_references(a.media.document.id)

    assert await reader.download_media(b, file=bytes) == blob(5000, seed=2)
    with pytest.raises(errors.FileReferenceExpiredError):
        await reader(GetFileRequest(location(a), 0, 4096))


async def test_a_forward_carries_the_same_document_id_and_bytes_served_counts_each_download(
        world: World, reader: TelegramClient) -> None:
    src = world.add_channel("source", "Source")
    dst = world.add_channel("copier", "Copier")
    data = blob(200_000)
    world.post(src, "original", media=world.document(data, file_name="a.pdf"))
    world.forward(src, 1, dst)
    orig = await reader.get_messages(src.input_peer, ids=1)
    fwd = await reader.get_messages(dst.input_peer, ids=1)

    assert fwd.fwd_from is not None
    assert fwd.media.document.id == orig.media.document.id
    assert fwd.media.document.access_hash == orig.media.document.access_hash
    assert await reader.download_media(orig, file=bytes) == data
    assert world.bytes_served[orig.media.document.id] == len(data)
    assert await reader.download_media(fwd, file=bytes) == data
    assert world.bytes_served[orig.media.document.id] == 2 * len(data)  # the same file, fetched twice


async def test_file_ids_are_unique_per_world_and_start_afresh_in_a_new_one(world: World) -> None:
    ids = [world.document(b"a").document.id, world.photo(b"b").photo.id, world.document(b"c").document.id]
    other = World()
    assert len(set(ids)) == 3
    assert other.document(b"a").document.id == ids[0]


async def test_media_built_without_a_world_are_served_with_their_size(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("filechan", "Files")
    world.post(ch, "v", media=media.video(size=150_001))
    msg = await reader.get_messages(ch.input_peer, ids=1)

    data = await reader.download_media(msg, file=bytes)

    assert len(data) == 150_001
    assert data == media.pattern_bytes(msg.media.document.id, 0, 150_001)


async def test_injected_flood_waits_fail_file_downloads(world: World, reader: TelegramClient,
                                                       reader_account: SimUser) -> None:
    ch = world.add_channel("filechan", "Files")
    world.post(ch, "doc", media=world.document(blob(300_000)))
    msg = await reader.get_messages(ch.input_peer, ids=1)
    world.inject_flood("upload.GetFile", 30, after=1)

    with pytest.raises(errors.FloodWaitError) as raised:
        await reader.download_media(msg, file=bytes)

    assert raised.value.seconds == 30
    assert world.requests_by_account[reader_account.id]["upload.GetFile"] == 2
    assert world.bytes_served[msg.media.document.id] == 128 * 1024  # only the chunk before the flood


async def test_a_bot_sends_a_document_the_receiver_gets_its_name_mime_type_and_bytes(
        world: World, bot_client: TelegramClient, bot_account: SimUser, reader: TelegramClient,
        reader_account: SimUser, tmp_path) -> None:
    world.say(reader_account, bot_account, "/start")  # the bot learns how to reach the reader
    await world.settle()
    data = blob(300_000, seed=7)  # three of Telethon's 128 KB upload parts, the last one short
    report = tmp_path / "amplification-2026-11-30.html"
    report.write_bytes(data)

    sent = await bot_client.send_file(reader_account.id, report, caption="the report", force_document=True)

    [entry] = [e for e in world.chat_log(reader_account, with_=bot_account) if e.sender_id == bot_account.id]
    assert isinstance(entry.media, types.MessageMediaDocument) and entry.text == "the report"
    assert entry.media.document.mime_type == "text/html"
    assert [a.file_name for a in entry.media.document.attributes
            if isinstance(a, types.DocumentAttributeFilename)] == ["amplification-2026-11-30.html"]
    assert world.files[entry.media.document.id].data == data
    assert sent.file.name == "amplification-2026-11-30.html"
    [received] = await reader.get_messages(bot_account.id, limit=1)
    assert received.file.name == "amplification-2026-11-30.html" and received.file.size == len(data)
    assert await reader.download_media(received, file=bytes) == data


async def test_a_document_upload_missing_a_part_is_refused_as_telegram_does(
        world: World, bot_client: TelegramClient, bot_account: SimUser, reader_account: SimUser) -> None:
    world.say(reader_account, bot_account, "/start")
    await world.settle()
    uploaded = await bot_client.upload_file(blob(300_000), file_name="r.html")
    missing = types.InputFile(id=uploaded.id, parts=uploaded.parts + 1, name="r.html", md5_checksum="")
    media = types.InputMediaUploadedDocument(file=missing, mime_type="text/html", attributes=[])

    with pytest.raises(errors.FilePartsInvalidError):
        await bot_client.send_file(reader_account.id, media)
