"""A served archive of known content (tests/serve/archive.py), driven in-process through httpx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.serve.app import build
from tests.serve.archive import build_archive

TOKEN = "t0ken-for-the-tests-0123456789"


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("served")
    media = root / "media"
    return build_archive(root / "archive.db", media), media


def _client(archive: tuple[Path, Path], token: str | None) -> httpx.AsyncClient:
    path, media = archive
    app = build(path, media_dir=media, token=token).app()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@pytest.fixture
async def client(archive):
    async with _client(archive, None) as c:
        yield c


@pytest.fixture
async def guarded(archive):
    async with _client(archive, TOKEN) as c:
        yield c
