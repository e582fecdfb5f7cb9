"""The amplification report (`storage.reports.amplification`) over a 1M-message archive: seconds and
peak memory, for the whole archive and for one origin over its last 30 days.

Run by hand: `python bench/report.py` (default 1,000,000 messages). The archive (`bench.corpus.
amplification_batches`: two ministries, twenty embassies forwarding and copying a share of their
posts after spread delays, their own posts, edits and deletions) is built through chanwatch's own
ingest once, outside any timed region, and kept at `--db` for the next run (rebuilt when its message
count differs, or with `--rebuild`). Each case runs once untimed (warm cache), then `--runs` times
timed (wall clock and CPU time); one more run under tracemalloc gives the call's peak of Python
memory (SQLite's own page cache is outside it: the process's max RSS covers both). Target: 5 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import amplification_batches  # noqa: E402
from storage.channels import channel_by_username  # noqa: E402
from storage.database import connect_readonly, connect_sync  # noqa: E402
from storage.ingest import ingest_batch  # noqa: E402
from storage.reports import Amplification, amplification  # noqa: E402


def build(path: Path, messages: int) -> None:
    """The benchmark archive at `path`, written to a side file first so an interrupted build is never
    taken for a finished one."""
    partial = path.with_name(path.name + ".building")
    for suffix in ("", "-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    start = time.perf_counter()
    conn = connect_sync(partial)
    for batch in amplification_batches(messages):
        ingest_batch(conn, batch)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):  # a removed archive's leftovers must not meet the new one
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(partial, path)
    print(f"built {path} in {time.perf_counter() - start:.0f} s")


def message_count(path: Path) -> int | None:
    """How many messages the kept archive holds (None: there is none)."""
    if not path.exists():
        return None
    conn = connect_sync(path)  # migrates an archive kept from an older schema
    try:
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        conn.close()


def measure(call: Callable[[], Amplification], runs: int
            ) -> tuple[list[float], list[float], int, Amplification]:
    """`runs` timed calls after one untimed, then one under tracemalloc: the wall-clock and CPU
    seconds of each timed call (CPU time moves less when other processes share the cores), the
    traced call's peak bytes and its report."""
    call()
    seconds, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tracemalloc.start()
    report = call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, cpu, peak, report


def spread(values: list[float]) -> str:
    """min–median–max, in seconds."""
    return f"{min(values):.2f}–{statistics.median(values):.2f}–{max(values):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="/tmp/chanwatch-bench-report.db")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--origin", default="mfa0", help="the origin of the windowed case")
    parser.add_argument("--days", type=int, default=30, help="the windowed case's days, up to the last post")
    parser.add_argument("--rebuild", action="store_true", help="build the archive even if one is kept")
    args = parser.parse_args()
    path = Path(args.db)
    if args.rebuild or message_count(path) != args.messages:
        build(path, args.messages)
    conn = connect_readonly(path)  # as `chanwatch report` opens it
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    last = date.fromisoformat(conn.execute("SELECT max(date) FROM posts").fetchone()[0][:10])
    origin = channel_by_username(conn, args.origin)
    if origin is None:
        sys.exit(f"bench: no channel @{args.origin} in {path}")
    since = last - timedelta(days=args.days - 1)
    print(f"archive: {args.messages:,} messages, {posts:,} posts, up to {last}; {args.runs} timed runs each")
    cases = [("whole archive", lambda: amplification(conn)),
             (f"@{args.origin}, {since} to {last}", lambda: amplification(conn, origin, since, last))]
    for name, call in cases:
        seconds, cpu, peak, report = measure(call, args.runs)
        carried = sum(a.carried for a in report.amplifiers)
        print(f"  {name}: {spread(seconds)} (min–median–max; target < 5 s), CPU {spread(cpu)}, "
              f"tracemalloc peak {peak / 2**20:.1f} MB; "
              f"{len(report.origins)} origins, {len(report.amplifiers)} amplifier rows, "
              f"{carried:,} (amplifier, post) pairs, {len(report.timeline):,} timeline days")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of the process) {rss:.0f} MB")


if __name__ == "__main__":
    main()
