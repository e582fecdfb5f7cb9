"""`bot.cli.table`: the CLI's tables fit the width they are given, print cells as they are, carry no
terminal codes, and follow the terminal's width when standard output is one."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from bot.cli.table import table
from storage.database import connect_sync
from tests.storage.test_reports import amplification_story

LONG = "Statement by the Foreign Ministry on the latest round of consultations " * 3


def test_a_table_fits_its_width_clipping_and_wrapping_the_text_columns():
    name = "a_channel_with_a_very_long_username_indeed"
    lines = table(("channel", "posts", "text"), [(name, 1234, LONG), ("short", 5, "brief")],
                  left=(0, 2), wrap=(0,), clip=(2,), width=60)
    assert max(len(line) for line in lines) <= 60
    assert lines[0].split("│")[1].strip() == "posts" and "1234" in lines[2]
    assert lines[2].endswith("…")  # the text clipped with an ellipsis, on one line
    wrapped = "".join(line.split("│")[0].strip() for line in lines[2:-1])
    assert wrapped == name  # the name folded over lines, no character lost
    assert lines[-1].split("│")[0].strip() == "short" and lines[-1].endswith("brief")


def test_cells_are_printed_as_they_are_without_markup_or_colour_codes(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    lines = table(("channel", "text"), [("[bold red]x[/]", ":smile: **y**")], left=(0, 1))
    assert "[bold red]x[/]" in lines[2] and ":smile: **y**" in lines[2]
    assert not any("\x1b" in line for line in lines)


def test_on_a_terminal_the_report_uses_the_terminals_width(tmp_path: Path):
    db = tmp_path / "archive.db"
    conn = connect_sync(db)
    amplification_story(conn)
    conn.close()

    def run(columns: int) -> list[str]:
        parent, child = pty.openpty()
        env = {**os.environ, "COLUMNS": str(columns), "LINES": "50"}
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(db), "report", "amplification"],
                                stdout=child, stderr=subprocess.PIPE, env=env)
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(parent)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        return b"".join(chunks).decode().replace("\r\n", "\n").splitlines()

    narrow, wide = run(80), run(160)
    assert max(len(line) for line in narrow) <= 80 < max(len(line) for line in wide) <= 160

    def statement(lines: list[str]) -> str:
        return next(line for line in lines if "│ Statement by" in line).rsplit("│", 1)[1]

    assert len(statement(wide)) > len(statement(narrow)) + 60  # the text column takes the room
