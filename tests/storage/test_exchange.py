"""Exchange: Telegram Desktop imports (real exports), our JSONL round trip, CSV, and bad files."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from storage.database import connect_sync
from storage.exchange import (
    ExchangeError,
    desktop_entities,
    detect_format,
    export_posts,
    import_file,
)
from storage.ingest import ingest_batch
from storage.records import Batch, ForwardHeader, Media
from storage.text import utf16_len
from tests.real_fixtures import real
from tests.storage.factories import (
    EMBASSY,
    EMBASSY_UK,
    MFA,
    PHOTO,
    STATEMENT,
    STATEMENT_RU,
    T0,
    batch,
    fwd,
    msg,
)

REAL = real("desktop_export")
TRANTOR = REAL / "trantor_library_TG101_result.json"
PACHUM = REAL / "pachumarchive_result.json"


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


def count(conn: sqlite3.Connection, sql: str) -> int:
    return conn.execute(sql).fetchone()[0]


def snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    tables = ["channels", "posts", "post_keys", "messages", "message_versions"]
    return {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in tables}


def export(conn: sqlite3.Connection, fmt: str = "jsonl", query: str | None = None) -> str:
    out = io.StringIO()
    export_posts(conn, query, fmt, out)
    return out.getvalue()


def utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le")
    return data[2 * offset: 2 * (offset + length)].decode("utf-16-le")


# --- Telegram Desktop exports, real ----------------------------------------------------------------


def test_a_desktop_import_reports_progress_in_messages_of_a_known_total(conn):
    heard: list[tuple[str, int, int | None]] = []
    import_file(conn, TRANTOR, progress=lambda label, done, total: heard.append((label, done, total)))
    assert heard[0] == ("川陀大学图书馆", 0, 908) and heard[-1] == ("川陀大学图书馆", 908, 908)
    done = [d for _, d, _ in heard]
    assert done == sorted(done) and len(set(done)) == len(done) > 2  # one step per batch of 500
    assert {(label, total) for label, _, total in heard} == {("川陀大学图书馆", 908)}


def test_real_trantor_export_counts_entities_edits_poll_and_signatures(conn):
    report = import_file(conn, TRANTOR)
    assert (report.format, report.channel) == ("desktop", "川陀大学图书馆")
    assert (report.messages, report.service_skipped, report.new) == (908, 16, 908)
    assert report.messages + report.service_skipped == 924
    assert count(conn, "SELECT count(*) FROM messages") == 908
    assert report.posts_new == count(conn, "SELECT count(*) FROM posts")
    channel = conn.execute("SELECT id, title, cursor FROM channels").fetchone()
    assert (channel["id"], channel["title"]) == (1878264527, "川陀大学图书馆")
    assert channel["cursor"] == count(conn, "SELECT max(message_id) FROM messages")
    assert count(conn, "SELECT count(*) FROM messages WHERE edit_date IS NOT NULL") == 880
    assert count(conn, "SELECT count(*) FROM messages WHERE post_author IS NOT NULL") == 513
    assert count(conn, "SELECT count(*) FROM messages WHERE reply_to IS NOT NULL") == 84
    poll = json.loads(conn.execute("SELECT media FROM messages WHERE message_id = 1010").fetchone()[0])
    assert poll["kind"] == "poll" and poll["extra"]["total_voters"] == 109
    assert poll["extra"]["answers"][0] == "有"
    author = conn.execute(
        "SELECT post_author, date, edit_date, raw FROM messages WHERE message_id = 6").fetchone()
    assert author["post_author"] == "Daneel God"
    assert author["date"] == "2023-07-17T16:49:32+00:00"  # from date_unixtime, not the local `date`
    assert author["edit_date"] == "2023-08-25T16:26:10+00:00"
    assert json.loads(author["raw"])["author"] == "Daneel God"
    audio = json.loads(conn.execute("SELECT media FROM messages WHERE message_id = 626").fetchone()[0])
    assert audio["kind"] == "audio" and audio["extra"]["performer"] == "坂本龍一"


def test_real_export_entities_are_utf16_offsets_of_their_text(conn):
    data = json.loads(TRANTOR.read_text(encoding="utf-8"))
    checked = 0
    seen_types: set[str] = set()
    for message in data["messages"]:
        text, entities = desktop_entities(message["text_entities"])
        parts = [p for p in message["text_entities"] if p["type"] != "plain" and p["text"]]
        assert len(entities) == len(parts)
        for entity, part in zip(entities, parts, strict=True):
            assert utf16_slice(text, entity["offset"], entity["length"]) == part["text"]
            if part.get("href"):
                assert entity["url"] == part["href"]
            seen_types.add(entity["type"])
            checked += 1
    assert checked > 9000
    assert {"hashtag", "text_url", "code", "bold", "blockquote", "url", "strike", "pre"} <= seen_types
    import_file(conn, TRANTOR)
    stored = conn.execute("SELECT text, entities FROM messages WHERE message_id = 6").fetchone()
    entities = json.loads(stored["entities"])
    assert entities[0] == {"type": "bold", "offset": 0, "length": 2}
    hashtags = [utf16_slice(stored["text"], e["offset"], e["length"])
                for e in entities if e["type"] == "hashtag"]
    assert hashtags[:3] == ["#随笔", "#收集", "#报道"]


def test_utf16_offsets_count_emoji_as_two_units():
    parts = [
        {"type": "plain", "text": "🇷🇺 Заявление "},
        {"type": "custom_emoji", "text": "📹", "document_id": "stickers/sticker.webp"},
        {"type": "plain", "text": " "},
        {"type": "text_link", "text": "ТВИЧ", "href": "https://example.org"},
        {"type": "blockquote", "text": "q", "collapsed": False},
        {"type": "plain", "text": ""},
    ]
    text, entities = desktop_entities(parts)
    assert text == "🇷🇺 Заявление 📹 ТВИЧq"
    assert utf16_len("🇷🇺") == 4
    assert entities == (
        {"type": "custom_emoji", "offset": 15, "length": 2},
        {"type": "text_url", "offset": 18, "length": 4, "url": "https://example.org"},
        {"type": "blockquote", "offset": 22, "length": 1},
    )
    for e in entities:
        assert utf16_slice(text, e["offset"], e["length"]) in ("📹", "ТВИЧ", "q")


def test_real_pachum_export_media_and_custom_emoji(conn):
    report = import_file(conn, PACHUM)
    # a photo and five videos posted in one second, only the photo with text: one album, one post
    assert (report.messages, report.posts_new, report.service_skipped) == (6, 1, 0)
    assert count(conn, "SELECT count(*) FROM posts") == 1
    row = conn.execute("SELECT text, entities, media FROM messages WHERE message_id = 3858").fetchone()
    assert row["text"].startswith("Очень странные дела")
    kinds = [e["type"] for e in json.loads(row["entities"])]
    assert kinds.count("custom_emoji") == 3 and kinds.count("text_url") == 3 and "hashtag" in kinds
    video = json.loads(conn.execute("SELECT media FROM messages WHERE message_id = 3859").fetchone()[0])
    assert video["kind"] == "video" and video["file_name"] == "1.mp4"
    assert video["extra"]["duration"] == 2956


def test_reimporting_a_real_export_changes_nothing(conn):
    import_file(conn, TRANTOR)
    before = snapshot(conn)
    again = import_file(conn, TRANTOR)
    assert (again.new, again.updated, again.unchanged, again.posts_new) == (0, 0, 908, 0)
    assert snapshot(conn) == before


# --- a ministry and an embassy, exported separately -----------------------------------------------

MFA_ID, EMB_ID = 5550001, 5550002


def desktop(name: str, channel_id: int, messages: list[dict]) -> dict:
    return {"name": name, "type": "public_channel", "id": channel_id, "messages": messages}


def dmsg(mid: int, text: str, unix: int, **extra: object) -> dict:
    return {"id": mid, "type": "message", "date": "2025-12-17T10:00:00", "date_unixtime": str(unix),
            "from": "x", "from_id": "channel1", "text": text,
            "text_entities": [{"type": "plain", "text": text}], **extra}


STATEMENTS = [
    "Заявление МИД России в связи с введением Канадой новых санкций против России",
    "Statement on the new sanctions announced by Canada against Russian companies today",
    "Комментарий официального представителя МИД по ситуации в Арктике",
]


def ministry_and_embassy(tmp_path: Path) -> tuple[Path, Path]:
    mfa = desktop("Ministry", MFA_ID, [
        {"id": 1, "type": "service", "date": "2025-12-01T00:00:00", "date_unixtime": "1764547200",
         "action": "create_channel", "text": "", "text_entities": []},
        *[dmsg(10 + i, t, 1765965600 + 60 * i) for i, t in enumerate(STATEMENTS)],
    ])
    embassy = desktop("Embassy", EMB_ID, [
        *[dmsg(500 + i, t, 1765966000 + 60 * i, forwarded_from="Ministry",
               forwarded_from_id=f"channel{MFA_ID}") for i, t in enumerate(STATEMENTS)],
        dmsg(600, "Консульский приём 20 декабря не проводится", 1765969000),
    ])
    paths = tmp_path / "mfa.json", tmp_path / "embassy.json"
    for path, data in zip(paths, (mfa, embassy), strict=True):
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return paths


@pytest.mark.parametrize("embassy_first", [False, True])
def test_ministry_and_embassy_exports_give_one_post_per_statement_in_either_order(conn, tmp_path,
                                                                                 embassy_first):
    mfa, embassy = ministry_and_embassy(tmp_path)
    for path in ([embassy, mfa] if embassy_first else [mfa, embassy]):
        import_file(conn, path)
    assert count(conn, "SELECT count(*) FROM messages") == 7
    assert count(conn, "SELECT count(*) FROM posts") == 4
    for i, statement in enumerate(STATEMENTS):
        post = conn.execute("SELECT * FROM posts WHERE text = ?", (statement,)).fetchone()
        assert (post["key"], post["origin_channel_id"], post["origin_message_id"]) == (
            f"tg:{MFA_ID}:{10 + i}", MFA_ID, 10 + i)
        rows = conn.execute("SELECT channel_id, message_id, relation, fwd_from_type, fwd_from_id, "
                            "fwd_channel_post FROM messages WHERE post_id = ? ORDER BY channel_id",
                            (post["id"],)).fetchall()
        assert [tuple(r) for r in rows] == [
            (MFA_ID, 10 + i, "original", None, None, None),
            (EMB_ID, 500 + i, "forward", "channel", MFA_ID, None),
        ]


def test_forward_from_a_user_and_from_a_hidden_sender(conn, tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(desktop("Embassy", EMB_ID, [
        dmsg(1, "a reader's photo from the rally", 1765965600, forwarded_from="Ivan",
             forwarded_from_id="user5678"),
        dmsg(2, "anonymous note", 1765965660, forwarded_from="Hidden Reader"),
    ])), encoding="utf-8")
    import_file(conn, path)
    rows = conn.execute("SELECT fwd_from_type, fwd_from_id, fwd_from_name FROM messages ORDER BY message_id")
    assert [tuple(r) for r in rows] == [("user", 5678, None), (None, None, "Hidden Reader")]
    titles = {r[0] for r in conn.execute("SELECT origin_title FROM posts")}
    assert titles == {"Ivan", "Hidden Reader"}


# --- our JSONL: round trip --------------------------------------------------------------------------


def build_archive(conn: sqlite3.Connection) -> None:
    """Every kind of thing the archive holds: forwards, copies, albums, edits, deletions."""
    ingest_batch(conn, batch(MFA, msg(MFA, 10, STATEMENT, views=100, post_author="Мария Захарова"),
                             msg(MFA, 11, STATEMENT_RU, minutes=1, entities=({"type": "hashtag",
                                 "offset": 76, "length": 4},))), now=T0)
    ingest_batch(conn, batch(
        EMBASSY, fwd(EMBASSY, 500, MFA, 10, STATEMENT, views=5, forwards=1),
        fwd(EMBASSY, 501, MFA, 11, STATEMENT_RU, origin_minutes=1),
        msg(EMBASSY, 502, "Консульский приём 20 декабря не проводится", minutes=30, reply_to=500),
        msg(EMBASSY, 600, "  " + STATEMENT.upper(), minutes=40),  # a copy
    ), now=T0 + timedelta(hours=1))
    hidden = ForwardHeader(from_name="Reader", date=T0)
    ingest_batch(conn, batch(EMBASSY_UK, fwd(EMBASSY_UK, 70, MFA, 12, "An unwatched origin"),
                             msg(EMBASSY_UK, 71, "Hidden", forward=hidden),
                             msg(EMBASSY_UK, 80, "", grouped_id=9, media=PHOTO),
                             msg(EMBASSY_UK, 81, "Album caption 🇷🇺", grouped_id=9, media=PHOTO)),
                 now=T0 + timedelta(hours=2))
    for hours, text in ((3, "Canada announced new restrictions"), (4, "Canada announced restrictions")):
        edited = msg(MFA, 10, text, edit_date=T0 + timedelta(hours=hours), views=150)
        ingest_batch(conn, batch(MFA, edited), now=T0 + timedelta(hours=hours, minutes=5))
    ingest_batch(conn, Batch(EMBASSY, deleted_ids=(502,), seen_at=T0 + timedelta(days=1)))


def test_jsonl_round_trip_is_identical_and_reimport_is_idempotent(conn, tmp_path):
    build_archive(conn)
    first = export(conn)
    path = tmp_path / "archive.jsonl"
    path.write_text(first, encoding="utf-8")
    assert detect_format(path) == "jsonl"
    fresh = connect_sync(":memory:")
    report = import_file(fresh, path)
    assert (report.format, report.messages, report.new) == ("jsonl", 10, 10)
    assert report.posts_new == count(conn, "SELECT count(*) FROM posts")
    assert export(fresh) == first
    cols = "channel_id, message_id, post_id, relation, date, edit_date, text, entities, views, forwards, " \
           "replies, reply_to, grouped_id, post_author, media, first_seen, deleted_at, raw"
    assert [tuple(r) for r in fresh.execute(f"SELECT {cols} FROM messages ORDER BY 1, 2")] == \
        [tuple(r) for r in conn.execute(f"SELECT {cols} FROM messages ORDER BY 1, 2")]
    versions = ("SELECT channel_id, message_id, edit_date, text, entities, replaced_at FROM message_versions"
                " ORDER BY channel_id, message_id, coalesce(edit_date, '')")
    assert [tuple(r) for r in fresh.execute(versions)] == [tuple(r) for r in conn.execute(versions)]
    before = snapshot(fresh)
    again = import_file(fresh, path)
    assert (again.new, again.updated, again.unchanged, again.posts_new) == (0, 0, 10, 0)
    assert snapshot(fresh) == before


def test_a_jsonl_import_reports_progress_in_posts_with_no_total(conn, tmp_path):
    build_archive(conn)
    path = tmp_path / "archive.jsonl"
    path.write_text(export(conn), encoding="utf-8")
    heard: list[tuple[str, int, int | None]] = []
    import_file(connect_sync(":memory:"), path,
                progress=lambda label, done, total: heard.append((label, done, total)))
    posts = count(conn, "SELECT count(*) FROM posts")
    assert heard[0] == ("archive.jsonl", 0, None) and heard[-1] == ("archive.jsonl", posts, None)
    assert [d for _, d, _ in heard] == sorted(d for _, d, _ in heard)


def test_jsonl_with_long_lines_is_recognised(conn, tmp_path):
    ingest_batch(conn, batch(MFA, msg(MFA, 1, "long " * 5000)))
    path = tmp_path / "long.jsonl"
    path.write_text(export(conn), encoding="utf-8")
    assert path.stat().st_size > 20000
    assert detect_format(path) == "jsonl"
    assert import_file(connect_sync(":memory:"), path).posts_new == 1


def test_jsonl_lines_carry_provenance_sightings_and_versions(conn):
    build_archive(conn)
    lines = [json.loads(line) for line in export(conn).splitlines()]
    statement = next(p for p in lines if p["key"] == "tg:1001:10")
    assert statement["text"] == "Canada announced restrictions"
    assert statement["origin"] == {
        "channel_id": 1001, "username": "MFARussia", "title": "Russian MFA 🇷🇺", "message_id": 10,
        "author": "Мария Захарова", "date": "2025-12-17T10:00:00+00:00",
        "url": "https://t.me/MFARussia/10",
    }
    assert [(s["username"], s["message_id"], s["relation"]) for s in statement["sightings"]] == [
        ("MFARussia", 10, "original"), ("rusembc", 500, "forward"), ("rusembc", 600, "copy"),
    ]
    assert [v["text"] for v in statement["versions"]] == [STATEMENT, "Canada announced new restrictions"]
    assert statement["sightings"][1]["text"] == STATEMENT  # the forward kept the first text
    assert statement["sightings"][1]["forward"]["channel_post"] == 10
    consular = next(p for p in lines if p["text"].startswith("Консульский"))
    assert consular["sightings"][0]["deleted_at"] == "2025-12-18T10:00:00+00:00"
    unwatched = next(p for p in lines if p["key"] == "tg:1001:12")
    assert unwatched["origin"]["username"] == "MFARussia"


def test_csv_has_a_header_and_one_row_per_post_with_flattened_sightings(conn):
    build_archive(conn)
    rows = list(csv.reader(io.StringIO(export(conn, "csv"))))
    assert rows[0][:3] == ["post_id", "date", "origin"]
    assert len(rows) - 1 == count(conn, "SELECT count(*) FROM posts")
    assert rows[0][-3:] == ["sightings_count", "sightings", "files"]
    statement = next(r for r in rows if r[-2].startswith("MFARussia/10 original"))
    assert statement[-2] == "MFARussia/10 original; rusembc/500 forward; rusembc/600 copy"
    assert statement[-3] == "3"
    assert statement[-1] == ""  # no files


def test_export_pages_through_many_posts(conn, monkeypatch):
    from storage.exchange import export as export_module

    monkeypatch.setattr(export_module, "EXPORT_PAGE", 3)
    ingest_batch(conn, batch(MFA, *[msg(MFA, i, f"post number {i}") for i in range(1, 11)]))
    ids = [json.loads(line)["post_id"] for line in export(conn).splitlines()]
    assert ids == list(range(1, 11))


# --- files that are not exports ----------------------------------------------------------------------


@pytest.mark.parametrize(("content", "fragment"), [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"hello, world", "not JSON"),
    (b"[1, 2, 3]", "a JSON list"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b'{"name": "x", "id": 1}', "without a 'messages' list"),
    (b'{"name": "x", "id": 1, "messages": [', "not valid JSON"),
    (b'{"name": "x", "type": "personal_chat", "id": 1, "messages": []}', "personal_chat"),
    (b'{"about": "", "chats": {"list": []}}', "whole-account export"),
    (b'{"post_id": 1, "sightings": []}\nnot json\n', "stopped at line 2: not JSON"),
    (b"\xff\xfe\xfa", "not UTF-8"),
])
def test_a_file_that_is_not_an_export_is_refused_in_one_line(conn, tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ExchangeError) as caught:
        import_file(conn, path)
    message = str(caught.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_a_missing_file_is_named(conn, tmp_path):
    with pytest.raises(ExchangeError, match="no such file"):
        import_file(conn, tmp_path / "nope.json")


def test_a_jsonl_round_trip_keeps_telegrams_file_ids_and_queues_them_again(conn, tmp_path):
    photo = Media(kind="photo", size=1000, mime_type="image/jpeg", file_id=-4_611_686_018_427_387_904,
                  dc_id=2)
    ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT, media=photo)))
    path = tmp_path / "archive.jsonl"
    path.write_text(export(conn), encoding="utf-8")
    assert '"file_id":-4611686018427387904' in path.read_text(encoding="utf-8").replace(" ", "")
    fresh = connect_sync(":memory:")
    import_file(fresh, path)
    media = "SELECT media FROM messages"
    assert fresh.execute(media).fetchone()[0] == conn.execute(media).fetchone()[0]
    assert [tuple(r) for r in fresh.execute("SELECT file_id, dc_id, state FROM tg_files")] == [
        (photo.file_id, 2, "queued")]
