"""Ingest throughput: chanwatch's ingest vs a bare SQLite insert of the same rows with FTS5.

Run by hand: `python bench/ingest.py --messages 1000000 --db /tmp/bench.db`. The bare insert is the
practical limit (no dedup, no versions, no provenance columns); the target is at least half of it.
Peak memory (max RSS) is printed for each run, each in its own process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import batches  # noqa: E402
from storage.database import connect_sync  # noqa: E402
from storage.ingest import ingest_batch  # noqa: E402
from storage.records import iso  # noqa: E402


def _fresh(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def run_chanwatch(n: int, path: str) -> dict[str, float]:
    """Ingest n messages through storage.ingest, one transaction per batch of 100."""
    _fresh(path)
    conn = connect_sync(path)
    start = time.perf_counter()
    for b in batches(n):
        ingest_batch(conn, b)
    elapsed = time.perf_counter() - start
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    conn.close()
    return {"seconds": elapsed, "per_second": n / elapsed, "posts": posts}


def run_bare(n: int, path: str) -> dict[str, float]:
    """The same rows with a plain INSERT and an FTS5 index on the text, per batch of 100."""
    _fresh(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE m (channel_id INTEGER, message_id INTEGER, date TEXT, text TEXT, fwd_id INTEGER, "
        "fwd_post INTEGER, views INTEGER, raw TEXT, PRIMARY KEY (channel_id, message_id))"
    )
    conn.execute("CREATE VIRTUAL TABLE m_fts USING fts5 (text)")
    start = time.perf_counter()
    for b in batches(n):
        rows = [
            (r.channel_id, r.message_id, iso(r.date), r.text,
             r.forward.from_peer_id if r.forward else None,
             r.forward.channel_post if r.forward else None, r.views, json.dumps(r.raw))
            for r in b.messages
        ]
        conn.execute("BEGIN")
        cur = conn.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO m_fts (text) VALUES (?)", [(r[3],) for r in rows])
        del cur
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return {"seconds": elapsed, "per_second": n / elapsed}


def _child(name: str, n: int, path: str, queue: multiprocessing.Queue) -> None:
    result = (run_chanwatch if name == "chanwatch" else run_bare)(n, path)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(name: str, n: int, path: str) -> dict[str, float]:
    """Run one benchmark in a fresh process so its peak memory is its own."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_child, args=(name, n, path, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--db", default="/tmp/chanwatch-bench.db")
    args = parser.parse_args()
    bare = measure("bare", args.messages, args.db + ".bare")
    ours = measure("chanwatch", args.messages, args.db)
    print(f"messages: {args.messages:,}  canonical posts: {ours['posts']:,}")
    print(f"bare SQLite + FTS5: {bare['per_second']:,.0f} msg/s  ({bare['seconds']:.1f} s, "
          f"peak {bare['max_rss_mb']:.0f} MB)")
    print(f"chanwatch ingest:   {ours['per_second']:,.0f} msg/s  ({ours['seconds']:.1f} s, "
          f"peak {ours['max_rss_mb']:.0f} MB)")
    print(f"ratio: {ours['per_second'] / bare['per_second']:.2f} of the bare limit (target >= 0.5)")


if __name__ == "__main__":
    main()
