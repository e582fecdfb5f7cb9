"""`bot.cli.progress`: tqdm bars for a `storage.progress.Progress`, only for people at a terminal."""

from __future__ import annotations

import io

from bot.cli.progress import progress_bars


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_no_bars_for_a_pipe_or_when_not_wanted():
    with progress_bars(True, stream=io.StringIO()) as progress:
        assert progress is None
    with progress_bars(False, stream=Terminal()) as progress:
        assert progress is None


def test_one_bar_per_label_on_a_terminal_cleared_at_the_end():
    screen = Terminal()
    with progress_bars(True, unit="msg", stream=screen) as progress:
        assert progress is not None
        progress("Embassy", 0, 908)
        progress("Embassy", 500, 908)
        progress("archive.jsonl", 0, None)
        progress("archive.jsonl", 7, None)
        bars = dict(progress.bars)
        assert (bars["Embassy"].n, bars["Embassy"].total) == (500, 908)
        assert (bars["archive.jsonl"].n, bars["archive.jsonl"].total) == (7, None)
        shown = screen.getvalue()  # tqdm redraws at most every 0.1 s: the first draw of each is there
        assert "Embassy:   0%|" in shown and "0/908" in shown and "archive.jsonl: 0 msg" in shown
    assert progress.bars == {} and all(bar.disable for bar in bars.values())  # closed
