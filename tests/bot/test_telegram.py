"""bot.telegram: client factories (no network), custom server, flood policy, redaction."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import rsa
from telethon import TelegramClient, errors
from telethon.crypto import rsa as telethon_rsa
from telethon.sessions import SQLiteSession, StringSession

from bot.telegram import (
    FLOOD_ERRORS,
    BotLoginError,
    FloodDeferred,
    FloodPolicy,
    RedactingFilter,
    call_with_flood_policy,
    describe_client,
    make_bot_client,
    make_user_client,
    redact,
    register_server_key,
    start_bot,
)

API_HASH = "0123456789abcdef0123456789abcdef"
BOT_TOKEN = "123456789:AAHsecretsecretsecretsecretsecret0"
NOW = datetime(2025, 12, 17, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def keypair():
    """A small throwaway RSA key (registration only reads n and e)."""
    public, _private = rsa.newkeys(512)
    return public


@pytest.fixture(autouse=True)
def restore_server_keys():
    """Each test leaves Telethon's global key table as it found it."""
    saved = dict(telethon_rsa._server_keys)
    yield
    telethon_rsa._server_keys.clear()
    telethon_rsa._server_keys.update(saved)


def authorised_string_session() -> str:
    """A syntactically real string session (dc 4, an address, a fake 256-byte auth key)."""
    from telethon.crypto import AuthKey

    s = StringSession()
    s.set_dc(4, "149.154.167.91", 443)
    s.auth_key = AuthKey(bytes(range(256)))
    return s.save()


# --- factories ----------------------------------------------------------------------------------


async def test_user_client_defaults_do_not_connect():
    client = make_user_client(api_id=1, api_hash=API_HASH)
    assert isinstance(client, TelegramClient) and not client.is_connected()
    assert isinstance(client.session, StringSession)
    assert client.flood_sleep_threshold == 5
    assert client.api_hash == API_HASH and client.api_id == 1


async def test_string_session_and_session_file(tmp_path):
    text = authorised_string_session()
    client = make_user_client(api_id=1, api_hash=API_HASH, session=text, flood_sleep_threshold=0)
    assert (client.session.dc_id, client.session.server_address) == (4, "149.154.167.91")
    assert client.session.auth_key is not None and client.flood_sleep_threshold == 0

    bot = make_bot_client(api_id=1, api_hash=API_HASH, session_file=tmp_path / "bot")
    assert isinstance(bot.session, SQLiteSession)
    bot.session.close()
    assert (tmp_path / "bot.session").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_id": 0, "api_hash": API_HASH}, "api_id"),
        ({"api_id": "1", "api_hash": API_HASH}, "api_id"),
        ({"api_id": 1, "api_hash": ""}, "api_hash"),
        ({"api_id": 1, "api_hash": API_HASH, "session": "x", "session_file": "y"}, "not both"),
        ({"api_id": 1, "api_hash": API_HASH, "server": ("h", 0)}, "port"),
        ({"api_id": 1, "api_hash": API_HASH, "server_public_key_pem": "nope"}, "PEM"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_user_client(**kwargs)


def test_bad_string_session_is_not_echoed():
    bogus = "1" + "Q" * 40 + "secretpart"
    with pytest.raises(ValueError, match="string session is not valid") as info:
        make_user_client(api_id=1, api_hash=API_HASH, session=bogus)
    assert bogus not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__


async def test_extra_client_kwargs_pass_through():
    client = make_user_client(api_id=1, api_hash=API_HASH, receive_updates=False, request_retries=2)
    assert client._no_updates is True and client._request_retries == 2


# --- custom server ------------------------------------------------------------------------------


async def test_custom_server_and_pkcs1_key_registered(keypair):
    pem = keypair.save_pkcs1().decode()
    client = make_user_client(api_id=1, api_hash=API_HASH, server=("10.0.0.5", 8443),
                              server_public_key_pem=pem, dc_id=1)
    s = client.session
    assert (s.dc_id, s.server_address, s.port) == (1, "10.0.0.5", 8443)
    assert client._use_ipv6 is False  # so connect() keeps our address instead of resetting it
    fingerprint = telethon_rsa._compute_fingerprint(keypair)
    key, old = telethon_rsa._server_keys[fingerprint]
    assert (key.n, key.e, old) == (keypair.n, keypair.e, False)
    assert "10.0.0.5:8443" in describe_client(client)


async def test_x509_public_key_is_converted(keypair):
    import base64

    from pyasn1.codec.der import encoder
    from pyasn1.type import univ
    from rsa.asn1 import OpenSSLPubKey

    spki = OpenSSLPubKey()
    spki["header"]["oid"] = univ.ObjectIdentifier("1.2.840.113549.1.1.1")
    spki["key"] = univ.BitString.fromOctetString(keypair.save_pkcs1(format="DER"))
    der = encoder.encode(spki)
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der).decode() + "-----END PUBLIC KEY-----\n"
    fingerprint = register_server_key(pem)
    assert fingerprint == telethon_rsa._compute_fingerprint(keypair)
    assert telethon_rsa._server_keys[fingerprint][0].n == keypair.n


async def test_ipv6_server_sets_use_ipv6():
    client = make_bot_client(api_id=1, api_hash=API_HASH, server=("2001:db8::1", 443))
    assert client._use_ipv6 is True and client.session.server_address == "2001:db8::1"


async def test_custom_server_overrides_string_session_address_keeping_key():
    client = make_user_client(api_id=1, api_hash=API_HASH, session=authorised_string_session(),
                              server=("127.0.0.1", 4430))
    s = client.session
    assert (s.dc_id, s.server_address, s.port) == (2, "127.0.0.1", 4430)
    assert client.session.auth_key is not None


# --- secrets stay out of logs ------------------------------------------------------------------


async def test_factories_log_no_secrets(caplog, keypair):
    caplog.set_level(logging.DEBUG)
    text = authorised_string_session()
    make_user_client(api_id=1, api_hash=API_HASH, session=text, server=("127.0.0.1", 1),
                     server_public_key_pem=keypair.save_pkcs1().decode())
    make_bot_client(api_id=1, api_hash=API_HASH)
    assert "custom Telegram server" in caplog.text
    for secret in (API_HASH, text, BOT_TOKEN):
        assert secret not in caplog.text


class FakeBotClient:
    """Stands in for TelegramClient.start: records the token or fails echoing it, like a bad library."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.tokens: list[str] = []

    async def start(self, *, bot_token: str) -> FakeBotClient:
        self.tokens.append(bot_token)
        if self.fail:
            raise errors.AccessTokenInvalidError(request=None)
        return self


class EchoingError(Exception):
    pass


async def test_start_bot_passes_token_and_redacts_failures():
    ok = FakeBotClient()
    assert await start_bot(ok, BOT_TOKEN) is ok and ok.tokens == [BOT_TOKEN]

    failing = FakeBotClient(fail=True)
    with pytest.raises(BotLoginError) as info:
        await start_bot(failing, BOT_TOKEN)
    assert info.value.error_type == "AccessTokenInvalidError" and info.value.__cause__ is None

    class Echo(FakeBotClient):
        async def start(self, *, bot_token: str):
            raise EchoingError(f"bad token {bot_token}")

    with pytest.raises(BotLoginError) as info:
        await start_bot(Echo(), BOT_TOKEN)
    assert BOT_TOKEN not in str(info.value) and "[redacted]" in str(info.value)

    with pytest.raises(ValueError, match="BotFather"):
        await start_bot(FakeBotClient(), "not a token")


def test_redact():
    line = f"hash={API_HASH} token={BOT_TOKEN} id=42"
    assert redact(line, [API_HASH, BOT_TOKEN, None, "", "42"]) == "hash=[redacted] token=[redacted] id=42"
    assert redact("abc", []) == "abc"
    # Longest first: a secret containing another is removed whole.
    assert redact("xxABCDEFyy", ["ABCD", "ABCDEF"]) == "xx[redacted]yy"


def test_redacting_filter_cleans_records(caplog):
    logger = logging.getLogger("chanwatch.test.redact")
    f = RedactingFilter([BOT_TOKEN, API_HASH])
    caplog.handler.addFilter(f)
    try:
        caplog.set_level(logging.INFO, logger=logger.name)
        logger.info("login with %s and %s", BOT_TOKEN, API_HASH)
        try:
            raise RuntimeError(BOT_TOKEN)
        except RuntimeError:
            logger.exception("failed")
    finally:
        caplog.handler.removeFilter(f)
    assert caplog.records[0].getMessage() == "login with [redacted] and [redacted]"
    assert "RuntimeError: [redacted]" in caplog.text and BOT_TOKEN not in caplog.text


# --- flood policy -------------------------------------------------------------------------------


class FakeSleep:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def flaky(waits: list[int], result: str = "ok", error=errors.FloodWaitError):
    """A coroutine factory failing with a flood wait for each entry of `waits`, then succeeding."""
    remaining = list(waits)
    calls = []

    async def call() -> str:
        calls.append(1)
        if remaining:
            raise error(request=None, capture=remaining.pop(0))
        return result

    call.calls = calls
    return call


async def test_waits_under_the_bound_are_slept_through():
    sleep = FakeSleep()
    factory = flaky([3, 7])
    result = await call_with_flood_policy(factory, kind="get_history", max_wait=10, sleep=sleep)
    assert result == "ok" and sleep.calls == [3, 7] and len(factory.calls) == 3


async def test_wait_over_the_bound_defers(caplog):
    caplog.set_level(logging.INFO, logger="chanwatch.telegram")
    sleep = FakeSleep()
    with pytest.raises(FloodDeferred) as info:
        await call_with_flood_policy(
            flaky([300]), kind="get_history", max_wait=60, sleep=sleep, now=lambda: NOW)
    assert sleep.calls == []
    deferred = info.value
    assert (deferred.kind, deferred.seconds) == ("get_history", 300)
    assert deferred.retry_at == NOW + timedelta(seconds=300)
    assert isinstance(deferred.__cause__, errors.FloodWaitError)
    assert "get_history" in caplog.text and "300" in caplog.text


async def test_retries_are_bounded():
    sleep = FakeSleep()
    factory = flaky([1] * 10)
    with pytest.raises(FloodDeferred) as info:
        await call_with_flood_policy(
            factory, kind="send", max_wait=5, max_retries=3, sleep=sleep, now=lambda: NOW)
    assert sleep.calls == [1, 1, 1] and len(factory.calls) == 4
    assert info.value.seconds == 1 and info.value.retry_at == NOW + timedelta(seconds=1)


async def test_zero_retries_never_sleeps():
    sleep = FakeSleep()
    with pytest.raises(FloodDeferred):
        await call_with_flood_policy(flaky([1]), kind="k", max_wait=5, max_retries=0, sleep=sleep)
    assert sleep.calls == []


@pytest.mark.parametrize("error", FLOOD_ERRORS, ids=lambda e: e.__name__)
async def test_every_flood_error_kind_is_handled(error):
    sleep = FakeSleep()
    assert await call_with_flood_policy(flaky([2], error=error), kind="k", max_wait=5, sleep=sleep) == "ok"
    assert sleep.calls == [2]


async def test_premium_wait_is_covered_when_telethon_has_it():
    if hasattr(errors, "FloodPremiumWaitError"):
        assert errors.FloodPremiumWaitError in FLOOD_ERRORS


async def test_other_errors_propagate_and_results_pass_through():
    async def boom():
        raise errors.ChannelPrivateError(request=None)

    with pytest.raises(errors.ChannelPrivateError):
        await call_with_flood_policy(boom, kind="k", max_wait=5, sleep=FakeSleep())

    async def none_result():
        return None

    assert await call_with_flood_policy(none_result, kind="k", max_wait=5) is None  # a real None result


async def test_flood_policy_per_kind_bounds():
    policy = FloodPolicy(max_wait=10, max_retries=2, per_kind={"send_alert": 1})
    sleep = FakeSleep()
    assert await policy.call(flaky([5]), kind="get_history", sleep=sleep) == "ok"
    with pytest.raises(FloodDeferred):
        await policy.call(flaky([5]), kind="send_alert", sleep=sleep)
    assert sleep.calls == [5] and policy.max_wait_for("send_alert") == 1


async def test_flood_policy_drives_a_real_client_call():
    """Telethon's own `__call__` path: a real client whose sender raises the flood error."""
    client = make_user_client(api_id=1, api_hash=API_HASH, flood_sleep_threshold=0)
    attempts = []

    async def fake_call(sender, request, ordered=False, flood_sleep_threshold=None):
        attempts.append(request)
        if len(attempts) == 1:
            raise errors.FloodWaitError(request=request, capture=4)
        return "answer"

    client._call = fake_call  # the network cut: no connect, no sender
    from telethon.tl.functions.help import GetConfigRequest

    sleep = FakeSleep()
    result = await call_with_flood_policy(
        lambda: client(GetConfigRequest()), kind="config", max_wait=5, sleep=sleep)
    assert result == "answer" and sleep.calls == [4] and len(attempts) == 2
