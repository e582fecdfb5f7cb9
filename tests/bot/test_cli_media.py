"""`chanwatch media status` and `media verify` on a real archive and media store: counts by state,
and every stored file re-hashed against its name (a missing or altered file is exit 2)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from storage.database import connect_sync, run_in_transaction
from storage.ingest import ingest_batch
from storage.media_queue import mark_done, mark_skipped
from storage.media_store import MediaStore
from storage.records import Media
from tests.bot.conftest import run_cli as run
from tests.storage.factories import EMBASSY, MFA, STATEMENT, T0, batch, msg

PDF = b"%PDF-1.7 a signed note " * 400


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, Path]:
    """An archive with three queued files: one stored (a PDF), one skipped, one still queued."""
    db, media = tmp_path / "archive.db", tmp_path / "media"
    conn = connect_sync(db)
    files = [Media(kind="document", size=len(PDF), mime_type="application/pdf", file_name="note.pdf",
                   file_id=11, dc_id=2),
             Media(kind="video", size=90 * 2**20, mime_type="video/mp4", file_id=12, dc_id=2),
             Media(kind="photo", size=1000, mime_type="image/jpeg", file_id=13, dc_id=2)]
    for number, media_item in enumerate(files, 1):
        ingest_batch(conn, batch(MFA, msg(MFA, number, f"{STATEMENT} {number}", media=media_item)), now=T0)
    ingest_batch(conn, batch(EMBASSY, msg(EMBASSY, 50, "a forward's copy", media=files[0])), now=T0)
    store = MediaStore(media)
    with store.writer() as writer:
        writer.write(PDF)
        stored = writer.finish(expected_size=len(PDF), ext=".pdf")
    run_in_transaction(conn, mark_done, 11, stored.sha256, stored.size, "application/pdf", stored.relpath,
                       T0 + timedelta(minutes=1))
    run_in_transaction(conn, mark_skipped, 12, "kind video is not fetched (CHANWATCH_MEDIA)")
    conn.close()
    return db, media


def test_status_counts_files_by_state_and_the_bytes_stored(capsys, archive):
    db, media = archive
    code, out, _ = run(capsys, "--db", str(db), "media", "status", "--json")
    assert code == 0
    assert json.loads(out) == {"media dir": str(media), "queued": 1, "done": 1, "skipped": 1, "failed": 0,
                               "stored files": 1, "stored bytes": len(PDF)}
    code, out, _ = run(capsys, "--db", str(db), "media", "status")
    assert code == 0 and f"media store: {media}" in out and "stored bytes  " + f"{len(PDF):,}" in out


def test_verify_says_ok_when_every_file_hashes_to_its_name(capsys, archive):
    db, media = archive
    code, out, err = run(capsys, "--db", str(db), "media", "verify")
    assert (code, err) == (0, "") and out.strip() == f"ok: 1 stored file in {media} hash to their names"


def test_verify_names_an_altered_file_and_a_missing_one_and_exits_2(capsys, archive, tmp_path):
    db, media = archive
    [stored] = [p for p in media.rglob("*.pdf")]
    stored.write_bytes(PDF.replace(b"signed", b"forged"))  # same size, other bytes
    code, out, err = run(capsys, "--db", str(db), "media", "verify")
    assert code == 2 and out.split() == ["altered", str(stored.relative_to(media))]
    assert err.count("\n") == 1 and "1 of 1 stored file missing or altered" in err
    stored.unlink()
    code, out, _ = run(capsys, "--db", str(db), "media", "verify")
    assert code == 2 and out.split()[0] == "missing"


def test_the_media_dir_comes_from_the_env_file_and_a_wrong_one_is_one_line(capsys, archive, tmp_path,
                                                                           clean_env):
    db, media = archive
    env_file = tmp_path / "chanwatch.env"
    env_file.write_text(f"CHANWATCH_MEDIA_DIR={media}\n")
    moved = db.rename(tmp_path / "elsewhere.db")  # media/ is no longer beside it: the env file says where
    code, out, _ = run(capsys, "--db", str(moved), "--env-file", str(env_file), "media", "verify")
    assert code == 0 and str(media) in out
    code, _, err = run(capsys, "--db", str(moved), "media", "verify", "--media-dir", str(tmp_path / "none"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("chanwatch: CHANWATCH_MEDIA_DIR: no media store")
