"""Media in `search --json` and `export` (each post's files, with their place in the store),
`export --with-media DIR` (the stored files copied beside the export), and `media fetch` (a skipped
file downloaded on demand through the reading account, against the simulator)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from bot.cli.media import fetch_files
from bot.config import Settings
from bot.media import Downloader, MediaPolicy
from bot.simulator import attach
from storage.database import connect_sync
from storage.exchange import import_file
from storage.media_store import MediaStore
from tests.bot.conftest import API_HASH, FakeSleep, rows, saved_session
from tests.bot.test_cli_media import PDF, archive, run  # noqa: F401  (archive is a fixture)
from tests.bot.test_media_download import blob, poll

PDF_SHA = hashlib.sha256(PDF).hexdigest()


def test_search_json_lists_each_posts_files_with_their_state_and_stored_path(capsys, archive):  # noqa: F811
    db, _ = archive
    code, out, _ = run(capsys, "--db", str(db), "search", "Lavrov", "--json")
    assert code == 0
    files = {json.loads(line)["text"][-1]: json.loads(line)["files"] for line in out.splitlines()}
    assert files["1"] == [{"sha256": PDF_SHA, "size": len(PDF), "mime_type": "application/pdf",
                           "path": f"{PDF_SHA[:2]}/{PDF_SHA[2:4]}/{PDF_SHA}.pdf", "kind": "document",
                           "state": "done"}]
    assert files["2"] == [{"sha256": None, "size": 90 * 2**20, "mime_type": "video/mp4", "path": None,
                           "kind": "video", "state": "skipped"}]
    assert files["3"][0]["state"] == "queued" and files["3"][0]["path"] is None


def test_export_jsonl_and_csv_carry_the_files_and_the_jsonl_imports_back(capsys, archive, tmp_path):  # noqa: F811
    db, _ = archive
    out = tmp_path / "out.jsonl"
    assert run(capsys, "--db", str(db), "export", "--out", str(out))[0] == 0
    posts = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [[f["state"] for f in p["files"]] for p in posts] == [["done"], ["skipped"], ["queued"], ["done"]]
    assert posts[3]["files"] == posts[0]["files"]  # the embassy's copy carries the same stored PDF
    code, text, _ = run(capsys, "--db", str(db), "export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["files"] for r in table][:2] == [f"document done {PDF_SHA[:2]}/{PDF_SHA[2:4]}/{PDF_SHA}.pdf",
                                               "video skipped"]
    fresh = connect_sync(":memory:")
    report = import_file(fresh, out)
    assert (report.posts_new, report.malformed) == (4, 0)
    assert sorted(r[0] for r in fresh.execute("SELECT state FROM tg_files")) == ["queued"] * 3


def test_export_with_media_copies_the_stored_files_so_the_export_stands_alone(capsys, archive, tmp_path):  # noqa: F811
    db, media = archive
    out, dest = tmp_path / "out.jsonl", tmp_path / "bundle"
    code, _, err = run(capsys, "--db", str(db), "export", "--out", str(out), "--with-media", str(dest),
                       "--media-dir", str(media))
    assert code == 0 and "copied 1 of 1 media file" in err
    for post in map(json.loads, out.read_text(encoding="utf-8").splitlines()):
        for f in post["files"]:
            if f["path"]:
                assert hashlib.sha256((dest / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()] == [
        f"{PDF_SHA[:2]}/{PDF_SHA[2:4]}/{PDF_SHA}.pdf"]


def test_export_with_media_counts_a_file_missing_from_the_store_in_one_line_and_exits_2(
        capsys, archive, tmp_path):  # noqa: F811
    db, media = archive
    next(media.rglob("*.pdf")).unlink()
    out, dest = tmp_path / "out.jsonl", tmp_path / "bundle"
    code, _, err = run(capsys, "--db", str(db), "export", "--out", str(out), "--with-media", str(dest))
    assert code == 2
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4  # the export itself is complete
    missing = [line for line in err.splitlines() if "missing" in line]
    assert len(missing) == 1 and missing[0].startswith("chanwatch: 1 media file missing")
    assert "Traceback" not in err


# --- media fetch ------------------------------------------------------------------------------------


@pytest.fixture
def _clean(clean_env):
    return clean_env


async def test_media_fetch_downloads_a_file_the_policy_skipped_and_prints_one_line_per_file(
        _clean, world, reader, reader_account, db, tmp_path, capsys):
    ch = world.add_channel("files", "Files")
    video = blob(200_000, seed=3)
    world.post(ch, "a clip", media=world.document(video, mime_type="video/mp4", file_name="clip.mp4"))
    world.post(ch, "a picture", media=world.photo(blob(5_000, seed=4)))
    await poll(world, reader, db, ch)
    media = tmp_path / "media"
    skipping = Downloader(db, reader, MediaStore(media), MediaPolicy(kinds=frozenset({"photo"})),
                          sleep=FakeSleep())
    assert (await skipping.run_once()).skipped == 1
    [(post_id,)] = rows(db.path, "SELECT post_id FROM messages WHERE text = 'a clip'")
    settings = Settings(db_path=Path(db.path), api_id=1, api_hash=API_HASH,
                        session=await saved_session(world, reader_account))
    out = io.StringIO()

    status = await fetch_files(settings, media, post=post_id, out=out,
                               prepare=lambda client, kind: attach(world, client))

    assert status == 0
    sha = hashlib.sha256(video).hexdigest()
    assert out.getvalue().splitlines() == [
        f"file {rows(db.path, 'SELECT file_id FROM tg_files WHERE kind = ?', 'document')[0][0]} (document): "
        f"stored {sha[:2]}/{sha[2:4]}/{sha}.mp4 ({len(video):,} bytes)"]
    assert (media / sha[:2] / sha[2:4] / f"{sha}.mp4").read_bytes() == video


async def test_media_fetch_of_a_file_no_message_carries_any_more_says_failed_and_exits_2(
        _clean, world, reader, reader_account, db, tmp_path):
    ch = world.add_channel("files", "Files")
    world.post(ch, "a clip", media=world.document(blob(1000), mime_type="video/mp4", file_name="c.mp4"))
    await poll(world, reader, db, ch)
    [(file_id,)] = rows(db.path, "SELECT file_id FROM tg_files")
    world.delete(ch, 1)
    settings = Settings(db_path=Path(db.path), api_id=1, api_hash=API_HASH,
                        session=await saved_session(world, reader_account))
    out = io.StringIO()

    status = await fetch_files(settings, tmp_path / "media", file_id=file_id, out=out,
                               prepare=lambda client, kind: attach(world, client))

    assert status == 2
    assert out.getvalue().startswith(f"file {file_id} (document): failed: no message carries the file")


def test_media_fetch_of_a_post_without_files_is_one_line_and_exit_2(capsys, archive, _clean):  # noqa: F811
    db, _ = archive
    code, out, err = run(capsys, "--db", str(db), "media", "fetch", "--post", "999")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "post 999 carries no files" in err
