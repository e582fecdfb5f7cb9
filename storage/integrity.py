"""Checking the archive file (`chanwatch check`): what is wrong with it (`find_problems`: SQLite's
integrity check, foreign keys, text that is not UTF-8, the search index's coverage) and how to
recover (`how_to_recover`). Reads only; never prints stored data.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.database import SCHEMA_VERSION
from storage.dialect import dialect_of
from storage.faults import shell_quoted
from storage.location import ServerUrl

PROBLEMS_SHOWN = 20
"""`find_problems` lists at most this many problems of each check (and says how many more)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the archive file: which check found it, and what (never stored data)."""

    check: str  # "integrity", "foreign key", "text", "search index"
    detail: str


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_utf8(value: bytes | None) -> int:
    try:
        (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        return 0
    return 1


def _capped(problems: list[Problem], check: str, count: int, limit: int) -> list[Problem]:
    if count > limit:
        problems = [*problems, Problem(check, f"… and {count - limit:,} more")]
    return problems


def _stopped(check: str, exc: sqlite3.Error) -> Problem:
    """A check that could not finish: the file is damaged where it reads (or it says why)."""
    return Problem("integrity", f"the {check} check stopped: {_error_text(exc)}")


def _integrity(conn: sqlite3.Connection, quick: bool, limit: int) -> list[Problem]:
    pragma = "quick_check" if quick else "integrity_check"
    try:
        found = [line for row in conn.execute(f"PRAGMA {pragma}({limit + 1})")
                 for line in str(row[0]).splitlines() if line and not line.startswith("*** in database")]
    except sqlite3.Error as exc:
        return [_stopped("integrity", exc)]
    if found == ["ok"]:
        return []
    more = [Problem("integrity", "… and more")] if len(found) > limit else []
    return [Problem("integrity", line) for line in found[:limit]] + more


def _foreign_keys(conn: sqlite3.Connection, limit: int) -> list[Problem]:
    try:
        rows = conn.execute("PRAGMA foreign_key_check").fetchall()
    except sqlite3.Error as exc:
        return [_stopped("foreign key", exc)]
    found = [Problem("foreign key", f"{table} row {rowid} refers to a {parent} row that is not there")
             for table, rowid, parent, _ in rows[:limit]]
    return _capped(found, "foreign key", len(rows), limit)


def _text_encoding(conn: sqlite3.Connection, limit: int) -> list[Problem]:
    """Text values that are not UTF-8 (SQLite stores what it is given; Python cannot read them)."""
    conn.create_function("chanwatch_is_utf8", 1, _is_utf8, deterministic=True)
    found: list[Problem] = []
    try:
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                              "AND name NOT LIKE 'sqlite%' AND sql NOT LIKE 'CREATE VIRTUAL%'").fetchall()
        for table, sql in tables:
            key = "NULL" if "WITHOUT ROWID" in str(sql).upper() else "rowid"
            for column in [r[1] for r in conn.execute(f"PRAGMA table_info({_quoted(table)})")]:
                bad = [r[0] for r in conn.execute(
                    f"SELECT {key} FROM {_quoted(table)} WHERE typeof({_quoted(column)}) = 'text' "
                    f"AND NOT chanwatch_is_utf8(CAST({_quoted(column)} AS BLOB))")]
                if bad:
                    rows = "" if key == "NULL" else " (rowid " + ", ".join(map(str, bad[:limit])) + (
                        ", …)" if len(bad) > limit else ")")
                    found.append(Problem("text", f"{table}.{column}: {len(bad):,} "
                                                 f"{'value is' if len(bad) == 1 else 'values are'} "
                                                 f"not UTF-8{rows}"))
    except sqlite3.Error as exc:
        found.append(_stopped("text encoding", exc))
    return found


def _search_index(conn: sqlite3.Connection) -> list[Problem]:
    try:
        posts, indexed = conn.execute(
            "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM posts_fts_docsize)").fetchone()
    except sqlite3.Error as exc:
        return [_stopped("search index", exc)]
    if posts == indexed:
        return []
    return [Problem("search index", f"it indexes {indexed:,} posts of {posts:,}")]


def _error_text(exc: sqlite3.Error) -> str:
    """An SQLite error as a check reports it: never with the stored bytes a decode error quotes."""
    return "text that is not UTF-8" if "decode" in str(exc).lower() else str(exc)


def _search_vectors(conn: sqlite3.Connection) -> list[Problem]:
    """PostgreSQL: every post has its search vector (a trigger builds it from the derived columns)."""
    try:
        posts, missing = conn.execute("SELECT count(*), count(*) - count(fts) FROM posts").fetchone()
    except sqlite3.Error as exc:
        return [_stopped("search index", exc)]
    return [Problem("search index", f"it indexes {posts - missing:,} posts of {posts:,}")] if missing else []


def find_problems(conn: sqlite3.Connection, *, quick: bool = False,
                  limit: int = PROBLEMS_SHOWN) -> list[Problem]:
    """What is wrong with the archive file; none when it is sound. SQLite's integrity_check (or the
    faster quick_check, which skips comparing indexes with their tables), foreign keys, text that is
    not UTF-8, and whether the search index covers every post. Reads only.
    On PostgreSQL the server enforces the first three itself: only the search index is checked."""
    if not dialect_of(conn).is_sqlite:
        return _search_vectors(conn)
    return [*_integrity(conn, quick, limit), *_foreign_keys(conn, limit), *_text_encoding(conn, limit),
            *_search_index(conn)]


def header_schema_version(path: str | Path) -> int | None:
    """The schema version as the file's header holds it (bytes 60-63), for an archive whose schema
    SQLite cannot read; None when there is no SQLite header to read."""
    try:
        with Path(path).expanduser().open("rb") as f:
            header = f.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return None
    return int.from_bytes(header[60:64], "big")


def how_to_recover(path: str | Path | ServerUrl, problems: list[Problem], version: int | None) -> list[str]:
    """What to do about `problems`, as lines of advice with the commands to type (SQLite's own tools:
    SQL text stays in storage/)."""
    checks = {p.check for p in problems}
    if isinstance(path, ServerUrl):  # only the search vectors are checked there (`find_problems`)
        return ["to rebuild the search index: psql DATABASE -c 'UPDATE posts SET words = words'"]
    shown = shell_quoted(path)
    lines: list[str] = []
    if checks & {"integrity", "foreign key"}:
        if version is None:
            version = header_schema_version(path)
        user_version = f"echo 'PRAGMA user_version = {version if version is not None else SCHEMA_VERSION};'"
        lines += [
            "to recover: restore a backup, or copy what is still readable into a new archive and use that:",
            f"  sqlite3 {shown} .recover | sqlite3 recovered.db",
            "  (a sqlite3 that says \"SQL logic error\" there lacks .recover; use instead",
            f"   (sqlite3 {shown} .dump; {user_version}) | sqlite3 recovered.db)",
            "  sqlite3 recovered.db \"INSERT INTO posts_fts(posts_fts) VALUES('rebuild')\"",
            "  chanwatch --db recovered.db check",
        ]
    elif "search index" in checks:
        lines.append(f"to rebuild the search index: sqlite3 {shown} "
                     "\"INSERT INTO posts_fts(posts_fts) VALUES('rebuild')\"")
    if "text" in checks:
        lines.append("text that is not UTF-8 cannot be read: restore a backup, or overwrite those values "
                     f"with sqlite3 {shown} (UPDATE table SET column = '' WHERE rowid = N)")
    return lines
