"""PostgreSQL's capped count by buckets of post ids (storage.search._newest_buckets): the newest
buckets first, two, four... at a time, stopping at the cap — the same totals as counting at once."""

from __future__ import annotations

from storage import text as tx
from storage.dialect import POSTGRESQL
from storage.query import parse
from storage.search import count, search

SIZE = POSTGRESQL.fts_bucket or 0
PLACED = {  # bucket -> the texts of its posts (the newest bucket is 7; 3, 4 hold nothing)
    7: ["alpha beta", "alpha beta", "beta", "beta", "beta gamma"],
    6: ["alpha"],
    2: ["gamma"],
    1: ["alpha", "alpha", "alpha beta"],
    0: ["alpha", "delta"],
}
QUERIES = ["alpha", "beta", "gamma", "delta", "epsilon", "alpha -beta", "alpha OR gamma", "beta gamma"]


def place(pg_conn) -> None:
    """The posts of PLACED, numbered from the start of their bucket."""
    pg_conn.execute("BEGIN")
    for bucket, texts in PLACED.items():
        for n, text in enumerate(texts):
            found = tx.analyse(text)
            pg_conn.execute(
                "INSERT INTO posts (id, key, date, first_seen, text, words, stems, tags)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (bucket * SIZE + n + 1, f"k{bucket}-{n}", "2025-12-17T10:00:00+00:00",
                 "2025-12-17T10:00:00+00:00", text, found.words, found.stems, found.tags))
    pg_conn.execute("COMMIT")


def test_a_count_by_buckets_gives_the_total_a_count_at_once_gives(pg_conn):
    place(pg_conn)
    for text in QUERIES:
        expected = sum(1 for texts in PLACED.values() for t in texts if _matches(text, t))
        assert count(pg_conn, parse(text), exact=True) == expected, text
        for limit in (1, 2, 3, 5, 8):  # stops in the newest bucket, the next, the next two, or counts all
            assert count(pg_conn, parse(text), limit=limit) == min(expected, limit + 1), (text, limit)


def test_sort_rank_past_the_cap_ranks_the_most_recently_archived_matches(pg_conn):
    place(pg_conn)
    newest_three = {7 * SIZE + 1, 7 * SIZE + 2, 6 * SIZE + 1}  # found in the newest buckets
    assert {p.id for p in search(pg_conn, "alpha sort:rank", count_limit=3).posts} == newest_three
    assert {p.id for p in search(pg_conn, "alpha sort:rank", count_limit=6).posts} == newest_three | {
        1 * SIZE + 1, 1 * SIZE + 2, 1 * SIZE + 3}  # down to bucket 0: the whole index


def test_an_empty_archive_counts_nothing(pg_conn):
    assert count(pg_conn, parse("alpha"), limit=3) == 0


def _matches(query: str, text: str) -> bool:
    words = set(text.split())
    if " OR " in query:
        return any(w in words for w in query.split(" OR "))
    return all((w[1:] not in words) if w.startswith("-") else (w in words) for w in query.split())
