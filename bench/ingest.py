"""Ingest throughput: chanwatch's ingest vs a bare SQLite insert of the same rows with FTS5.

Run by hand: `python bench/ingest.py --messages 1000000 --db /tmp/bench.db --floor --runs 3 --pg URL`. The
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

`--backend sqlite,postgresql` (both by default; `--pg URL` or CHANWATCH_BENCH_PG, bench/backends.py)
times chanwatch's ingest on each, side by side in one run (the single table and the floor are
SQLite's); the PostgreSQL archive is kept for bench/search.py in a schema of its own. `--two-writers`
also times two writers at once into one fresh archive (two processes, each its own connection, half
the channels each, forwarding the same origins) and checks they made the posts one writer made.
`--size N` instead builds one archive of N messages per backend, timing the inserts of every window
of N/100 messages and searching (and sizing the archive on disk) at every tenth of N, printed as it
goes, so the rate and search p95 at N/10 and at N (three windows each) are compared within one build,
and a build stopped early still compares the sizes it reached; the archive is kept for
bench/search.py.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backends import (  # noqa: E402
    add_options,
    archive_schema,
    chosen,
    create_schema,
    disk_bytes,
    scratch_schema,
)
from bench.corpus import CORPORA, archive_path, batches, chunked  # noqa: E402
from bench.search import time_queries  # noqa: E402
from storage.database import connect_sync  # noqa: E402
from storage.ingest import ingest_batch  # noqa: E402
from storage.location import ServerUrl  # noqa: E402
from storage.records import iso  # noqa: E402


def _fresh(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def _open(where: str | ServerUrl) -> Any:
    """A fresh archive: the SQLite file at `where` (removed first), or the empty schema `where` names."""
    if isinstance(where, str):
        _fresh(where)
    return connect_sync(where)


def run_chanwatch(n: int, where: str | ServerUrl, corpus: str) -> dict[str, float]:
    """Ingest n messages through storage.ingest, one transaction per batch of 100."""
    conn = _open(where)
    elapsed = 0.0
    for chunk in chunked(batches(n, corpus=corpus)):  # generated before the clock starts
        start = time.perf_counter()
        for b in chunk:
            ingest_batch(conn, b)
        elapsed += time.perf_counter() - start
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    size = disk_bytes(conn)
    conn.close()
    return {"seconds": elapsed, "per_second": n / elapsed, "posts": posts, "bytes_per_message": size / n}


def _writer(half: int, n: int, where: str | ServerUrl, corpus: str, barrier: Any, queue: Any) -> None:
    """One of two writers: its own connection, the batches of every other channel (`half` 0 or 1).

    Both generate the whole stream (outside the clock) and keep their half; between two barriers
    both insert their half of the same 100 batches, so the clock (writer 0's) runs while both write.
    """
    try:
        conn = connect_sync(where)
        elapsed = 0.0
        for chunk in chunked(batches(n, corpus=corpus)):
            mine = [b for b in chunk if b.channel.id % 2 == half]
            barrier.wait()
            start = time.perf_counter()
            for b in mine:
                ingest_batch(conn, b)
            barrier.wait()
            elapsed += time.perf_counter() - start
        conn.close()
        queue.put({"seconds": elapsed, "max_rss_mb": _rss_mb()})
    except BaseException as exc:
        barrier.abort()
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def run_two(n: int, where: str | ServerUrl, corpus: str) -> dict[str, float]:
    """Two writers at once into one archive, each its own process and connection, half the channels
    each; every channel is forwarded from the same origins, so both write forwards of one post."""
    conn = _open(where)  # created and migrated once, before either writer starts
    conn.close()
    barrier = multiprocessing.Barrier(2, timeout=600)
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_writer, args=(h, n, where, corpus, barrier, queue))
             for h in (0, 1)]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit(f"a writer failed: {errors[0]}")
    conn = connect_sync(where)
    stored = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    conn.close()
    if stored != n:
        raise SystemExit(f"two writers stored {stored:,} messages of {n:,}")
    seconds = max(r["seconds"] for r in results)  # each writer's clock spans both writers' inserts
    return {"seconds": seconds, "per_second": n / seconds, "posts": posts,
            "max_rss_mb": max(r["max_rss_mb"] for r in results)}


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


RUNS = {"chanwatch": run_chanwatch, "bare": run_bare, "floor": run_floor, "two": run_two}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(name: str, n: int, where: str | ServerUrl, corpus: str, queue: multiprocessing.Queue) -> None:
    result = RUNS[name](n, where, corpus)
    result.setdefault("max_rss_mb", _rss_mb())
    queue.put(result)


def measure(name: str, n: int, where: str | ServerUrl, corpus: str) -> dict[str, float]:
    """Run one benchmark in a fresh process so its peak memory is its own."""
    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_child, args=(name, n, where, corpus, queue))
    proc.start()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"the {name} measurement failed (exit status {proc.exitcode})")
    return queue.get()


def one_run(n: int, db: str, corpus: str, floor: bool, backends: tuple[str, ...], pg: str | None,
            two: bool) -> dict[str, dict[str, float]]:
    """Each backend's measurements, one after the other: on SQLite the single table, chanwatch's
    ingest, (with `floor`) the schema floor and (with `two`) two writers at once; on PostgreSQL
    chanwatch's ingest (its archive kept for bench/search.py) and two writers at once."""
    path = archive_path(db, corpus)
    run: dict[str, dict[str, float]] = {}
    if "sqlite" in backends:
        run["bare"] = measure("bare", n, path + ".bare", corpus)
        run["chanwatch"] = measure("chanwatch", n, path, corpus)
        if floor:
            run["floor"] = measure("floor", n, path, corpus)
        if two:
            run["two"] = measure("two", n, path + ".two", corpus)
        for name in ("bare", "floor", "two"):
            _fresh(f"{path}.{name}")
    if pg is not None:
        run["pg"] = measure("chanwatch", n, create_schema(pg, archive_schema(db, corpus)), corpus)
        if two:
            with scratch_schema(pg, archive_schema(db, corpus) + "_two") as where:
                run["pg two"] = measure("two", n, where, corpus)
    return run


LABELS = {"bare": "sqlite single table + FTS5", "floor": "sqlite schema floor",
          "chanwatch": "sqlite chanwatch ingest", "two": "sqlite two writers at once",
          "pg": "postgresql chanwatch ingest", "pg two": "postgresql two writers at once"}


def ratios(run: dict[str, dict[str, float]]) -> dict[str, float]:
    """Rates relative to each other within one run (the machine's load swings between runs)."""
    rate = {name: r["per_second"] for name, r in run.items()}
    pairs = [("chanwatch / single table", "chanwatch", "bare"), ("floor / single table", "floor", "bare"),
             ("chanwatch / floor", "chanwatch", "floor"), ("postgresql / sqlite", "pg", "chanwatch"),
             ("sqlite two writers / one", "two", "chanwatch"),
             ("postgresql two writers / one", "pg two", "pg")]
    return {label: rate[a] / rate[b] for label, a, b in pairs if a in rate and b in rate}


def spread(values: list[float], fmt: str) -> str:
    """min–median–max, or the value alone for one run."""
    if len(values) == 1:
        return format(values[0], fmt)
    return "–".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def report(corpus: str, n: int, runs: list[dict[str, dict[str, float]]]) -> None:
    posts = {name: r["posts"] for name, r in runs[0].items() if "posts" in r}
    print(f"\ncorpus {corpus}: {n:,} messages, {next(iter(posts.values()), 0):,} canonical posts; "
          f"{len(runs)} run(s), min–median–max")
    for name in LABELS:
        if name in runs[0]:
            rs = [run[name] for run in runs]
            size = (f", {spread([r['bytes_per_message'] for r in rs], ',.0f')} bytes/message on disk"
                    if "bytes_per_message" in rs[0] else "")
            print(f"  {LABELS[name] + ':':32} {spread([r['per_second'] for r in rs], ',.0f')} msg/s  "
                  f"({spread([r['seconds'] for r in rs], '.1f')} s, "
                  f"peak {spread([r['max_rss_mb'] for r in rs], '.0f')} MB{size})")
    for label in ratios(runs[0]):
        print(f"  {label}: {spread([ratios(run)[label] for run in runs], '.2f')}")
    differ = {run_posts for run in runs for run_posts in
              (r["posts"] for r in run.values() if "posts" in r)}
    if len(differ) > 1:
        print(f"  POSTS DIFFER between measurements: {sorted(differ)}")


def run_build(size: int, where: str | ServerUrl, corpus: str, rounds: int, limit: int) -> dict[int, Any]:
    """One archive built to `size` messages (one transaction per batch of 100), timing the inserts
    of every window of size/100 messages and searching at every tenth of `size` (printed as it goes,
    so a build stopped early still compares sizes within itself)."""
    conn = _open(where)
    tenth = size // 10
    window = max(100, size // 100 // 100 * 100)
    rates: list[float] = []
    at: dict[int, Any] = {}
    done = 0
    in_window = 0.0
    began = time.perf_counter()
    for chunk in chunked(batches(size, corpus=corpus)):  # generated before the clock starts
        for b in chunk:
            start = time.perf_counter()
            ingest_batch(conn, b)
            in_window += time.perf_counter() - start
            done += len(b.messages)
            if done % window == 0:
                rates.append(window / in_window)
                in_window = 0.0
            if done % tenth == 0:
                found = time_queries(conn, rounds, limit)
                at[done] = {"rates": rates[-3:], "p50": found.p50, "p95": found.p95,
                            "bytes_per_message": disk_bytes(conn) / done, "failed": len(found.failed),
                            "posts": conn.execute("SELECT count(*) FROM posts").fetchone()[0]}
                print(f"  at {done:,} messages ({time.perf_counter() - began:,.0f} s in): ingest "
                      + ", ".join(f"{r:,.0f}" for r in rates[-3:]) + f" msg/s in the last three windows of "
                      f"{window:,}; search p50 {found.p50:.1f} ms, p95 {found.p95:.1f} ms"
                      + (f" ({len(found.failed)} queries FAILED, not timed)" if found.failed else "")
                      + f"; {at[done]['bytes_per_message']:,.0f} bytes/message on disk, "
                      f"{at[done]['posts']:,} posts", flush=True)
    conn.close()
    return at


def build(size: int, backends: tuple[str, ...], db: str, pg: str | None, corpus: str, rounds: int,
          limit: int) -> None:
    """`--size`: build one archive per backend to `size`, then print the ratios within the build."""
    for backend in backends:
        print(f"\n{backend}, corpus {corpus}: building {size:,} messages", flush=True)
        if backend == "sqlite":  # the archive replaces the corpus's, for bench/search.py
            at = run_build(size, archive_path(db, corpus), corpus, rounds, limit)
        else:
            assert pg is not None
            at = run_build(size, create_schema(pg, archive_schema(db, corpus)), corpus, rounds, limit)
        low, high = min(at), max(at)
        small, large = at[low], at[high]
        rate_low, rate_high = statistics.median(small["rates"]), statistics.median(large["rates"])
        print(f"{backend}: ingest at {high:,} / at {low:,}: {rate_high / rate_low:.2f} "
              f"(median of three windows each: {rate_high:,.0f} / {rate_low:,.0f} msg/s; "
              f"target >= 0.70); search p95 at {high:,} / at {low:,}: {large['p95'] / small['p95']:.2f} "
              f"({large['p95']:.1f} / {small['p95']:.1f} ms; target <= 2); disk "
              f"{small['bytes_per_message']:,.0f} -> {large['bytes_per_message']:,.0f} bytes/message; "
              f"peak {_rss_mb():.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--db", default="/tmp/chanwatch-bench.db",
                        help="the uniform corpus's archive; the zipf one is beside it (NAME-zipf.db)")
    parser.add_argument("--corpus", choices=(*CORPORA, "both"), default="both")
    parser.add_argument("--runs", type=int, default=1, help="repeat everything, report min–median–max")
    parser.add_argument("--floor", action="store_true",
                        help="also time re-inserting ingest's rows with no Python logic (the schema's "
                             "limit; SQLite)")
    parser.add_argument("--two-writers", action="store_true",
                        help="also time two writers at once, half the channels each, into one archive")
    parser.add_argument("--size", type=int, default=None,
                        help="instead: build one archive of SIZE messages, comparing ingest rate and search "
                             "p95 at SIZE/10 and at SIZE within the build")
    parser.add_argument("--rounds", type=int, default=5, help="search rounds at each size of --size")
    add_options(parser)
    args = parser.parse_args()
    backends, pg = chosen(args)
    corpora = CORPORA if args.corpus == "both" else (args.corpus,)
    if args.size is not None:
        if args.size < 10_000 or args.size % 1000:
            raise SystemExit("--size must be a multiple of 1,000, at least 10,000")
        for corpus in corpora:
            build(args.size, backends, args.db, pg, corpus, args.rounds, 20)
        return
    results: dict[str, list] = {c: [] for c in corpora}
    for number in range(1, args.runs + 1):
        for corpus in corpora:  # alternated, so a slow stretch of the machine hits both corpora
            run = one_run(args.messages, args.db, corpus, args.floor, backends, pg, args.two_writers)
            results[corpus].append(run)
            line = ", ".join(f"{LABELS[k]} {v['per_second']:,.0f}" for k, v in run.items())
            print(f"run {number} {corpus}: {line} msg/s; "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ratios(run).items()), flush=True)
    for corpus in corpora:
        report(corpus, args.messages, results[corpus])


if __name__ == "__main__":
    main()
