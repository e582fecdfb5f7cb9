"""Search latency p50/p95 over a benchmark archive, for a fixed set of 20 queries (EN and RU).

Run by hand after `bench/ingest.py` built the archives:
`python bench/search.py --db /tmp/chanwatch-bench.db --corpus both`. Target: p95 under 50 ms. Each
query's match count is printed beside its time (every target query matches posts on both corpora:
an empty answer would time the empty path). Each corpus is searched in its own process, whose peak
memory is printed after its last query.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import CORPORA, archive_path  # noqa: E402
from storage.database import connect_sync  # noqa: E402
from storage.search import search  # noqa: E402

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


def run(db: str, rounds: int, limit: int) -> None:
    """Time the target queries `rounds` times and the hard ones once, printing as it goes."""
    conn = connect_sync(db)
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    timings: list[float] = []
    per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
    matches: dict[str, str] = {}
    search(conn, "warmup", limit=1)
    for _ in range(rounds):
        for query in QUERIES:
            start = time.perf_counter()
            page = search(conn, query, limit=limit)
            elapsed = (time.perf_counter() - start) * 1000
            timings.append(elapsed)
            per_query[query].append(elapsed)
            matches[query] = page.total_text
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
    print(f"archive {db}: {posts:,} posts; {len(QUERIES)} queries x {rounds} rounds, limit {limit}")
    for query, values in per_query.items():
        print(f"  {statistics.median(values):8.1f} ms  {matches[query]:>7} posts  {query}")
    empty = [q for q, total in matches.items() if total == "0"]
    print(f"p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 < 50 ms)"
          + (f"; NO MATCH (times the empty path): {', '.join(empty)}" if empty else ""))
    print("outside the target set, once each:")
    for query in HARD:
        start = time.perf_counter()
        page = search(conn, query, limit=limit)
        print(f"  {(time.perf_counter() - start) * 1000:8.1f} ms  {page.total_text:>7} posts  {query}")
    conn.close()
    print(f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="/tmp/chanwatch-bench.db",
                        help="as given to bench/ingest.py (the zipf archive is beside it)")
    parser.add_argument("--corpus", choices=(*CORPORA, "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    for corpus in CORPORA if args.corpus == "both" else (args.corpus,):
        print(f"\ncorpus {corpus}:", flush=True)
        db = archive_path(args.db, corpus)
        if not Path(db).is_file():
            raise SystemExit(f"no archive at {db}: build it with bench/ingest.py --corpus {corpus} "
                             f"--db {args.db}")
        child = multiprocessing.Process(target=run, args=(db, args.rounds, args.limit))
        child.start()  # its own process, so its peak memory is its own
        child.join()
        if child.exitcode:
            raise SystemExit(child.exitcode)


if __name__ == "__main__":
    main()
