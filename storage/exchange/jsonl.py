"""Our JSONL back in: each post's messages replayed through ingest, version by version, with the
archive's own timestamps as "now", so an export imported into a fresh archive exports identically.
Each version's raw JSON and each message's engagement readings (`stats`) come back too; files written
before they were exported import without them.

Read a line at a time. Each post is read and checked whole before any of it is written (`_plan`):
a post with a bad field is skipped and named (`post 7 (line 12): sightings[0].date: ...`); a line
that is not a post object at all (not JSON, not UTF-8) stops the import, after committing every
post before it, and the error says how many.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from storage import engagement
from storage.exchange.check import (
    DATA_ERRORS,
    Malformed,
    as_dict,
    as_list,
    int_or_none,
    iso_or_none,
    need_int,
    need_text,
    reactions_or_none,
    safe,
    shown,
    text_or_none,
    unicode_problem,
)
from storage.exchange.common import (
    BATCH_SIZE,
    ExchangeError,
    ImportReport,
    ImportStopped,
    commit,
    counted,
    json_text,
    no_progress,
)
from storage.ingest import ingest
from storage.progress import Progress
from storage.records import Batch, Channel, ForwardHeader, Media, MessageRecord, Reading, parse_iso

__all__ = ["import_jsonl"]


_EXPECTED = "expected a chanwatch JSONL export, one post object a line"
_MEDIA_FIELDS = frozenset(Media.__dataclass_fields__)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
"""How a lone surrogate gets into a JSON line: an escape from \\ud800 to \\udfff."""


def _entities(value: Any, field: str) -> tuple[dict[str, Any], ...]:
    """Entities as `storage.ingest` stores them: objects with a type, an offset and a length."""
    out = []
    for index, entity in enumerate(as_list(value, field)):
        at = f"{field}[{index}]"
        entity = as_dict(entity, at)
        need_text(entity.get("type"), f"{at}.type")
        need_int(entity.get("offset"), f"{at}.offset", minimum=0)
        need_int(entity.get("length"), f"{at}.length", minimum=0)
        for key in ("url", "language"):
            text_or_none(entity.get(key), f"{at}.{key}")
        out.append(entity)
    return tuple(out)


def _iso_text(value: Any, field: str) -> str | None:
    """A stored timestamp (first_seen, replaced_at): ISO text, kept as written ("" counts as none)."""
    if value == "":
        return None
    iso_or_none(value, field)
    return value


def _media(value: Any, field: str) -> Media | None:
    if not value:
        return None
    media = as_dict(value, field)
    unknown = sorted(set(media) - _MEDIA_FIELDS)
    if unknown:
        known = ", ".join(sorted(_MEDIA_FIELDS))
        raise Malformed(f"{field}.{safe(unknown[0])}", f"not a media field ({known})")
    return Media(
        kind=need_text(media.get("kind"), f"{field}.kind"),
        file_name=text_or_none(media.get("file_name"), f"{field}.file_name"),
        size=int_or_none(media.get("size"), f"{field}.size"),
        mime_type=text_or_none(media.get("mime_type"), f"{field}.mime_type"),
        url=text_or_none(media.get("url"), f"{field}.url"),
        title=text_or_none(media.get("title"), f"{field}.title"),
        extra=as_dict(media.get("extra", {}), f"{field}.extra"),
        file_id=int_or_none(media.get("file_id"), f"{field}.file_id"),
        dc_id=int_or_none(media.get("dc_id"), f"{field}.dc_id"),
    )


def _forward(post: dict[str, Any], value: Any, field: str) -> ForwardHeader | None:
    if not value:
        return None
    fwd = as_dict(value, field)
    origin = as_dict(post.get("origin") or {}, "origin")
    from_type = text_or_none(fwd.get("from_type"), f"{field}.from_type")
    from_id = int_or_none(fwd.get("from_id"), f"{field}.from_id")
    same_origin = from_type == "channel" and from_id == origin.get("channel_id")
    return ForwardHeader(
        from_peer_type=from_type, from_peer_id=from_id,
        channel_post=int_or_none(fwd.get("channel_post"), f"{field}.channel_post"),
        from_name=text_or_none(fwd.get("from_name"), f"{field}.from_name"),
        date=iso_or_none(fwd.get("date"), f"{field}.date"),
        post_author=text_or_none(fwd.get("post_author"), f"{field}.post_author"),
        saved_from_peer_type=text_or_none(fwd.get("saved_from_type"), f"{field}.saved_from_type"),
        saved_from_peer_id=int_or_none(fwd.get("saved_from_id"), f"{field}.saved_from_id"),
        saved_from_msg_id=int_or_none(fwd.get("saved_from_msg_id"), f"{field}.saved_from_msg_id"),
        origin_username=text_or_none(origin.get("username"), "origin.username") if same_origin else None,
        origin_title=text_or_none(origin.get("title"), "origin.title") if same_origin else None,
    )


def _record_from_sighting(post: dict[str, Any], s: dict[str, Any], field: str) -> MessageRecord:
    """The message as it stands now, rebuilt from an exported sighting; Malformed names a bad field."""
    date = iso_or_none(s.get("date"), f"{field}.date")
    if date is None:
        raise Malformed(f"{field}.date", "missing")
    text_field = f"{field}.text" if "text" in s else "text"
    entities_field = f"{field}.entities" if "entities" in s else "entities"
    return MessageRecord(
        channel_id=need_int(s.get("channel_id"), f"{field}.channel_id", minimum=1),
        message_id=need_int(s.get("message_id"), f"{field}.message_id", minimum=1),
        date=date,
        text=need_text(s.get("text", post.get("text", "")), text_field),
        entities=_entities(s.get("entities", post.get("entities", [])), entities_field),
        edit_date=iso_or_none(s.get("edit_date"), f"{field}.edit_date"),
        views=int_or_none(s.get("views"), f"{field}.views"),
        forwards=int_or_none(s.get("forwards"), f"{field}.forwards"),
        replies=int_or_none(s.get("replies"), f"{field}.replies"),
        reply_to=int_or_none(s.get("reply_to"), f"{field}.reply_to"),
        grouped_id=int_or_none(s.get("grouped_id"), f"{field}.grouped_id"),
        post_author=text_or_none(s.get("post_author"), f"{field}.post_author"),
        media=_media(s.get("media"), f"{field}.media"),
        forward=_forward(post, s.get("forward"), f"{field}.forward"),
        raw=s.get("raw"),
    )


def _readings(channel_id: int, message_id: int, value: Any, field: str) -> list[Reading]:
    """A message's exported engagement readings (`stats`)."""
    out = []
    for index, item in enumerate(as_list(value, field)):
        at = f"{field}[{index}]"
        item = as_dict(item, at)
        when = _iso_text(item.get("at"), f"{at}.at")
        if when is None:
            raise Malformed(f"{at}.at", "missing")
        out.append(Reading(
            channel_id, message_id, when,
            views=int_or_none(item.get("views"), f"{at}.views", minimum=0),
            forwards=int_or_none(item.get("forwards"), f"{at}.forwards", minimum=0),
            replies=int_or_none(item.get("replies"), f"{at}.replies", minimum=0),
            reactions=reactions_or_none(item.get("reactions"), f"{at}.reactions"),
        ))
    return out


Step = tuple[str, int, int, Channel, MessageRecord]


class _Final(NamedTuple):
    """A sighting as it stands now, and its deletion interval (`last_seen` .. `deleted`, `via`)."""

    channel: Channel
    record: MessageRecord
    deleted: datetime | None
    last_seen: datetime | None = None
    via: str = "recheck"


_VIA = ("recheck", "sweep", "update")


def _final(channel: Channel, final: MessageRecord, s: dict[str, Any], at: str) -> _Final:
    """The sighting's final state with its deletion interval; exports before v10 carry neither
    `last_seen` nor `deleted_via` (a recheck saw those deletions)."""
    via = text_or_none(s.get("deleted_via"), f"{at}.deleted_via") or "recheck"
    if via not in _VIA:
        raise Malformed(f"{at}.deleted_via", f"{shown(via)}, expected one of {', '.join(_VIA)}")
    return _Final(channel, final, iso_or_none(s.get("deleted_at"), f"{at}.deleted_at"),
                  iso_or_none(s.get("last_seen"), f"{at}.last_seen"), via)


@dataclass(slots=True)
class _Plan:
    """One exported post read and checked, ready to replay: no field is looked at again."""

    line: int
    steps: list[Step]
    finals: list[_Final]
    first_seen: str | None
    edited_at: str | None
    readings: dict[tuple[int, int], list[Reading]]  # of the messages whose export lists `stats`
    raws: list[tuple[int, int, str | None, str, Any]]  # versions with raw: channel, message, edit_date, text


def _plan(post: dict[str, Any], line: int) -> _Plan:
    """Every sighting of one exported post as replay steps, its versions in time order.

    Each message's versions become steps stamped with the archive's own times (first seen, then
    each replacement); the steps of all sightings are replayed in time order, so dedup decisions
    that depend on arrival (a copy of a text later edited) come out as they did. Raises Malformed
    naming the first bad field, before anything is written.
    """
    versions: dict[tuple[int, int], list[tuple[str, dict[str, Any]]]] = {}
    for index, v in enumerate(as_list(post.get("versions") or [], "versions")):
        at = f"versions[{index}]"
        v = as_dict(v, at)
        key = (need_int(v.get("channel_id"), f"{at}.channel_id", minimum=1),
               need_int(v.get("message_id"), f"{at}.message_id", minimum=1))
        versions.setdefault(key, []).append((at, v))
    steps: list[Step] = []
    finals: list[_Final] = []
    readings: dict[tuple[int, int], list[Reading]] = {}
    raws: list[tuple[int, int, str | None, str, Any]] = []
    for order, s in enumerate(post["sightings"]):
        at = f"sightings[{order}]"
        s = as_dict(s, at)
        final = _record_from_sighting(post, s, at)
        channel = Channel(final.channel_id, text_or_none(s.get("username"), f"{at}.username"),
                          text_or_none(s.get("title"), f"{at}.title"))
        finals.append(_final(channel, final, s, at))
        if "stats" in s:
            readings[(final.channel_id, final.message_id)] = _readings(
                final.channel_id, final.message_id, s["stats"], f"{at}.stats")
        when = _iso_text(s.get("first_seen"), f"{at}.first_seen") or ""
        history = versions.get((final.channel_id, final.message_id), [])
        for number, (vat, v) in enumerate(history):
            old = replace(final, text=need_text(v.get("text"), f"{vat}.text"),
                          entities=_entities(v.get("entities") or [], f"{vat}.entities"),
                          edit_date=iso_or_none(v.get("edit_date"), f"{vat}.edit_date"),
                          # an export before schema v9 names no version's media: the message's then
                          media=_media(v["media"], f"{vat}.media") if "media" in v else final.media,
                          # an export before schema v10 keeps no version's raw JSON: none is known
                          raw=v.get("raw"))
            if v.get("raw") is not None:
                raws.append((old.channel_id, old.message_id, v.get("edit_date"), old.text, v["raw"]))
            steps.append((when, order, number, channel, old))
            when = _iso_text(v.get("replaced_at"), f"{vat}.replaced_at") or when
        steps.append((when, order, len(history), channel, final))
    # Arrival order: by time, then as one batch orders its messages (by date and id).
    steps.sort(key=lambda step: (step[0], step[4].date, step[4].message_id, step[1], step[2]))
    return _Plan(line, steps, finals, _iso_text(post.get("first_seen"), "first_seen"),
                 _iso_text(post.get("edited_at"), "edited_at"), readings, raws)


def _restore_record(conn: sqlite3.Connection, plan: _Plan, new: set[tuple[int, int]]) -> None:
    """What ingest does not replay: each version's raw JSON (where ingest kept none) and the messages'
    readings. A message new to this archive gets exactly the exported readings (any the replay wrote
    go); one stored already gains those it lacks."""
    for channel_id, message_id, edit_date, body, raw in plan.raws:
        conn.execute(
            """UPDATE message_versions SET raw = ? WHERE channel_id = ? AND message_id = ? AND edit_date IS ?
               AND text = ? AND raw IS NULL""",
            (json_text(raw), channel_id, message_id, edit_date, body),
        )
    for (channel_id, message_id), readings in plan.readings.items():
        if (channel_id, message_id) in new:
            conn.execute("DELETE FROM message_stats WHERE channel_id = ? AND message_id = ?",
                         (channel_id, message_id))
        for reading in readings:
            engagement.insert_reading(conn, reading)


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


def _replay(conn: sqlite3.Connection, plans: list[_Plan]) -> ImportReport:
    """Ingest the planned posts on the caller's transaction; what they changed, as a report to add."""
    tally = ImportReport("jsonl", "")
    for plan in plans:
        before = {(r.channel_id, r.message_id): _message_state(conn, r.channel_id, r.message_id)
                  for r in (f.record for f in plan.finals)}
        created: list[int] = []
        for when, _, _, channel, record in plan.steps:
            batch = Batch(channel, (record,), cursor=record.message_id)
            result = ingest(conn, batch, now=parse_iso(when or None))
            created.extend(result.new_post_ids)
        _restore_record(conn, plan, {key for key, state in before.items() if state is None})
        counted_: set[tuple[int, int]] = set()
        for channel, final, deleted, last_seen, via in plan.finals:
            if last_seen is not None:  # seen present then: the start of its deletion interval
                ingest(conn, Batch(channel, present_ids=(final.message_id,), seen_at=last_seen),
                       now=last_seen)
            if deleted is not None:
                ingest(conn, Batch(channel, deleted_ids=(final.message_id,), seen_at=deleted,
                                   deleted_via=via), now=deleted)
            key = (final.channel_id, final.message_id)
            if key in counted_:
                continue  # a post that lists one message twice: counted once
            counted_.add(key)
            tally.messages += 1
            tally.channels.add(channel.id)
            if before[key] is None:
                tally.new += 1
            elif before[key] != _message_state(conn, *key):
                tally.updated += 1
            else:
                tally.unchanged += 1
        if created:
            tally.posts_new += len(created)
            conn.execute(
                "UPDATE posts SET first_seen = coalesce(?, first_seen), edited_at = ? WHERE id = ?",
                (plan.first_seen, plan.edited_at, created[0]),
            )
    return tally


def _who(post: dict[str, Any], line: int) -> str:
    """How a skipped post is named: `post 7 (line 12)`, or `line 12` when its id is odd."""
    post_id = post.get("post_id")
    if isinstance(post_id, int | str) and not isinstance(post_id, bool) and len(shown(post_id)) < 30:
        return f"post {shown(post_id) if isinstance(post_id, str) else post_id} (line {line})"
    return f"line {line}"


class _Importer:
    """One JSONL file's import: checked posts replayed in batches of about `BATCH_SIZE` messages."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, progress: Progress | None,
                 archive: str | Path) -> None:
        self.conn, self.path, self.archive = conn, path, archive
        self.advance = progress or no_progress
        self.report = ImportReport("jsonl", "", str(path))
        self.pending: list[_Plan] = []
        self.size = 0  # messages pending
        self.done = 0  # posts handled: committed or skipped
        self.committed_posts = 0
        self.committed_line = 0  # the last line whose post is committed

    def run(self, fh: IO[bytes]) -> ImportReport:
        self.advance(self.path.name, 0, None)
        for number, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise self.stop_at(number, "not UTF-8 text") from None
            if line.strip():
                self.take(number, line)
        self.flush()
        count = len(self.report.channels)
        self.report.channel = f"{count} channel" + ("" if count == 1 else "s")
        return self.report

    def take(self, number: int, line: str) -> None:
        """Read, check and queue one line; a line that is not a post object stops the import."""
        try:
            post = json.loads(line)
        except json.JSONDecodeError as exc:
            raise self.stop_at(number, f"not JSON ({exc.msg}); {_EXPECTED}") from exc
        except (ValueError, RecursionError) as exc:
            raise self.stop_at(number, f"not JSON we can read ({shown(str(exc), 60)}); {_EXPECTED}") from exc
        if not isinstance(post, dict) or "post_id" not in post or not isinstance(post.get("sightings"), list):
            raise self.stop_at(number, f"not a post object with post_id and sightings; {_EXPECTED}")
        try:
            problem = unicode_problem(post) if _SURROGATE_ESCAPE.search(line) else None
            if problem is not None:
                raise problem
            plan = _plan(post, number)
        except Malformed as exc:
            self.report.skip(_who(post, number), str(exc))
            self.done += 1
            return
        except RecursionError:
            self.report.skip(_who(post, number), "nested too deeply")
            self.done += 1
            return
        self.pending.append(plan)
        self.size += max(1, len(plan.finals))
        if self.size >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        """Replay the pending posts in one transaction; if one cannot be stored, post by post."""
        plans, self.pending, self.size = self.pending, [], 0
        if not plans:
            return
        try:
            self.add(self.store(plans), plans)
        except DATA_ERRORS:
            for plan in plans:
                try:
                    self.add(self.store([plan]), [plan])
                except DATA_ERRORS as exc:
                    self.report.skip(f"line {plan.line}",
                                     f"cannot be stored: {type(exc).__name__}: {shown(str(exc), 80)}")
        self.done += len(plans)
        self.advance(self.path.name, self.done, None)

    def store(self, plans: list[_Plan]) -> ImportReport:
        return commit(self.conn, _replay, plans, archive=self.archive, stopped=self.stopped)

    def add(self, tally: ImportReport, plans: list[_Plan]) -> None:
        """Count what a committed transaction changed."""
        report = self.report
        report.messages += tally.messages
        report.new += tally.new
        report.updated += tally.updated
        report.unchanged += tally.unchanged
        report.posts_new += tally.posts_new
        report.channels |= tally.channels
        self.committed_posts += len(plans)
        self.committed_line = plans[-1].line

    def committed(self) -> str:
        """`committed before it: 1,200 posts (1,350 messages)`, or that nothing was."""
        if not self.committed_posts:
            return "nothing before it was committed"
        return f"committed before it: {counted(self.committed_posts, 'post')} " \
               f"({counted(self.report.messages, 'message')})"

    def stop_at(self, number: int, what: str) -> ImportStopped:
        """Stop at a bad line: first commit every post before it, then say so."""
        self.flush()
        return ImportStopped(
            f"{self.path}: stopped at line {number}: {what}; {self.committed()}; fix the line and import "
            "again: what is in is not imported twice", self.report.messages)

    def stopped(self, reason: str) -> ImportStopped:
        """The error for an SQLite failure (a full disk) while storing: why, and how much is in."""
        if self.committed_posts:
            what = (f"committed before it stopped: {counted(self.committed_posts, 'post')} "
                    f"({counted(self.report.messages, 'message')}), up to line {self.committed_line}")
        else:
            what = "nothing was committed"
        return ImportStopped(f"{reason}; {self.path}: {what}; import it again to add the rest: what is in "
                             "is not imported twice", self.report.messages)


def import_jsonl(
    conn: sqlite3.Connection, path: Path, *, progress: Progress | None, archive: str | Path = ":memory:"
) -> ImportReport:
    """Import our JSONL, a line at a time: a post that cannot be read is skipped and named in the
    report; a line that is not a post object stops the import after committing every post before
    it (ImportStopped says how many)."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with fh:
        return _Importer(conn, path, progress=progress, archive=archive).run(fh)
