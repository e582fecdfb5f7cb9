"""`chanwatch login`: phone, code and two-step password against the simulator; the saved session
logs the same account in again; `login --bot` checks the token."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.common import CliError
from bot.cli.daemon import login_bot, login_user
from bot.config import Settings, session_file_path
from bot.connect import ConnectError
from bot.simulator import World, attach, connect_client
from bot.simulator.handlers import LOGIN_CODE
from bot.telegram import make_user_client

API_HASH = "0123456789abcdef0123456789abcdef"
PHONE = "+1 555 000 1234"


def answers(*values: str) -> Callable[[str], str]:
    """An `ask` that replies with `values` in order and records the prompts."""
    queue: Iterator[str] = iter(values)

    def ask(prompt: str) -> str:
        ask.prompts.append(prompt)  # type: ignore[attr-defined]
        return next(queue)

    ask.prompts = []  # type: ignore[attr-defined]
    return ask


def no_secret(prompt: str) -> str:
    raise AssertionError(f"asked for a password: {prompt}")


def sim(world: World) -> Callable:
    return lambda client, kind: attach(world, client)


@pytest.fixture
def owner(world: World):
    """The account that logs in: it has a phone number and no two-step password."""
    return world.add_user("Olga", username="olga_reads", phone="15550001234")


async def logged_in_as(world: World, session: str) -> int:
    client = await connect_client(world, session=session, login=False)
    try:
        me = await client.get_me()
        return me.id
    finally:
        await client.disconnect()


async def test_login_prints_a_string_session_that_logs_the_same_account_in(world, owner, capsys):
    out = StringIO()
    ask = answers(PHONE, LOGIN_CODE)
    settings = Settings(api_id=1, api_hash=API_HASH)
    assert await login_user(settings, ask=ask, ask_secret=no_secret, prepare=sim(world), out=out) == 0
    assert [p.split(" ")[0] for p in ask.prompts] == ["Phone", "Login"]
    [line] = out.getvalue().splitlines()
    assert line.startswith("TG_SESSION=")
    assert await logged_in_as(world, line.removeprefix("TG_SESSION=")) == owner.id
    assert "logged in as Olga (@olga_reads)" in capsys.readouterr().err


async def test_a_wrong_code_is_asked_again(world, owner, capsys):
    out = StringIO()
    ask = answers("99999", LOGIN_CODE)
    settings = Settings(api_id=1, api_hash=API_HASH)
    assert await login_user(settings, phone=PHONE, ask=ask, ask_secret=no_secret, prepare=sim(world),
                            out=out) == 0
    assert len(ask.prompts) == 2
    assert "Invalid code" in capsys.readouterr().err


async def test_two_step_password_is_checked_with_srp_and_asked_again_when_wrong(world, owner, capsys):
    owner.password = "correct horse"
    secret = answers("battery staple", "correct horse")
    out = StringIO()
    settings = Settings(api_id=1, api_hash=API_HASH)
    assert await login_user(settings, phone=PHONE, ask=answers(LOGIN_CODE), ask_secret=secret,
                            prepare=sim(world), out=out) == 0
    assert len(secret.prompts) == 2 and "password" in secret.prompts[0].lower()
    assert "Invalid password" in capsys.readouterr().err
    session = out.getvalue().strip().removeprefix("TG_SESSION=")
    assert await logged_in_as(world, session) == owner.id


async def test_three_wrong_passwords_fail_with_one_line(world, owner):
    owner.password = "correct horse"
    settings = Settings(api_id=1, api_hash=API_HASH)
    with pytest.raises(CliError, match="^login failed: PasswordHashInvalidError"):
        await login_user(settings, phone=PHONE, ask=answers(LOGIN_CODE), ask_secret=answers("a", "b", "c"),
                         prepare=sim(world), out=StringIO())


async def test_login_writes_the_session_file_readable_by_the_owner_only(world, owner, tmp_path):
    target = tmp_path / "secrets" / "reader"
    settings = Settings(api_id=1, api_hash=API_HASH, session_file=target)
    out = StringIO()
    assert await login_user(settings, phone=PHONE, ask=answers(LOGIN_CODE), ask_secret=no_secret,
                            prepare=sim(world), out=out) == 0
    written = session_file_path(target)
    assert written == tmp_path / "secrets" / "reader.session"
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600
    assert "TG_SESSION=" not in out.getvalue() and str(written) in out.getvalue()
    client = make_user_client(api_id=1, api_hash=API_HASH, session_file=target)
    attach(world, client)
    await client.connect()
    try:
        assert (await client.get_me()).id == owner.id
    finally:
        await client.disconnect()


async def test_an_unknown_phone_number_is_one_clear_line(world, owner):
    settings = Settings(api_id=1, api_hash=API_HASH)
    with pytest.raises(CliError, match="^login failed: PhoneNumberUnoccupiedError"):
        await login_user(settings, phone="+44 20 7946 0000", ask=answers(), ask_secret=no_secret,
                         prepare=sim(world), out=StringIO())


async def test_login_bot_prints_the_bots_username(world, bot_account):
    out = StringIO()
    settings = Settings(api_id=1, api_hash=API_HASH, bot_token=bot_account.bot_token)
    assert await login_bot(settings, prepare=sim(world), out=out) == 0
    assert out.getvalue().strip() == f"bot token OK: @chanwatch_bot (id {bot_account.id})"


async def test_login_bot_with_a_refused_token_never_shows_it(world, bot_account):
    token = "123456:" + "B" * 35
    settings = Settings(api_id=1, api_hash=API_HASH, bot_token=token)
    with pytest.raises(ConnectError) as caught:
        await login_bot(settings, prepare=sim(world), out=StringIO())
    assert str(caught.value).startswith("TG_BOT_TOKEN: bot login failed: AccessTokenInvalidError")
    assert "B" * 35 not in str(caught.value)


def test_login_without_api_credentials_exits_2_naming_the_variable(tmp_path, monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith(("TG_", "CHANWATCH_")):
            monkeypatch.delenv(name)
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    assert main(["login", "--env-file", str(env_file)]) == 2
    assert capsys.readouterr().err.startswith("chanwatch: TG_API_ID: not set")
    assert main(["login", "--bot", "--env-file", str(env_file)]) == 2
    assert "TG_API_ID" in capsys.readouterr().err
    assert not list(Path(tmp_path).glob("*.session"))
