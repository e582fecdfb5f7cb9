"""Search latency p50/p95 over a benchmark archive, for a fixed set of 20 queries (EN and RU).

Run by hand after `bench/ingest.py` built the archives:
`python bench/search.py --db /tmp/chanwatch-bench.db --corpus both --pg URL --runs 3`. Targets: p95
under 50 ms on SQLite, under 100 ms on PostgreSQL (`--backend`, `--pg`: bench/backends.py; both side
by side in one run, with their p95 ratio within each run). Each query's match count is printed beside
its time (every target query matches posts on both corpora: an empty answer would time the empty
path). Each corpus and backend is searched in its own process, whose peak memory is printed after its
last query.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backends import add_options, archive_schema, chosen, drop_schema, in_schema, schema_exists  # noqa: E402
from bench.corpus import CORPORA, archive_path  # noqa: E402
from storage.database import connect_sync  # noqa: E402
from storage.dialect import dialect_of  # noqa: E402
from storage.location import ServerUrl  # noqa: E402
from storage.search import search  # noqa: E402

TARGET_MS = {"sqlite": 50, "postgresql": 100}
"""p95 targets: SQLite's from the README, PostgreSQL's from issue #17 (a server a network hop away)."""

QUERIES = [
    "sanctions",
    "санкции",
    "canada sanctions",
    "канада санкции",
    "sanctions OR санкции",
    '"foreign minister"',
    '"министр иностранных"',
    "arctic -canada",
    "перегов*",
    "negotiat*",
    "#RussiaAfrica",
    "#Арктика",
    "treaty channel:chan7",
    "from:chan1 security",
    "trade since:2025-01-05 until:2025-01-20",
    "lang:ru визит",
    "is:forward summit",
    "(energy OR энергетика) (nuclear OR ядерный)",
    "partnership sort:rank",
    "консульский граждане -визит",
]

HARD = [
    "channel:chan7",
    "is:deleted",
    "treaty is:copy",
    "treaty channel:nosuch",
    "treaty channel:chan7 sort:rank",
    "channel:chan7 sort:rank",
    "security from:chan1 lang:en -canada",
]
"""Not in the target set: shapes that read much of the archive (a filter alone, a filter matching
nothing behind a frequent word); timed once each so the README can say what they cost."""


@dataclass
class Timed:
    """The target queries' times: every timing (ms), each query's own, and its match count."""

    timings: list[float]
    per_query: dict[str, list[float]]
    matches: dict[str, str]
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return statistics.median(self.timings)

    @property
    def p95(self) -> float:
        ordered = sorted(self.timings)
        return ordered[max(int(len(ordered) * 0.95) - 1, 0)]


def time_queries(conn: Any, rounds: int, limit: int) -> Timed:
    """Time the 20 target queries `rounds` times each, after one warm-up search."""
    timed = Timed([], {q: [] for q in QUERIES}, {})
    search(conn, "warmup", limit=1)
    for _ in range(rounds):
        for query in QUERIES:
            start = time.perf_counter()
            try:
                page = search(conn, query, limit=limit)
            except sqlite3.Error as exc:  # a shape this backend cannot answer yet: named, not timed
                timed.failed[query] = str(exc)
                continue
            elapsed = (time.perf_counter() - start) * 1000
            timed.timings.append(elapsed)
            timed.per_query[query].append(elapsed)
            timed.matches[query] = page.total_text
    return timed


def run(where: str | ServerUrl, rounds: int, limit: int, queue: Any = None) -> None:
    """Time the target queries `rounds` times and the hard ones once, printing as it goes; p50 and
    p95 go to `queue` (the parent compares the backends)."""
    conn = connect_sync(where)
    name = where.redacted if isinstance(where, ServerUrl) else where
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    timed = time_queries(conn, rounds, limit)
    print(f"archive {name}: {posts:,} posts; {len(QUERIES)} queries x {rounds} rounds, limit {limit}")
    for query, values in timed.per_query.items():
        if query in timed.failed:
            print(f"  {'FAILED':>8}     {'':>7}        {query}: {timed.failed[query]}")
        else:
            print(f"  {statistics.median(values):8.1f} ms  {timed.matches[query]:>7} posts  {query}")
    empty = [q for q, total in timed.matches.items() if total == "0"]
    target = TARGET_MS[dialect_of(conn).name]
    print(f"p50 {timed.p50:.1f} ms, p95 {timed.p95:.1f} ms (target p95 < {target} ms)"
          + (f"; NO MATCH (times the empty path): {', '.join(empty)}" if empty else "")
          + (f"; {len(timed.failed)} FAILED, not timed" if timed.failed else ""))
    print("outside the target set, once each:")
    for query in HARD:
        start = time.perf_counter()
        try:
            page = search(conn, query, limit=limit)
        except sqlite3.Error as exc:
            print(f"  {'FAILED':>8}     {'':>7}        {query}: {exc}")
            continue
        print(f"  {(time.perf_counter() - start) * 1000:8.1f} ms  {page.total_text:>7} posts  {query}")
    conn.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak {peak:.0f} MB", flush=True)
    if queue is not None:
        queue.put({"p50": timed.p50, "p95": timed.p95, "peak": peak, "failed": len(timed.failed)})


def _archive(backend: str, db: str, pg: str | None, corpus: str) -> str | ServerUrl:
    """Where bench/ingest.py left the corpus's archive on `backend`; exits saying how to build it."""
    if backend == "sqlite":
        path = archive_path(db, corpus)
        if Path(path).is_file():
            return path
    else:
        assert pg is not None
        if schema_exists(pg, archive_schema(db, corpus)):
            return in_schema(pg, archive_schema(db, corpus))
    raise SystemExit(f"no {backend} archive of the {corpus} corpus: build it with bench/ingest.py "
                     f"--corpus {corpus} --backend {backend} (and the same --db/--pg)")


def spread(values: list[float], fmt: str = ".1f") -> str:
    """min–median–max."""
    return "–".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="/tmp/chanwatch-bench.db",
                        help="as given to bench/ingest.py (the zipf archive is beside it)")
    parser.add_argument("--corpus", choices=(*CORPORA, "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="repeat everything, report min–median–max")
    parser.add_argument("--drop", action="store_true",
                        help="drop the PostgreSQL archives bench/ingest.py kept, after the last run")
    add_options(parser)
    args = parser.parse_args()
    backends, pg = chosen(args)
    corpora = CORPORA if args.corpus == "both" else (args.corpus,)
    where = {(b, c): _archive(b, args.db, pg, c) for b in backends for c in corpora}
    results: dict[tuple[str, str], list[dict[str, float]]] = {key: [] for key in where}
    for number in range(1, args.runs + 1):
        for corpus in corpora:
            for backend in backends:
                print(f"\nrun {number}, corpus {corpus}, {backend}:", flush=True)
                queue: multiprocessing.Queue = multiprocessing.Queue()
                child = multiprocessing.Process(target=run, args=(where[(backend, corpus)], args.rounds,
                                                                   args.limit, queue))
                child.start()  # its own process, so its peak memory is its own
                child.join()
                if child.exitcode:
                    raise SystemExit(child.exitcode)
                results[(backend, corpus)].append(queue.get())
    print(f"\n{args.runs} run(s), min–median–max:")
    for (backend, corpus), rs in results.items():
        print(f"  {corpus} {backend}: p50 {spread([r['p50'] for r in rs])} ms, "
              f"p95 {spread([r['p95'] for r in rs])} ms (target < {TARGET_MS[backend]} ms), "
              f"peak {spread([r['peak'] for r in rs])} MB")
    if len(backends) == 2:
        for corpus in corpora:
            ratio = [pg_r["p95"] / lite["p95"] for pg_r, lite in
                     zip(results[("postgresql", corpus)], results[("sqlite", corpus)], strict=True)]
            print(f"  {corpus} p95 postgresql / sqlite within each run: {spread(ratio, '.2f')}")
    if args.drop and pg is not None:
        for corpus in corpora:
            drop_schema(pg, archive_schema(args.db, corpus))


if __name__ == "__main__":
    main()
