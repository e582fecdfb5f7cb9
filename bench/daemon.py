"""The whole daemon for a simulated day: memory (RSS) and CPU per poll cycle of `Service` on a big archive.

Run by hand: `python bench/daemon.py` (200 channels, a 1M-message archive, three runs of each mode;
`--help` for the sizes). The goal is an RSS of at most 150 MB.

Outside anything measured: a `--messages` archive of `--channels` channels is generated with
`bench.corpus` (cached under `--cache-dir`, keyed by its parameters, and copied for each run), and
a simulated Telegram (`bot.simulator.World`) gets the same channels, their ids, access hashes and
message ids, with a stand-in (same id and date, no text) for the newest `--tail` messages of each,
so the re-check of the recent window finds them present, as Telegram would.

Then the real `Service` (bot/service.py) runs one simulated day with its jobs on a paused scheduler,
their bodies called on a virtual clock (no sleeping; the pacer's and flood waits advance it): a poll
every 60 s, the instant dispatcher every 5 s, the recheck every 15 min, engagement rounds every
5 min, two subscribers' digests at 08:00 and 18:00 UTC. The day's traffic: `--posts` posts spread
over the day (quiet at night, busiest channels first), 30 % of them forwards between channels, some
edited and some deleted later, views growing hourly. Four subscribers have eight rules. Media
downloads are off (no files), and so is the slow deletion sweep: it re-reads the archive's old
messages by id, and the simulator cannot hold 1M messages (it would find them all deleted).

Each run is its own process (`spawn`), so its peak memory is its own. Measured:
- RSS: the process's peak (`ru_maxrss`) and its RSS after the day, and the same process without the
  daemon (the World with its stand-ins and the day's traffic, the two clients connected, no
  `Service` and no archive open); the daemon's share is the difference of the RSS after the day.
- CPU per poll cycle: process CPU time around each `Service.poll_cycle()` (the archive's thread
  included; the simulator's answers too, as they run in the process), median, p95 and max; and the
  reading account's requests per cycle.
- The day's total CPU (every job, the simulator and the traffic), alerts sent (outbox rows sent).

`CHANWATCH_JOIN` both ways: *joined* (pushed updates ingested at once by `bot.live`, the poll asks
GetPeerDialogs which channels changed) and *not joined* (one GetHistory per channel per cycle).
`--trace N` runs one joined day under tracemalloc and prints the N biggest allocation sites.
"""

from __future__ import annotations

import _sqlite3
import argparse
import asyncio
import ctypes
import hashlib
import heapq
import math
import multiprocessing
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telethon.tl import types  # noqa: E402

from bench.corpus import batches, uniform_text  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.simulator import SimChannel, World, connect_client  # noqa: E402
from bot.simulator.tl import make  # noqa: E402
from storage.database import Database, connect_sync  # noqa: E402
from storage.ingest import ingest_batch  # noqa: E402
from storage.outbox import counts  # noqa: E402
from storage.records import Batch, Channel  # noqa: E402
from storage.rules import add_rule, ensure_subscriber, set_mode  # noqa: E402

DAY = 86_400.0
POLL_EVERY = 60.0  # CHANWATCH_POLL_INTERVAL's default
RECHECK_EVERY = 900.0  # CHANWATCH_RECHECK_INTERVAL's default
INSTANT_EVERY = 5.0  # bot.service.INSTANT_EVERY
ENGAGEMENT_EVERY = 300.0  # bot.service.ENGAGEMENT_EVERY
STATS_DAYS = 14  # CHANWATCH_STATS_DAYS's default
ORIGINS = 10  # the first channels are the ones the others forward from
PAGE = 4096

# The subscribers: (name, mode, digest schedule, rules); the first is CHANWATCH_ALERT_CHAT (keywords).
SUBSCRIBERS: tuple[tuple[str, str, str | None, tuple[str, ...]], ...] = (
    ("alice", "instant", None, ('"nuclear treaty"', "#Арктика")),
    ("bob", "digest", "0 8 * * *", ('"sanctions canada"', '"санкции канада"')),
    ("carol", "digest", "0 18 * * *", ('"arctic cooperation"', "#Canada")),
    ("dave", "instant", None, ('"президент визит"', "summit AND treaty AND nuclear")),
)


def rss_mb() -> float:
    """This process's resident memory now (MB)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def max_rss_mb() -> float:
    """This process's peak resident memory (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sqlite_mb() -> tuple[float, float]:
    """SQLite's own heap in this process (page caches included), now and at its peak (MB); (0, 0)
    where the library does not say (`sqlite3_status64`, SQLITE_STATUS_MEMORY_USED)."""
    try:
        status = ctypes.CDLL(_sqlite3.__file__).sqlite3_status64
    except (OSError, AttributeError):
        return 0.0, 0.0
    now, peak = ctypes.c_int64(), ctypes.c_int64()
    if status(0, ctypes.byref(now), ctypes.byref(peak), 0) != 0:
        return 0.0, 0.0
    return now.value / 2**20, peak.value / 2**20


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- the archive -----------------------------------------------------------------------------------


def world_channels(world: World, channels: int) -> list[SimChannel]:
    """The benchmark's channels in a World (the archive is keyed by their ids and access hashes)."""
    return [world.add_channel(f"chan{i}", f"Channel {i}") for i in range(channels)]


def remapped(source: Iterator[Batch], ids: dict[int, Channel]) -> Iterator[Batch]:
    """The corpus's batches with its channel ids (10000 + i) replaced by the World's channels."""
    for batch in source:
        channel = ids[batch.channel.id]
        records = []
        for r in batch.messages:
            forward = r.forward
            if forward is not None and forward.from_peer_id in ids:
                forward = replace(forward, from_peer_id=ids[forward.from_peer_id].id)
            records.append(replace(r, channel_id=channel.id, forward=forward))
        yield Batch(channel, tuple(records), cursor=batch.cursor)


def archive(messages: int, channels: int, seed: int, cache_dir: Path) -> Path:
    """The generated archive, built once and kept under `cache_dir` (keyed by its parameters)."""
    chans = world_channels(World(), channels)
    key = hashlib.sha1(repr([(c.id, c.access_hash) for c in chans]).encode()).hexdigest()[:8]
    path = cache_dir / f"chanwatch-bench-daemon-{messages}-{channels}-s{seed}-{key}.db"
    if path.exists():
        return path
    ids = {10_000 + i: Channel(c.id, c.username, c.title, c.access_hash, watched=True)
           for i, c in enumerate(chans)}
    partial = path.with_suffix(".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    conn = connect_sync(partial)
    for batch in remapped(batches(messages, channels=channels, origins=5, seed=seed), ids):
        ingest_batch(conn, batch)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(path)
    print(f"(built {path} in {time.perf_counter() - started:.0f} s; reused by the next runs)", flush=True)
    return path


def newest(path: Path, channel_id: int, tail: int) -> list[tuple[int, datetime]]:
    """The newest `tail` (message id, date) of a channel in the archive, oldest first."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT message_id, date FROM messages WHERE channel_id = ? "
                            "ORDER BY message_id DESC LIMIT ?", (channel_id, tail)).fetchall()
    finally:
        conn.close()
    return [(m, datetime.fromisoformat(d)) for m, d in reversed(rows)]


def day_start(path: Path) -> datetime:
    """The midnight the day starts at: after the archive's newest post and its engagement window, so
    that every due reading and every recent message is one the simulator holds."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        last = datetime.fromisoformat(conn.execute("SELECT max(date) FROM messages").fetchone()[0])
    finally:
        conn.close()
    return (last + timedelta(days=STATS_DAYS + 1)).replace(hour=0, minute=0, second=0, microsecond=0)


# -- the day ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """One run's parameters (picklable: it crosses into the run's process)."""

    archive: Path
    folder: Path
    start: datetime
    channels: int
    posts: int
    tail: int
    join: bool
    daemon: bool  # False: the same World and traffic with no Service (the RSS baseline)
    seed: int
    hours: float
    trace: int = 0
    cache_mib: int | None = None  # the archive connection's page cache (None: the archive's own)


class DayClock:
    """Virtual time: moved forward to each event, and by every sleep the daemon asks for."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t = 0.0

    def now(self) -> datetime:
        """The virtual `now`."""
        return self.start + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        """The pacer's and flood policy's sleep: advances virtual time, waits for nothing."""
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)


def _busy_at(rng: random.Random, length: float) -> float:
    """A moment of the day, three times likelier in the afternoon than at night."""
    while True:
        t = rng.uniform(0, length)
        hour = (t / 3600) % 24
        if rng.random() < 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour - 6) / 18)):
            return t


def traffic(cfg: Config) -> list[tuple[float, int, str, int, int]]:
    """The day's channel events (time, order, kind, channel index, post number), in time order:
    posts and forwards, and later edits and deletions of some of them; views grow every hour."""
    rng = random.Random(cfg.seed)
    length = cfg.hours * 3600
    weights = [1 / (i + 1) ** 0.7 for i in range(cfg.channels)]
    events = []
    for n in range(cfg.posts):
        t = _busy_at(rng, length)
        ci = rng.choices(range(cfg.channels), weights)[0]
        kind = "forward" if ci >= ORIGINS and rng.random() < 0.3 else "post"
        events.append((t, 1, kind, ci, n))
        if rng.random() < 0.03:
            events.append((min(length, t + rng.uniform(300, 6 * 3600)), 1, "edit", ci, n))
        elif rng.random() < 0.01:
            events.append((min(length, t + rng.uniform(60, 12 * 3600)), 1, "delete", ci, n))
    events += [(h * 3600.0, 1, "grow", 0, 0) for h in range(1, int(cfg.hours) + 1)]
    return sorted(events)


def jobs(cfg: Config, digests: dict[float, int]) -> list[tuple[float, int, str, int, int]]:
    """The daemon's job runs of the day (order 0: a job due at the moment of a post runs first)."""
    length = cfg.hours * 3600
    runs = []
    for kind, every, first in (("poll", POLL_EVERY, 0.0), ("instant", INSTANT_EVERY, 0.0),
                               ("recheck", RECHECK_EVERY, RECHECK_EVERY),
                               ("engagement", ENGAGEMENT_EVERY, ENGAGEMENT_EVERY)):
        runs += [(first + k * every, 0, kind, 0, 0) for k in range(int((length - first) // every) + 1)]
    runs += [(t, 0, "digest", chat, 0) for t, chat in digests.items() if t <= length]
    return runs


class Day:
    """One simulated day against a World: the traffic, and the daemon's jobs when there is one."""

    def __init__(self, cfg: Config, world: World, chans: list[SimChannel], clock: DayClock) -> None:
        self.cfg, self.world, self.chans, self.clock = cfg, world, chans, clock
        self.rng = random.Random(cfg.seed + 1)  # the traffic's own: the same day with or without a daemon
        self.ids: dict[int, int] = {}  # post number -> message id
        self.published: list[tuple[SimChannel, int]] = []  # origin channels' posts, to forward

    def apply(self, kind: str, ci: int, n: int) -> None:
        """One channel event in the World."""
        world, channel = self.world, self.chans[ci]
        if kind == "post" or (kind == "forward" and not self.published):
            self.ids[n] = world.post(channel, uniform_text(self.rng), views=1).id
            if ci < ORIGINS:
                self.published.append((channel, self.ids[n]))
        elif kind == "forward":
            source, mid = self.rng.choice(self.published[-50:])
            if world.message(source, mid) is None:
                self.ids[n] = world.post(channel, uniform_text(self.rng), views=1).id
            else:
                self.ids[n] = world.forward(source, mid, channel).id
        elif kind == "edit" and n in self.ids and (msg := world.message(channel, self.ids[n])) is not None:
            world.edit(channel, self.ids[n], msg.message + " (updated)")
        elif kind == "delete" and n in self.ids:
            world.delete(channel, self.ids[n])
        elif kind == "grow":
            for ch in self.chans:
                world.grow_engagement(ch)


def stand_ins(cfg: Config, world: World, chans: list[SimChannel]) -> int:
    """Each channel's newest archived messages in the World (same ids and dates, no text), and its
    next id after the archive's: the recent window the re-check reads back finds them present."""
    made = 0
    for ch in chans:
        rows = newest(cfg.archive, ch.id, cfg.tail)
        for mid, date in rows:
            ch.messages[mid] = make(types.Message, id=mid, peer_id=ch.peer, date=date, message="",
                                    post=True, views=10, forwards=0)
        ch.next_id = (rows[-1][0] + 1) if rows else ch.next_id
        made += len(rows)
    return made


async def run_day(cfg: Config) -> dict[str, Any]:
    """One day in this process; returns what was measured."""
    clock = DayClock(cfg.start)
    world = World(now=cfg.start)
    chans = world_channels(world, cfg.channels)
    reader_account = world.add_user("Reader", username="bench_reader")
    bot_account = world.add_bot("bench_bot")
    people = [world.add_user(name.title(), username=f"bench_{name}") for name, *_ in SUBSCRIBERS]
    held = stand_ins(cfg, world, chans)
    reader = await connect_client(world, as_user=reader_account, flood_sleep_threshold=0)
    bot = await connect_client(world, as_user=bot_account, bot=True, flood_sleep_threshold=0)
    for person in people:
        world.say(person, bot_account, "/start")
    await world.settle()
    day = Day(cfg, world, chans, clock)
    digests = {}
    for person, (_, mode, schedule, _) in zip(people, SUBSCRIBERS, strict=True):
        if mode == "digest" and schedule:
            digests[int(schedule.split()[1]) * 3600.0] = person.id
    events = traffic(cfg) + (jobs(cfg, digests) if cfg.daemon else [])
    heapq.heapify(events)
    if cfg.trace:  # from here: the daemon's objects and the day's; not the World's stand-ins
        tracemalloc.start(1)
    db: Database | None = None
    service: Service | None = None
    if cfg.daemon:
        path = cfg.folder / f"daemon-{cfg.join}-{cfg.seed}.db"
        shutil.copyfile(cfg.archive, path)
        db = await Database.open(path)
        if cfg.cache_mib is not None:
            await db.run(lambda conn: conn.execute(f"PRAGMA cache_size = -{cfg.cache_mib * 1024}"))
        for person, (_, mode, schedule, rules) in list(zip(people, SUBSCRIBERS, strict=True))[1:]:
            await db.transaction(ensure_subscriber, person.id, cfg.start)
            if mode == "digest":
                await db.transaction(set_mode, person.id, mode, schedule)
            for query in rules:
                await db.transaction(add_rule, person.id, query, cfg.start)
        settings = Settings(db_path=path, channels=tuple(c.username or "" for c in chans), join=cfg.join,
                            alert_chat=people[0].id, keywords=SUBSCRIBERS[0][3], sweep_per_hour=0,
                            media_kinds=frozenset(), stats_days=STATS_DAYS)
        scheduler = _paused_scheduler()
        service = Service(settings, db, reader, bot, scheduler=scheduler, now=clock.now, sleep=clock.sleep)
        await service.start()
        await world.settle()
    world.reset_requests()
    cpu_cycles: list[float] = []
    requests: list[int] = []
    reader_requests = world.requests_by_account[reader_account.id]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    try:
        while events:
            t, _, kind, ci, n = heapq.heappop(events)
            clock.t = max(clock.t, t)
            world.now = clock.now()
            if service is None or kind in ("post", "forward", "edit", "delete", "grow"):
                day.apply(kind, ci, n)
                if cfg.join and service is not None:
                    await world.settle()  # the pushed update is ingested (bot.live) before time moves on
            elif kind == "poll":
                before, cpu = sum(reader_requests.values()), time.process_time()
                await service.poll_cycle()
                cpu_cycles.append(time.process_time() - cpu)
                requests.append(sum(reader_requests.values()) - before)
            elif kind == "instant" and service.dispatcher is not None:
                await service.dispatcher.dispatch_instant()
            elif kind == "digest" and service.dispatcher is not None:
                await service.dispatcher.send_digest(ci)
            elif kind == "recheck":
                await service.recheck_cycle()
            elif kind == "engagement":
                await service.engagement_cycle()
        await world.settle()
        cpu_day, wall_day = time.process_time() - cpu_start, time.perf_counter() - wall_start
        result: dict[str, Any] = {
            "rss_after": rss_mb(), "max_rss": max_rss_mb(), "sqlite": sqlite_mb(),
            "cpu_day": cpu_day, "wall": wall_day, "held": held,
            "posts": sum(len(c.messages) for c in chans) - held,
        }
        if cfg.trace:
            result["trace"] = _top(tracemalloc.take_snapshot(), cfg.trace)
            result["traced"] = tracemalloc.get_traced_memory()[0] / 2**20
        if db is not None:
            outbox = await db.run(counts)
            result |= {"alerts": outbox["sent"], "pending": outbox["pending"],
                       "cycles": len(cpu_cycles), "cpu": cpu_cycles, "requests": requests}
        return result
    finally:
        if service is not None:
            await service.stop()
        if db is not None:
            await db.close()
            for suffix in ("", "-wal", "-shm"):  # a copy of the whole archive: gone before the next run
                Path(f"{db.path}{suffix}").unlink(missing_ok=True)
        await world.close()


def _paused_scheduler() -> Any:
    """A started scheduler that runs nothing by itself: the day calls the job bodies on its clock."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    return scheduler


def _top(snapshot: tracemalloc.Snapshot, n: int) -> list[str]:
    """The n biggest allocation sites still alive, as 'size MB  count  file:line'."""
    stats = snapshot.statistics("lineno")[:n]
    return [f"{s.size / 2**20:7.1f} MB {s.count:>8} blocks  {s.traceback[0]}" for s in stats]


def _child(cfg: Config, queue: Any) -> None:
    queue.put(asyncio.run(run_day(cfg)))


def measure(cfg: Config) -> dict[str, Any]:
    """Run one day in a fresh (spawned) process so that its memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    proc = context.Process(target=_child, args=(cfg, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"the {'joined' if cfg.join else 'not-joined'} run failed (exit {proc.exitcode})")
    return result


# -- the summary -----------------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    """min / median / max of the runs' values."""
    ordered = sorted(values)
    return " / ".join(fmt.format(v) for v in (ordered[0], statistics.median(ordered), ordered[-1]))


def summary(mode: str, runs: Sequence[dict[str, Any]], baseline: float) -> list[str]:
    """The lines of one mode over its runs (min / median / max over runs)."""
    ms = "{:.1f}"
    return [
        f"  {mode}: {spread([r['cycles'] for r in runs])} poll cycles, "
        f"{spread([sum(r['requests']) / len(r['requests']) for r in runs], ms)} requests per cycle "
        f"(max {max(max(r['requests']) for r in runs)}), {spread([r['alerts'] for r in runs])} alerts sent "
        f"({spread([r['pending'] for r in runs])} pending at the end)",
        f"    RSS: peak {spread([r['max_rss'] for r in runs])} MB, after the day "
        f"{spread([r['rss_after'] for r in runs])} MB, the daemon's share "
        f"{spread([r['rss_after'] - baseline for r in runs])} MB (goal <= 150 MB), of which SQLite's heap "
        f"{spread([r['sqlite'][0] for r in runs])} MB (peak {spread([r['sqlite'][1] for r in runs])} MB)",
        f"    CPU per poll cycle (ms): median "
        f"{spread([1000 * statistics.median(r['cpu']) for r in runs], ms)}"
        f"   p95 {spread([1000 * percentile(r['cpu'], 95) for r in runs], ms)}"
        f"   max {spread([1000 * max(r['cpu']) for r in runs], ms)}",
        f"    the day's CPU: {spread([r['cpu_day'] for r in runs])} s "
        f"({spread([r['wall'] for r in runs])} s of wall time)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages in the archive")
    parser.add_argument("--posts", type=int, default=5000, help="posts in the simulated day")
    parser.add_argument("--hours", type=float, default=24.0, help="length of the simulated day")
    parser.add_argument("--tail", type=int, default=200,
                        help="newest archived messages a channel has in the simulator (>= recheck window)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode")
    parser.add_argument("--mode", choices=("both", "joined", "not-joined"), default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the generated archive is kept between runs")
    parser.add_argument("--dir", type=Path, default=None, help="where each run's copy of the archive goes")
    parser.add_argument("--trace", type=int, default=0, metavar="N",
                        help="instead: one joined day under tracemalloc; the N biggest allocation sites")
    parser.add_argument("--cache-mib", type=int, default=None,
                        help="the archive connection's page cache, MiB (default: the archive's own)")
    args = parser.parse_args()
    path = archive(args.messages, args.channels, args.seed, args.cache_dir)
    start = day_start(path)
    modes = {"both": (True, False), "joined": (True,), "not-joined": (False,)}[args.mode]
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        def config(join: bool, daemon: bool, seed: int, trace: int = 0) -> Config:
            return Config(path, Path(folder), start, args.channels, args.posts, args.tail, join, daemon, seed,
                          args.hours, trace, args.cache_mib)

        if args.trace:
            traced = measure(config(True, True, args.seed, args.trace))
            print(f"tracemalloc, one joined day: RSS {traced['rss_after']:.0f} MB after it, SQLite's heap "
                  f"{traced['sqlite'][0]:.0f} MB, Python objects allocated since the World was built and "
                  f"still alive {traced['traced']:.0f} MB; the biggest sites:")
            print("\n".join(traced["trace"]))
            return
        base = measure(config(False, False, args.seed))
        results: dict[bool, list[dict[str, Any]]] = {join: [] for join in modes}
        for k in range(args.runs):
            for join in modes:
                r = measure(config(join, True, args.seed + k))
                results[join].append(r)
                print(f"(run {k + 1}, {'joined' if join else 'not joined'}: RSS {r['rss_after']:.0f} MB "
                      f"after the day, peak {r['max_rss']:.0f} MB; CPU per cycle median "
                      f"{1000 * statistics.median(r['cpu']):.1f} ms, the day {r['cpu_day']:.0f} s)",
                      flush=True)
    print(f"the daemon for a simulated day ({args.hours:g} h): {args.channels} channels, an archive of "
          f"{args.messages:,} messages, {args.posts:,} posts in the day (30 % forwards, some edited or "
          f"deleted); "
          f"{args.runs} run(s) of each mode, min / median / max over runs")
    print(f"  without the daemon (the simulator with {base['held']:,} stand-ins and the day's posts, two "
          f"clients): RSS {base['rss_after']:.0f} MB after the day, peak {base['max_rss']:.0f} MB")
    for join, runs in results.items():
        mode = "joined (CHANWATCH_JOIN=true)" if join else "not joined (CHANWATCH_JOIN=false)"
        print("\n".join(summary(mode, runs, base["rss_after"])))


if __name__ == "__main__":
    main()
