"""The simulator refuses a repeated random_id from the same sender as Telegram does: SendMessage,
SendMedia and SendMultiMedia answer RANDOM_ID_DUPLICATE (Telethon's RandomIdDuplicateError), whichever
session of the account sends it; another sender may use the same id, and a refused send uses up none."""

from __future__ import annotations

import pytest
from telethon import errors, types
from telethon.tl.functions.messages import SendMediaRequest, SendMessageRequest, SendMultiMediaRequest

from bot.simulator import connect_client
from bot.telegram import send_once


def text_to(user, text: str, random_id: int) -> SendMessageRequest:
    return SendMessageRequest(types.InputPeerUser(user.id, user.access_hash), text, random_id=random_id)


def sent_texts(world, user, bot) -> list[str]:
    return [e.text for e in world.chat_log(user, with_=bot) if e.sender_id == bot.id]


async def test_a_second_session_of_the_same_bot_cannot_resend_a_random_id(world, bot_account, alice):
    first = await connect_client(world, as_user=bot_account, bot=True)
    second = await connect_client(world, as_user=bot_account, bot=True)  # a takeover's new process
    await send_once(first, text_to(alice, "alert one", 42))
    with pytest.raises(errors.RandomIdDuplicateError):
        await send_once(second, text_to(alice, "alert one", 42))
    with pytest.raises(errors.RandomIdDuplicateError):
        await send_once(first, text_to(alice, "alert one again", 42))
    await send_once(second, text_to(alice, "alert two", 43))
    assert sent_texts(world, alice, bot_account) == ["alert one", "alert two"]


async def test_another_sender_may_use_the_same_random_id(world, bot_account, alice):
    other_bot = world.add_bot("other_bot")
    await send_once(await connect_client(world, as_user=bot_account, bot=True), text_to(alice, "from one", 7))
    await send_once(await connect_client(world, as_user=other_bot, bot=True), text_to(alice, "from other", 7))
    assert sent_texts(world, alice, bot_account) == ["from one"]
    assert sent_texts(world, alice, other_bot) == ["from other"]


async def test_a_refused_send_uses_up_no_random_id(world, bot_account, alice):
    client = await connect_client(world, as_user=bot_account, bot=True)
    with pytest.raises(errors.MessageEmptyError):
        await send_once(client, text_to(alice, "", 9))
    await send_once(client, text_to(alice, "now with text", 9))
    assert sent_texts(world, alice, bot_account) == ["now with text"]


async def test_a_photo_or_an_album_repeating_a_random_id_is_refused(world, bot_account, alice):
    client = await connect_client(world, as_user=bot_account, bot=True)
    peer = types.InputPeerUser(alice.id, alice.access_hash)
    photo = types.InputMediaUploadedPhoto(await client.upload_file(b"\xff\xd8 a photo", file_name="p.jpg"))
    await send_once(client, SendMediaRequest(peer, photo, "caption", random_id=11))
    again = types.InputMediaUploadedPhoto(await client.upload_file(b"\xff\xd8 a photo", file_name="p.jpg"))
    with pytest.raises(errors.RandomIdDuplicateError):
        await send_once(client, SendMediaRequest(peer, again, "caption", random_id=11))
    with pytest.raises(errors.RandomIdDuplicateError):  # one repeated id in an album refuses it whole
        await send_once(client, SendMultiMediaRequest(peer, [
            types.InputSingleMedia(again, random_id=12, message="a"),
            types.InputSingleMedia(again, random_id=11, message="b")]))
    with pytest.raises(errors.RandomIdDuplicateError):  # a text may not reuse a photo's id either
        await send_once(client, text_to(alice, "text", 11))
    assert len(sent_texts(world, alice, bot_account)) == 1
