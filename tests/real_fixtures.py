"""Where the real Telegram data lives: `tests/fixtures/real/`, copied from public repositories (its
SOURCES.md says from where). The repository carries it, so a lone clone runs every test."""

from __future__ import annotations

from pathlib import Path

REAL = Path(__file__).resolve().parent / "fixtures" / "real"


def real(folder: str) -> Path:
    """A folder of the real fixtures (`desktop_export`, `telethon_dicts`, `web_preview`)."""
    path = REAL / folder
    if not path.is_dir():
        raise FileNotFoundError(f"no real fixtures at {path}: the checkout is incomplete (git status)")
    return path
