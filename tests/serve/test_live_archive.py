"""The served archive is read-only and live: serving never changes the file, and what a writer (the
daemon) adds meanwhile shows up on the next request."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx

from bot.serve.app import build
from storage.database import connect_sync
from storage.ingest import ingest_batch
from tests.serve.archive import build_archive
from tests.storage.factories import MFA, T0, batch, msg


async def test_serving_never_writes_and_sees_what_a_writer_adds_meanwhile(tmp_path):
    db = build_archive(tmp_path / "archive.db", tmp_path / "media")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    app = build(db, media_dir=tmp_path / "media").app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        for url in ("/", "/-/chanwatch/search?q=sanctions", "/-/chanwatch/post/2", "/-/chanwatch/reports",
                    "/archive/messages.json", "/archive/forwards_by_origin?channel=rusembc"):
            assert (await c.get(url)).status_code == 200, url
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
        assert "Gletscher" not in (await c.get("/-/chanwatch/search?q=gletscher")).text
        writer = connect_sync(db)  # the daemon, writing while the server runs
        ingest_batch(writer, batch(MFA, msg(MFA, 90, "Gletscher im Sommer", minutes=9000)),
                     T0 + timedelta(days=7))
        found = await c.get("/-/chanwatch/search?q=gletscher")
        writer.close()
    assert "<mark>Gletscher</mark> im Sommer" in found.text
