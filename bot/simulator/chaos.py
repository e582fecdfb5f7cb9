"""Random faults at random requests, as Telegram and the network produce them, and a loop clock that
lets the time they cost pass at once.

``World.chaos(rate, seed, kinds)`` makes a seeded share of the requests any client sends fail:

- ``flood``: 420 FLOOD_WAIT_X, short (a caller may sleep through it) or long (it must defer);
- ``rpc``: a 500-class error Telegram sends when one of its servers fails a call (INTERNAL,
  RPC_CALL_FAIL, TIMEOUT, -503 Timeout). Telethon retries these itself after a 2 s sleep, up to its
  ``request_retries`` (5); some faults are bursts that fail every attempt, so the caller gets
  Telethon's ``ValueError("Request was unsuccessful 6 time(s)")``;
- ``drop``: the connection drops with the request in flight; the client reconnects and sends it
  again, as ``MTProtoSender._reconnect`` puts every pending request back in its send queue (the
  request was lost on the way, so the server runs it once, on the resend). A share of drops
  (``lost_share``) find Telegram out of reach: Telethon's reconnects all fail, the request fails with
  the OSError and the client stays disconnected until someone calls ``connect()`` again;
- ``timeout``: the request is never answered (the server never ran it). Telethon puts no limit on
  how long a request waits: only the caller's own timeout ends it. Requests of Telethon's own update
  loop are the exception: while it waits for one it sends no keepalive ping, so Telegram closes the
  connection (PingDelayDisconnect, 75 s) and Telethon reconnects and resends it; the simulator, which
  has no pings, answers those with a ``drop`` instead.

A decision depends on the seed, the account, what the request says (its TL content, random ids
left out) and how many times that same request was seen before, never on the order requests
arrive: concurrent tasks that interleave differently from run to run meet the same faults.

Time: an ``rpc`` fault makes Telethon sleep 2 s of the event loop's time, a ``timeout`` holds the
caller until its own timer fires. Tests that must not wait move the loop's clock instead:
:class:`LoopClock` offsets ``loop.time()`` (every asyncio timer reads it), and :func:`drive` awaits a
job while moving the clock through each *stall* the World reports, so a 60 s timeout passes at once.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from telethon.tl import TLObject

if TYPE_CHECKING:
    from .world import World

T = TypeVar("T")

CHAOS_KINDS = ("flood", "rpc", "drop", "timeout")
#: Errors Telegram answers any request with when a server of its own fails the call: 500 INTERNAL and
#: -503 Timeout (https://core.telegram.org/api/errors), and the named 500s Telethon knows.
TRANSIENT_RPC_ERRORS: tuple[tuple[int, str], ...] = (
    (500, "INTERNAL"), (500, "RPC_CALL_FAIL"), (500, "TIMEOUT"), (-503, "Timeout"),
)
#: Telethon's ``TelegramClient._call`` sleeps this long (loop time) after a 500-class error, then retries.
TELETHON_RETRY_DELAY = 2.0
#: Attempts ``TelegramClient._call`` makes by default before giving up: ``request_retries`` (5) + 1.
TELETHON_ATTEMPTS = 6
#: Requests Telethon's update loop sends; an unanswered one ends in a reconnect (see above).
UPDATE_LOOP_REQUESTS = frozenset({"updates.GetState", "updates.GetDifference",
                                  "updates.GetChannelDifference"})


@dataclass(frozen=True, slots=True)
class ChaosFault:
    """One fault the chaos inflicted: its kind, the request it hit and what it answered."""

    kind: str
    request: str
    account_id: int | None
    #: ``FLOOD_WAIT_30``, ``500 RPC_CALL_FAIL``, ``drop``, ``lost`` (a drop Telethon could not
    #: reconnect from) or ``no answer``.
    detail: str


@dataclass(eq=False)
class Chaos:
    """The random faults of one :meth:`World.chaos` call; :meth:`stop` ends them.

    ``injected`` counts the faults per kind, ``faults`` lists them in order. ``requests`` (schema
    names) or ``accounts`` (ids), when given, limit which requests may fail; ``rates`` gives some
    request types (schema names) a rate of their own."""

    rate: float
    seed: int
    kinds: tuple[str, ...] = CHAOS_KINDS
    requests: frozenset[str] | None = None
    accounts: frozenset[int] | None = None
    rates: dict[str, float] = field(default_factory=dict)
    #: Flood waits in seconds: short ones (a caller sleeps through them) and long ones.
    short_flood: tuple[int, int] = (1, 30)
    long_flood: tuple[int, int] = (120, 1200)
    long_flood_share: float = 0.3
    #: Share of ``drop`` faults where reconnecting fails too and the client is left disconnected.
    lost_share: float = 0.0
    #: Share of ``rpc`` faults that fail the same request on each of Telethon's retries.
    burst_share: float = 0.25
    burst: int = TELETHON_ATTEMPTS
    active: bool = True
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: list[ChaosFault] = field(default_factory=list)
    _seen: collections.Counter[bytes] = field(default_factory=collections.Counter)
    _bursts: dict[bytes, tuple[int, tuple[int, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(CHAOS_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be some of {CHAOS_KINDS}, not {self.kinds!r}")
        for rate in (self.rate, *self.rates.values()):
            if not 0 <= rate <= 1:
                raise ValueError(f"a rate must be between 0 and 1, not {rate!r}")

    def stop(self) -> None:
        """No more faults from now on (those in progress, a held request, run their course)."""
        self.active = False

    def decide(self, account_id: int | None, name: str, request: TLObject) -> ChaosFault | None:
        """The fault for this request, if any (counted in ``injected`` and ``faults``)."""
        if not self.active or (self.requests is not None and name not in self.requests) \
                or (self.accounts is not None and account_id not in self.accounts):
            return None
        key = _request_key(account_id, name, request)
        occurrence = self._seen[key]
        self._seen[key] += 1
        if key in self._bursts:  # Telethon's retry of a request a burst still fails
            left, (code, message) = self._bursts.pop(key)
            if left > 1:
                self._bursts[key] = (left - 1, (code, message))
            return self._record("rpc", name, account_id, f"{code} {message}")
        seed = hashlib.sha256(b"%d|%d|" % (self.seed, occurrence) + key).digest()
        rng = random.Random(int.from_bytes(seed, "big"))
        if rng.random() >= self.rates.get(name, self.rate):
            return None
        kind = rng.choice(self.kinds)
        if kind == "timeout" and name in UPDATE_LOOP_REQUESTS:
            kind = "drop"
        if kind == "flood":
            low, high = self.long_flood if rng.random() < self.long_flood_share else self.short_flood
            return self._record(kind, name, account_id, f"FLOOD_WAIT_{rng.randint(low, high)}")
        if kind == "rpc":
            code, message = rng.choice(TRANSIENT_RPC_ERRORS)
            if self.burst > 1 and rng.random() < self.burst_share:
                self._bursts[key] = (self.burst - 1, (code, message))
            return self._record(kind, name, account_id, f"{code} {message}")
        if kind == "drop":
            return self._record(kind, name, account_id, "lost" if rng.random() < self.lost_share else "drop")
        return self._record(kind, name, account_id, "no answer")

    def _record(self, kind: str, name: str, account_id: int | None, detail: str) -> ChaosFault:
        fault = ChaosFault(kind, name, account_id, detail)
        self.injected[kind] += 1
        self.faults.append(fault)
        return fault


def _request_key(account_id: int | None, name: str, request: TLObject) -> bytes:
    """What identifies a request across resends and retries: its content without random ids."""
    return f"{account_id}|{name}|{_stable(request.to_dict())!r}".encode()


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k != "random_id"}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@dataclass(eq=False)
class Stall:
    """A client waiting on the event loop's clock because of a fault: Telethon's sleep before it
    retries a 500-class error (``until`` a loop time), or a request held unanswered (``held``) until
    the client gives up on it."""

    kind: str
    request: str
    until: float | None = None
    held: asyncio.Future | None = None

    def over(self, now: float) -> bool:
        """Whether the client is no longer held by this stall at loop time ``now``."""
        if self.held is not None:
            return self.held.done()
        return self.until is None or now >= self.until


class LoopClock:
    """The running event loop's clock, moved forward by :meth:`advance` instead of by waiting.

    It replaces ``loop.time`` on that loop (every asyncio timer — ``sleep``, ``wait_for``, timeouts —
    reads it) with the real clock plus an offset; :meth:`close` puts the loop's own back."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.offset = 0.0
        self._real = self.loop.time
        self.loop.time = self.time  # type: ignore[method-assign]

    def time(self) -> float:
        """The loop's time: its real clock plus every :meth:`advance` so far."""
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the loop's clock ``seconds`` forward: timers due by then fire at the next turn."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds

    def close(self) -> None:
        """Give the loop its own clock back."""
        if self.loop.__dict__.get("time") == self.time:
            del self.loop.time  # type: ignore[method-assign]

    def __enter__(self) -> LoopClock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RequestHung(AssertionError):
    """A request the World never answers was still waited for after ``give_up_after`` seconds of
    loop time: nothing in the caller bounds its wait."""


async def drive(world: World, clock: LoopClock, job: Awaitable[T], *, step: float = 1.0,
                give_up_after: float = 3600.0) -> T:
    """Await ``job``; whenever the World stalls a client (a retry sleep, a held request), move
    ``clock`` forward ``step`` by ``step`` until no client is held (or the job is done), so the job
    never waits for real.

    Raises :class:`RequestHung` when a held request outlives ``give_up_after`` seconds of loop time
    (the job is cancelled then), instead of hanging the test."""
    task = asyncio.ensure_future(job)
    try:
        while not task.done():
            signal = world.next_stall()
            await asyncio.wait({task, signal}, return_when=asyncio.FIRST_COMPLETED)
            if not signal.done():
                signal.cancel()
                continue
            await _pass_stalls(world, clock, task, step, give_up_after)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _pass_stalls(world: World, clock: LoopClock, task: asyncio.Future, step: float,
                       give_up_after: float) -> None:
    """Move the clock until no client is held, or the job is done (a request some other task sent
    may stay held: it is that task's business)."""
    moved = 0.0
    while True:
        for _ in range(10):  # the stalled client registers its timer; a fired timer runs its callbacks
            await asyncio.sleep(0)
        waiting = world.stalls(clock.time())
        if not waiting or task.done():
            return
        if moved >= give_up_after:
            names = ", ".join(sorted({s.request for s in waiting if s.held is not None}))
            raise RequestHung(f"still waiting for an answer to {names} after {moved:g}s: "
                              "nothing bounds the wait for a request Telegram never answers")
        clock.advance(step)
        moved += step
