"""Property: whatever JSON shaped like an export is given to `chanwatch import`, it ends with exit 0
(imported, malformed messages skipped and counted) or exit 2 and one line on stderr; never a
traceback, never an exception out of `main`, and what the summary says is what the archive holds."""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli import main

SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
           | st.sampled_from(["\ud800", "x\udfff", "2025-01-01T10:00:00", "1735725600", "channel1", ""]))
"""Any JSON scalar, with lone surrogates, huge ints and strings that look like dates and peers."""
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def either(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the plausible value, sometimes any JSON at all (a wrong type, a huge int, a list)."""
    return st.one_of(plausible, plausible, ANYTHING)


def ordered(d: dict[str, Any], order: list[int]) -> dict[str, Any]:
    """`d` with its keys in the order `order` draws (the header may come after `messages`)."""
    keys = list(d)
    return {keys[i]: d[keys[i]] for i in sorted(range(len(keys)), key=lambda i: order[i % len(order)])}


TEXT = st.text(alphabet="abc де🇷🇺 #\n", max_size=12)
ENTITY = st.fixed_dictionaries(
    {"type": either(st.sampled_from(["plain", "bold", "text_link", "hashtag", "custom_emoji", "pre"])),
     "text": either(TEXT)},
    optional={"href": either(st.just("https://example.org")), "user_id": ANYTHING,
              "document_id": either(st.sampled_from(["123", "stickers/a.webp"])), "language": ANYTHING,
              "collapsed": ANYTHING})
MESSAGE = st.fixed_dictionaries(
    {"id": either(st.integers(1, 40)), "type": either(st.sampled_from(["message", "message", "service"]))},
    optional={
        "date": either(st.just("2025-01-01T10:00:00")),
        "date_unixtime": either(st.integers(0, 2**33).map(str)),
        "edited": either(st.just("2025-01-02T10:00:00")),
        "edited_unixtime": either(st.integers(0, 2**33).map(str)),
        "text": either(TEXT | st.lists(TEXT | ENTITY, max_size=3)),
        "text_entities": either(st.lists(either(ENTITY), max_size=4)),
        "author": either(TEXT),
        "reply_to_message_id": either(st.integers(1, 40)),
        "forwarded_from": either(TEXT),
        "forwarded_from_id": either(st.sampled_from(["channel77", "user5", "chat9", "channel" + "9" * 25])),
        "photo": ANYTHING, "photo_file_size": either(st.integers(0, 10**6)), "width": ANYTHING,
        "file": ANYTHING, "file_name": either(TEXT), "file_size": either(st.integers(0, 10**9)),
        "media_type": either(st.sampled_from(["video_file", "sticker", "voice_message", "animation"])),
        "mime_type": either(TEXT), "duration_seconds": ANYTHING,
        "poll": either(st.fixed_dictionaries({"question": ANYTHING, "answers": either(st.lists(
            either(st.fixed_dictionaries({"text": either(TEXT), "voters": ANYTHING})), max_size=3))})),
        "location_information": either(
            st.fixed_dictionaries({"latitude": either(st.floats(-90, 90)), "longitude": ANYTHING})),
        "contact_information": ANYTHING, "dice": ANYTHING, "edit_hide": ANYTHING,
    })
EXPORT = st.fixed_dictionaries({}, optional={
    "name": either(TEXT),
    "type": either(st.sampled_from(["public_channel", "private_supergroup", "personal_chat"])),
    "id": either(st.integers(1, 3)),
    "messages": either(st.lists(either(MESSAGE), max_size=6)),
    "chats": ANYTHING,
})


def run_import(folder: Path, path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--db", str(folder / "archive.db"), "import", str(path), "--no-progress"])
    return code, out.getvalue(), err.getvalue()


def assert_exit_0_or_one_line_on_stderr(folder: Path, code: int, out: str, err: str) -> None:
    assert "Traceback" not in err and "Traceback" not in out
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chanwatch: "), err
        return
    assert err == "" and len(out.strip().splitlines()) == 1, (out, err)
    archive = sqlite3.connect(folder / "archive.db")
    try:  # a fresh archive: every message it holds was new, as the summary says
        stored = archive.execute("SELECT count(*) FROM messages").fetchone()[0]
        assert f"({stored} new," in out, out
        assert archive.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        archive.close()


def write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # a lone surrogate makes bytes that are not UTF-8


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=EXPORT, order=st.lists(st.integers(0, 9), min_size=5, max_size=5),
       indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_any_export_shaped_json_imports_or_is_refused_in_one_line(doc, order, indent, ascii_only):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = folder / "result.json"
        write(path, json.dumps(ordered(doc, order), indent=indent, ensure_ascii=ascii_only))
        assert_exit_0_or_one_line_on_stderr(folder, *run_import(folder, path))


ISO = st.sampled_from(["2025-01-01T10:00:00+00:00", "2025-01-01T10:05:00+00:00", "2025-01-03T00:00:00"])
JSONL_ENTITY = st.fixed_dictionaries(
    {"type": either(st.sampled_from(["bold", "hashtag", "text_url"])), "offset": either(st.integers(0, 5)),
     "length": either(st.integers(0, 5))}, optional={"url": ANYTHING})
SIGHTING = st.fixed_dictionaries(
    {"channel_id": either(st.integers(1, 3)), "message_id": either(st.integers(1, 20)), "date": either(ISO)},
    optional={
        "username": either(TEXT), "title": either(TEXT), "text": either(TEXT),
        "entities": either(st.lists(either(JSONL_ENTITY), max_size=2)), "edit_date": either(ISO),
        "views": either(st.integers(0, 100)), "forwards": ANYTHING, "replies": ANYTHING,
        "reply_to": either(st.integers(1, 20)), "grouped_id": either(st.integers(1, 3)),
        "post_author": either(TEXT), "raw": ANYTHING, "deleted_at": either(ISO),
        "first_seen": either(ISO),
        "media": either(st.fixed_dictionaries(
            {"kind": either(st.sampled_from(["photo", "poll"]))},
            optional={"size": ANYTHING, "extra": ANYTHING, "url": ANYTHING})),
        "forward": either(st.fixed_dictionaries({}, optional={
            "from_type": either(st.sampled_from(["channel", "user"])), "from_id": either(st.integers(1, 3)),
            "channel_post": either(st.integers(1, 20)), "from_name": either(TEXT), "date": either(ISO)})),
    })
POST = st.fixed_dictionaries(
    {"post_id": either(st.integers(1, 9)),
     "sightings": either(st.lists(either(SIGHTING), max_size=3))},
    optional={
        "text": either(TEXT), "entities": either(st.lists(JSONL_ENTITY, max_size=2)),
        "first_seen": either(ISO),
        "edited_at": either(ISO), "origin": either(st.fixed_dictionaries({}, optional={
            "channel_id": ANYTHING, "username": either(TEXT), "title": either(TEXT)})),
        "versions": either(st.lists(either(st.fixed_dictionaries(
            {"channel_id": either(st.integers(1, 3)), "message_id": either(st.integers(1, 20)),
             "text": either(TEXT)},
            optional={"edit_date": either(ISO), "replaced_at": either(ISO), "entities": ANYTHING})),
            max_size=2)),
    })


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.fixed_dictionaries({"post_id": st.integers(1, 9),
                                    "sightings": st.lists(SIGHTING, max_size=2)}),
       posts=st.lists(POST | ANYTHING, max_size=4), ascii_only=st.booleans())
def test_any_jsonl_shaped_posts_import_or_are_refused_in_one_line(first, posts, ascii_only):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = folder / "posts.jsonl"
        write(path, "".join(json.dumps(p, ensure_ascii=ascii_only) + "\n" for p in [first, *posts]))
        assert_exit_0_or_one_line_on_stderr(folder, *run_import(folder, path))
