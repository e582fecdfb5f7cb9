"""`chanwatch serve --port 0` as a subprocess, for tests that need a real server (the CLI's, a browser's):
the address is read from its first line of output, so nothing waits on a timer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ADDRESS = re.compile(r"^chanwatch: serving .* read-only at (http://127\.0\.0\.1:\d+/)$")


@contextmanager
def served(db: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The server's address while it runs; stopped with SIGINT (Ctrl-C) afterwards, its exit checked."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CHANWATCH_", "TG_"))}
    process = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(db), "serve", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**environ, **(env or {})}, cwd=db.parent)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().rstrip("\n")
        found = ADDRESS.match(first)
        if found is None:
            process.kill()
            _, err = process.communicate(timeout=30)
            raise AssertionError(f"chanwatch serve did not start: {first!r} {err!r}")
        yield found.group(1)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                status = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError("chanwatch serve did not stop on Ctrl-C") from None
            assert status == 0, f"chanwatch serve exited {status} on Ctrl-C"
