"""A PostgreSQL archive ten times larger, measured against itself: ingest rate and search p95 at N
messages and at ~10 N, within one run.

Building 10M messages through ingest takes 2–9 hours on this machine (300–1,500 msg/s), so this
benchmark starts from the archive `bench/ingest.py` kept (N messages, e.g. `--messages 1000000
--corpus zipf --backend postgresql`) and, in one run:

1. at N: times the 20 search queries (`--repeats` × `--rounds` rounds: a p95 each) and `--windows`
   windows of `--window` messages through `storage.ingest` (the corpus continued exactly where the
   build stopped: same generator, same seed, its first N messages skipped);
2. grows the archive server-side to (`--copies` + 1) times its size: every channel, post, post key,
   message and engagement reading copied with shifted ids — each copy of a channel a new channel
   (own id, `@chanN_k`, title `Channel N k`), each copy of a post a new post (own key, fingerprint
   and origin), so dedup lookups, `channel:` and `from:` keep the selectivity they had; copy k is
   dated k spans of the archive's dates earlier (its history, as a backfill would add it: the
   newest posts stay the original channels', and each stretch of dates lies in one copy). Plain
   indexes are dropped first and rebuilt after, then VACUUM ANALYZE; this is timed and printed, and
   is part of no figure;
3. at the grown size: the same search rounds and ingest windows (the corpus continued).

It prints rate(grown) / rate(N) (target >= 0.70), p95(grown) / p95(N) (target <= 2) and bytes per
message on disk at both sizes. What it does not model: the grown archive repeats the first N
messages' text (each text published by ten channels' copies) rather than ten times as many distinct
texts. The copies run as `session_replication_role = replica` (no triggers: each row is copied as
it is, `fts` included), which needs a superuser. The archive is kept (`bench/search.py` can time it
again); `--drop` drops it after.

`python bench/grow.py --db /tmp/chanwatch-bench.db --corpus zipf --pg URL [--copies 9]`
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backends import archive_schema, disk_bytes, drop_schema, in_schema, schema_exists  # noqa: E402
from bench.corpus import CORPORA, batches  # noqa: E402
from bench.search import spread, time_queries  # noqa: E402
from storage.database import connect_sync  # noqa: E402
from storage.dialect import POSTGRESQL  # noqa: E402
from storage.ingest import ingest_batch  # noqa: E402
from storage.origin_names import name_titles  # noqa: E402
from storage.records import Batch  # noqa: E402

BUCKET = POSTGRESQL.fts_bucket
GROWN_TABLES = ("channels", "posts", "post_keys", "messages", "message_stats")
"""Copied in this order (what each row refers to first); other tables stay as they are."""


def continued(messages: int, extra: int, corpus: str) -> Iterator[Batch]:
    """The batches bench/ingest.py would have generated after its first `messages` (it built the
    archive with `batches(messages)`: the same seed gives the same first batches)."""
    made = 0
    for b in batches(messages + extra, corpus=corpus):
        if made >= messages:
            yield b
        made += len(b.messages)


def ingest_windows(conn: Any, source: Iterator[Batch], windows: int, window: int) -> list[float]:
    """msg/s of each of `windows` windows of `window` messages (only the inserts timed)."""
    rates = []
    for _ in range(windows):
        todo = []
        count = 0
        while count < window:
            b = next(source)
            todo.append(b)
            count += len(b.messages)
        start = time.perf_counter()
        for b in todo:
            ingest_batch(conn, b)
        rates.append(count / (time.perf_counter() - start))
    return rates


def _columns(conn: Any, table: str) -> list[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema ="
                        " current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))
    return [r[0] for r in rows]


def _earlier(column: str, days: int) -> str:
    """SQL for the ISO date in `column` `days` earlier, in the corpus's form (NULL stays NULL)."""
    return (f"to_char((({column})::timestamptz - interval '{days} days') AT TIME ZONE 'UTC',"
            f" 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'")


def _copy_expressions(table: str, k: int, channel_shift: int, post_shift: int,
                      span_days: int) -> dict[str, str]:
    """Column -> SQL for copy `k` of a row of `table` (columns not named are copied as they are).
    Copy k is dated k periods of `span_days` earlier: an archive grown by its history (a backfill),
    whose newest posts are the original channels' and whose date stretches each lie in one copy, as
    a real archive's ids follow its dates (copies sharing the dates left every walk step unbounded)."""
    channel, post, days = f"{k * channel_shift}", f"{k * post_shift}", k * span_days
    shifted_channel = f"CASE WHEN {{0}} IS NULL THEN NULL ELSE {{0}} + {channel} END"
    common = {"channel_id": f"channel_id + {channel}", "post_id": f"post_id + {post}"}
    return {
        "channels": {"id": f"id + {channel}", "username": f"username || '_{k}'", "title": f"title || ' {k}'"},
        "posts": {"id": f"id + {post}", "key": f"key || '#{k}'",
                  "origin_channel_id": shifted_channel.format("origin_channel_id"),
                  "origin_username": f"origin_username || '_{k}'", "origin_title": f"origin_title || ' {k}'",
                  "fingerprint": f"fingerprint || '{k}'", "date": _earlier("date", days),
                  # the vector's bucket lexeme follows the id (migrations/0019_fts_marked_lexemes.pg.sql)
                  "fts": f"ts_delete(fts, '$' || (id / {BUCKET})) || array_to_tsvector(ARRAY['$' ||"
                         f" ((id + {post}) / {BUCKET})])"},
        "post_keys": {"key": f"key || '#{k}'", **common},
        "messages": {**common, "fwd_from_id": "CASE WHEN fwd_from_type = 'channel'"
                                              f" THEN fwd_from_id + {channel} ELSE fwd_from_id END",
                     "date": _earlier("date", days), "fwd_date": _earlier("fwd_date", days)},
        "message_stats": common,
    }[table]


def _originals(table: str, channel_shift: int, post_shift: int) -> str:
    """The rows of `table` that are not copies already."""
    return {"channels": f"id < {channel_shift}", "posts": f"id < {post_shift}",
            "post_keys": f"post_id < {post_shift}"}.get(table, f"channel_id < {channel_shift}")


def grow(conn: Any, copies: int) -> None:
    """Copy the archive's rows `copies` times with shifted ids (see the module docstring)."""
    shift = {name: 10 ** math.ceil(math.log10(conn.execute(f"SELECT max(id) + 1 FROM {name}").fetchone()[0]))
             for name in ("channels", "posts")}
    first, last = conn.execute("SELECT min(date), max(date) FROM posts").fetchone()
    span_days = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days + 1
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema()"
        " AND i.tablename = ANY(?) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
        " WHERE c.conname = i.indexname AND c.connamespace = current_schema()::regnamespace)",
        (list(GROWN_TABLES),)).fetchall()
    conn.execute("SET session_replication_role = replica")  # no triggers: rows copied as they are
    conn.execute("SET maintenance_work_mem = '1GB'")
    start = time.perf_counter()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    for k in range(1, copies + 1):
        conn.execute("BEGIN")
        for table in GROWN_TABLES:
            columns = _columns(conn, table)
            exprs = _copy_expressions(table, k, shift["channels"], shift["posts"], span_days)
            select = ", ".join(exprs.get(c, c) for c in columns)
            conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table}"
                         f" WHERE {_originals(table, shift['channels'], shift['posts'])}")
        conn.execute("COMMIT")
        print(f"  copy {k} of {copies}: {time.perf_counter() - start:,.0f} s in", flush=True)
    conn.execute("INSERT INTO origin_names (title) SELECT DISTINCT origin_title FROM posts"
                 " WHERE origin_title IS NOT NULL ON CONFLICT DO NOTHING")
    name_titles(conn)
    for table, column in (("posts", "id"), ("message_versions", "id")):
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                     f" (SELECT coalesce(max({column}), 0) + 1 FROM {table}), false)")
    for name, definition in indexes:
        began = time.perf_counter()
        conn.execute(definition)
        print(f"  index {name} rebuilt in {time.perf_counter() - began:,.0f} s", flush=True)
    conn.execute("RESET session_replication_role")
    conn.execute(f"VACUUM ANALYZE {', '.join(GROWN_TABLES)}, origin_names")  # unnamed: every schema's
    print(f"  grown in {time.perf_counter() - start:,.0f} s (copies, indexes, VACUUM ANALYZE)", flush=True)


def measure(conn: Any, source: Iterator[Batch], args: argparse.Namespace, label: str) -> dict[str, Any]:
    """Search p95 (`--repeats` times `--rounds` rounds, each query's median printed) and ingest
    windows at the archive's present size, printed."""
    messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    timings = [time_queries(conn, args.rounds, 20) for _ in range(args.repeats)]
    for query in timings[0].per_query:
        times = [t for timed in timings for t in timed.per_query[query]]
        print(f"  {statistics.median(times):8.1f} ms  {timings[0].matches.get(query, '?'):>7} posts  {query}")
    p95s = [timed.p95 for timed in timings]
    rates = ingest_windows(conn, source, args.windows, args.window)
    failed = sum(len(timed.failed) for timed in timings)
    result = {"messages": messages, "p95": statistics.median(p95s), "rate": statistics.median(rates),
              "bytes_per_message": disk_bytes(conn) / messages}
    print(f"{label}: {messages:,} messages; search p95 {spread(p95s)} ms over {args.repeats} repeats of "
          f"{args.rounds} rounds" + (f" ({failed} queries FAILED)" if failed else "")
          + "; ingest " + ", ".join(f"{r:,.0f}" for r in rates) + f" msg/s in {args.windows} windows of "
          f"{args.window:,}; {result['bytes_per_message']:,.0f} bytes/message on disk", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="/tmp/chanwatch-bench.db", help="as given to bench/ingest.py")
    parser.add_argument("--corpus", choices=CORPORA, default="zipf")
    parser.add_argument("--pg", required=True, help="the PostgreSQL server (postgresql://...)")
    parser.add_argument("--copies", type=int, default=9, help="copies added: the archive grows (copies+1)×")
    parser.add_argument("--rounds", type=int, default=5, help="search rounds of a repeat")
    parser.add_argument("--repeats", type=int, default=3, help="search p95s at each size (min–median–max)")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--window", type=int, default=10_000, help="messages per timed ingest window")
    parser.add_argument("--drop", action="store_true", help="drop the archive after")
    args = parser.parse_args()
    schema = archive_schema(args.db, args.corpus)
    if not schema_exists(args.pg, schema):
        raise SystemExit(f"no PostgreSQL archive {schema}: build it with bench/ingest.py --corpus "
                         f"{args.corpus} --backend postgresql (and the same --db/--pg)")
    conn = connect_sync(in_schema(args.pg, schema))
    built = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    if conn.execute("SELECT 1 FROM channels WHERE username LIKE '%\\_1' LIMIT 1").fetchone():
        raise SystemExit(f"{schema} was grown already: build it again with bench/ingest.py")
    extra = 2 * args.windows * args.window + 1000
    print(f"archive {schema}: {built:,} messages; generating the corpus past them ...", flush=True)
    source = continued(built, extra, args.corpus)
    source = iter(list(itertools.islice(source, extra // 100 + 10)))  # generated before any clock starts
    small = measure(conn, source, args, "at N")
    print(f"growing {args.copies + 1}×:", flush=True)
    grow(conn, args.copies)
    large = measure(conn, source, args, "grown")
    print(f"ingest grown / N (medians): {large['rate'] / small['rate']:.2f} (target >= 0.70); search p95 "
          "grown / N (medians): "
          f"{large['p95'] / small['p95']:.2f} (target <= 2); disk {small['bytes_per_message']:,.0f} -> "
          f"{large['bytes_per_message']:,.0f} bytes/message", flush=True)
    conn.close()
    if args.drop:
        drop_schema(args.pg, schema)


if __name__ == "__main__":
    main()
