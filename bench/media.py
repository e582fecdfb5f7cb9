"""Media downloads through the simulator: no file twice, MB/s, and peak memory on one big file (issue #13).

Run by hand: `python bench/media.py` (1,000 items from 50 channels, 3 runs, then a 500 MB file).

1. `--items` media items (photos 50 KB-1 MB, documents 50 KB-20 MB, a seeded log-uniform size
   distribution, times `--scale`) posted in 50 channels; 30 % of the items are forwards of a file
   already posted (in another channel), as embassies pass on their ministry's files. One poll queues
   them (not timed); then the daemon's `Downloader` downloads the queue (timed, `run_once` until
   nothing is due). Reported: bytes GetFile served vs the unique files' bytes (equal: no file twice),
   MB/s of the whole download, and how much of that time the simulator spent serving GetFile (timed
   around `World.serve_file`), over `--runs` runs as min/median/max.
2. The peak memory (ru_maxrss) of a child process that downloads one `--big-mb` MB document
   (times `--scale`): the target is under 150 MB, since the file streams to disk.
Files "without data" (the simulator's builders: their bytes repeat the file id) keep the simulator's
own memory out of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.media import MB, Downloader, MediaPolicy  # noqa: E402
from bot.poller import Poller  # noqa: E402
from bot.resolve import resolve_channels  # noqa: E402
from bot.simulator import World, connect_client  # noqa: E402
from bot.simulator import media as sim_media  # noqa: E402
from bot.telegram import FloodPolicy  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.media_queue import media_status  # noqa: E402
from storage.media_store import MediaStore  # noqa: E402

CHANNELS = 50
FORWARD_SHARE = 0.30
KB = 1024
ALL = MediaPolicy(kinds=None, max_bytes=None)


async def _no_sleep(seconds: float) -> None:
    """Flood waits (none are injected here) never wait in a benchmark."""


def sample_size(rng: random.Random, scale: float) -> tuple[str, int]:
    """A (kind, size): 60 % photos of 50 KB-1 MB, 40 % documents of 50 KB-20 MB, log-uniform."""
    kind = "photo" if rng.random() < 0.6 else "document"
    top = 1 * MB if kind == "photo" else 20 * MB
    size = math.exp(rng.uniform(math.log(50 * KB), math.log(top)))
    return kind, max(1, int(size * scale))


def fill(world: World, items: int, scale: float, seed: int) -> list[Any]:
    """Post `items` media items in the channels: originals, and 30 % forwards of an earlier original."""
    rng = random.Random(seed)
    channels = [world.add_channel(f"mediabench{i:02d}", f"Media bench {i}") for i in range(CHANNELS)]
    originals: list[tuple[Any, int]] = []
    for i in range(items):
        channel = channels[i % CHANNELS]
        if originals and rng.random() < FORWARD_SHARE:
            source, msg_id = rng.choice(originals)
            if source is channel:
                channel = channels[(i + 1) % CHANNELS]
            world.forward(source, msg_id, channel)
            continue
        kind, size = sample_size(rng, scale)
        media = (sim_media.photo(size=size) if kind == "photo"
                 else sim_media.document(size=size, file_name=f"item{i}.bin", mime_type="application/zip"))
        originals.append((channel, world.post(channel, f"item {i}", media=media).id))
    return channels


async def download_run(items: int, scale: float, seed: int, folder: Path) -> dict[str, float]:
    """One run: a fresh World and archive, one poll (untimed), then the timed download of the queue."""
    world = World(seed=seed)
    account = world.add_user("Reader", username="bench_reader")
    client = await connect_client(world, as_user=account, flood_sleep_threshold=0, receive_updates=False)
    db = await Database.open(folder / "media.db")
    try:
        channels = fill(world, items, scale, seed)
        await resolve_channels(db, client, [c.username for c in channels])
        await Poller(db, client, FloodPolicy(), now=lambda: world.now, sleep=_no_sleep).poll_once()
        queued = (await db.run(media_status)).queued
        serving = [0.0]
        serve = world.serve_file

        def timed_serve(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return serve(*args)
            finally:
                serving[0] += time.perf_counter() - started

        world.serve_file = timed_serve  # type: ignore[method-assign]
        downloader = Downloader(db, client, MediaStore(folder / "media"), ALL, now=lambda: world.now,
                                sleep=_no_sleep, flood=FloodPolicy())
        done = failed = 0
        start = time.perf_counter()
        while True:
            report = await downloader.run_once(limit=100)
            done, failed = done + report.done, failed + report.failed
            if not (report.done or report.failed or report.skipped) or report.stopped:
                break
        seconds = time.perf_counter() - start
        unique = sum(f.size for f in world.files.values())
        return {"queued": queued, "done": done, "failed": failed, "served": sum(world.bytes_served.values()),
                "unique": unique, "seconds": seconds, "serving": serving[0]}
    finally:
        await db.close()
        await world.close()


async def big_file(size: int, folder: Path) -> tuple[int, float]:
    """Download one document of `size` bytes (in this process); its stored size and the seconds."""
    world = World()
    account = world.add_user("Reader", username="bench_reader")
    client = await connect_client(world, as_user=account, flood_sleep_threshold=0, receive_updates=False)
    db = await Database.open(folder / "big.db")
    try:
        channel = world.add_channel("mediabenchbig", "Media bench big")
        world.post(channel, "a big file", media=sim_media.document(size=size, file_name="big.bin"))
        await resolve_channels(db, client, [channel.username])
        await Poller(db, client, FloodPolicy(), now=lambda: world.now, sleep=_no_sleep).poll_once()
        downloader = Downloader(db, client, MediaStore(folder / "media"), ALL, now=lambda: world.now,
                                sleep=_no_sleep, flood=FloodPolicy())
        start = time.perf_counter()
        report = await downloader.run_once()
        seconds = time.perf_counter() - start
        if report.done != 1:
            raise SystemExit(f"the big file was not downloaded: {report}")
        return report.bytes, seconds
    finally:
        await db.close()
        await world.close()


def child_big(size: int) -> None:
    """The child process of part 2: download, then print bytes, seconds and ru_maxrss (KB on Linux)."""
    with tempfile.TemporaryDirectory(prefix="chanwatch-bench-") as tmp:
        stored, seconds = asyncio.run(big_file(size, Path(tmp)))
    print(stored, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """min/median/max of `values`."""
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every file size (0.01: tiny)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--big-mb", type=float, default=500, help="the single big file, MB (0: skip)")
    parser.add_argument("--child-big", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_big is not None:
        child_big(args.child_big)
        return

    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="chanwatch-bench-") as tmp:
            r = asyncio.run(download_run(args.items, args.scale, args.seed, Path(tmp)))
        if r["served"] != r["unique"] or r["failed"] or r["done"] != r["queued"]:
            raise SystemExit(f"run {run + 1}: {r['served']} bytes served for {r['unique']} unique bytes, "
                             f"{r['done']}/{r['queued']} files done, {r['failed']} failed")
        results.append(r)
    first = results[0]
    mbps = [r["served"] / MB / r["seconds"] for r in results]
    serving = [100 * r["serving"] / r["seconds"] for r in results]
    serving_mbps = [r["served"] / MB / r["serving"] for r in results]
    print(f"media: {args.items} items from {CHANNELS} channels ({FORWARD_SHARE:.0%} forwards), "
          f"{first['queued']} unique files, size scale {args.scale:g}")
    print(f"  bytes downloaded {first['served']:,} = unique bytes {first['unique']:,} "
          f"({first['unique'] / MB:.1f} MB): no file twice")
    print(f"  download over {args.runs} runs (min/median/max): {spread([r['seconds'] for r in results])} s, "
          f"{spread(mbps)} MB/s end to end; GetFile serving {spread(serving)} % of it "
          f"({spread(serving_mbps, '{:.0f}')} MB/s serving alone)")
    if args.big_mb:
        size = int(args.big_mb * MB * args.scale)
        done = subprocess.run([sys.executable, __file__, "--child-big", str(size)], capture_output=True,
                              text=True, check=True, timeout=3600)
        stored, seconds, maxrss = done.stdout.split()
        print(f"  one {size / MB:.1f} MB file: {int(stored) / MB:.1f} MB stored in {float(seconds):.1f} s, "
              f"peak memory {int(maxrss) / 1024:.0f} MB (ru_maxrss of the process; target < 150 MB)")


if __name__ == "__main__":
    main()
