"""The benchmark scripts still run: each at a tiny size, in its own process. No figure is judged here
(benchmarks are run by hand, their results go into the README); a script that no longer runs is."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.corpus import CORPORA, batches, zipf_text, zipf_vocabulary
from bench.search import HARD, QUERIES
from storage.database import connect_sync
from storage.ingest import ingest_batch
from storage.search import search

ROOT = Path(__file__).resolve().parent.parent


def bench(*argv: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / argv[0]), *argv[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_ingest_and_search_benchmarks_run_on_a_tiny_archive_of_each_corpus(tmp_path):
    db = str(tmp_path / "bench.db")
    out = bench("ingest.py", "--messages", "2000", "--floor", "--runs", "2", "--db", db, cwd=tmp_path)
    assert "corpus uniform" in out and "corpus zipf" in out and "chanwatch ingest:" in out
    assert "chanwatch / floor" in out and "peak" in out
    assert "target >= 0.5" not in out  # the single table's target went with the README's
    out = bench("search.py", "--db", db, "--rounds", "1", cwd=tmp_path)
    for corpus in out.split("\ncorpus ")[1:]:
        assert "p95" in corpus
        for query in QUERIES:  # each query's time with its match count
            assert re.search(rf"ms +[0-9,+]+ posts  {re.escape(query)}\n", corpus), query
        assert corpus.rindex("peak") > corpus.index(HARD[-1])  # read after the last query


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
