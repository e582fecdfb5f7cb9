"""How long-running work reports how far it got, without drawing anything: `storage` calls a
`Progress`, and whoever shows it (the CLI's progress bars, a log line, nothing) decides how."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

Progress = Callable[[str, int, int | None], None]
"""`progress(label, done, total)`, called as work advances: `label` names the work (a channel, a
file), `done` counts the items finished so far (it never goes down for one label), `total` is how
many there are when that is known, else None. Called once with `done=0` before the first item."""
