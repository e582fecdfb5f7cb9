"""The polite web-preview client: one persistent HTTP/1.1 connection (httpx) to t.me or a mirror.

Every request, whatever the channel, passes one pacer: at most `rate` requests a second overall
(default 1), each bounded by `timeout` seconds in all (no request waits for ever). A 429 is honoured:
its `Retry-After` (seconds or an HTTP date), at least the doubling backoff of `storage.retry`, is slept
when short, and when longer than `max_wait` (or after `retries` 429s in a row) the client raises
`WebDeferred(retry_at)` and refuses every request until then, like bot/telegram.py's FloodDeferred.
5xx answers, timeouts, dropped connections and bodies cut short are retried `retries` times with
doubling backoff, then `WebUnavailable`. A channel with no public preview (t.me redirects /s/<name>
to /<name>, or 404) is `WebNotFound`. Clock and sleep are injectable, so tests drive time.
Bodies never reach a log line: only the path, the status and the size.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from datetime import datetime, timedelta
from importlib import metadata
from types import TracebackType
from urllib.parse import quote

import httpx

from bot.clock import Clock, Sleep, utcnow
from storage.retry import doubling

__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_WEB_URL",
    "USER_AGENT",
    "WebClient",
    "WebDeferred",
    "WebError",
    "WebNotFound",
    "WebUnavailable",
    "parse_retry_after",
]

log = logging.getLogger("chanwatch.web")

DEFAULT_WEB_URL = "https://t.me"
DEFAULT_RATE = 1.0  # requests a second, across all channels
MAX_BODY = 8 * 1024 * 1024  # a t.me/s page is ~100 KB; anything this big is not a preview page


def _version() -> str:
    try:
        return metadata.version("chanwatch")
    except metadata.PackageNotFoundError:
        return "0"


USER_AGENT = f"chanwatch/{_version()} (archiver of public Telegram channels' web previews; rate-limited)"


class WebError(Exception):
    """A web-preview request that gave no page."""


class WebNotFound(WebError):
    """The channel (or post) has no public web preview: t.me redirected or answered 404."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"no public web preview at {path}: {why}")
        self.path = path
        self.why = why


class WebDeferred(WebError):
    """The server asked us to wait longer than we may block for (a long 429): try at `retry_at`."""

    def __init__(self, seconds: float, retry_at: datetime) -> None:
        super().__init__(f"web preview asked to wait {seconds:g}s; retry at {retry_at.isoformat()}")
        self.seconds = seconds
        self.retry_at = retry_at


class WebUnavailable(WebError):
    """The server kept failing (5xx, timeouts, dropped or truncated answers): given up after retries."""

    def __init__(self, path: str, attempts: int, last: str) -> None:
        super().__init__(f"web preview unavailable for {path} after {attempts} attempts: {last}")
        self.path = path
        self.attempts = attempts
        self.last = last


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


class _Retry(Exception):
    """One failed attempt worth retrying: why, and at least how long to wait (a 429's Retry-After)."""

    def __init__(self, why: str, wait: float | None = None, throttled: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.wait = wait
        self.throttled = throttled


class WebClient:
    """The web-preview client (an async context manager). One instance serves every channel, so its
    rate is the overall rate; requests are sent one at a time over one kept-alive connection.

        async with WebClient("https://t.me") as web:
            html = await web.channel_page("durov", before=120)
    """

    def __init__(self, base_url: str = DEFAULT_WEB_URL, *, rate: float = DEFAULT_RATE, timeout: float = 30.0,
                 retries: int = 3, max_wait: float = 60.0, backoff: float = 2.0, backoff_cap: float = 60.0,
                 now: Clock = utcnow, sleep: Sleep = asyncio.sleep,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.base_url = base_url.rstrip("/")
        self.interval = 1.0 / rate
        self.timeout = timeout
        self.retries = retries
        self.max_wait = max_wait
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self._now = now
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._next_at: datetime | None = None  # the earliest moment the next request may start
        self._deferred_until: datetime | None = None
        #: Requests sent (attempts included), for tests and benchmarks.
        self.requests = 0
        self._client = httpx.AsyncClient(
            base_url=self.base_url, http1=True, http2=False, follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "text/html"},
            timeout=httpx.Timeout(timeout), transport=transport,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=120),
        )

    async def __aenter__(self) -> WebClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection."""
        await self._client.aclose()

    async def channel_page(self, username: str, before: int | None = None) -> str:
        """The HTML of `/s/<username>` (the newest posts), or of the page of posts below `before`."""
        params = {"before": str(before)} if before is not None else None
        return await self.get(f"/s/{quote(username)}", params)

    async def embed(self, username: str, message_id: int) -> str:
        """The HTML of one post's `?embed=1` page."""
        return await self.get(f"/{quote(username)}/{int(message_id)}", {"embed": "1"})

    async def get(self, path: str, params: dict[str, str] | None = None) -> str:
        """GET `path` politely (see the module docstring) and return its body as text."""
        async with self._lock:
            failures = 0
            throttled = 0
            while True:
                self._check_deferred()
                await self._pace()
                try:
                    return await self._attempt(path, params)
                except _Retry as retry:
                    if retry.throttled:
                        throttled += 1
                        wait = max(retry.wait or 0.0, doubling(throttled, self.backoff, self.backoff_cap)
                                   .total_seconds())
                        self._next_at = self._now() + timedelta(seconds=wait)
                        if wait > self.max_wait or throttled > self.retries:
                            self._deferred_until = self._next_at
                            log.warning("web preview: 429 on %s, waiting %gs (over %gs or retries spent); "
                                        "deferring", path, wait, self.max_wait)
                            raise WebDeferred(wait, self._next_at) from None
                        log.info("web preview: 429 on %s, waiting %gs", path, wait)
                        continue
                    failures += 1
                    if failures > self.retries:
                        raise WebUnavailable(path, failures, retry.why) from None
                    wait = doubling(failures, self.backoff, self.backoff_cap).total_seconds()
                    log.info("web preview: %s on %s; retry %d/%d in %gs",
                             retry.why, path, failures, self.retries, wait)
                    self._next_at = max(self._next_at or self._now(), self._now() + timedelta(seconds=wait))

    def _check_deferred(self) -> None:
        if self._deferred_until is not None:
            left = (self._deferred_until - self._now()).total_seconds()
            if left > 0:
                raise WebDeferred(left, self._deferred_until)
            self._deferred_until = None

    async def _pace(self) -> None:
        """Wait until the next request may start, then book the one after it `interval` later."""
        if self._next_at is not None:
            left = (self._next_at - self._now()).total_seconds()
            if left > 0:
                await self._sleep(left)
        self._next_at = self._now() + timedelta(seconds=self.interval)

    async def _attempt(self, path: str, params: dict[str, str] | None) -> str:
        self.requests += 1
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream("GET", path, params=params) as response:
                    if response.status_code == 429:
                        raise _Retry("429 Too Many Requests", parse_retry_after(
                            response.headers.get("Retry-After"), self._now()), throttled=True)
                    if response.is_redirect:
                        where = response.headers.get("Location", "")
                        raise WebNotFound(path, f"redirected to {where or 'elsewhere'}")
                    if response.status_code == 404:
                        raise WebNotFound(path, "404 Not Found")
                    if response.status_code >= 500:
                        raise _Retry(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        raise WebUnavailable(path, 1, f"unexpected HTTP {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BODY:
                            raise WebUnavailable(path, 1, f"answer larger than {MAX_BODY} bytes")
                    log.debug("web preview: GET %s -> %d, %d bytes", path, response.status_code, len(body))
                    return body.decode(response.encoding or "utf-8", errors="replace")
        except TimeoutError:
            raise _Retry(f"no answer within {self.timeout:g}s") from None
        except httpx.TimeoutException:
            raise _Retry(f"no answer within {self.timeout:g}s") from None
        except httpx.RemoteProtocolError:
            raise _Retry("the connection dropped or the answer was cut short") from None
        except httpx.TransportError as exc:
            raise _Retry(f"network error ({type(exc).__name__})") from None
