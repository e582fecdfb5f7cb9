"""Ingest throughput: chanwatch's ingest vs a bare SQLite insert of the same rows with FTS5.

Run by hand: `python bench/ingest.py --messages 1000000 --db /tmp/bench.db`. The bare insert is the
practical limit (no dedup, no versions, no provenance columns); the target is at least half of it.
`--floor` also times the schema's own limit: the rows chanwatch's ingest wrote (posts, messages,
post_keys, the first engagement readings), inserted again with executemany into a fresh archive
(same schema, indexes, FTS trigger and pragmas) per batch of 100 messages, with no Python logic at
all; no ingest can beat it.
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


def run_floor(n: int, path: str) -> dict[str, float]:
    """Re-insert the rows the chanwatch run left at `path` into a fresh archive, per batch of 100.

    Only the writes are timed; the rows are read from `path` a batch at a time between them.
    """
    source = sqlite3.connect(path)
    if source.execute("SELECT count(*) FROM messages").fetchone()[0] != n:
        raise SystemExit(f"{path} does not hold the {n} messages of a chanwatch run: run it first")
    floor = path + ".floor"
    _fresh(floor)
    conn = connect_sync(floor)

    def insert(table: str, rows: list) -> None:
        if rows:
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)

    def where_in(sql: str, ids: list[int]) -> list:
        return source.execute(f"{sql} IN ({', '.join('?' * len(ids))})", ids).fetchall() if ids else []

    insert("channels", source.execute("SELECT * FROM channels").fetchall())
    messages = source.execute("SELECT * FROM messages ORDER BY rowid")
    post_of = [d[0] for d in messages.description].index("post_id")
    written: set[int] = set()
    elapsed = 0.0
    while chunk := messages.fetchmany(100):
        ids = list(dict.fromkeys(m[post_of] for m in chunk if m[post_of] not in written))
        written.update(ids)
        posts = sorted(where_in("SELECT * FROM posts WHERE id", ids), key=lambda p: ids.index(p[0]))
        keys = where_in("SELECT key, post_id FROM post_keys WHERE post_id", ids)
        stats = readings_of(source, chunk)
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        insert("posts", posts)
        insert("messages", chunk)
        insert("post_keys", keys)
        insert("message_stats", stats)
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - start
    source.close()
    conn.close()
    return {"seconds": elapsed, "per_second": n / elapsed}


def readings_of(source: sqlite3.Connection, chunk: list) -> list:
    """The engagement readings of a chunk of messages: one range of the primary key per channel."""
    wanted = {(m[0], m[1]) for m in chunk}
    ranges: dict[int, list[int]] = {}
    for channel_id, message_id in wanted:
        low_high = ranges.setdefault(channel_id, [message_id, message_id])
        low_high[0], low_high[1] = min(low_high[0], message_id), max(low_high[1], message_id)
    rows = []
    for channel_id, (low, high) in ranges.items():
        rows += [r for r in source.execute(
            "SELECT * FROM message_stats WHERE channel_id = ? AND message_id BETWEEN ? AND ?",
            (channel_id, low, high)) if (r[0], r[1]) in wanted]
    return rows


RUNS = {"chanwatch": run_chanwatch, "bare": run_bare, "floor": run_floor}


def _child(name: str, n: int, path: str, queue: multiprocessing.Queue) -> None:
    result = RUNS[name](n, path)
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
    parser.add_argument("--floor", action="store_true",
                        help="also time re-inserting ingest's rows with no Python logic (schema limit)")
    args = parser.parse_args()
    bare = measure("bare", args.messages, args.db + ".bare")
    ours = measure("chanwatch", args.messages, args.db)
    floor = measure("floor", args.messages, args.db) if args.floor else None
    print(f"messages: {args.messages:,}  canonical posts: {ours['posts']:,}")
    print(f"bare SQLite + FTS5: {bare['per_second']:,.0f} msg/s  ({bare['seconds']:.1f} s, "
          f"peak {bare['max_rss_mb']:.0f} MB)")
    print(f"chanwatch ingest:   {ours['per_second']:,.0f} msg/s  ({ours['seconds']:.1f} s, "
          f"peak {ours['max_rss_mb']:.0f} MB)")
    if floor:
        print(f"schema floor:       {floor['per_second']:,.0f} msg/s  ({floor['seconds']:.1f} s, "
              f"peak {floor['max_rss_mb']:.0f} MB; ingest's rows, executemany, no Python logic)")
    print(f"ratio: {ours['per_second'] / bare['per_second']:.2f} of the bare limit (target >= 0.5)")
    if floor:
        print(f"the schema floor is {floor['per_second'] / bare['per_second']:.2f} of the bare limit; "
              f"ingest reaches {ours['per_second'] / floor['per_second']:.2f} of the floor")


if __name__ == "__main__":
    main()
