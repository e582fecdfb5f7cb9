"""Files stored in another data centre: GetFile elsewhere answers FILE_MIGRATE_N and Telethon's own
exported-sender code (help.GetConfig, auth.ExportAuthorization/ImportAuthorization) runs against the
simulator, never the network."""

from __future__ import annotations

import random

import pytest
from telethon import TelegramClient, errors, functions, types

from bot.simulator import SimUser, World
from bot.simulator import media as sim_media


def blob(size: int, seed: int = 1) -> bytes:
    """``size`` seeded random bytes."""
    return random.Random(seed).randbytes(size)


def document_location(msg: types.Message) -> types.InputDocumentFileLocation:
    d = msg.media.document
    return types.InputDocumentFileLocation(id=d.id, access_hash=d.access_hash,
                                           file_reference=d.file_reference, thumb_size="")


async def test_a_document_in_dc_4_downloads_through_an_exported_sender_logged_in_by_export_and_import(
        world: World, reader: TelegramClient, reader_account: SimUser) -> None:
    ch = world.add_channel("farchan", "Far")
    data = blob(300_000)
    world.post(ch, "far", media=world.document(data, file_name="far.bin", dc_id=4))
    msg = await reader.get_messages(ch.input_peer, ids=1)
    world.reset_requests()

    assert msg.media.document.dc_id == 4
    assert await reader.download_media(msg, file=bytes) == data

    assert world.requests["auth.ExportAuthorization"] == 1
    assert world.requests["auth.ImportAuthorization"] == 1
    assert world.requests_by_dc[4]["upload.GetFile"] == 3  # Telethon's 128 KB parts
    # download_media hands Telethon the document's location without its DC: the home DC answers the
    # first GetFile with FILE_MIGRATE_4, and Telethon borrows a sender for DC 4
    assert world.requests_by_dc[2]["upload.GetFile"] == 1
    assert world.requests_by_account[reader_account.id]["upload.GetFile"] == 4  # both sessions: the reader
    assert world.logins == {}  # importing an exported authorization is no new login
    assert world.bytes_served == {msg.media.document.id: len(data)}


async def test_a_second_download_from_the_same_dc_reuses_the_borrowed_sender(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("farchan", "Far")
    first, second = blob(10_000, 1), blob(20_000, 2)
    world.post(ch, "a", media=world.document(first, dc_id=4))
    world.post(ch, "b", media=world.photo(second, dc_id=4))
    msgs = await reader.get_messages(ch.input_peer, ids=[1, 2])

    assert await reader.download_media(msgs[0], file=bytes) == first
    assert await reader.download_media(msgs[1], file=bytes) == second
    assert world.requests["auth.ExportAuthorization"] == 1
    assert world.requests["auth.ImportAuthorization"] == 1
    assert world.requests_by_dc[4]["upload.GetFile"] == 2
    assert world.requests_by_dc[2]["upload.GetFile"] == 2  # each starts at home: FILE_MIGRATE_4


async def test_getfile_on_the_home_dc_answers_file_migrate_and_telethon_follows_it(
        world: World, reader: TelegramClient) -> None:
    ch = world.add_channel("farchan", "Far")
    data = blob(50_000)
    world.post(ch, "far", media=world.document(data, dc_id=3))
    msg = await reader.get_messages(ch.input_peer, ids=1)
    loc = document_location(msg)

    with pytest.raises(errors.FileMigrateError) as migrate:
        await reader(functions.upload.GetFileRequest(loc, offset=0, limit=64 * 1024))
    assert migrate.value.new_dc == 3

    # without a dc_id Telethon asks the home DC first, then borrows a sender for the DC named by the error
    assert await reader.download_file(loc, file=bytes) == data
    assert world.requests_by_dc[2]["upload.GetFile"] == 2
    assert world.requests_by_dc[3]["upload.GetFile"] == 1
    assert world.requests["auth.ImportAuthorization"] == 1


async def test_help_getconfig_lists_every_dc_and_names_the_senders_own(
        world: World, reader: TelegramClient) -> None:
    config = await reader(functions.help.GetConfigRequest())

    assert config.this_dc == sim_media.HOME_DC
    assert [(o.id, o.ip_address) for o in config.dc_options] == [
        (n, sim_media.dc_address(n)) for n in sim_media.DC_IDS]


async def test_an_exported_authorization_is_for_another_dc_and_works_once(
        world: World, reader: TelegramClient) -> None:
    with pytest.raises(errors.DcIdInvalidError):
        await reader(functions.auth.ExportAuthorizationRequest(sim_media.HOME_DC))
    ch = world.add_channel("farchan", "Far")
    world.post(ch, "far", media=world.document(blob(1_000), dc_id=5))
    msg = await reader.get_messages(ch.input_peer, ids=1)
    await reader.download_media(msg, file=bytes)

    assert world.exported_authorizations == {}  # the one exported was used up by the import


def test_a_file_cannot_be_placed_in_a_dc_that_does_not_exist(world: World) -> None:
    with pytest.raises(ValueError, match="no DC 9"):
        world.document(b"x", dc_id=9)
