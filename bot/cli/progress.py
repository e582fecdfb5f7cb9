"""Progress bars for people: a `storage.progress.Progress` that draws one tqdm bar per label on
stderr, only when stderr is a terminal and `--no-progress` was not given.

    with progress_bars(not args.no_progress, unit="msg") as progress:
        import_file(conn, path, progress=progress)      # progress is None: no bars at all
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

from storage.progress import Progress

__all__ = ["TqdmBars", "progress_bars"]


class TqdmBars:
    """A `Progress` drawing one tqdm bar per label (rate and, with a total, ETA); `close` ends them."""

    def __init__(self, stream: TextIO, unit: str = "it") -> None:
        self.stream = stream
        self.unit = unit
        self.bars: dict[str, tqdm] = {}

    def __call__(self, label: str, done: int, total: int | None) -> None:
        """Move `label`'s bar to `done` of `total` (a new label gets a new bar)."""
        bar = self.bars.get(label)
        if bar is None:
            bar = self.bars[label] = tqdm(total=total, desc=label, unit=f" {self.unit}", leave=False,
                                          file=self.stream, dynamic_ncols=True)
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        """Remove every bar from the terminal."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


@contextmanager
def progress_bars(wanted: bool = True, *, unit: str = "it",
                  stream: TextIO | None = None) -> Iterator[Progress | None]:
    """Bars on `stream` (stderr) while the block runs, or None when they are not wanted or the
    stream is not a terminal (a pipe, a log file, a test)."""
    stream = stream or sys.stderr
    if not (wanted and stream.isatty()):
        yield None
        return
    bars = TqdmBars(stream, unit)
    try:
        yield bars
    finally:
        bars.close()
