"""Our JSONL back in: each post's messages replayed through ingest, version by version, with the
archive's own timestamps as "now", so an export imported into a fresh archive exports identically."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from storage.exchange.common import BATCH_SIZE, ExchangeError, ImportReport, no_progress
from storage.ingest import ingest
from storage.progress import Progress
from storage.records import Batch, Channel, ForwardHeader, Media, MessageRecord, parse_iso

__all__ = ["import_jsonl"]


def _jsonl_posts(path: Path, fh: IO[str]) -> Iterator[dict[str, Any]]:
    """Each line's post object, checked just enough to give a clear error."""
    for number, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExchangeError(f"{path}: line {number} is not JSON ({exc.msg}); expected a chanwatch "
                                "JSONL export, one post object a line") from exc
        if not isinstance(obj, dict) or "post_id" not in obj or not isinstance(obj.get("sightings"), list):
            raise ExchangeError(f"{path}: line {number} is not a post object with post_id and sightings; "
                                "expected a chanwatch JSONL export")
        yield obj


def _record_from_sighting(post: dict[str, Any], s: dict[str, Any]) -> MessageRecord:
    """The message as it stands now, rebuilt from an exported sighting."""
    fwd = s.get("forward")
    header = None
    if fwd:
        origin = post.get("origin") or {}
        same_origin = fwd.get("from_type") == "channel" and fwd.get("from_id") == origin.get("channel_id")
        header = ForwardHeader(
            from_peer_type=fwd.get("from_type"), from_peer_id=fwd.get("from_id"),
            channel_post=fwd.get("channel_post"), from_name=fwd.get("from_name"),
            date=parse_iso(fwd.get("date")), post_author=fwd.get("post_author"),
            saved_from_peer_type=fwd.get("saved_from_type"), saved_from_peer_id=fwd.get("saved_from_id"),
            saved_from_msg_id=fwd.get("saved_from_msg_id"),
            origin_username=origin.get("username") if same_origin else None,
            origin_title=origin.get("title") if same_origin else None,
        )
    media = s.get("media")
    date = parse_iso(s["date"])
    if date is None:
        raise ValueError("sighting without a date")
    return MessageRecord(
        channel_id=int(s["channel_id"]), message_id=int(s["message_id"]), date=date,
        text=s.get("text", post.get("text", "")),
        entities=tuple(s.get("entities", post.get("entities", []))),
        edit_date=parse_iso(s.get("edit_date")), views=s.get("views"), forwards=s.get("forwards"),
        replies=s.get("replies"), reply_to=s.get("reply_to"), grouped_id=s.get("grouped_id"),
        post_author=s.get("post_author"), media=Media(**media) if media else None,
        forward=header, raw=s.get("raw"),
    )


def _message_state(conn: sqlite3.Connection, channel_id: int, message_id: int) -> tuple[Any, ...] | None:
    """Everything stored about one message (row and version count), to tell what an import changed."""
    row = conn.execute(
        "SELECT * FROM messages WHERE channel_id = ? AND message_id = ?", (channel_id, message_id)
    ).fetchone()
    if row is None:
        return None
    count = conn.execute(
        "SELECT count(*) FROM message_versions WHERE channel_id = ? AND message_id = ?",
        (channel_id, message_id),
    ).fetchone()[0]
    return (*tuple(row), count)


def _replay_post(conn: sqlite3.Connection, post: dict[str, Any], report: ImportReport) -> None:
    """Ingest every sighting of one exported post, replaying its versions in time order.

    Each message's versions become steps stamped with the archive's own times (first seen, then
    each replacement); the steps of all sightings are replayed in time order, so dedup decisions
    that depend on arrival (a copy of a text later edited) come out as they did.
    """
    versions: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for v in post.get("versions") or ():
        versions.setdefault((int(v["channel_id"]), int(v["message_id"])), []).append(v)
    steps: list[tuple[str, int, int, Channel, MessageRecord]] = []
    finals: list[tuple[Channel, MessageRecord, str | None]] = []
    for order, s in enumerate(post["sightings"]):
        channel = Channel(int(s["channel_id"]), s.get("username"), s.get("title"))
        final = _record_from_sighting(post, s)
        finals.append((channel, final, s.get("deleted_at")))
        when = s.get("first_seen") or ""
        history = versions.get((final.channel_id, final.message_id), [])
        for number, v in enumerate(history):
            old = replace(final, text=v["text"], entities=tuple(v.get("entities") or ()),
                          edit_date=parse_iso(v.get("edit_date")))
            steps.append((when, order, number, channel, old))
            when = v.get("replaced_at") or when
        steps.append((when, order, len(history), channel, final))
    # Arrival order: by time, then as one batch orders its messages (by date and id).
    steps.sort(key=lambda step: (step[0], step[4].date, step[4].message_id, step[1], step[2]))
    before = {(r.channel_id, r.message_id): _message_state(conn, r.channel_id, r.message_id)
              for _, r, _ in finals}
    created: list[int] = []
    for when, _, _, channel, record in steps:
        batch = Batch(channel, (record,), cursor=record.message_id)
        result = ingest(conn, batch, now=parse_iso(when or None))
        created.extend(result.new_post_ids)
    for channel, final, deleted_at in finals:
        if deleted_at:
            deleted = parse_iso(deleted_at)
            ingest(conn, Batch(channel, deleted_ids=(final.message_id,), seen_at=deleted), now=deleted)
        key = (final.channel_id, final.message_id)
        report.messages += 1
        report.channels.add(channel.id)
        if before[key] is None:
            report.new += 1
        elif before[key] != _message_state(conn, *key):
            report.updated += 1
        else:
            report.unchanged += 1
    if created:
        report.posts_new += len(created)
        conn.execute(
            "UPDATE posts SET first_seen = coalesce(?, first_seen), edited_at = ? WHERE id = ?",
            (post.get("first_seen"), post.get("edited_at"), created[0]),
        )


def import_jsonl(conn: sqlite3.Connection, path: Path, *, progress: Progress | None) -> ImportReport:
    report = ImportReport("jsonl", "", str(path))

    def replay(connection: sqlite3.Connection, chunk: list[dict[str, Any]]) -> None:
        for post in chunk:
            try:
                _replay_post(connection, post, report)
            except (KeyError, TypeError, ValueError) as exc:
                raise ExchangeError(
                    f"{path}: post {post.get('post_id')} cannot be read ({exc!r}); "
                    "expected a chanwatch JSONL export"
                ) from exc

    from storage.database import run_in_transaction

    try:
        fh = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    advance = progress or no_progress
    advance(path.name, 0, None)
    with fh:
        chunk: list[dict[str, Any]] = []
        size = done = 0
        try:
            for post in _jsonl_posts(path, fh):
                chunk.append(post)
                size += max(1, len(post["sightings"]))
                if size >= BATCH_SIZE:
                    run_in_transaction(conn, replay, chunk)
                    done += len(chunk)
                    advance(path.name, done, None)
                    chunk, size = [], 0
            if chunk:
                run_in_transaction(conn, replay, chunk)
                advance(path.name, done + len(chunk), None)
        except UnicodeDecodeError as exc:
            raise ExchangeError(f"{path}: not UTF-8 text; expected a chanwatch JSONL export") from exc
    count = len(report.channels)
    report.channel = f"{count} channel" + ("" if count == 1 else "s")
    return report
