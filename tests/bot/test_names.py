"""Channel names: one parser for what users type, one reader of a channel's username."""

import pytest
from telethon.tl import types

from bot.config import ConfigError, load_settings
from bot.names import parse_channel_name, username_of


@pytest.mark.parametrize("given, expected", [
    ("@MFARussia", "MFARussia"), ("MFARussia", "MFARussia"), ("https://t.me/rusembc", "rusembc"),
    ("t.me/rusembc/123", "rusembc"), ("https://t.me/s/rusembc", "rusembc"), (" @abc_d ", "abc_d"),
    ("t.me/s/MFARussia", "MFARussia"), ("https://telegram.me/rusembc?single", "rusembc"),
])
def test_names_links_and_mentions_give_the_username(given, expected):
    assert parse_channel_name(given) == expected


@pytest.mark.parametrize("bad", ["https://t.me/+AbCdEf", "t.me/joinchat/AbCd", "", "@", "two words", "1abc",
                                 "abc", "a" * 33])
def test_invite_links_and_impossible_usernames_are_refused(bad):
    with pytest.raises(ValueError):
        parse_channel_name(bad)


def test_the_config_accepts_exactly_what_the_parser_accepts():
    settings = load_settings(environ={"CHANWATCH_CHANNELS": "@MFARussia, https://t.me/s/rusembc/5 abc_d"})
    assert settings.channels == ("MFARussia", "rusembc", "abc_d")
    with pytest.raises(ConfigError, match="CHANWATCH_CHANNELS"):
        load_settings(environ={"CHANWATCH_CHANNELS": "t.me/+AbCdEf"})


def test_username_of_reads_the_first_active_collectible_username_with_a_name():
    chat = types.Channel(id=1, title="t", photo=types.ChatPhotoEmpty(), date=None, username=None,
                         usernames=[types.Username("", active=True), types.Username("old", active=False),
                                    types.Username("nine", active=True)])
    assert username_of(chat) == "nine"
    assert username_of(types.Channel(id=1, title="t", photo=types.ChatPhotoEmpty(), date=None,
                                     username="main")) == "main"
    assert username_of(object()) is None
