"""Several readers dividing the channels: each reader's share of a poll cycle, and what claiming costs.

Run by hand: `python bench/readers.py` (1,000 channels, 3 readers, on SQLite and — with `--pg URL` or
CHANWATCH_BENCH_PG — on PostgreSQL, side by side in one run; `--help` for the sizes).

Outside anything measured: a simulated Telegram (`bot.simulator.World`) with `--channels` public
channels of one post each, where every account gets its own access hash for a channel (as Telegram
gives), and `--readers` reading accounts; one archive per backend (a fresh SQLite file, a fresh
PostgreSQL schema dropped after). Each reader is the real `Service` (no bot), started one after the
other: its start resolves every configured channel with its own account (counted, not timed).

Then, on a virtual clock, the readers claim in turns (a claim every third of a lease period, as the
daemon's `leases` job does) until the division is stable, and each runs one poll cycle. Reported per
backend: each reader's channels and the reading requests of its poll cycle (GetHistory, one per
channel it holds; the channels' union and overlap), and the time of one claim transaction
(min/median/max over every claim of `--rounds` rounds after the division settled; a claim renews the
reader's leases and counts the others).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import Settings  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.simulator import World, connect_client  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.location import ServerUrl, parse_location  # noqa: E402

START = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
LEASE_S = 60


def spread(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    """min–median–max of `values`."""
    return "–".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


@contextmanager
def pg_schema(url: str) -> Iterator[ServerUrl]:
    """A fresh schema on the server at `url` for one run, dropped after."""
    import psycopg

    name = f"bench_readers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    option = "options=" + quote(f"-csearch_path={name}", safe="")
    try:
        location = parse_location(url + ("&" if "?" in url else "?") + option)
        assert isinstance(location, ServerUrl)
        yield location
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


class Clock:
    """The readers' shared virtual clock."""

    def __init__(self) -> None:
        self.t = START

    def now(self) -> datetime:
        return self.t


async def run(where: Path | ServerUrl, channels: int, readers: int, rounds: int) -> dict[str, object]:
    """One backend: the readers started, the division settled, one poll cycle each, claims timed."""
    clock = Clock()
    world = World(now=START)
    world.per_account_access_hashes = True
    chans = [world.add_channel(f"bench_ch{i:04d}", f"Channel {i}") for i in range(channels)]
    for ch in chans:
        world.post(ch, "a statement")
    services: list[Service] = []
    dbs: list[Database] = []
    accounts = []
    resolves = 0
    try:
        for n in range(readers):
            account = world.add_user(f"Reader {n}", username=f"bench_reader{n}")
            accounts.append(account)
            client = await connect_client(world, as_user=account, flood_sleep_threshold=0)
            db = await Database.open(where)
            dbs.append(db)
            settings = Settings(db_path=where, channels=tuple(c.username or "" for c in chans),
                                reader=f"r{n}", lease_seconds=LEASE_S, sweep_per_hour=0, stats_days=0,
                                media_kinds=frozenset(), source="api")
            service = Service(settings, db, client, None, scheduler=_paused(), now=clock.now,
                              sleep=lambda _s: asyncio.sleep(0))
            await service.start()
            services.append(service)
        resolves = world.requests["contacts.ResolveUsername"]
        step = timedelta(seconds=LEASE_S / 3)
        for _ in range(3):  # claims until the division settles (each round: every reader once)
            clock.t += step
            world.now = clock.t
            for service in services:
                await service.lease_cycle()
        timings: list[float] = []
        for _ in range(rounds):
            clock.t += step
            world.now = clock.t
            for service in services:
                started = time.perf_counter()
                await service.leases.claim()
                timings.append(time.perf_counter() - started)
        world.reset_requests()
        polled: list[int] = []
        for service, account in zip(services, accounts, strict=True):
            await service.poll_cycle()
            polled.append(world.requests_by_account[account.id]["messages.GetHistory"])
        held = [set(s.leases.held) for s in services]
        union = set().union(*held)
        overlap = sum(len(h) for h in held) - len(union)
        return {"held": [len(h) for h in held], "polled": polled, "union": len(union), "overlap": overlap,
                "claim_ms": [t * 1000 for t in timings], "resolves": resolves}
    finally:
        for service in services:
            await service.stop()
        for db in dbs:
            await db.close()
        await world.close()


def _paused() -> object:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    return scheduler


def report(name: str, got: dict[str, object]) -> list[str]:
    held, polled = got["held"], got["polled"]
    assert isinstance(held, list) and isinstance(polled, list)
    claims = got["claim_ms"]
    assert isinstance(claims, list)
    lines = [f"{name}: {got['union']} channels held by {len(held)} readers, overlap {got['overlap']}; "
             f"start-up resolves {got['resolves']} (each reader resolves with its own account)"]
    for n, (h, p) in enumerate(zip(held, polled, strict=True)):
        lines.append(f"  reader r{n}: {h} channels, {p} GetHistory in its poll cycle")
    lines.append(f"  one claim: {spread(claims)} ms (min–median–max of {len(claims)})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="claim rounds timed after the division settles")
    parser.add_argument("--pg", default=os.environ.get("CHANWATCH_BENCH_PG"),
                        help="a PostgreSQL server's URL (default: $CHANWATCH_BENCH_PG; none: SQLite only)")
    args = parser.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chanwatch-readers-") as folder:
        got = asyncio.run(run(Path(folder) / "shared.db", args.channels, args.readers, args.rounds))
        lines += report("SQLite (one file)", got)
    if args.pg:
        with pg_schema(args.pg) as url:
            got = asyncio.run(run(url, args.channels, args.readers, args.rounds))
        lines += report("PostgreSQL", got)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
