"""Poll and backfill cost through the simulator: requests per idle cycle, backfill throughput.

Run by hand: `python bench/poll.py --channels 200 --changed 5 --backfill 100000`.

1. An idle poll cycle over `--channels` watched channels of which `--changed` have a new post,
   joined (GetPeerDialogs change detection; target ceil(channels/100) + changed requests) and not
   joined (target one GetHistory per channel); both must send zero ResolveUsername.
2. A backfill of `--backfill` messages through the real TelegramClient and the simulator
   (target ceil(n/100) GetHistory requests) and its end-to-end messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.backfill import backfill  # noqa: E402
from bot.poller import Poller  # noqa: E402
from bot.resolve import resolve_channels  # noqa: E402
from bot.simulator import World, connect_client  # noqa: E402
from bot.telegram import FloodPolicy  # noqa: E402
from storage.database import Database  # noqa: E402


async def _no_sleep(seconds: float) -> None:
    """Flood waits (none are injected here) never wait in a benchmark."""


async def poll_cycle(channels: int, changed: int, join: bool, folder: Path) -> dict[str, object]:
    """Requests of one idle cycle (after a first full cycle) with `changed` channels having news."""
    world = World()
    reader_account = world.add_user("Reader", username="bench_reader")
    reader = await connect_client(world, as_user=reader_account, flood_sleep_threshold=0,
                                  receive_updates=False)
    db = await Database.open(folder / f"poll-{'joined' if join else 'plain'}.db")
    try:
        chans = [world.add_channel(f"benchchan{i:04d}", f"Bench {i}") for i in range(channels)]
        for ch in chans:
            world.post(ch, f"first post of {ch.username}")
        await resolve_channels(db, reader, [c.username for c in chans], join=join)
        poller = Poller(db, reader, FloodPolicy(), join=join, now=lambda: world.now, sleep=_no_sleep)
        await poller.poll_once()
        world.reset_requests()
        idle = await poller.poll_once()
        idle_requests = dict(world.requests)
        for ch in chans[:: max(1, channels // max(changed, 1))][:changed]:
            world.post(ch, "news")
        world.reset_requests()
        start = time.perf_counter()
        busy = await poller.poll_once()
        seconds = time.perf_counter() - start
        return {
            "mode": "joined" if join else "not joined",
            "idle_requests": sum(idle_requests.values()),
            "requests": dict(world.requests),
            "total": sum(world.requests.values()),
            "target": math.ceil(channels / 100) + changed if join else channels,
            "resolve_username": world.requests["contacts.ResolveUsername"],
            "new_messages": busy.new_messages + idle.new_messages,
            "seconds": seconds,
        }
    finally:
        await db.close()
        await world.close()


async def backfill_run(n: int, folder: Path) -> dict[str, object]:
    """Backfill `n` messages of one channel end to end (simulator + Telethon + normalize + ingest)."""
    world = World()
    reader_account = world.add_user("Reader", username="bench_reader")
    reader = await connect_client(world, as_user=reader_account, flood_sleep_threshold=0,
                                  receive_updates=False)
    db = await Database.open(folder / "backfill.db")
    try:
        ch = world.add_channel("benchhistory", "Bench history")
        build = time.perf_counter()
        for i in range(n):
            world.post(ch, f"Message {i} of the benchmark history: statement on sanctions, talks, "
                           f"visits and the weather #{i % 50}")
        build = time.perf_counter() - build
        world.reset_requests()
        start = time.perf_counter()
        report = await backfill(db, reader, "benchhistory", since=None, limit=None,
                                flood=FloodPolicy(), now=lambda: world.now, sleep=_no_sleep)
        seconds = time.perf_counter() - start
        return {
            "messages": report.messages,
            "history_requests": world.requests["messages.GetHistory"],
            "target": math.ceil(n / 100),
            "all_requests": dict(world.requests),
            "seconds": seconds,
            "messages_per_s": report.messages / seconds,
            "world_build_s": build,
        }
    finally:
        await db.close()
        await world.close()


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.db_dir or tmp)
        for join in (True, False):
            r = await poll_cycle(args.channels, args.changed, join, folder)
            print(f"poll {r['mode']:>10}: {args.channels} channels, {args.changed} changed -> "
                  f"{r['total']} requests (target {r['target']}; fully idle cycle {r['idle_requests']}), "
                  f"ResolveUsername {r['resolve_username']}, {r['requests']}, {r['seconds']:.2f}s")
        if args.backfill:
            r = await backfill_run(args.backfill, folder)
            print(f"backfill: {r['messages']} messages, {r['history_requests']} GetHistory "
                  f"(target {r['target']}), {r['seconds']:.1f}s, {r['messages_per_s']:.0f} msg/s end to end "
                  f"(building the simulated channel took {r['world_build_s']:.1f}s), {r['all_requests']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--backfill", type=int, default=100_000, help="messages to backfill (0: skip)")
    parser.add_argument("--db-dir", help="where to put the archives (default: a temporary folder)")
    asyncio.run(main_async(parser.parse_args()))
    print(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
