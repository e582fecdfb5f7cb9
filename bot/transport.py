"""The TCP transport of both clients: Telethon's `ConnectionTcpFull`, with reconnection bounded.

Telethon reconnects at once, forever, whenever a connection closes — and when something that is
not Telegram answers (an HTTP proxy, a captive portal), every connection opens fine and closes at
the first read ("HTTP" read as a length), so a logged-in client loops thousands of times a second,
logging each. A `Watch` sees every connection of one client and bounds that:

- **while starting** (until `started()`): after `START_ATTEMPTS` connections in a row that brought
  no packet, or no answer within `START_TIMEOUT` seconds, `within_start` gives up with one
  `ConnectionError` naming the server's address and what it saw;
- **while running**: reconnecting after such a connection waits first, doubling from
  `BACKOFF_FIRST` to `BACKOFF_CAP` seconds, with one warning per step; the first packet resets it.

Telethon's own retry loop is set to retry forever with no delay (`client_options`), so this is the
one place that decides how long to wait. The simulator replaces the client's sender, so no
connection is made there and a `Watch` stays silent.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable
from typing import Any, TypeVar

from telethon import TelegramClient
from telethon.errors import InvalidBufferError, SecurityError, TypeNotFoundError
from telethon.network.connection import ConnectionTcpFull

from bot.clock import Sleep

__all__ = ["BACKOFF_CAP", "BACKOFF_FIRST", "START_ATTEMPTS", "START_TIMEOUT", "UNREACHABLE", "Watch",
           "client_options",
           "started", "watch_of", "within_start"]

log = logging.getLogger("chanwatch.transport")

T = TypeVar("T")

START_ATTEMPTS = 3
START_TIMEOUT = 60.0
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 120.0

UNREACHABLE = (OSError, EOFError, InvalidBufferError, SecurityError, TypeNotFoundError)
"""What connecting raises when Telegram cannot be reached or something else answers (a proxy, a
captive portal): EOFError covers asyncio.IncompleteReadError; OSError covers timeouts and the
ConnectionError of `within_start`."""

_watches: weakref.WeakKeyDictionary[TelegramClient, Watch] = weakref.WeakKeyDictionary()


class Watch:
    """What one client's connections have brought: how many in a row brought no packet, and why."""

    def __init__(self, *, start_attempts: int = START_ATTEMPTS, start_timeout: float = START_TIMEOUT,
                 backoff_first: float = BACKOFF_FIRST, backoff_cap: float = BACKOFF_CAP,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.start_attempts = start_attempts
        self.start_timeout = start_timeout
        self.backoff_first = backoff_first
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.running = False
        self.failures = 0  # connections in a row that brought no packet
        self.connections = 0
        self.address = ""
        self.last_problem = ""
        self._open = False  # a connection is open and has brought nothing yet
        self._gave_up: asyncio.Event | None = None

    def connection_class(self) -> type[ConnectionTcpFull]:
        """A `ConnectionTcpFull` subclass reporting to this watch (Telethon wants a class)."""
        watch = self

        class WatchedConnection(ConnectionTcpFull):
            async def connect(self, timeout: float | None = None, ssl: Any = None) -> None:
                await watch.before_connect(f"{self._ip}:{self._port}")
                try:
                    await super().connect(timeout=timeout, ssl=ssl)
                except BaseException as exc:
                    watch.failed(exc)
                    raise

            async def recv(self) -> bytes:
                try:
                    body = await super().recv()
                except BaseException as exc:
                    watch.failed(exc)
                    raise
                watch.packet()
                return body

        return WatchedConnection

    @property
    def gave_up(self) -> asyncio.Event:
        """Set when starting should stop: `start_attempts` connections in a row brought nothing."""
        if self._gave_up is None:
            self._gave_up = asyncio.Event()
        return self._gave_up

    async def before_connect(self, address: str) -> None:
        """Count the connection about to open; while running, wait out the backoff first."""
        self.address = address
        if self._open:  # the previous connection closed before bringing anything
            self._fail()
        self.connections += 1
        if not self.running and self.failures >= self.start_attempts:
            self.gave_up.set()  # `within_start` stops the client; until then, never spin
            await self.sleep(self._delay(self.failures - self.start_attempts + 1))
            raise ConnectionError(self.reason())
        if self.running and self.failures:
            delay = self._delay(self.failures)
            log.warning("Telegram at %s: %d connection(s) in a row brought nothing (%s); reconnecting in "
                        "%g s", address, self.failures, self.last_problem or "closed", delay)
            await self.sleep(delay)
        self._open = True

    def _delay(self, step: int) -> float:
        return min(self.backoff_cap, self.backoff_first * 2 ** (step - 1))

    def packet(self) -> None:
        """A packet arrived: the server speaks Telegram's transport; reset the backoff."""
        self._open = False
        self.failures = 0
        self.last_problem = ""

    def failed(self, exc: BaseException) -> None:
        """A connection could not open, or closed while reading: remember why (once per connection)."""
        if isinstance(exc, asyncio.CancelledError):
            return
        self.last_problem = _describe(exc)
        if self._open:
            self._fail()

    def _fail(self) -> None:
        self._open = False
        self.failures += 1
        if not self.running and self.failures >= self.start_attempts:
            self.gave_up.set()

    def reason(self) -> str:
        """One line for giving up at start: the address, how many tries, what was seen last."""
        seen = f" (last: {self.last_problem})" if self.last_problem else ""
        return (f"{self.connections} connection(s) to {self.address or 'the server'} in a row closed or "
                f"answered with something that is not Telegram{seen}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):  # what a length read off text looks like
        head = bytes(exc.partial[:16]).decode("ascii", "replace")
        printable = "".join(c if c.isprintable() else "?" for c in head)
        return f"the server answered '...{printable}...', not Telegram's transport (a proxy?)"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_TELETHON_REPEATS = frozenset({
    "Server closed the connection: %s",
    "Server response had invalid checksum: %s",
    "Server response had invalid buffer: %s",
    "Attempt %d at connecting failed: %s: %s",
    "Connection error %d during auth_key gen: %s: %s",
    "Attempt %d at new auth_key failed: %s",
})
"""Telethon's own warnings, once per connection, about what a `Watch` reports once per step."""


class _OncePerStep(logging.Filter):
    """Drops Telethon's per-connection warnings: the watch says the same once per backoff step."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in _TELETHON_REPEATS


_QUIETED = _OncePerStep()


def _quiet_telethon() -> None:
    for name in ("telethon.network.connection.connection", "telethon.network.mtprotosender"):
        logger = logging.getLogger(name)
        if _QUIETED not in logger.filters:
            logger.addFilter(_QUIETED)


def client_options(watch: Watch) -> dict[str, Any]:
    """`TelegramClient` keyword arguments that put `watch` in charge of reconnecting (and quiet
    Telethon's per-connection warnings, which the watch replaces)."""
    _quiet_telethon()
    return {"connection": watch.connection_class(), "connection_retries": -1, "retry_delay": 0,
            "auto_reconnect": True}


def register(client: TelegramClient, watch: Watch) -> None:
    """Remember `watch` as `client`'s (looked up by `within_start` and `started`)."""
    _watches[client] = watch


def watch_of(client: TelegramClient) -> Watch | None:
    """The watch of `client`, if it was made with one."""
    return _watches.get(client)


def started(client: TelegramClient) -> None:
    """`client` is up: from now on its connection problems back off instead of giving up."""
    watch = watch_of(client)
    if watch is not None:
        watch.running = True


async def within_start(client: TelegramClient, step: Awaitable[T]) -> T:
    """Await one step of starting `client` (connect, the first request), bounded by its watch.

    Raises ConnectionError (an OSError, as Telegram out of reach is) with the watch's reason when
    its connections keep bringing nothing, or when no answer comes within `start_timeout`.
    """
    watch = watch_of(client)
    task = asyncio.ensure_future(step)
    if watch is None or watch.running:
        return await task
    gave_up = asyncio.ensure_future(watch.gave_up.wait())
    try:
        done, _ = await asyncio.wait({task, gave_up}, timeout=watch.start_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        gave_up.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: its own error is the one being replaced
    if watch.gave_up.is_set():
        raise ConnectionError(watch.reason())
    raise ConnectionError(f"no answer from {watch.address or 'the server'} within {watch.start_timeout:g} s"
                          + (f" (last: {watch.last_problem})" if watch.last_problem else ""))
