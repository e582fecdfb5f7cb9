"""The benchmark scripts still run: each at a tiny size, in its own process. No figure is judged here
(benchmarks are run by hand, their results go into the README); a script that no longer runs is."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.backends import PG_ENV, archive_schema, drop_schema, in_schema, schema_exists
from bench.corpus import CORPORA, batches, zipf_text, zipf_vocabulary
from bench.search import HARD, QUERIES
from storage.database import connect_sync
from storage.dialect import POSTGRESQL
from storage.ingest import ingest_batch
from storage.search import search
from tests.pg_support import require_server, server, unavailable

ROOT = Path(__file__).resolve().parent.parent


def bench(*argv: str, cwd: Path, env: dict[str, str] | None = None, status: int = 0) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / argv[0]), *argv[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == status, done.stderr[-2000:]
    return done.stdout if status == 0 else done.stderr


@pytest.fixture
def bench_db(tmp_path: Path) -> Iterator[str]:
    """A benchmark's --db, named uniquely: its PostgreSQL archives' schemas are named after it (and
    dropped afterwards, whatever the benchmark left)."""
    db = str(tmp_path / f"b{uuid.uuid4().hex[:12]}.db")
    yield db
    if unavailable() is None:
        for corpus in CORPORA:
            drop_schema(server().url, archive_schema(db, corpus))


def test_the_ingest_and_search_benchmarks_run_on_a_tiny_archive_of_each_corpus_and_backend(
    tmp_path, bench_db,
):
    pg = require_server().url
    out = bench("ingest.py", "--messages", "2000", "--floor", "--runs", "2", "--two-writers",
                "--db", bench_db, "--pg", pg, cwd=tmp_path)
    assert "corpus uniform" in out and "corpus zipf" in out and "sqlite chanwatch ingest:" in out
    assert "chanwatch / floor" in out and "peak" in out
    for label in ("postgresql chanwatch ingest:", "sqlite two writers at once:",
                  "postgresql two writers at once:", "postgresql / sqlite:", "postgresql two writers / one:",
                  "bytes/message on disk"):
        assert label in out
    assert "POSTS DIFFER" not in out  # two writers made the posts one writer made, on both backends
    assert "target >= 0.5" not in out  # the single table's target went with the README's
    assert pg not in out
    out = bench("search.py", "--db", bench_db, "--rounds", "1", "--pg", pg, "--drop", cwd=tmp_path)
    password = urlsplit(pg).password
    assert password is None or password not in out  # the archive is named by its redacted URL
    sections = out.split("\nrun 1, corpus ")[1:]
    assert [s.split(":")[0] for s in sections] == [
        "uniform, sqlite", "uniform, postgresql", "zipf, sqlite", "zipf, postgresql"]
    for section in sections:
        assert "p95" in section
        for query in QUERIES:  # each query's time with its match count
            timed = re.search(rf"ms +[0-9,+]+ posts  {re.escape(query)}\n", section)
            assert timed, query  # every query answers on both backends (a FAILED one is untimed)
        assert section.rindex("peak") > section.index(HARD[-1])  # read after the last query
    assert "uniform p95 postgresql / sqlite within each run" in out
    assert not any(schema_exists(pg, archive_schema(bench_db, c)) for c in CORPORA)  # --drop


def test_the_ingest_benchmark_builds_an_archive_comparing_a_tenth_of_its_size_with_the_whole(
    tmp_path, bench_db,
):
    pg = require_server().url
    out = bench("ingest.py", "--size", "10000", "--corpus", "uniform", "--rounds", "1", "--db", bench_db,
                "--pg", pg, cwd=tmp_path)
    for backend in ("sqlite", "postgresql"):
        part = out.split(f"\n{backend}, corpus uniform: building 10,000 messages\n")[1]
        steps = re.findall(r"  at ([0-9,]+) messages .*ingest [0-9,]+, [0-9,]+, [0-9,]+ msg/s .* p95 ", part)
        assert steps[:10] == [f"{n:,}" for n in range(1000, 10_001, 1000)]
        assert re.search(rf"\n{backend}: ingest at 10,000 / at 1,000: [0-9.]+ .* search p95 at 10,000 / at "
                         r"1,000: [0-9.]+ .* bytes/message", part)
    assert schema_exists(pg, archive_schema(bench_db, "uniform"))  # kept for bench/search.py


def test_the_grow_benchmark_copies_a_postgresql_archive_into_new_channels_and_times_both_sizes(
    tmp_path, bench_db,
):
    pg = require_server().url
    bench("ingest.py", "--messages", "2000", "--corpus", "uniform", "--backend", "postgresql", "--runs", "1",
          "--db", bench_db, "--pg", pg, cwd=tmp_path)
    out = bench("grow.py", "--db", bench_db, "--corpus", "uniform", "--pg", pg, "--copies", "2",
                "--window", "200", "--rounds", "1", "--repeats", "2", cwd=tmp_path)
    assert re.search(r"at N: 2,000 messages; search p95 [0-9.–]+ ms over 2 repeats .*ingest [0-9,]+, "
                     r"[0-9,]+, [0-9,]+ msg/s in 3 windows of 200", out)
    assert re.search(r"grown: 7,800 messages; search p95 ", out)  # (2,000 + 600) × 3
    assert re.search(r"ingest grown / N \(medians\): [0-9.]+ .* search p95 grown / N \(medians\): [0-9.]+",
                     out)
    conn = connect_sync(in_schema(pg, archive_schema(bench_db, "uniform")))
    try:
        names = {r[0] for r in conn.execute("SELECT username FROM channels")}
        copies = {n for n in names if "_" in n}
        grown = {c.rpartition("_")[0] for c in copies}
        originals = names - copies
        assert copies == {f"{c}_{k}" for c in grown for k in (1, 2)} and grown <= originals and grown
        for orphans in ("SELECT count(*) FROM messages m LEFT JOIN posts p ON p.id = m.post_id"
                        " WHERE p.id IS NULL",
                        "SELECT count(*) FROM posts p LEFT JOIN channels c ON c.id = p.origin_channel_id"
                        " WHERE p.origin_channel_id IS NOT NULL AND c.id IS NULL"):
            assert conn.execute(orphans).fetchone()[0] == 0
        misplaced = "SELECT count(*) FROM posts WHERE NOT fts @@ CAST('''$' || (id / ?) || '''' AS tsquery)"
        assert conn.execute(misplaced, (POSTGRESQL.fts_bucket,)).fetchone()[0] == 0  # copies in their buckets
        dated = ("SELECT min(m.date), max(m.date) FROM messages m JOIN channels c ON c.id = m.channel_id"
                 " WHERE ")
        original = conn.execute(dated + "c.username NOT LIKE '%\\_%'").fetchone()
        first, second = (conn.execute(dated + "c.username LIKE ?", (f"%\\_{k}",)).fetchone() for k in (1, 2))
        assert second[1] < first[0] <= first[1] < original[0]  # each copy an earlier stretch of history
        name = min(grown)
        copy = search(conn, f"channel:{name}_2", exact_total=True)
        original = search(conn, f"channel:{name}", exact_total=True)
        assert 0 < copy.total <= original.total  # a copy is a channel of its own, carrying its own posts
        assert all(f"{name}_2" in {s.username for s in p.sightings} for p in copy.posts)
        assert not any(name in {s.username for s in p.sightings} for p in copy.posts)
    finally:
        conn.close()
    bench("grow.py", "--db", bench_db, "--corpus", "uniform", "--pg", pg, cwd=tmp_path, status=1)


def test_the_postgresql_backend_of_a_benchmark_needs_a_server_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != PG_ENV}
    err = bench("ingest.py", "--messages", "100", "--db", str(tmp_path / "b.db"), cwd=tmp_path, env=env,
                status=1)
    assert "--pg" in err and PG_ENV in err and "Traceback" not in err
    err = bench("search.py", "--backend", "sqlite,mysql", cwd=tmp_path, env=env, status=1)
    assert "unknown mysql" in err and "Traceback" not in err


def test_every_target_search_query_matches_posts_on_both_corpora(tmp_path):
    """An empty answer would time the empty path. A small archive: 5,000 messages over 10 channels
    (each channel's share as in a large one), starting on 4 January so the date range has posts."""
    for corpus in CORPORA:
        conn = connect_sync(str(tmp_path / f"{corpus}.db"))
        for batch in batches(5_000, corpus=corpus, channels=10, start=datetime(2025, 1, 4, 12, tzinfo=UTC)):
            ingest_batch(conn, batch)
        empty = [q for q in QUERIES if search(conn, q, limit=1).total == 0]
        assert empty == [], corpus
        conn.close()


def test_the_zipf_corpus_has_tens_of_thousands_of_word_forms_and_posts_of_real_lengths():
    forms = sum(zipf_vocabulary(lang, 7).forms for lang in ("ru", "en"))
    assert forms >= 30_000
    rng = random.Random(1)
    lengths = sorted(len(zipf_text(rng, lang).split()) for lang in ("ru", "en") for _ in range(1000))
    assert lengths[0] <= 6 and 20 <= lengths[len(lengths) // 2] <= 45 and lengths[-1] >= 200
    words = [w for text in (zipf_text(rng, "en") for _ in range(2000)) for w in text.lower().split()]
    counts = sorted(Counter(words).values(), reverse=True)
    assert counts[0] > 20 * counts[99] and len(counts) > 5_000  # a few words everywhere, a long tail


@pytest.mark.parametrize("argv, says", [
    (("poll.py", "--channels", "10", "--changed", "2", "--backfill", "1000"), "backfill: 1000 messages"),
    (("percolate.py", "--posts", "500", "--rules", "50", "--naive-sample", "20"), "end to end"),
    (("alert_latency.py", "--channels", "3", "--posts", "20"), "p95"),
    (("engagement.py", "--messages", "250", "--channels", "2", "--runs", "1"), "messages refreshed"),
    (("live_latency.py", "--channels", "2", "--posts", "4", "--gap", "0.3", "--runs", "1",
      "--poll-scale", "60"), "live (CHANWATCH_JOIN=true"),
])
def test_the_simulator_benchmarks_run_at_a_tiny_size(tmp_path, argv, says):
    extra = ("--dir", str(tmp_path)) if argv[0] == "percolate.py" else ()
    out = bench(*argv, *extra, cwd=tmp_path)
    assert says in out
    assert re.search(r"peak [0-9,]+ MB", out)


def test_the_readers_benchmark_splits_the_channels_with_no_overlap_on_both_backends(tmp_path):
    out = bench("readers.py", "--channels", "30", "--readers", "3", "--rounds", "1",
                "--pg", require_server().url, cwd=tmp_path)
    for backend in ("SQLite (one file)", "PostgreSQL"):
        assert f"{backend}: 30 channels held by 3 readers, overlap 0" in out
    assert out.count("10 channels, 10 GetHistory in its poll cycle") == 6
    assert "one claim:" in out


def test_the_import_benchmark_runs_on_a_tiny_export(tmp_path):
    out = bench("import_export.py", "--messages", "300", "--runs", "1", "--dir", str(tmp_path), cwd=tmp_path)
    assert "desktop export of" in out and "messages/s" in out and "peak" in out
    assert not list(tmp_path.glob("chanwatch-bench-*"))  # the export and the archive are removed


def test_the_media_benchmark_runs_at_a_tiny_size_and_downloads_no_file_twice(tmp_path):
    out = bench("media.py", "--items", "40", "--scale", "0.01", "--runs", "1", "--big-mb", "100",
                cwd=tmp_path)
    assert "no file twice" in out and "MB/s" in out and "peak memory" in out


def test_the_report_benchmark_builds_a_tiny_archive_once_and_times_both_cases(tmp_path):
    db = str(tmp_path / "report.db")
    out = bench("report.py", "--messages", "3000", "--runs", "1", "--db", db, cwd=tmp_path)
    assert "built" in out and "whole archive:" in out and "@mfa0, " in out and "max RSS" in out
    again = bench("report.py", "--messages", "3000", "--runs", "1", "--db", db, cwd=tmp_path)
    assert "built" not in again and "archive: 3,000 messages" in again  # the kept archive is reused


def test_the_daemon_benchmark_runs_a_short_day_of_both_modes_and_reports_memory_and_cpu(tmp_path):
    out = bench("daemon.py", "--messages", "2000", "--channels", "4", "--posts", "40", "--hours", "2",
                "--tail", "50", "--runs", "1", "--cache-dir", str(tmp_path), "--dir", str(tmp_path),
                cwd=tmp_path)
    assert "joined (CHANWATCH_JOIN=true): 121 / 121 / 121 poll cycles" in out
    assert "not joined (CHANWATCH_JOIN=false): 121 / 121 / 121 poll cycles, 4.0 / 4.0 / 4.0 requests" in out
    assert out.count("CPU per poll cycle (ms): median") == 2 and "the daemon's share" in out
    assert len(list(tmp_path.glob("chanwatch-bench-daemon-2000-4-*.db"))) == 1  # the cached archive
    assert not list(tmp_path.glob("tmp*"))  # each run's copy of the archive is removed
