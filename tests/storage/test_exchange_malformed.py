"""Imports that never crash: a malformed message is skipped and named, a file that is not an export is
refused before anything is written, and a directory says it is one."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from storage.database import connect_sync
from storage.exchange import ExchangeError, detect_format, export_posts, import_file

CHANNEL = 5550001


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


def dmsg(mid: Any, text: str = "", **extra: Any) -> dict[str, Any]:
    """A message as Telegram Desktop writes it; `extra` adds or (with None) removes fields."""
    text = text or f"statement number {mid}"
    message = {"id": mid, "type": "message", "date": "2025-12-17T10:00:00", "date_unixtime": "1765965600",
               "from": "Ministry", "from_id": f"channel{CHANNEL}", "text": text,
               "text_entities": [{"type": "plain", "text": text}]}
    message.update(extra)
    return {k: v for k, v in message.items() if v is not None}


def export(path: Path, messages: list[Any], **header: Any) -> Path:
    data = {"name": "Ministry", "type": "public_channel", "id": CHANNEL, **header, "messages": messages}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- a malformed message is skipped and named ---------------------------------------------------------

BAD_MESSAGES = [  # what users met, then what else a field check must catch
    ({"text_entities": [{"type": "bold"}, 5]}, "text_entities[1]: a number 5, expected an object"),
    ({"text": [{"type": "bold", "text": ["x"]}], "text_entities": None},
     "text[0].text: a list ['x'], expected text"),
    ({"poll": {"answers": [1, 2]}}, "poll.answers[0]: a number 1, expected an object"),
    ({"forwarded_from": 123}, "forwarded_from: a number 123, expected text"),
    ({"id": 2**70}, "id: 1180591620717411303424 is out of range"),
    ({"id": "7"}, "id: text '7', expected a whole number"),
    ({"date_unixtime": "yesterday"}, "date_unixtime: text 'yesterday', expected seconds since 1970"),
    ({"date_unixtime": str(10**15)}, "date_unixtime: 1000000000000000 is out of range"),
    ({"date_unixtime": None, "date": None}, "date: missing"),
    ({"author": {"name": "x"}}, "author: an object {'name': 'x'}, expected text"),
    ({"reply_to_message_id": 2**64}, "reply_to_message_id: 18446744073709551616 is out of range"),
    ({"forwarded_from": "x", "forwarded_from_id": "channel" + "9" * 30}, "forwarded_from_id: 9999"),
    ({"text_entities": {"type": "bold"}}, "text_entities: an object {'type': 'bold'}, expected a list"),
    ({"media_type": ["video_file"], "file": "a.mp4"}, "media_type: a list ['video_file'], expected text"),
    ({"text_entities": [{"type": "text_link", "text": "x", "href": 5}]}, "text_entities[0].href: a number 5"),
]


@pytest.mark.parametrize(("fields", "named"), BAD_MESSAGES, ids=[f for _, f in BAD_MESSAGES])
def test_a_malformed_message_is_skipped_and_named_by_its_field(conn, tmp_path, fields, named):
    path = export(tmp_path / "result.json", [dmsg(1), dmsg(2, **fields), dmsg(3)])
    report = import_file(conn, path)
    assert (report.messages, report.new, report.malformed) == (2, 2, 1)
    assert len(report.malformed_shown) == 1 and named in report.malformed_shown[0]
    who = "messages[1]" if "id" in fields else "message 2"
    assert report.malformed_shown[0].startswith(f"{who} (")
    assert [r[0] for r in conn.execute("SELECT message_id FROM messages ORDER BY 1")] == [1, 3]


def test_an_element_of_messages_that_is_not_an_object_is_skipped_by_position(conn, tmp_path):
    report = import_file(conn, export(tmp_path / "result.json", [dmsg(1), 5, [dmsg(2)], dmsg(3)]))
    assert (report.messages, report.malformed) == (2, 2)
    assert report.malformed_shown == [
        "messages[1] (a number 5, not a message object)",
        "messages[2] (a list [{'id': 2, 'type': 'message',…, not a message object)"]


def test_the_summary_line_counts_the_skipped_messages_and_names_the_first_three(capsys, tmp_path):
    bad = [dmsg(i, text_entities=[5]) for i in range(10, 15)]
    path = export(tmp_path / "result.json", [dmsg(1), *bad, dmsg(2, poll={"answers": [1]})])
    code = main(["--db", str(tmp_path / "a.db"), "import", "--no-progress", str(path)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out.strip() == (
        f"{path}: desktop export of Ministry: 1 message (1 new, 0 updated, 0 unchanged), 1 new post; "
        "6 malformed messages skipped: message 10 (text_entities[0]: a number 5, expected an object); "
        "message 11 (text_entities[0]: a number 5, expected an object); "
        "message 12 (text_entities[0]: a number 5, expected an object); and 3 more")


def test_a_message_id_of_5000_digits_is_skipped_not_a_crash(tmp_path):
    """ijson's C backend kills the interpreter (SIGSEGV) on an integer past Python's 4,300-digit limit;
    the import lifts the limit while it reads. In a child process, so a crash fails only this test."""
    path = tmp_path / "result.json"
    text = json.dumps({"name": "M", "type": "public_channel", "id": CHANNEL, "messages": [dmsg(1), dmsg(2)]})
    path.write_text(text.replace('"id": 2,', '"id": ' + "9" * 5000 + ","), encoding="utf-8")
    argv = ["--db", str(tmp_path / "a.db"), "import", "--no-progress", str(path)]
    done = subprocess.run([sys.executable, "-m", "bot", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 message (1 new" in done.stdout
    assert "1 malformed message skipped: messages[1] (id: a 5000-digit number is out of range" in done.stdout


def test_a_location_keeps_its_numbers_as_json_numbers(conn, tmp_path):
    place = {"latitude": 55.7558, "longitude": 37.6173}
    import_file(conn, export(tmp_path / "result.json", [dmsg(1, location_information=place)]))
    raw, media = conn.execute("SELECT raw, media FROM messages").fetchone()
    assert json.loads(raw)["location_information"] == place  # floats, not Decimal text
    assert json.loads(media)["extra"] == {"lat": 55.7558, "long": 37.6173}


def test_a_malformed_message_in_a_batch_does_not_lose_the_others(conn, tmp_path):
    messages = [dmsg(i) for i in range(1, 1201)]
    messages[700]["text_entities"] = [{"type": "bold", "text": 5}]
    report = import_file(conn, export(tmp_path / "result.json", messages))
    assert (report.messages, report.malformed, count(conn, "messages")) == (1199, 1, 1199)
    assert report.malformed_shown == ["message 701 (text_entities[0].text: a number 5, expected text)"]


# --- the top level: refused before anything is written ---------------------------------------------------


@pytest.mark.parametrize(("header", "fragment"), [
    ({"id": 2**70}, "the channel 'id' 1180591620717411303424 is out of range"),
    ({"id": "5550001"}, "no numeric channel 'id'"),
    ({"id": True}, "no numeric channel 'id'"),
    ({"name": {"first": "x"}}, "the channel's 'name' is not text"),
    ({"name": 5}, "the channel's 'name' is not text"),
    ({"type": "bot_chat"}, "an export of a bot_chat, not of a channel"),
    ({"type": ["x"]}, "an export of a 'type' a list, not of a channel"),
    ({"type": 5}, "an export of a 'type' a number 5, not of a channel"),
])
def test_a_header_that_is_not_a_channel_export_is_refused_before_writing(conn, tmp_path, header, fragment):
    path = export(tmp_path / "result.json", [dmsg(1)], **header)
    with pytest.raises(ExchangeError) as caught:
        import_file(conn, path)
    assert fragment in str(caught.value) and str(path) in str(caught.value)
    assert count(conn, "channels") == count(conn, "messages") == 0


@pytest.mark.parametrize(("body", "fragment"), [
    (b'{"name": "M", "id": 1, "messages": {"1": {}}}', "without a 'messages' list"),
    (b'{"name": "M", "id": 1, "messages": [' + b"[" * 10**5 + b"]" * 10**5 + b"]}", "nested more than 64"),
    (b'{"name": "M", "id": 1, "messages": []} trailing', "not valid JSON (parse error: trailing garbage)"),
    (b'{"name": "M", "id": 1, "messages": [{"id": 1, "text": "\xff"}]}', "not UTF-8 text"),
    (b'"just a string"', "not JSON"),
])
def test_a_file_that_is_not_an_export_is_refused_before_writing(conn, tmp_path, body, fragment):
    path = tmp_path / "result.json"
    path.write_bytes(b"{\n" + body[1:] if body.startswith(b"{") else body)
    with pytest.raises(ExchangeError) as caught:
        import_file(conn, path)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert count(conn, "channels") == count(conn, "messages") == 0


def test_a_file_cut_short_after_many_messages_is_refused_before_any_is_written(conn, tmp_path):
    text = export(tmp_path / "result.json", [dmsg(i) for i in range(1, 1501)]).read_text(encoding="utf-8")
    (tmp_path / "result.json").write_text(text[: len(text) * 2 // 3], encoding="utf-8")
    with pytest.raises(ExchangeError, match="the file ends too early"):
        import_file(conn, tmp_path / "result.json")
    assert count(conn, "messages") == 0


def test_header_keys_after_messages_are_read_too(conn, tmp_path):
    path = tmp_path / "result.json"
    data = {"messages": [dmsg(1), dmsg(2)], "id": CHANNEL, "type": "public_channel", "name": "Late header"}
    path.write_text(json.dumps(data), encoding="utf-8")
    report = import_file(conn, path)
    assert (report.format, report.channel, report.messages) == ("desktop", "Late header", 2)
    assert conn.execute("SELECT id, title FROM channels").fetchone()[:] == (CHANNEL, "Late header")


def test_a_one_line_export_with_a_byte_order_mark_imports(conn, tmp_path):
    path = tmp_path / "result.json"
    data = {"name": "M", "type": "public_channel", "id": CHANNEL, "messages": [dmsg(1)]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())
    assert detect_format(path) == "desktop"
    assert import_file(conn, path).messages == 1


def test_a_desktop_import_never_holds_the_whole_file(conn, tmp_path):
    """20,000 service messages of 1 KB each (skipped, so no ingest) and one message: json.load would
    hold the 20 MB file as objects; the streamed import holds one batch."""
    import tracemalloc

    filler = {"type": "service", "date": "2025-12-17T10:00:00", "action": "pin_message", "text": "ж" * 500}
    path = export(tmp_path / "result.json", [*({"id": i, **filler} for i in range(2, 20_002)), dmsg(1)])
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        report = import_file(conn, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (report.messages, report.service_skipped) == (1, 20_000)
    assert peak < size / 10, f"peak {peak:,} bytes for a {size:,}-byte file"


# --- directories and other paths ----------------------------------------------------------------------


def test_a_directory_with_a_result_json_is_named_not_called_missing(conn, tmp_path):
    folder = tmp_path / "ChatExport_2025-12-17"
    export(folder.mkdir() or folder / "result.json", [dmsg(1)])
    with pytest.raises(ExchangeError) as caught:
        import_file(conn, folder)
    inside = folder / "result.json"
    assert str(caught.value) == f"{folder}: is a directory; give the result.json inside it: {inside}"


def test_a_directory_without_a_result_json_says_it_is_a_directory(capsys, tmp_path):
    code = main(["--db", str(tmp_path / "a.db"), "import", "--no-progress", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2 and "no such file" not in err
    assert err == (f"chanwatch: {tmp_path}: is a directory; give the result.json of a Telegram Desktop "
                   "export (or a chanwatch JSONL export), not its folder\n")


# --- our JSONL: a post with a bad field is skipped and named ----------------------------------------------


def jsonl_post(post_id: int, message_id: int, **sighting: Any) -> dict[str, Any]:
    s = {"channel_id": CHANNEL, "username": "mfa", "title": "Ministry", "message_id": message_id,
         "date": "2025-12-17T10:00:00+00:00", "relation": "original",
         "first_seen": "2025-12-17T10:01:00+00:00", "raw": None, **sighting}
    return {"post_id": post_id, "key": f"tg:{CHANNEL}:{message_id}", "text": f"post number {message_id}",
            "entities": [], "date": s["date"], "first_seen": s["first_seen"], "edited_at": None,
            "origin": {"channel_id": CHANNEL, "username": "mfa"}, "sightings": [s], "versions": []}


@pytest.mark.parametrize(("change", "named"), [
    ({"date": "yesterday"}, "sightings[0].date: 'yesterday' is not an ISO date"),
    ({"channel_id": 2**70}, "sightings[0].channel_id: 1180591620717411303424 is out of range"),
    ({"media": {"kind": 5}}, "sightings[0].media.kind: a number 5, expected text"),
    ({"media": {"kind": "photo", "colour": "red"}}, "sightings[0].media.colour: not a media field"),
    ({"entities": [5]}, "sightings[0].entities[0]: a number 5, expected an object"),
    ({"entities": [{"type": "bold", "offset": -1, "length": 2}]}, "sightings[0].entities[0].offset: -1"),
    ({"forward": 5}, "sightings[0].forward: a number 5, expected an object"),
    ({"views": "many"}, "sightings[0].views: text 'many', expected a whole number"),
    ({"text": "bad \ud800 text"}, "sightings[0].text: text with a lone surrogate"),
])
def test_a_jsonl_post_with_a_bad_field_is_skipped_and_named(conn, tmp_path, change, named):
    path = tmp_path / "posts.jsonl"
    posts = [jsonl_post(1, 1), jsonl_post(2, 2, **change), jsonl_post(3, 3)]
    path.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    report = import_file(conn, path)
    assert (report.messages, report.malformed) == (2, 1)
    assert report.malformed_shown[0].startswith(f"post 2 (line 2) ({named}")
    assert [r[0] for r in conn.execute("SELECT message_id FROM messages ORDER BY 1")] == [1, 3]


def test_a_jsonl_version_with_a_bad_text_is_named_by_its_place(conn, tmp_path):
    post = jsonl_post(1, 1)
    post["versions"] = [{"channel_id": CHANNEL, "message_id": 1, "text": 5, "edit_date": None,
                         "replaced_at": "2025-12-18T00:00:00+00:00"}]
    (tmp_path / "posts.jsonl").write_text(json.dumps(post) + "\n", encoding="utf-8")
    report = import_file(conn, tmp_path / "posts.jsonl")
    assert report.malformed_shown == ["post 1 (line 1) (versions[0].text: a number 5, expected text)"]


def test_an_exported_archive_still_round_trips_after_the_checks(conn, tmp_path):
    path = export(tmp_path / "result.json", [dmsg(i, location_information={"latitude": 1.5, "longitude": 2})
                                             for i in range(1, 4)])
    import_file(conn, path)
    with (tmp_path / "all.jsonl").open("w", encoding="utf-8") as out:
        export_posts(conn, None, "jsonl", out)
    fresh = connect_sync(":memory:")
    report = import_file(fresh, tmp_path / "all.jsonl")
    assert (report.messages, report.new, report.malformed) == (3, 3, 0)
