"""Where a benchmark's archive lives: an SQLite file, or a schema of its own on a PostgreSQL server.

`--backend sqlite,postgresql` (both by default) runs a benchmark on each, side by side in one run;
the PostgreSQL server is `--pg URL` or `CHANWATCH_BENCH_PG`. A PostgreSQL archive is a schema on that
server, made fresh for the measurement and dropped after it, except the one `bench/ingest.py`
builds for `bench/search.py` (`archive_schema`), which replaces the last one, as the SQLite file does,
until `bench/search.py --drop` drops it. Output never shows the URL's password.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from storage.location import ServerUrl, parse_location

BACKENDS = ("sqlite", "postgresql")
PG_ENV = "CHANWATCH_BENCH_PG"


def add_options(parser: argparse.ArgumentParser) -> None:
    """`--backend` and `--pg`, alike in every benchmark that runs on both backends."""
    parser.add_argument("--backend", default=",".join(BACKENDS),
                        help="comma-separated: sqlite, postgresql (default both, side by side)")
    parser.add_argument("--pg", default=None,
                        help=f"the PostgreSQL server (postgresql://...; default ${PG_ENV})")


def chosen(args: argparse.Namespace) -> tuple[tuple[str, ...], str | None]:
    """The backends asked for, in BACKENDS order, and the server's URL (None when only SQLite runs);
    a usage error names what is wrong."""
    names = {b.strip() for b in args.backend.split(",") if b.strip()}
    unknown = names - set(BACKENDS)
    if unknown or not names:
        raise SystemExit(f"--backend: unknown {', '.join(sorted(unknown)) or 'empty list'}; "
                         f"choose from {', '.join(BACKENDS)}")
    url = args.pg or os.environ.get(PG_ENV)
    if "postgresql" in names:
        if not url:
            raise SystemExit(f"the postgresql backend needs a server: --pg postgresql://... or {PG_ENV} "
                             "(or --backend sqlite)")
        if not isinstance(parse_location(url), ServerUrl):
            raise SystemExit("--pg must be a postgresql:// URL")
    return tuple(b for b in BACKENDS if b in names), (url if "postgresql" in names else None)


def in_schema(url: str, schema: str) -> ServerUrl:
    """`url` whose connections use `schema` (libpq's `options`): what `connect_sync` opens."""
    option = "options=" + quote(f"-csearch_path={schema}", safe="")
    return ServerUrl("postgresql", url + ("&" if "?" in url else "?") + option)


def archive_schema(db: str, corpus: str) -> str:
    """The schema of the corpus's PostgreSQL archive that bench/ingest.py keeps for bench/search.py,
    named after `--db` as the SQLite file is (`/tmp/chanwatch-bench.db` -> `bench_chanwatch_bench_zipf`),
    so two benchmarks with different `--db` never share one."""
    return "bench_" + re.sub(r"\W", "_", Path(db).stem).lower() + f"_{corpus}"


def create_schema(url: str, schema: str) -> ServerUrl:
    """An empty `schema` (an older one of that name dropped first), as a URL to connect to."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute(f"CREATE SCHEMA {schema}")
    return in_schema(url, schema)


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def schema_exists(url: str, schema: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        return found is not None


@contextmanager
def scratch_schema(url: str, schema: str) -> Iterator[ServerUrl]:
    """A fresh schema for one measurement, dropped after it (close its connections first)."""
    where = create_schema(url, schema)
    try:
        yield where
    finally:
        drop_schema(url, schema)


def disk_bytes(conn: Any) -> int:
    """The archive's size on disk: SQLite's pages (the write-ahead log aside), or PostgreSQL's
    `pg_total_relation_size` (heap, indexes, TOAST) summed over the schema's tables."""
    if getattr(conn, "dialect", None) is None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
        " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'm')"
    ).fetchone()
    return int(row[0])
