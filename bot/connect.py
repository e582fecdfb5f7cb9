"""Telegram clients made from `Settings`, and connecting them, written once for `run`, `backfill`
and `login`.

`connect_user` builds the reading account's client, connects it and checks that the session is
logged in; `connect_bot` builds the bot's client and logs it in with its token. What can go wrong
is a `ConnectError` carrying one line (secrets redacted) and the exit status: 2 for what the user
must fix (a session that is not logged in, a refused token), 1 for what may pass (Telegram out of
reach, or something else answering). A missing credential is the `ConfigError` of
`Settings.require_api` / `require_session` / `require_bot_token`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from telethon import TelegramClient

from bot.config import Settings
from bot.telegram import (
    BotLoginError,
    describe_client,
    make_bot_client,
    make_user_client,
    private_file,
    redact,
    start_bot,
)
from bot.transport import UNREACHABLE, started, within_start

__all__ = ["UNREACHABLE", "ConnectError", "Prepare", "bot_client", "connect_bot", "connect_user",
           "unreachable", "user_client"]

log = logging.getLogger("chanwatch.connect")

Prepare = Callable[[TelegramClient, str], None]
"""Called as `prepare(client, "user" | "bot")` on each client before it connects (tests attach the
simulator there)."""

class ConnectError(Exception):
    """A client cannot be used: the message says why and what to do; `status` is the exit status
    (2: the user must fix something, 1: it may pass)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def unreachable(exc: BaseException, client: TelegramClient, settings: Settings,
                whose: str = "") -> ConnectError:
    """Telegram out of reach, or something else answering: one line naming the server, exit 1."""
    return ConnectError(redact(f"cannot reach Telegram{whose} ({describe_client(client)}): "
                               f"{type(exc).__name__}: {exc}; check the network, a proxy or TG_SERVER",
                               settings.secrets()), status=1)


def _options(settings: Settings) -> dict[str, object]:
    return {"server": settings.server, "server_public_key_pem": settings.server_public_key,
            "dc_id": settings.server_dc}


def user_client(settings: Settings, *, prepare: Prepare | None = None,
                flood_sleep_threshold: int = 0) -> TelegramClient:
    """The reading account's client (not connected), on TG_SESSION or TG_SESSION_FILE (a new
    session when neither is set, as `login` wants)."""
    api_id, api_hash = settings.require_api()
    try:
        client = make_user_client(api_id=api_id, api_hash=api_hash, session=settings.session,
                                  session_file=settings.session_file,
                                  flood_sleep_threshold=flood_sleep_threshold, **_options(settings))
    except ValueError as exc:
        message = f"TG_SESSION: {exc}" if "session" in str(exc) else str(exc)
        raise ConnectError(redact(message, settings.secrets())) from None
    if prepare is not None:
        prepare(client, "user")
    return client


def bot_client(settings: Settings, *, prepare: Prepare | None = None) -> TelegramClient:
    """The bot's client (not connected), on its own session file (`Settings.bot_session_path`,
    created with mode 0600): the bot's login and the access hashes of the chats that wrote to it
    outlive a restart, so a restart costs no new bot login (which Telegram rate-limits) and alerts
    reach known chats without their writing again."""
    api_id, api_hash = settings.require_api()
    path = settings.bot_session_path
    if path is not None:
        try:
            private_file(path)
        except OSError as exc:
            raise ConnectError(f"TG_BOT_SESSION_FILE: cannot write the bot's session at {path}: "
                               f"{exc.strerror or exc}; point TG_BOT_SESSION_FILE at a writable file"
                               ) from None
    client = make_bot_client(api_id=api_id, api_hash=api_hash, session_file=path, flood_sleep_threshold=0,
                             **_options(settings))
    if prepare is not None:
        prepare(client, "bot")
    return client


async def connect_user(settings: Settings, *, prepare: Prepare | None = None) -> TelegramClient:
    """The reading account's client, connected and logged in; disconnected again if it is not."""
    settings.require_api()
    settings.require_session()
    client = user_client(settings, prepare=prepare)
    try:
        try:
            await within_start(client, client.connect())
            authorised = await within_start(client, client.is_user_authorized())
        except UNREACHABLE as exc:
            raise unreachable(exc, client, settings) from None
        if not authorised:
            variable = "TG_SESSION_FILE" if settings.session_file else "TG_SESSION"
            raise ConnectError(f"{variable}: the user session is not logged in (expired or revoked); "
                               "run `chanwatch login` and update it")
    except BaseException:
        await client.disconnect()
        raise
    started(client)
    return client


async def connect_bot(settings: Settings, *, prepare: Prepare | None = None) -> TelegramClient:
    """The bot's client, connected and logged in with TG_BOT_TOKEN; disconnected again if not.

    A saved session of this bot is used as it is (no new login); a saved session of another
    account (the token changed) is logged out, and the bot logs in afresh.
    """
    settings.require_api()
    token = settings.require_bot_token()
    client = bot_client(settings, prepare=prepare)
    try:
        try:
            client = await _log_bot_in(client, settings, token, prepare)
        except UNREACHABLE as exc:
            raise unreachable(exc, client, settings, " for the bot") from None
    except BaseException:
        await client.disconnect()
        raise
    started(client)
    return client


async def _log_bot_in(client: TelegramClient, settings: Settings, token: str,
                      prepare: Prepare | None) -> TelegramClient:
    """Connect the bot's client and make sure it is this token's bot: the saved session as it is,
    else a new login (after logging another bot's session out). Network failures propagate."""
    await within_start(client, client.connect())
    me = await within_start(client, client.get_me())  # None when the session is not logged in
    if me is not None and str(me.id) == token.split(":", 1)[0].strip():
        return client
    if me is not None:
        log.warning("the bot's session %s belongs to another account (id %s); logging the bot in afresh",
                    settings.bot_session_path, me.id)
        await within_start(client, client.log_out())  # forgets that login, deletes the session file
        fresh = bot_client(settings, prepare=prepare)
        try:
            await within_start(fresh, fresh.connect())
            return await _token_login(fresh, settings, token)
        except BaseException:
            await fresh.disconnect()
            raise
    return await _token_login(client, settings, token)


async def _token_login(client: TelegramClient, settings: Settings, token: str) -> TelegramClient:
    """Log the connected bot client in with its token; a refused token is a ConnectError (exit 2)."""
    try:
        await within_start(client, start_bot(client, token))
    except (BotLoginError, ValueError) as exc:
        raise ConnectError(f"TG_BOT_TOKEN: {redact(str(exc), settings.secrets())}; check the token "
                           "with @BotFather (/token)") from None
    return client
