"""The content-addressed media store: downloaded files under one root, named by their SHA-256.

A file lives at `ab/cd/<sha256><ext>` (the first two byte pairs of its hash as folders), so identical
bytes are stored once, however many Telegram files or messages carry them. A download streams into a
temporary file in `tmp/` while it is hashed and counted; only `finish` — size checked, data fsynced —
renames it into place, and only then may the queue call it done (`storage.media_queue.mark_done`).
So a crash leaves at most a temporary file, never a half file under a hash name. Each writer holds an
exclusive `flock` on its temporary file while it writes; `clean_temp` (run when a store opens) removes
the temporary files nobody holds — left by a crash — and leaves another process's live download alone.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHUNK", "MediaStore", "SizeMismatch", "StoredFile", "StoreProblem", "Writer"]

CHUNK = 1 << 20  # bytes read at a time when verifying: memory stays bounded whatever the file size
_EXT = re.compile(r"\.[A-Za-z0-9]{1,10}")
_SUFFIX = ".part"


class SizeMismatch(ValueError):
    """The bytes written are not as many as Telegram said the file holds: a cut-short download."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file renamed into the store: its hash, size and path relative to the store's root."""

    sha256: str
    size: int
    relpath: str


@dataclass(frozen=True, slots=True)
class StoreProblem:
    """A stored file `verify` found wrong: `missing`, or `altered` (its bytes no longer hash to its name)."""

    sha256: str
    path: str
    problem: str


class Writer:
    """One download in progress: `write` chunks, then `finish`. Made by `MediaStore.writer`."""

    def __init__(self, store: MediaStore) -> None:
        self._store = store
        self.temp = store.root / "tmp" / f"{uuid.uuid4().hex}{_SUFFIX}"
        self._file = open(self.temp, "xb")  # noqa: SIM115 - closed by finish or discard
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._hash = hashlib.sha256()
        self.size = 0
        self.result: StoredFile | None = None

    def write(self, chunk: bytes) -> None:
        """Append a chunk, hashing and counting it."""
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self, expected_size: int | None = None, ext: str = "") -> StoredFile:
        """Check the size, fsync, and move the file to its content address (`ext`, e.g. `.pdf`, ends its
        name; anything but a dot and up to 10 letters or digits is dropped). If that content is stored
        already, the temporary file is dropped: same bytes (a stored file of another size, cut short
        or damaged, is replaced)."""
        if expected_size is not None and self.size != expected_size:
            raise SizeMismatch(f"got {self.size} bytes, expected {expected_size}")
        self._file.flush()
        os.fsync(self._file.fileno())
        sha256 = self._hash.hexdigest()
        relpath = self._store.relpath(sha256, ext)
        target = self._store.root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_file() and target.stat().st_size == self.size:
            self.discard()
        else:
            os.replace(self.temp, target)
            self._file.close()
            _fsync_dir(target.parent)
        self.result = StoredFile(sha256, self.size, relpath)
        return self.result

    def discard(self) -> None:
        """Remove the temporary file (a failed or abandoned download)."""
        self._file.close()
        self.temp.unlink(missing_ok=True)


class MediaStore:
    """The media directory. Opening it removes temporary files that crashed downloads left."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self.clean_temp()

    @staticmethod
    def relpath(sha256: str, ext: str = "") -> str:
        """`ab/cd/<sha256><ext>`, relative to the root."""
        suffix = ext if _EXT.fullmatch(ext or "") else ""
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix.lower()}"

    def path_of(self, sha256: str, ext: str = "") -> Path:
        """Where the content with this hash (and extension) lives."""
        return self.root / self.relpath(sha256, ext)

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """A `Writer` whose temporary file is removed unless `finish` completed, on any exception too."""
        w = Writer(self)
        try:
            yield w
        finally:
            if w.result is None:
                w.discard()

    def clean_temp(self) -> int:
        """Remove temporary files no live writer holds (a `flock` ends with its process); how many."""
        removed = 0
        for temp in (self.root / "tmp").glob(f"*{_SUFFIX}"):
            try:
                with open(temp, "rb") as f:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    temp.unlink()
                    removed += 1
            except (BlockingIOError, FileNotFoundError):
                continue  # being written now, or gone already
        return removed

    def verify(self, conn: sqlite3.Connection) -> list[StoreProblem]:
        """`verify(self.root, conn)`."""
        return verify(self.root, conn)


def verify(root: Path, conn: sqlite3.Connection) -> list[StoreProblem]:
    """Re-hash every file `media_files` records under `root` (streamed, `CHUNK` at a time): the missing
    and the altered ones. Reads only, so it can run beside the daemon or on a read-only copy."""
    problems: list[StoreProblem] = []
    for sha256, relpath, size in conn.execute("SELECT sha256, path, size FROM media_files ORDER BY path"):
        path = Path(root) / relpath
        try:
            if path.stat().st_size != size or _hash_file(path) != sha256:
                problems.append(StoreProblem(sha256, relpath, "altered"))
        except FileNotFoundError:
            problems.append(StoreProblem(sha256, relpath, "missing"))
    return problems


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (the directory entry, not only the data)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
