"""How long work reports its progress without drawing anything: a callback the caller fills.

`storage` and the daemon's long jobs (import, backfill) call `progress(label, done, total)` as they
advance; the CLI turns it into a tqdm bar on a terminal, tests record it, other callers pass None.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

Progress = Callable[[str, int, int | None], None]
"""`progress(label, done, total)`: `done` items of `label` so far (never less than before), out of
`total` when it is known."""
