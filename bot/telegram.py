"""Telethon client factory (user reader, bot), custom server option, flood policy, the request
sender that applies it, what a channel error means, and redaction.

Nothing here connects: the factories only build `TelegramClient`s, so tests and the simulator can
swap the network (`client._sender`) before `connect()`. Nothing here logs an api_hash, a session
string or a bot token; `redact` and `RedactingFilter` help the rest of the daemon do the same.
Only APIs present in Telethon 1.36 through 1.45 are used.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from telethon import TelegramClient, errors, utils
from telethon.crypto import rsa as telethon_rsa
from telethon.sessions import StringSession
from telethon.tl import types
from telethon.tl.tlobject import TLRequest

from bot.clock import Clock, Sleep, utcnow
from bot.transport import UNREACHABLE, Watch, client_options, register
from storage.peers import Peer
from storage.records import ChannelState

__all__ = [
    "DEFAULT_DC_ID",
    "FLOOD_ERRORS",
    "PEER_ERRORS",
    "REQUEST_TIMEOUT",
    "BotLoginError",
    "FloodDeferred",
    "FloodPolicy",
    "RedactingFilter",
    "RequestStats",
    "RequestTimeout",
    "Requests",
    "answered_within",
    "call_with_flood_policy",
    "classify_error",
    "describe_client",
    "forget_local_flood",
    "input_channel",
    "input_peer",
    "make_bot_client",
    "make_user_client",
    "private_file",
    "redact",
    "register_server_key",
    "send_once",
    "start_bot",
]

log = logging.getLogger("chanwatch.telegram")
T = TypeVar("T")

DEFAULT_DC_ID = 2  # Telethon's own default; test servers and self-hosted servers usually use it too
REDACTED = "[redacted]"

# Every 420 error that carries a `seconds` wait. FloodPremiumWaitError is absent from older layers.
FLOOD_ERRORS: tuple[type[errors.RPCError], ...] = tuple(
    cls for cls in (
        errors.FloodWaitError,
        getattr(errors, "FloodPremiumWaitError", None),
        getattr(errors, "FloodTestPhoneWaitError", None),
    ) if cls is not None
)


# --- redaction ------------------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret in `text` with `[redacted]` (longest first).

    Empty and very short values (< 4 chars) are ignored so that redaction never shreds ordinary text.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes the given secrets from every record's rendered message.

    Attach it to the handlers of the daemon (`handler.addFilter(RedactingFilter([...]))`) so even
    Telethon's own log lines and exception messages cannot carry a token or session string out.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message, redact it and freeze it into the record (args cleared)."""
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text, so rendering it here redacts tracebacks too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        return True


# --- client factory -------------------------------------------------------------------------------


def register_server_key(public_key_pem: str) -> int:
    """Register a server's RSA public key with Telethon and return its MTProto fingerprint.

    Telethon 1.x keeps server keys in `telethon.crypto.rsa._server_keys` ({fingerprint: (key, old)})
    and `add_key(pem, *, old)` (same keyword-only signature in 1.36 and 1.45) reads PKCS#1
    ("BEGIN RSA PUBLIC KEY"). An X.509 "BEGIN PUBLIC KEY" PEM is converted to PKCS#1 first.
    `old=False` marks it usable for the current (non-legacy) handshake.
    """
    import rsa  # python-rsa, a Telethon dependency

    pem = public_key_pem.strip()
    if "BEGIN RSA PUBLIC KEY" in pem:
        key = rsa.PublicKey.load_pkcs1(pem.encode())
    elif "BEGIN PUBLIC KEY" in pem:
        key = rsa.PublicKey.load_pkcs1_openssl_pem(pem.encode())
        pem = key.save_pkcs1().decode()
    else:
        raise ValueError("server public key must be a PEM ('BEGIN RSA PUBLIC KEY' or 'BEGIN PUBLIC KEY')")
    telethon_rsa.add_key(pem, old=False)
    return telethon_rsa._compute_fingerprint(key)


def private_file(path: Path) -> None:
    """Create `path` (and its folder) readable by the owner only, before any secret goes in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _session_for(session: str | None, session_file: str | Path | None) -> StringSession | str:
    """A StringSession (given or new, in memory) or a session file path; not both."""
    if session and session_file:
        raise ValueError("give either a string session or a session file, not both")
    if session_file:
        return str(session_file)  # Telethon's SQLiteSession; it appends ".session" if missing
    try:
        return StringSession(session or None)
    except Exception:  # the message may echo the string; never let it reach a log
        raise ValueError("the string session is not valid (was it cut or re-quoted?)") from None


def _build_client(
    *,
    api_id: int,
    api_hash: str,
    session: str | None,
    session_file: str | Path | None,
    server: tuple[str, int] | None,
    server_public_key_pem: str | None,
    dc_id: int,
    flood_sleep_threshold: int,
    client_kwargs: dict[str, Any],
) -> TelegramClient:
    """Shared body of both factories: session, client, then the custom server if any."""
    if not isinstance(api_id, int) or api_id <= 0:
        raise ValueError("api_id must be a positive integer (from my.telegram.org)")
    if not api_hash:
        raise ValueError("api_hash must not be empty (from my.telegram.org)")
    if server is not None:
        host, port = server
        if not host or not 0 < int(port) < 65536:
            raise ValueError("server must be (host, port) with a port in 1..65535")
        # Telethon's connect() resets the address to its default DC when the address family does
        # not match `use_ipv6`, so an IPv6 server needs use_ipv6=True from construction on.
        client_kwargs.setdefault("use_ipv6", ":" in host)
    # Telethon retries a 500-class error (INTERNAL, RPC_CALL_FAIL, -503 Timeout) itself; when its
    # retries run out it raises a bare ValueError unless asked for the last RPC error, which every
    # caller here handles as Telegram's failure (a channel backs off, an alert retries).
    client_kwargs.setdefault("raise_last_call_error", True)
    if server_public_key_pem:
        fingerprint = register_server_key(server_public_key_pem)
        log.info("registered custom server RSA key, fingerprint %016x", fingerprint & 0xFFFFFFFFFFFFFFFF)
    watch = Watch()
    client = TelegramClient(
        _session_for(session, session_file),
        api_id,
        api_hash,
        flood_sleep_threshold=flood_sleep_threshold,
        **{**client_options(watch), **client_kwargs},
    )
    register(client, watch)
    if server is not None:
        host, port = server
        # Session.set_dc(dc_id, server_address, port) is the documented way to point Telethon at
        # test or self-hosted servers (sync for the built-in String/SQLite sessions).
        client.session.set_dc(dc_id, host, int(port))
        log.info("using custom Telegram server dc %d at %s:%d", dc_id, host, int(port))
    return client


def make_user_client(
    *,
    api_id: int,
    api_hash: str,
    session: str | None = None,
    session_file: str | Path | None = None,
    server: tuple[str, int] | None = None,
    server_public_key_pem: str | None = None,
    dc_id: int = DEFAULT_DC_ID,
    flood_sleep_threshold: int = 5,
    **client_kwargs: Any,
) -> TelegramClient:
    """The user-account client that reads channels (bots cannot read channel history).

    Telethon sleeps through flood waits up to `flood_sleep_threshold` seconds itself; longer ones
    surface as FloodWaitError for `call_with_flood_policy`. Extra keyword arguments go to
    `TelegramClient` unchanged (e.g. `receive_updates=False`, `base_logger`). Does not connect.
    """
    return _build_client(
        api_id=api_id, api_hash=api_hash, session=session, session_file=session_file, server=server,
        server_public_key_pem=server_public_key_pem, dc_id=dc_id,
        flood_sleep_threshold=flood_sleep_threshold, client_kwargs=dict(client_kwargs),
    )


def make_bot_client(
    *,
    api_id: int,
    api_hash: str,
    session: str | None = None,
    session_file: str | Path | None = None,
    server: tuple[str, int] | None = None,
    server_public_key_pem: str | None = None,
    dc_id: int = DEFAULT_DC_ID,
    flood_sleep_threshold: int = 5,
    **client_kwargs: Any,
) -> TelegramClient:
    """The bot client that answers commands and sends alerts; log in with `start_bot(client, token)`.

    Give it its own session (never the user's): a persistent one (file or string) spares a new bot
    authorisation, which Telegram rate-limits, at every start. Does not connect.
    """
    return _build_client(
        api_id=api_id, api_hash=api_hash, session=session, session_file=session_file, server=server,
        server_public_key_pem=server_public_key_pem, dc_id=dc_id,
        flood_sleep_threshold=flood_sleep_threshold, client_kwargs=dict(client_kwargs),
    )


class BotLoginError(RuntimeError):
    """Bot login failed; the message is redacted and the original error (whose `.request` holds
    the token) is deliberately not chained. `error_type` names the original exception class."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


async def start_bot(client: TelegramClient, bot_token: str) -> TelegramClient:
    """Connect and log the bot in with its token (`client.start(bot_token=...)`), never logging it."""
    if not bot_token or not re.fullmatch(r"\d+:[\w-]+", bot_token.strip()):
        raise ValueError("the bot token does not look like '<digits>:<secret>' from @BotFather")
    try:
        await client.start(bot_token=bot_token.strip())
    except UNREACHABLE:  # the network's fault, not the token's: the caller says so
        raise
    except Exception as exc:
        message = redact(str(exc), [bot_token, bot_token.strip()])
        name = type(exc).__name__
        raise BotLoginError(f"bot login failed: {name}: {message}", name) from None
    return client


def describe_client(client: TelegramClient) -> str:
    """A log-safe one-line description: session kind and server, never keys or secrets."""
    s = client.session
    kind = "string" if isinstance(s, StringSession) else type(s).__name__
    return f"{kind} session, dc {s.dc_id} at {s.server_address}:{s.port}"


# --- flood policy ---------------------------------------------------------------------------------


def forget_local_flood(client: Any, *constructor_ids: int) -> None:
    """Drop Telethon's own memory of a flood wait for these request types.

    After a flood wait Telethon raises FloodWaitError *locally* for that request type until its
    wall-clock deadline passes. Our flood policy (with its injectable sleep and clock) and the
    caller's own retry times decide when to ask again, so Telethon's copy must not veto the retry.
    `_flood_waited_requests` is a private dict present from Telethon 1.x through 1.45.
    """
    waited = getattr(client, "_flood_waited_requests", None)
    if isinstance(waited, dict):
        for constructor_id in constructor_ids:
            waited.pop(constructor_id, None)


class FloodDeferred(Exception):
    """Telegram asked us to wait longer than we may block for: reschedule `kind` at `retry_at`."""

    def __init__(self, kind: str, seconds: float, retry_at: datetime) -> None:
        super().__init__(f"flood wait of {seconds:g}s for {kind}; retry at {retry_at.isoformat()}")
        self.kind = kind
        self.seconds = seconds
        self.retry_at = retry_at


async def call_with_flood_policy(
    coro_factory: Callable[[], Awaitable[T]],
    *,
    kind: str,
    max_wait: float,
    max_retries: int = 3,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    log: logging.Logger = log,
    now: Callable[[], datetime] = utcnow,
) -> T:
    """Await `coro_factory()` (called anew for each attempt), riding out short flood waits.

    A flood wait of at most `max_wait` seconds is slept through (with the injectable `sleep`) and
    the call retried, up to `max_retries` times; a longer wait, or one after the retries are spent,
    raises `FloodDeferred` for the scheduler. Other errors propagate unchanged. Either a result or
    an exception: never None on error.
    """
    attempt = 0
    while True:
        try:
            return await coro_factory()
        except FLOOD_ERRORS as exc:
            seconds = float(exc.seconds)
            if seconds > max_wait or attempt >= max_retries:
                reason = "over the bound" if seconds > max_wait else "retries spent"
                log.warning("flood wait for %s: %gs (%s, max %gs); deferring",
                            kind, seconds, reason, max_wait)
                raise FloodDeferred(kind, seconds, now() + timedelta(seconds=seconds)) from exc
            attempt += 1
            log.info("flood wait for %s: sleeping %gs (retry %d/%d)", kind, seconds, attempt, max_retries)
            await sleep(seconds)


@dataclass(frozen=True, slots=True)
class FloodPolicy:
    """Flood limits per request kind: how long we may block (`max_wait`) and how often we retry.

    `per_kind` overrides `max_wait` for named kinds (e.g. {"get_history": 30, "send_alert": 10}).
    """

    max_wait: float = 60.0
    max_retries: int = 3
    per_kind: dict[str, float] = field(default_factory=dict)

    def max_wait_for(self, kind: str) -> float:
        """The blocking bound for `kind`."""
        return self.per_kind.get(kind, self.max_wait)

    async def call(
        self,
        coro_factory: Callable[[], Awaitable[T]],
        *,
        kind: str,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        log: logging.Logger = log,
        now: Callable[[], datetime] = utcnow,
    ) -> T:
        """`call_with_flood_policy` with this policy's bounds for `kind`."""
        return await call_with_flood_policy(
            coro_factory, kind=kind, max_wait=self.max_wait_for(kind), max_retries=self.max_retries,
            sleep=sleep, log=log, now=now,
        )


# --- requests under the policy --------------------------------------------------------------------

REQUEST_TIMEOUT = 60.0
"""Seconds one request may go unanswered. Telethon waits for an answer as long as it takes: a request
lost on a half-open connection, or one a server never answers, would hold a poll (and every later
poll, one instance at a time) for ever. Telethon's own retries of a 500 (2 s apart) fit well inside."""


class RequestTimeout(TimeoutError):
    """Telegram did not answer a request in time; it may have been lost, so it is safe to send again."""


async def answered_within(awaitable: Awaitable[T], what: str, timeout: float = REQUEST_TIMEOUT) -> T:
    """Await a request's answer for at most `timeout` seconds, else raise `RequestTimeout` naming `what`
    (a TimeoutError raised by the request itself passes unchanged)."""
    try:
        async with asyncio.timeout(timeout) as limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():
            raise RequestTimeout(f"no answer from Telegram to {what} within {timeout:g}s") from None
        raise


async def send_once(client: TelegramClient, request: TLRequest) -> Any:
    """Send `request` once, without Telethon's own retries of a 500-class error; return the answer.

    For a message with a fixed random_id: Telegram refuses a repeat with RANDOM_ID_DUPLICATE, which
    Telethon counts as a server failure (RandomIdDuplicateError subclasses ServerError), so
    `client(request)` would send it five times more, 2 s apart and logging each, before raising. The
    request goes to the client's sender as `TelegramClient._call` sends it (`client._sender.send`,
    Telethon 1.36-1.45), and the answer's users and chats reach the session's cache as there."""
    await request.resolve(client, utils)
    result = await client._sender.send(request)
    processed = client.session.process_entities(result)
    if inspect.isawaitable(processed):  # an async session (Telethon's experimental support)
        await processed
    return result


@dataclass(slots=True)
class RequestStats:
    """What one channel's work cost: requests, pages, flood seconds slept."""

    requests: int = 0
    pages: int = 0
    flood_slept: float = 0.0


class Requests:
    """Sends raw TL requests under a `FloodPolicy`; the poller, the resolver and the backfill share it.

    `kind` names the request for the policy's per-kind bounds ("get_history", "get_messages",
    "get_peer_dialogs", "resolve_username", "join_channel", "get_channels"). Short flood waits are
    slept through `sleep`; long ones raise `FloodDeferred`. An attempt unanswered after `timeout`
    seconds raises `RequestTimeout`. Never returns None on error.
    """

    def __init__(self, client: TelegramClient, flood: FloodPolicy, *, sleep: Sleep = asyncio.sleep,
                 now: Clock = utcnow, logger: logging.Logger = log, timeout: float = REQUEST_TIMEOUT) -> None:
        self.client = client
        self.flood = flood
        self.sleep = sleep
        self.now = now
        self.log = logger
        self.timeout = timeout
        self.count = 0
        self.flood_slept = 0.0

    async def __call__(self, kind: str, request: TLRequest, *, stats: RequestStats | None = None,
                       via: Callable[[TLRequest], Awaitable[Any]] | None = None) -> Any:
        """Send `request` (through `via`, e.g. a takeout client, if given) and return the answer."""
        send = via or self.client
        constructor = request.CONSTRUCTOR_ID

        async def attempt() -> Any:
            forget_local_flood(self.client, constructor)
            self.count += 1
            if stats is not None:
                stats.requests += 1
            return await answered_within(send(request), type(request).__name__, self.timeout)

        async def sleep(seconds: float) -> None:
            await self.sleep(seconds)
            self.flood_slept += seconds
            if stats is not None:
                stats.flood_slept += seconds

        return await self.flood.call(attempt, kind=kind, sleep=sleep, log=self.log, now=self.now)


def peer_record(peer: Any) -> Peer | None:
    """How the archive keeps an input peer the bot got (`storage.peers`); None for what is no chat."""
    if isinstance(peer, types.InputPeerUser):
        return Peer("user", peer.user_id, peer.access_hash)
    if isinstance(peer, types.InputPeerChat):
        return Peer("chat", peer.chat_id, None)
    if isinstance(peer, types.InputPeerChannel):
        return Peer("channel", peer.channel_id, peer.access_hash)
    return None


def input_peer_of(peer: Peer) -> types.TypeInputPeer:
    """The input peer a stored `Peer` stands for."""
    if peer.kind == "user":
        return types.InputPeerUser(peer.peer_id, peer.access_hash or 0)
    if peer.kind == "chat":
        return types.InputPeerChat(peer.peer_id)
    return types.InputPeerChannel(peer.peer_id, peer.access_hash or 0)


def input_peer(channel: ChannelState) -> types.InputPeerChannel:
    """A stored channel's id + access_hash as an InputPeer (no username lookup)."""
    return types.InputPeerChannel(channel.id, channel.access_hash or 0)


def input_channel(channel: ChannelState) -> types.InputChannel:
    """A stored channel's id + access_hash as an InputChannel."""
    return types.InputChannel(channel.id, channel.access_hash or 0)


# --- what a failed channel request means ----------------------------------------------------------

_NOT_FOUND = (errors.ChannelInvalidError, errors.UsernameNotOccupiedError, errors.UsernameInvalidError)
_BANNED = (errors.ChannelBannedError, errors.UserBannedInChannelError)
PEER_ERRORS = (errors.ChannelPrivateError, *_NOT_FOUND, *_BANNED, errors.PeerIdInvalidError)
"""Errors about one channel: a request for many (GetPeerDialogs) fails as a whole on them."""


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(status, detail) for a failed channel: private, not_found, banned, or error."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, errors.ChannelPrivateError):
        return "private", detail
    if isinstance(exc, _NOT_FOUND):
        return "not_found", detail
    if isinstance(exc, _BANNED):
        return "banned", detail
    return "error", detail
