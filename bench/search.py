"""Search latency p50/p95 over a benchmark archive, for a fixed set of 20 queries (EN and RU).

Run by hand after `bench/ingest.py` built the archive:
`python bench/search.py --db /tmp/chanwatch-bench.db`. Target: p95 under 50 ms. Peak memory printed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    "лавр*",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="/tmp/chanwatch-bench.db")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    conn = connect_sync(args.db)
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    timings: list[float] = []
    per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
    search(conn, "warmup", limit=1)
    for _ in range(args.rounds):
        for query in QUERIES:
            start = time.perf_counter()
            page = search(conn, query, limit=args.limit)
            elapsed = (time.perf_counter() - start) * 1000
            timings.append(elapsed)
            per_query[query].append(elapsed)
            _ = page.total
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"archive: {posts:,} posts; {len(QUERIES)} queries x {args.rounds} rounds, limit {args.limit}")
    for query, values in per_query.items():
        print(f"  {statistics.median(values):8.1f} ms  {query}")
    print(f"p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 < 50 ms); "
          f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print("outside the target set, once each:")
    for query in HARD:
        start = time.perf_counter()
        page = search(conn, query, limit=args.limit)
        print(f"  {(time.perf_counter() - start) * 1000:8.1f} ms  {query}  ({page.total_text} posts)")


if __name__ == "__main__":
    main()
