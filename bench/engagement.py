"""Engagement refresh cost through the simulator: requests and seconds per 10,000 messages re-read.

Run by hand: `python bench/engagement.py --messages 10000 --channels 20 --runs 3`.

`--messages` posts spread over `--channels` watched channels are archived (by backfill: each gets its
first reading and is scheduled), then each run moves World time past the next schedule point (1 h,
3 h, 6 h, ...), lets the posts gather views and reactions, and times one round of the engagement job
(`bot.engagement.Engagement.run_once`) that re-reads them all through the real TelegramClient.
Target: 2 * ceil(due / 100) requests per channel (one GetMessagesViews and one GetMessagesReactions
per 100 ids), never one per message. Only the round is timed, not the archiving before it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.backfill import backfill  # noqa: E402
from bot.engagement import Engagement  # noqa: E402
from bot.resolve import resolve_channels  # noqa: E402
from bot.simulator import World, connect_client  # noqa: E402
from bot.telegram import FloodPolicy  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.engagement import SCHEDULE  # noqa: E402


async def _no_sleep(seconds: float) -> None:
    """Flood waits (none are injected here) never wait in a benchmark."""


async def rounds(messages: int, channels: int, runs: int, folder: Path) -> list[dict[str, float]]:
    """Archive the posts once, then time `runs` rounds, each at the next schedule point."""
    world = World()
    reader_account = world.add_user("Reader", username="bench_reader")
    reader = await connect_client(world, as_user=reader_account, flood_sleep_threshold=0,
                                  receive_updates=False)
    db = await Database.open(folder / "engagement.db")
    try:
        chans = [world.add_channel(f"benchstats{i:03d}", f"Stats {i}") for i in range(channels)]
        for i in range(messages):
            world.post(chans[i % channels], f"post {i} on sanctions, talks and the weather #{i % 50}")
        await resolve_channels(db, reader, [c.username for c in chans])
        for ch in chans:
            await backfill(db, reader, ch.username, flood=FloodPolicy(), now=lambda: world.now,
                           sleep=_no_sleep)
        posted = world.now
        job = Engagement(db, reader, FloodPolicy(), now=lambda: world.now, sleep=_no_sleep,
                         limit=max(messages, 1))
        out = []
        for point in SCHEDULE[:runs]:
            world.now = posted + point + timedelta(minutes=1)
            for ch in chans:
                world.grow_engagement(ch)
            world.reset_requests()
            start = time.perf_counter()
            report = await job.run_once()
            seconds = time.perf_counter() - start
            out.append({"read": report.read, "requests": sum(world.requests.values()),
                        "views": world.requests["messages.GetMessagesViews"],
                        "reactions": world.requests["messages.GetMessagesReactions"], "seconds": seconds})
        return out
    finally:
        await db.close()
        await world.close()


def spread(values: list[float], fmt: str) -> str:
    """min–median–max."""
    return "–".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        got = await rounds(args.messages, args.channels, args.runs, Path(args.db_dir or tmp))
    per = 10_000 / args.messages
    per_channel = math.ceil(args.messages / args.channels)
    target = 2 * args.channels * math.ceil(per_channel / 100)
    print(f"engagement: {args.messages} due messages over {args.channels} channels, {len(got)} rounds: "
          f"{got[0]['read']} read per round, {got[0]['requests']} requests per round "
          f"(GetMessagesViews {got[0]['views']}, GetMessagesReactions {got[0]['reactions']}; "
          f"target {target})")
    print(f"per 10,000 messages refreshed: {spread([g['requests'] * per for g in got], ',.0f')} requests, "
          f"{spread([g['seconds'] * per for g in got], '.2f')} s (min–median–max), "
          f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help=f"rounds to time (at most {len(SCHEDULE)})")
    parser.add_argument("--db-dir", help="where to put the archive (default: a temporary folder)")
    args = parser.parse_args()
    if not 1 <= args.runs <= len(SCHEDULE) or args.messages < 1 or args.channels < 1:
        parser.error(f"--runs must be 1..{len(SCHEDULE)}; --messages and --channels at least 1")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
