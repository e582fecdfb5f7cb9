"""The content-addressed media store: files named by their SHA-256, written whole or not at all, and
checked again by `verify`."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.media_queue import mark_done
from storage.media_store import MediaStore, SizeMismatch, StoreProblem

PDF = b"%PDF-1.4 statement of the ministry\n" * 1000
NOW = datetime(2025, 12, 17, 10, 0, tzinfo=UTC)


def store_bytes(store: MediaStore, data: bytes, ext: str = "", chunk: int = 4096):
    with store.writer() as w:
        for start in range(0, len(data), chunk):
            w.write(data[start:start + chunk])
        return w.finish(expected_size=len(data), ext=ext)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_file_is_stored_under_its_sha256(tmp_path):
    store = MediaStore(tmp_path)
    stored = store_bytes(store, PDF, ".pdf")
    digest = hashlib.sha256(PDF).hexdigest()
    assert (stored.sha256, stored.size) == (digest, len(PDF))
    assert stored.relpath == f"{digest[:2]}/{digest[2:4]}/{digest}.pdf"
    assert store.path_of(digest, ".pdf").read_bytes() == PDF
    assert files_under(tmp_path) == [stored.relpath]  # nothing left in tmp/


def test_identical_bytes_are_stored_once(tmp_path):
    store = MediaStore(tmp_path)
    first = store_bytes(store, PDF, ".pdf")
    second = store_bytes(store, PDF, ".pdf", chunk=777)
    assert first == second
    assert files_under(tmp_path) == [first.relpath]


def test_an_odd_extension_is_dropped_from_the_name(tmp_path):
    stored = store_bytes(MediaStore(tmp_path), PDF, "/../../etc")
    assert stored.relpath.endswith(stored.sha256)


def test_a_failed_write_leaves_no_file(tmp_path):
    store = MediaStore(tmp_path)
    with pytest.raises(ConnectionError), store.writer() as w:
        w.write(PDF[:100])
        raise ConnectionError("download cut")
    assert files_under(tmp_path) == []


def test_a_short_download_is_refused_and_leaves_no_file(tmp_path):
    store = MediaStore(tmp_path)
    with pytest.raises(SizeMismatch, match="got 100 bytes, expected 35000"), store.writer() as w:
        w.write(PDF[:100])
        w.finish(expected_size=len(PDF))
    assert files_under(tmp_path) == []


def test_a_stored_file_cut_short_is_replaced_by_a_whole_one(tmp_path):
    store = MediaStore(tmp_path)
    stored = store_bytes(store, PDF)
    (tmp_path / stored.relpath).write_bytes(PDF[:10])
    store_bytes(store, PDF)
    assert (tmp_path / stored.relpath).read_bytes() == PDF


def test_a_temp_file_left_by_a_killed_writer_is_removed_at_the_next_open(tmp_path):
    script = (
        "import os, sys; from pathlib import Path; from storage.media_store import MediaStore\n"
        "cm = MediaStore(Path(sys.argv[1])).writer(); w = cm.__enter__()\n"
        "w.write(b'half a file'); w._file.flush()\n"
        "os._exit(9)  # dies mid-download: no cleanup runs\n"
    )
    assert subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False).returncode == 9
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    MediaStore(tmp_path)
    assert files_under(tmp_path) == []


def test_opening_the_store_leaves_a_live_download_alone(tmp_path):
    store = MediaStore(tmp_path)
    with store.writer() as w:
        w.write(PDF[:100])
        assert MediaStore(tmp_path).clean_temp() == 0  # another open while this one writes
        assert w.temp.exists()
        stored = w.finish()
    assert (tmp_path / stored.relpath).read_bytes() == PDF[:100]


@pytest.fixture
def conn(archive) -> sqlite3.Connection:
    return archive


def test_verify_finds_a_missing_and_an_altered_file(tmp_path, conn):
    store = MediaStore(tmp_path)
    kept, lost, changed = (store_bytes(store, data, ".jpg") for data in (b"kept", b"lost", b"changed"))
    for stored in (kept, lost, changed):
        conn.execute(
            "INSERT INTO media_files (sha256, size, mime_type, path, stored_at) VALUES (?, ?, ?, ?, ?)",
            (stored.sha256, stored.size, "image/jpeg", stored.relpath, "2025-12-17T10:00:00+00:00"),
        )
    assert store.verify(conn) == []
    (tmp_path / lost.relpath).unlink()
    (tmp_path / changed.relpath).write_bytes(b"chanGed")  # same size, other bytes
    assert sorted(store.verify(conn), key=lambda p: p.problem) == [
        StoreProblem(changed.sha256, changed.relpath, "altered"),
        StoreProblem(lost.sha256, lost.relpath, "missing"),
    ]


def test_mark_done_records_where_the_store_put_the_file(tmp_path, conn):
    store = MediaStore(tmp_path)
    stored = store_bytes(store, PDF, ".pdf")
    conn.execute("INSERT INTO channels (id) VALUES (1)")
    conn.execute("""INSERT INTO posts (key, date, first_seen) VALUES ('k', '2025', '2025')""")
    conn.execute("""INSERT INTO messages (channel_id, message_id, post_id, relation, date, first_seen)
                    VALUES (1, 1, 1, 'original', '2025', '2025')""")
    conn.execute("""INSERT INTO tg_files (file_id, kind, queued_at, channel_id, message_id)
                    VALUES (5, 'document', '2025', 1, 1)""")
    mark_done(conn, 5, stored.sha256, stored.size, "application/pdf", stored.relpath, NOW)
    assert store.verify(conn) == []
    assert conn.execute("SELECT path FROM media_files").fetchone()[0] == stored.relpath
