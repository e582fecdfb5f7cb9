"""Alert latency, instant mode: from a post appearing in a channel to the alert reaching the chat.

Run by hand: `python bench/alert_latency.py --channels 20 --posts 300 --poll 60 --dispatch 5`.

The daemon's loop runs through the simulator with the real clients: a poll cycle (Poller with the
Percolator as its after-ingest hook) every `--poll` seconds and the Dispatcher every `--dispatch`
seconds, posts arriving at random (Poisson) times. Time is *virtual*: real elapsed time plus the
idle gaps between jobs, which are skipped instead of waited, so every millisecond of real work
(Telethon, simulator, SQLite, percolation, rendering) counts while a two-hour run takes seconds.
A send counts when Telegram accepted it (the dispatcher's `before_mark` hook).

Expect the periods to dominate: a post waits on average half a poll period for the next poll and
half a dispatch period for the next dispatch; the p95 is close to 0.95 x poll + dispatch period,
and the work itself adds milliseconds (reported separately as "work").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.alerts import Dispatcher  # noqa: E402
from bot.poller import Poller  # noqa: E402
from bot.resolve import resolve_channels  # noqa: E402
from bot.simulator import World, connect_client  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.outbox import get_alerts  # noqa: E402
from storage.percolator import Percolator  # noqa: E402
from storage.rules import add_rule  # noqa: E402

START = datetime(2025, 12, 17, 8, 0, tzinfo=UTC)


class VirtualClock:
    """Virtual seconds = real seconds elapsed + idle time skipped (`skip_to`) + sleeps (`sleep`)."""

    def __init__(self) -> None:
        self._origin = time.perf_counter()
        self._skipped = 0.0

    def seconds(self) -> float:
        """Virtual seconds since the start."""
        return time.perf_counter() - self._origin + self._skipped

    def now(self) -> datetime:
        """The virtual time as a datetime (the `now` given to the poller and dispatcher)."""
        return START + timedelta(seconds=self.seconds())

    def skip_to(self, target: float) -> None:
        """Jump forward to `target` seconds (no waiting) if it is still ahead."""
        gap = target - self.seconds()
        if gap > 0:
            self._skipped += gap

    async def sleep(self, seconds: float) -> None:
        """The pacer's and flood policy's sleep: advances virtual time, waits for nothing."""
        self._skipped += max(seconds, 0.0)
        await asyncio.sleep(0)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def run(channels: int, posts: int, poll: float, dispatch: float, match_share: float, seed: int,
              folder: Path) -> dict[str, float]:
    """Run the loop; returns latency statistics in seconds."""
    rng = random.Random(seed)
    world = World(now=START)
    reader_account = world.add_user("Reader", username="bench_reader")
    bot_account = world.add_bot("bench_bot")
    alice = world.add_user("Alice", username="bench_alice")
    reader = await connect_client(world, as_user=reader_account, flood_sleep_threshold=0,
                                  receive_updates=False)
    bot = await connect_client(world, as_user=bot_account, bot=True, flood_sleep_threshold=0)
    db = await Database.open(folder / "latency.db")
    clock = VirtualClock()
    sent_at: dict[int, float] = {}
    try:
        world.say(alice, bot_account, "/start")
        await world.settle()
        chans = [world.add_channel(f"latchan{i:03d}", f"Latency {i}") for i in range(channels)]
        for ch in chans:
            world.post(ch, "hello")
        await resolve_channels(db, reader, [c.username for c in chans], join=True)
        await db.transaction(add_rule, alice.id, "sanctions OR санкции", START)
        poller = Poller(db, reader, join=True, now=clock.now, sleep=clock.sleep, after_ingest=Percolator())
        await poller.poll_once()  # cursors at the top: only new posts from here on

        def record(alert_ids: Sequence[int]) -> None:
            for alert_id in alert_ids:
                sent_at[alert_id] = clock.seconds()

        dispatcher = Dispatcher(db, bot, now=clock.now, sleep=clock.sleep, before_mark=record)
        horizon = 2 * 3600.0  # two virtual hours
        arrivals = sorted(rng.uniform(poll, horizon) for _ in range(posts))
        appeared: dict[tuple[int, int], float] = {}
        work = {"poll": 0.0, "dispatch": 0.0}
        busy_dispatches: list[float] = []
        next_poll = clock.seconds() + rng.uniform(0, poll)
        next_dispatch = clock.seconds() + rng.uniform(0, dispatch)
        index = 0
        end = horizon + poll + dispatch * 2
        while min(next_poll, next_dispatch) < end or index < len(arrivals):
            upcoming = arrivals[index] if index < len(arrivals) else float("inf")
            t = min(upcoming, next_poll, next_dispatch)
            clock.skip_to(t)
            world.now = clock.now()
            if t == upcoming:
                channel = rng.choice(chans)
                matching = rng.random() < match_share
                text = f"Item {index}: " + ("new sanctions announced" if matching else "weather report")
                msg = world.post(channel, text)
                if matching:
                    appeared[(channel.id, msg.id)] = clock.seconds()
                index += 1
            elif t == next_poll:
                started = time.perf_counter()
                await poller.poll_once()
                work["poll"] += time.perf_counter() - started
                next_poll += poll
            else:
                started = time.perf_counter()
                count = await dispatcher.dispatch_instant()
                spent = time.perf_counter() - started
                work["dispatch"] += spent
                if count:
                    busy_dispatches.append(spent / count)
                next_dispatch += dispatch
        alerts = await db.run(get_alerts, alice.id)
        sql = "SELECT id, origin_channel_id, origin_message_id FROM posts"
        origin = await db.run(lambda conn: {r[0]: (r[1], r[2]) for r in conn.execute(sql)})
        latencies = [sent_at[a.id] - appeared[origin[a.post_id]] for a in alerts
                     if a.id in sent_at and origin.get(a.post_id) in appeared]
        return {
            "alerts": len(latencies),
            "expected": len(appeared),
            "p50": statistics.median(latencies),
            "p95": percentile(latencies, 95),
            "max": max(latencies),
            "mean": statistics.fmean(latencies),
            "work_poll_ms": 1000 * work["poll"] / max(1, int(horizon / poll)),
            "work_dispatch_ms": 1000 * work["dispatch"] / max(1, int(horizon / dispatch)),
            "work_per_send_ms": 1000 * statistics.fmean(busy_dispatches or [0.0]),
        }
    finally:
        await db.close()
        await world.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--poll", type=float, default=60.0,
                        help="poll period, seconds (CHANWATCH_POLL_INTERVAL)")
    parser.add_argument("--dispatch", type=float, default=5.0, help="instant dispatch period, seconds")
    parser.add_argument("--match", type=float, default=0.5, help="share of posts that match the rule")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        r = asyncio.run(run(args.channels, args.posts, args.poll, args.dispatch, args.match, args.seed,
                            Path(folder)))
    print(f"alert latency, instant mode: {r['alerts']}/{r['expected']} alerts, {args.channels} channels, "
          f"poll every {args.poll:g} s, dispatch every {args.dispatch:g} s")
    print(f"  p50 {r['p50']:.1f} s   p95 {r['p95']:.1f} s   max {r['max']:.1f} s   mean {r['mean']:.1f} s")
    print(f"  work per job: poll {r['work_poll_ms']:.1f} ms, dispatch {r['work_dispatch_ms']:.1f} ms "
          f"({r['work_per_send_ms']:.1f} ms per alert sent) "
          f"(the rest is waiting for the next poll/dispatch; expected mean ~ "
          f"{args.poll / 2 + args.dispatch / 2:.1f} s, p95 ~ {0.95 * args.poll + args.dispatch:.1f} s)")
    print(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
