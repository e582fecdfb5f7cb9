"""Post → alert latency of the daemon, instant mode: live updates (CHANWATCH_JOIN) against the poll.

Run by hand: `python bench/live_latency.py` (three runs of each mode; `--help` for the sizes).

The whole daemon runs: a `Service` with its APScheduler jobs (poll, recheck, dispatcher) on the
real clock, the reading and bot clients on the simulator, posts at random (Poisson) moments in
`--channels` channels, some matching the alert rule. Latency is from `World.post` to the moment the
bot's alert message was accepted into the alert chat (the dispatcher's `before_mark` hook): what
the subscriber sees.

- *live* (`join=True`): the reading account has joined the channels, the simulator pushes each
  post as Telegram does, `bot/live.py` ingests it and wakes the dispatcher. Runs in real time
  (`--live-scale 1`): every millisecond of Telethon, SQLite, percolation and sending counts.
- *poll* (`join=False`): the post waits for the next poll (`--poll` s) and the next dispatch
  (5 s). Its periods are long, so this mode runs time-compressed (`--poll-scale`, default 10: the
  scheduler's intervals, the daemon's clock and the dispatcher's pacing all run that much faster,
  and latencies are reported in daemon seconds). The work inside is stretched by the same factor,
  so the poll figures are, if anything, pessimistic by a few tenths of a second.

Each run prints nothing; the summary gives min / median / max over the runs of each statistic.
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

from bot.config import Settings  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.simulator import World, connect_client  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.outbox import get_alerts  # noqa: E402

START = datetime.now(UTC).replace(microsecond=0)


class ScaledClock:
    """The daemon's clock running `scale` times faster than the real one; its sleeps as much shorter."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._origin = time.perf_counter()

    def seconds(self) -> float:
        """Daemon seconds since the start."""
        return (time.perf_counter() - self._origin) * self.scale

    def now(self) -> datetime:
        """The daemon's `now`."""
        return START + timedelta(seconds=self.seconds())

    async def sleep(self, seconds: float) -> None:
        """The pacer's and flood policy's sleep, in daemon seconds."""
        await asyncio.sleep(max(seconds, 0.0) / self.scale)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def run(join: bool, scale: float, channels: int, posts: int, gap: float, poll: int, match: float,
              seed: int, folder: Path) -> dict[str, float]:
    """One run of the daemon; returns the latency statistics in daemon seconds."""
    rng = random.Random(seed)
    clock = ScaledClock(scale)
    world = World(now=START)
    reader_account = world.add_user("Reader", username="bench_reader")
    bot_account = world.add_bot("bench_bot")
    alice = world.add_user("Alice", username="bench_alice")
    reader = await connect_client(world, as_user=reader_account, flood_sleep_threshold=0)
    bot = await connect_client(world, as_user=bot_account, bot=True, flood_sleep_threshold=0)
    db = await Database.open(folder / f"live-{join}-{seed}.db")
    chans = [world.add_channel(f"livelat{i:03d}", f"Latency {i}") for i in range(channels)]
    for ch in chans:
        world.post(ch, "hello")
    settings = Settings(db_path=folder / "unused.db", channels=tuple(c.username or "" for c in chans),
                        join=join, alert_chat=alice.id, keywords=("sanctions",), poll_interval=poll,
                        recheck_interval=3600, media_kinds=frozenset())
    service = Service(settings, db, reader, bot, now=clock.now, sleep=clock.sleep, time_scale=scale)
    sent_at: dict[int, float] = {}
    try:
        world.say(alice, bot_account, "/start")
        await world.settle()
        await service.start()
        await service.poll_cycle()  # cursors at the top (the first scheduled poll may have done it)
        assert service.dispatcher is not None

        def record(alert_ids: Sequence[int]) -> None:
            for alert_id in alert_ids:
                sent_at[alert_id] = clock.seconds()

        service.dispatcher.before_mark = record
        appeared: dict[tuple[int, int], float] = {}
        for index in range(posts):
            await asyncio.sleep(rng.expovariate(1 / gap) / scale)
            world.now = clock.now()
            matching = rng.random() < match or index == 0
            text = f"Item {index}: " + ("new sanctions announced" if matching else "weather report")
            channel = rng.choice(chans)
            msg = world.post(channel, text)
            if matching:
                appeared[(channel.id, msg.id)] = clock.seconds()
        deadline = time.perf_counter() + (2 * poll + 30) / scale + 5
        while len(sent_at) < len(appeared) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)  # a benchmark waiting for the last alerts, not a test
        alerts = await db.run(get_alerts, alice.id)
        sql = "SELECT id, origin_channel_id, origin_message_id FROM posts"
        origin = await db.run(lambda conn: {r[0]: (r[1], r[2]) for r in conn.execute(sql)})
        latencies = [sent_at[a.id] - appeared[origin[a.post_id]] for a in alerts
                     if a.id in sent_at and origin.get(a.post_id) in appeared]
        live = service.live
        return {
            "alerts": len(latencies), "expected": len(appeared),
            "p50": statistics.median(latencies), "p95": percentile(latencies, 95), "max": max(latencies),
            "live_stored": float(live.stored if live is not None else 0),
        }
    finally:
        await service.stop()
        await db.close()
        await world.close()


def spread(runs: Sequence[dict[str, float]], key: str) -> str:
    values = sorted(r[key] for r in runs)
    return f"{values[0]:.2f} / {statistics.median(values):.2f} / {values[-1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--posts", type=int, default=30, help="posts per run")
    parser.add_argument("--gap", type=float, default=3.0, help="mean seconds between two posts")
    parser.add_argument("--poll", type=int, default=60, help="CHANWATCH_POLL_INTERVAL, seconds")
    parser.add_argument("--match", type=float, default=0.3, help="share of posts that match the rule")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--live-scale", type=float, default=1.0, help="time compression of the live runs")
    parser.add_argument("--poll-scale", type=float, default=10.0, help="time compression of the poll runs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"live": [], "poll": []}
    with tempfile.TemporaryDirectory() as folder:
        for mode, join, scale in (("live", True, args.live_scale), ("poll", False, args.poll_scale)):
            for n in range(args.runs):
                results[mode].append(asyncio.run(run(join, scale, args.channels, args.posts, args.gap,
                                                     args.poll, args.match, args.seed + n, Path(folder))))
    print(f"post -> alert latency, instant mode: {args.channels} channels, {args.posts} posts a run "
          f"(one every {args.gap:g} s on average), poll every {args.poll} s, dispatch every 5 s; "
          f"{args.runs} runs each, min / median / max over runs, seconds")
    for mode, runs in results.items():
        alerts = sum(int(r["alerts"]) for r in runs)
        expected = sum(int(r["expected"]) for r in runs)
        how = "CHANWATCH_JOIN=true, live updates" if mode == "live" else "CHANWATCH_JOIN=false, poll"
        print(f"  {mode:4} ({how}): {alerts}/{expected} alerts   p50 {spread(runs, 'p50')}   "
              f"p95 {spread(runs, 'p95')}   max {spread(runs, 'max')}")
    print(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
