"""Ingest throughput: chanwatch's ingest vs a bare SQLite insert of the same rows with FTS5.

Run by hand: `python bench/ingest.py --messages 1000000 --db /tmp/bench.db --floor --runs 3`. The
single table (one row per message plus FTS5 on its text: no dedup, no versions, no provenance) is
the practical limit of any archive. `--floor` also times the schema's own limit: the rows
chanwatch's ingest wrote (posts, messages, post_keys, the first engagement readings), inserted again
with executemany into a fresh archive (same schema, indexes, FTS trigger and pragmas) per batch of
100 messages, with no Python logic at all; no ingest can beat it.

`--corpus uniform|zipf|both` (bench/corpus.py): the 40-word corpus, the realistic one, or both; each
corpus's archive is kept for bench/search.py (`corpus.archive_path`). The corpus is generated
outside every timed loop: 100 batches at a time, then only the inserts of those batches are timed,
so the corpus never sits whole in memory. Each measurement runs in its own process and prints its
peak memory (max RSS, read after its last measured work). With `--runs N` every ratio is taken
within one run and the summary gives min–median–max over the runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import CORPORA, archive_path, batches, chunked  # noqa: E402
from storage.database import connect_sync  # noqa: E402
from storage.ingest import ingest_batch  # noqa: E402
from storage.records import iso  # noqa: E402


def _fresh(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def run_chanwatch(n: int, path: str, corpus: str) -> dict[str, float]:
    """Ingest n messages through storage.ingest, one transaction per batch of 100."""
    _fresh(path)
    conn = connect_sync(path)
    elapsed = 0.0
    for chunk in chunked(batches(n, corpus=corpus)):  # generated before the clock starts
        start = time.perf_counter()
        for b in chunk:
            ingest_batch(conn, b)
        elapsed += time.perf_counter() - start
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    conn.close()
    return {"seconds": elapsed, "per_second": n / elapsed, "posts": posts}


def run_bare(n: int, path: str, corpus: str) -> dict[str, float]:
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
    elapsed = 0.0
    for chunk in chunked(batches(n, corpus=corpus)):  # generated before the clock starts
        start = time.perf_counter()
        for b in chunk:
            rows = [
                (r.channel_id, r.message_id, iso(r.date), r.text,
                 r.forward.from_peer_id if r.forward else None,
                 r.forward.channel_post if r.forward else None, r.views, json.dumps(r.raw))
                for r in b.messages
            ]
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("INSERT INTO m_fts (text) VALUES (?)", [(r[3],) for r in rows])
            conn.execute("COMMIT")
        elapsed += time.perf_counter() - start
    conn.close()
    return {"seconds": elapsed, "per_second": n / elapsed}


def run_floor(n: int, path: str, corpus: str) -> dict[str, float]:
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


def _child(name: str, n: int, path: str, corpus: str, queue: multiprocessing.Queue) -> None:
    result = RUNS[name](n, path, corpus)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(name: str, n: int, path: str, corpus: str) -> dict[str, float]:
    """Run one benchmark in a fresh process so its peak memory is its own."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_child, args=(name, n, path, corpus, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def one_run(n: int, db: str, corpus: str, floor: bool) -> dict[str, dict[str, float]]:
    """The single table, chanwatch's ingest and (with `floor`) the schema floor, one after the other."""
    path = archive_path(db, corpus)
    run = {"bare": measure("bare", n, path + ".bare", corpus)}
    run["chanwatch"] = measure("chanwatch", n, path, corpus)
    if floor:
        run["floor"] = measure("floor", n, path, corpus)
    for name in ("bare", "floor"):
        _fresh(f"{path}.{name}")
    return run


LABELS = {"bare": "single table + FTS5", "floor": "schema floor", "chanwatch": "chanwatch ingest"}


def ratios(run: dict[str, dict[str, float]]) -> dict[str, float]:
    """Rates relative to each other within one run (the machine's load swings between runs)."""
    rate = {name: r["per_second"] for name, r in run.items()}
    out = {"chanwatch / single table": rate["chanwatch"] / rate["bare"]}
    if "floor" in rate:
        out["floor / single table"] = rate["floor"] / rate["bare"]
        out["chanwatch / floor"] = rate["chanwatch"] / rate["floor"]
    return out


def spread(values: list[float], fmt: str) -> str:
    """min–median–max, or the value alone for one run."""
    if len(values) == 1:
        return format(values[0], fmt)
    return "–".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def report(corpus: str, n: int, runs: list[dict[str, dict[str, float]]]) -> None:
    print(f"\ncorpus {corpus}: {n:,} messages, {runs[0]['chanwatch']['posts']:,} canonical posts; "
          f"{len(runs)} run(s), min–median–max")
    for name in ("bare", "floor", "chanwatch"):
        if name in runs[0]:
            rs = [run[name] for run in runs]
            print(f"  {LABELS[name] + ':':22} {spread([r['per_second'] for r in rs], ',.0f')} msg/s  "
                  f"({spread([r['seconds'] for r in rs], '.1f')} s, "
                  f"peak {spread([r['max_rss_mb'] for r in rs], '.0f')} MB)")
    for label in ratios(runs[0]):
        print(f"  {label}: {spread([ratios(run)[label] for run in runs], '.2f')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--db", default="/tmp/chanwatch-bench.db",
                        help="the uniform corpus's archive; the zipf one is beside it (NAME-zipf.db)")
    parser.add_argument("--corpus", choices=(*CORPORA, "both"), default="both")
    parser.add_argument("--runs", type=int, default=1, help="repeat everything, report min–median–max")
    parser.add_argument("--floor", action="store_true",
                        help="also time re-inserting ingest's rows with no Python logic (schema limit)")
    args = parser.parse_args()
    corpora = CORPORA if args.corpus == "both" else (args.corpus,)
    results: dict[str, list] = {c: [] for c in corpora}
    for number in range(1, args.runs + 1):
        for corpus in corpora:  # alternated, so a slow stretch of the machine hits both corpora
            run = one_run(args.messages, args.db, corpus, args.floor)
            results[corpus].append(run)
            line = ", ".join(f"{LABELS[k]} {v['per_second']:,.0f}" for k, v in run.items())
            print(f"run {number} {corpus}: {line} msg/s; "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ratios(run).items()), flush=True)
    for corpus in corpora:
        report(corpus, args.messages, results[corpus])


if __name__ == "__main__":
    main()
