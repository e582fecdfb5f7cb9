"""The archive out: every post (or those a query finds) with provenance, sightings and versions, as
our JSONL (which `storage.exchange.jsonl` reads back) or CSV for spreadsheets. JSONL carries the whole
record: each message's engagement readings (`stats`, time order) and each version's raw JSON."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from storage.exchange.common import ExchangeError, json_text
from storage.media_queue import files_of_post
from storage.records import PostFile, deletion_text, message_url

__all__ = ["CSV_COLUMNS", "EXPORT_PAGE", "copy_media", "export_posts", "file_json", "files_json"]

EXPORT_PAGE = 200
"""Posts loaded per query while exporting."""


def _post_ids(conn: sqlite3.Connection, query: str | None) -> Iterator[list[int]]:
    """Pages of the ids of every post, or of those the query finds (in search order)."""
    if query is None:
        last = 0
        while True:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM posts WHERE id > ? ORDER BY id LIMIT ?", (last, EXPORT_PAGE)
            )]
            if not ids:
                return
            yield ids
            last = ids[-1]
    from storage import search  # imported here: export of everything needs no query language

    yield from search.id_pages(conn, query, EXPORT_PAGE)


def _forwardjson_text(row: sqlite3.Row) -> dict[str, Any] | None:
    if not any(row[c] is not None for c in ("fwd_from_type", "fwd_from_id", "fwd_from_name", "fwd_date")):
        return None
    return {
        "from_type": row["fwd_from_type"], "from_id": row["fwd_from_id"],
        "channel_post": row["fwd_channel_post"], "from_name": row["fwd_from_name"],
        "date": row["fwd_date"], "post_author": row["fwd_post_author"],
        "saved_from_type": row["fwd_saved_from_type"], "saved_from_id": row["fwd_saved_from_id"],
        "saved_from_msg_id": row["fwd_saved_from_msg_id"],
    }


def file_json(file: PostFile) -> dict[str, Any]:
    """One file of a post as search --json and export list it: `path` is relative to the media
    directory, null until the file is downloaded (`state` says why: queued, skipped, failed)."""
    return {"sha256": file.sha256, "size": file.size, "mime_type": file.mime_type, "path": file.path,
            "kind": file.kind, "state": file.state}


def files_json(conn: sqlite3.Connection, post_id: int) -> list[dict[str, Any]]:
    """The files a post's messages carry now (`storage.media_queue.files_of_post`), as JSON objects."""
    return [file_json(f) for f in files_of_post(conn, post_id)]


def copy_media(root: Path, paths: Iterable[str], dest: Path) -> tuple[int, list[str]]:
    """Copy the stored files `paths` (relative to the media store `root`) to the same relative paths
    under `dest`, so an export and `dest` stand alone; a file already there is not copied again.
    Returns how many were copied and the paths missing from the store (an OSError writing `dest`
    propagates)."""
    copied, missing = 0, []
    for relpath in dict.fromkeys(paths):
        source, target = root / relpath, dest / relpath
        if not source.is_file():
            missing.append(relpath)
            continue
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(source, partial)
        partial.replace(target)
        copied += 1
    return copied, missing


def _load_export_page(conn: sqlite3.Connection, ids: list[int]) -> list[dict[str, Any]]:
    """Full export objects of the posts `ids`, in that order."""
    marks = ", ".join("?" * len(ids))
    posts = {r["id"]: r for r in conn.execute(f"SELECT * FROM posts WHERE id IN ({marks})", ids)}
    sightings: dict[int, list[sqlite3.Row]] = {}
    for row in conn.execute(
        f"""SELECT m.*, c.username AS ch_username, c.title AS ch_title
            FROM messages m JOIN channels c ON c.id = m.channel_id
            WHERE m.post_id IN ({marks})
            ORDER BY m.relation != 'original', m.date, m.channel_id, m.message_id""",
        ids,
    ):
        sightings.setdefault(row["post_id"], []).append(row)
    versions: dict[int, list[sqlite3.Row]] = {}
    for row in conn.execute(
        f"""SELECT v.*, m.post_id FROM message_versions v
            JOIN messages m ON m.channel_id = v.channel_id AND m.message_id = v.message_id
            WHERE m.post_id IN ({marks}) ORDER BY v.channel_id, v.message_id, v.id""",
        ids,
    ):
        versions.setdefault(row["post_id"], []).append(row)
    stats: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in conn.execute(
        f"""SELECT s.* FROM message_stats s
            JOIN messages m ON m.channel_id = s.channel_id AND m.message_id = s.message_id
            WHERE m.post_id IN ({marks}) ORDER BY s.channel_id, s.message_id, s.at""",
        ids,
    ):
        stats.setdefault((row["channel_id"], row["message_id"]), []).append(
            {"at": row["at"], "views": row["views"], "forwards": row["forwards"], "replies": row["replies"],
             "reactions": json.loads(row["reactions"]) if row["reactions"] else None})
    out = []
    for post_id in ids:
        p = posts.get(post_id)
        if p is None:
            continue
        post_entities = json.loads(p["entities"])
        obj: dict[str, Any] = {
            "post_id": p["id"], "key": p["key"], "text": p["text"], "entities": post_entities,
            "date": p["date"], "lang": p["language"], "media_kind": p["media_kind"],
            "first_seen": p["first_seen"], "edited_at": p["edited_at"],
            "origin": {
                "channel_id": p["origin_channel_id"], "username": p["origin_username"],
                "title": p["origin_title"], "message_id": p["origin_message_id"],
                "author": p["origin_author"], "date": p["date"],
                "url": message_url(p["origin_channel_id"], p["origin_username"], p["origin_message_id"]),
            },
            "sightings": [],
            "versions": [
                {"channel_id": v["channel_id"], "message_id": v["message_id"], "edit_date": v["edit_date"],
                 "text": v["text"], "entities": json.loads(v["entities"]),
                 "media": json.loads(v["media"]) if v["media"] else None, "replaced_at": v["replaced_at"],
                 "raw": json.loads(v["raw"]) if v["raw"] else None}
                for v in versions.get(post_id, [])
            ],
            "files": files_json(conn, post_id),
        }
        for m in sightings.get(post_id, []):
            s: dict[str, Any] = {
                "channel_id": m["channel_id"], "username": m["ch_username"], "title": m["ch_title"],
                "message_id": m["message_id"], "date": m["date"], "relation": m["relation"],
                "url": message_url(m["channel_id"], m["ch_username"], m["message_id"]),
                "deleted_at": m["deleted_at"], "last_seen": m["last_seen"], "deleted_via": m["deleted_via"],
                "edit_date": m["edit_date"], "views": m["views"],
                "forwards": m["forwards"], "replies": m["replies"], "reply_to": m["reply_to"],
                "grouped_id": m["grouped_id"], "post_author": m["post_author"],
                "media": json.loads(m["media"]) if m["media"] else None,
                "forward": _forwardjson_text(m), "first_seen": m["first_seen"],
                "raw": json.loads(m["raw"]) if m["raw"] else None,
                "stats": stats.get((m["channel_id"], m["message_id"]), []),
            }
            if m["text"] != p["text"]:
                s["text"] = m["text"]
            entities = json.loads(m["entities"])
            if entities != post_entities:
                s["entities"] = entities
            obj["sightings"].append(s)
        out.append(obj)
    return out


CSV_COLUMNS = (
    "post_id", "date", "origin", "origin_message_id", "origin_url", "author", "lang", "media_kind",
    "edited_at", "text", "sightings_count", "sightings", "files",
)


def _csv_row(obj: dict[str, Any]) -> list[Any]:
    origin = obj["origin"]
    flat = "; ".join(
        f"{s['username'] or s['channel_id']}/{s['message_id']} {s['relation']}"
        + (f" {deletion}" if (deletion := deletion_text(s.get("last_seen"), s["deleted_at"],
                                                        s.get("deleted_via"))) else "")
        for s in obj["sightings"]
    )
    return [
        obj["post_id"], obj["date"], origin["username"] or origin["title"] or origin["channel_id"] or "",
        origin["message_id"] if origin["message_id"] is not None else "", origin["url"] or "",
        origin["author"] or "", obj["lang"] or "", obj["media_kind"] or "", obj["edited_at"] or "",
        obj["text"], len(obj["sightings"]), flat,
        "; ".join(f"{f['kind']} {f['state']}" + (f" {f['path']}" if f["path"] else "") for f in obj["files"]),
    ]


def export_posts(conn: sqlite3.Connection, query: str | None, fmt: str, out: TextIO,
                 stored: list[str] | None = None) -> int:
    """Write every canonical post (or those `query` finds) as `jsonl` or `csv`; returns the count.
    `stored` (when given) gets the media-store path of each downloaded file the exported posts carry.

    Streams: posts are read a page at a time. A bad query raises `storage.query.QueryError`.
    """
    if fmt not in ("jsonl", "csv"):
        raise ExchangeError(f"unknown export format {fmt!r}; expected jsonl or csv")
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for ids in _post_ids(conn, query):
        for obj in _load_export_page(conn, ids):
            if stored is not None:
                stored.extend(f["path"] for f in obj["files"] if f["path"])
            if writer is not None:
                writer.writerow(_csv_row(obj))
            else:
                out.write(json_text(obj) + "\n")
            count += 1
    return count
