"""Where the real Telegram data lives: `fixtures/real/` of the project's shared folder, beside the
repository's root (see its SOURCES.md). Tests read it there rather than keep a copy of it."""

from __future__ import annotations

from pathlib import Path

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real"


def real(folder: str) -> Path:
    """A folder of the real fixtures; a clear error when the checkout does not sit beside `shared/`."""
    path = REAL / folder
    if not path.is_dir():
        raise FileNotFoundError(
            f"the real Telegram fixtures are not at {path}: clone the repository beside the project's "
            "shared/ folder (the tests read ../shared/fixtures/real)"
        )
    return path
