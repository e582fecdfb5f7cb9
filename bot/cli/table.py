"""Aligned text tables for the terminal, drawn by rich (`rich.table.Table`) instead of by hand.

Every table of the CLI's text output goes through `table()`: rich measures the cells (wide and
combining characters included), wraps or clips the text columns to the width and draws the
header rule. It renders into a string through a `Console` with no colour and no terminal control
codes, so the same plain text reaches a terminal, a pipe and a `--out` file. Cells are printed as
they are (never read as rich markup): a channel named `[red]x` stays `[red]x`.

    lines = table(("channel", "posts"), [("MFARussia", 3)], width=output_width())
"""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Collection, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["DEFAULT_WIDTH", "INDENT", "output_width", "table"]

DEFAULT_WIDTH = 100
"""The width of text output that does not go to a terminal (a pipe, a file): what a reader's editor
and a mail body hold."""

INDENT = "  "
"""Tables sit under their section's title, indented by this."""


def output_width() -> int:
    """The terminal's width when standard output is a terminal, else `DEFAULT_WIDTH`."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, left: Collection[int] = (0,),
          wrap: Collection[int] = (), clip: Collection[int] = (), width: int = DEFAULT_WIDTH) -> list[str]:
    """The rows under their headers as indented lines no wider than `width`: the columns numbered in
    `left` (names, text) aligned left, the others (figures) right; the columns in `wrap` wrap onto
    more lines and those in `clip` are cut with '…' when the table would be wider than `width`
    (every other column keeps its full width). Trailing spaces are dropped."""
    cells = [tuple(str(c) for c in row) for row in rows]
    flexible = set(wrap) | set(clip)
    natural = [max(len(row[i]) for row in [tuple(headers), *cells]) for i in range(len(headers))]
    room = width - len(INDENT) - 3 * (len(headers) - 1)  # " │ " between columns
    limit: dict[int, int] = {}  # the flexible columns share what the others leave, narrowest first
    spare = room - sum(w for i, w in enumerate(natural) if i not in flexible)
    for n, i in enumerate(sorted(flexible, key=lambda i: natural[i])):
        limit[i] = max(8, min(natural[i], spare // (len(flexible) - n)))
        spare -= limit[i]
    grid = Table(box=box.MINIMAL, show_edge=False, pad_edge=False, expand=False)
    for i, header in enumerate(headers):
        grid.add_column(header, justify="left" if i in left else "right",
                        no_wrap=i not in wrap, overflow="ellipsis" if i in clip else "fold",
                        max_width=limit.get(i))
    for row in cells:
        grid.add_row(*(Text(c) for c in row))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width - len(INDENT), color_system=None, force_terminal=False,
                      no_color=True, highlight=False, emoji=False, markup=False, legacy_windows=False)
    console.print(grid)
    return [(INDENT + line).rstrip() for line in buffer.getvalue().splitlines()]
