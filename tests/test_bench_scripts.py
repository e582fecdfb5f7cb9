"""The benchmark scripts still run: each at a tiny size, in its own process. No figure is judged here
(benchmarks are run by hand, their results go into the README); a script that no longer runs is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bench(*argv: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / argv[0]), *argv[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_ingest_and_search_benchmarks_run_on_a_tiny_archive(tmp_path):
    db = str(tmp_path / "bench.db")
    out = bench("ingest.py", "--messages", "2000", "--floor", "--db", db, cwd=tmp_path)
    assert "chanwatch ingest:" in out
    assert "p95" in bench("search.py", "--db", db, "--rounds", "1", cwd=tmp_path)


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
    assert says in bench(*argv, *extra, cwd=tmp_path)


def test_the_import_benchmark_runs_on_a_tiny_export(tmp_path):
    out = bench("import_export.py", "--messages", "300", "--runs", "1", "--dir", str(tmp_path), cwd=tmp_path)
    assert "desktop export of" in out and "messages/s" in out and "peak" in out
    assert not list(tmp_path.glob("chanwatch-bench-*"))  # the export and the archive are removed


def test_the_media_benchmark_runs_at_a_tiny_size_and_downloads_no_file_twice(tmp_path):
    out = bench("media.py", "--items", "40", "--scale", "0.01", "--runs", "1", "--big-mb", "100",
                cwd=tmp_path)
    assert "no file twice" in out and "MB/s" in out and "peak memory" in out


def test_the_daemon_benchmark_runs_a_short_day_of_both_modes_and_reports_memory_and_cpu(tmp_path):
    out = bench("daemon.py", "--messages", "2000", "--channels", "4", "--posts", "40", "--hours", "2",
                "--tail", "50", "--runs", "1", "--cache-dir", str(tmp_path), "--dir", str(tmp_path),
                cwd=tmp_path)
    assert "joined (CHANWATCH_JOIN=true): 121 / 121 / 121 poll cycles" in out
    assert "not joined (CHANWATCH_JOIN=false): 121 / 121 / 121 poll cycles, 4.0 / 4.0 / 4.0 requests" in out
    assert out.count("CPU per poll cycle (ms): median") == 2 and "the daemon's share" in out
    assert len(list(tmp_path.glob("chanwatch-bench-daemon-2000-4-*.db"))) == 1  # the cached archive
    assert not list(tmp_path.glob("tmp*"))  # each run's copy of the archive is removed
