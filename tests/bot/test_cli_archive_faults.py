"""Every archive problem a `chanwatch` command can meet is one line on stderr and exit 2, never a
traceback, and leaves the archive as it was: a damaged file, text that is not UTF-8, a read-only
file, folder or archive, a full disk, another process holding the write lock, and output that cannot
be written (issue #12).

Tests run as root, which ignores permission bits: the read-only cases run the CLI in a subprocess as
uid 65534 when the euid is 0 (and rely on chmod otherwise).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from storage.database import SCHEMA_VERSION, _migrations
from tests.bot.conftest import run_cli as run

NOBODY = 65534
BAD_UTF8 = "53616e6374696f6e73ff fec328".replace(" ", "")  # "Sanctions" then bytes no UTF-8 text holds


# --- helpers ---------------------------------------------------------------------------------------


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("chanwatch: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_sample(path: Path) -> Path:
    """An archive made by `import --sample` (closed: no -wal or -shm file beside it)."""
    with contextlib.redirect_stdout(None):
        assert main(["--db", str(path), "import", "--sample", "--no-progress"]) == 0
    assert not Path(f"{path}-wal").exists()
    return path


def damage(path: Path) -> None:
    """Overwrite the root page of every table holding data. The schema on page 1 stays readable, so
    the archive opens; reading any of those tables fails with "database disk image is malformed"."""
    raw = sqlite3.connect(path)
    size = raw.execute("PRAGMA page_size").fetchone()[0]
    roots = [r for (r,) in raw.execute(
        "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name IN "
        "('posts', 'messages', 'channels', 'rules', 'subscribers', 'alerts', 'posts_fts_data')")]
    raw.close()
    with path.open("r+b") as f:
        for page in roots:
            f.seek((page - 1) * size)
            f.write(b"\xa5" * size)


def add_rule_row(path: Path, query_sql: str = "'sanctions'") -> None:
    raw = sqlite3.connect(path)
    raw.execute("INSERT OR IGNORE INTO subscribers (chat_id, created_at) VALUES (5, '2025-12-01')")
    raw.execute(f"INSERT INTO rules (chat_id, query, created_at) VALUES (5, {query_sql}, '2025-12-01')")
    raw.commit()
    raw.close()


def archive_at_version(path: Path, version: int) -> Path:
    """An archive migrated only up to `version`, as an older chanwatch left it."""
    raw = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(_migrations()[:version]):
        raw.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number + 1};\nCOMMIT;")
    raw.close()
    return path


def user_version(path: Path) -> int:
    raw = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return raw.execute("PRAGMA user_version").fetchone()[0]
    finally:
        raw.close()


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return make_sample(tmp_path / "archive.db")


# --- running the CLI as a user the permission bits apply to ----------------------------------------

RUNNER = """
import contextlib, io, json, os, shutil, sys, tempfile
from bot.cli import main
commands = json.loads(sys.argv[1])

def run_all():
    results = []
    for argv in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        results.append([code, out.getvalue(), err.getvalue()])
    return results

if os.geteuid() == 0:
    # The interpreter may live where uid 65534 cannot reach (/root): run the commands once as root
    # on a private copy, so every module they import lazily is loaded, then drop root.
    here, warm = os.getcwd(), tempfile.mkdtemp()
    for name in os.listdir(here):
        shutil.copy(name, warm)
    os.chdir(warm)
    run_all()
    os.chdir(here)
    shutil.rmtree(warm)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
print(json.dumps(run_all()))
""".replace("NOBODY", str(NOBODY))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CHANWATCH_", "TG_"))}


def run_unprivileged(folder: Path, *commands: list[str]) -> list[tuple[int, str, str]]:
    """Each command through `bot.cli.main` in one subprocess that permission bits apply to: when
    run as root, it drops to uid/gid 65534 before the first command."""
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(commands)], capture_output=True,
                          text=True, timeout=120, cwd=folder, env=clean_env(), check=False)
    assert done.returncode == 0, done.stderr
    return [(code, out, err) for code, out, err in json.loads(done.stdout)]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder the unprivileged user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="chanwatch-faults-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder)


def read_only_folder(folder: Path) -> None:
    """Neither the folder nor the archive in it can be written by the unprivileged user: SQLite can
    create no -wal or -shm file beside the archive (as on a read-only mount)."""
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)


def read_only_file_in_writable_folder(folder: Path) -> None:
    for path in folder.iterdir():
        path.chmod(0o444)
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)


READING = [
    ["stats"],
    ["search", "sanctions"],
    ["export"],
    ["channels", "list", "--all"],
    ["rules", "list"],
    ["rules", "test", "sanctions"],
    ["show", "1"],
    ["check"],
]
WRITING = [
    ["channels", "add", "newchannel"],
    ["channels", "remove", "watchedone"],
    ["rules", "add", "embassy", "--chat", "5"],
    ["rules", "remove", "1"],
    ["import", "--sample", "--no-progress"],
]


# --- a damaged archive -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", READING[:-1] + WRITING[:1] + WRITING[2:3] + WRITING[4:],
                         ids=lambda argv: " ".join(argv[:2]))
def test_a_damaged_archive_is_one_line_pointing_at_check_and_stays_as_it_was(sample, capsys, argv):
    damage(sample)
    before = digest(sample)
    code, out, err = run(capsys, "--db", str(sample), *argv)
    assert_one_line_error(code, err, "is damaged (the database file is malformed)",
                          f"chanwatch --db {sample} check")
    assert "\xa5" not in out + err and "Traceback" not in out
    assert digest(sample) == before


@pytest.mark.parametrize("argv", [["search", "sanctions"], ["search", "sanctions", "--json"], ["export"],
                                  ["export", "--format", "csv"], ["channels", "list", "--all"],
                                  ["rules", "list"], ["rules", "test", "sanctions"]],
                         ids=lambda argv: " ".join(argv))
def test_text_that_is_not_utf8_is_one_line_and_its_bytes_are_never_shown(sample, capsys, argv):
    raw = sqlite3.connect(sample)
    raw.execute(f"UPDATE posts SET text = CAST(x'{BAD_UTF8}' AS TEXT)")
    raw.execute(f"UPDATE channels SET title = CAST(x'{BAD_UTF8}' AS TEXT)")
    raw.commit()
    raw.close()
    add_rule_row(sample, f"CAST(x'{BAD_UTF8}' AS TEXT)")
    before = digest(sample)
    code, out, err = run(capsys, "--db", str(sample), *argv)
    assert_one_line_error(code, err, "is damaged (text that is not UTF-8)", "check")
    for shown in ("\ufffd", "\udcff", "\\xff", "ÿ", "Sanctions"):
        assert shown not in out + err
    assert digest(sample) == before


# --- chanwatch check -------------------------------------------------------------------------------


def test_check_says_ok_for_a_sound_archive_and_exits_0(sample, capsys):
    for argv in (["check"], ["check", "--quick"]):
        code, out, err = run(capsys, "--db", str(sample), *argv)
        assert code == 0 and err == ""
        assert out.startswith(f"ok: {sample} (")


def test_check_lists_damaged_pages_says_how_to_recover_and_exits_2(sample, capsys):
    damage(sample)
    before = digest(sample)
    code, out, err = run(capsys, "--db", str(sample), "check")
    assert_one_line_error(code, err, "is not sound")
    lines = out.splitlines()
    assert any(line.startswith("integrity: Page ") for line in lines), out
    assert f"sqlite3 {sample} .recover | sqlite3 recovered.db" in out
    assert f"PRAGMA user_version = {SCHEMA_VERSION};" in out  # for the .dump way, which loses it
    assert "chanwatch --db recovered.db check" in out
    assert "\xa5" not in out
    assert digest(sample) == before


def test_check_quick_also_finds_damaged_pages(sample, capsys):
    damage(sample)
    code, out, _ = run(capsys, "--db", str(sample), "check", "--quick")
    assert code == 2 and "integrity: " in out


def test_check_names_each_column_and_row_holding_text_that_is_not_utf8(sample, capsys):
    raw = sqlite3.connect(sample)
    raw.execute(f"UPDATE posts SET text = CAST(x'{BAD_UTF8}' AS TEXT) WHERE id IN (3, 7)")
    raw.commit()
    raw.close()
    code, out, err = run(capsys, "--db", str(sample), "check")
    assert code == 2 and "is not sound" in err
    assert "text: posts.text: 2 values are not UTF-8 (rowid 3, 7)" in out
    assert "Sanctions" not in out and "integrity" not in out


def test_check_finds_rows_that_refer_to_missing_rows(sample, capsys):
    raw = sqlite3.connect(sample)  # foreign keys are off in a plain connection
    raw.execute("UPDATE messages SET post_id = 999999 WHERE rowid = (SELECT min(rowid) FROM messages)")
    raw.commit()
    raw.close()
    code, out, _ = run(capsys, "--db", str(sample), "check")
    assert code == 2
    assert "foreign key: messages row " in out and "refers to a posts row that is not there" in out


def test_check_finds_a_search_index_missing_posts_and_its_advice_rebuilds_it(sample, capsys):
    raw = sqlite3.connect(sample)
    raw.execute("INSERT INTO posts_fts (posts_fts, rowid, words, stems, tags) "
                "SELECT 'delete', id, words, stems, tags FROM posts WHERE id = 1")
    raw.commit()
    code, out, _ = run(capsys, "--db", str(sample), "check")
    assert code == 2 and "search index: it indexes 15 posts of 16" in out
    [advice] = [line for line in out.splitlines() if line.startswith("to rebuild the search index")]
    raw.execute(advice.split(f"sqlite3 {sample} ", 1)[1].strip('"'))  # the statement it shows
    raw.commit()
    raw.close()
    assert run(capsys, "--db", str(sample), "check")[0] == 0


def test_check_on_a_file_whose_schema_cannot_be_read_says_how_to_recover_at_its_version(tmp_path, capsys):
    path = archive_at_version(tmp_path / "v5.db", 5)
    with path.open("r+b") as f:  # page 1 past its header: the schema
        f.seek(100)
        f.write(b"\xa5" * 3996)
    code, out, err = run(capsys, "--db", str(path), "check")
    assert code == 2 and "is not sound" in err and "Traceback" not in err
    assert "integrity: SQLite cannot read the archive's schema" in out and ".recover" in out
    assert "PRAGMA user_version = 5;" in out  # read from the file's header


def test_check_on_a_file_that_is_not_a_database_is_one_line(tmp_path, capsys):
    path = tmp_path / "notes.db"
    path.write_text("these are not the droids\n" * 200)
    code, _, err = run(capsys, "--db", str(path), "check")
    assert_one_line_error(code, err, "is not an SQLite database")


def test_check_reports_an_older_schema_without_upgrading_it(tmp_path, capsys):
    path = archive_at_version(tmp_path / "v5.db", 5)
    code, out, _ = run(capsys, "--db", str(path), "check")
    assert code == 0
    assert f"schema version 5: the next command that can write to it upgrades it to {SCHEMA_VERSION}" in out
    assert user_version(path) == 5


# --- a read-only archive ---------------------------------------------------------------------------


def test_reading_commands_read_an_archive_in_a_read_only_folder(shared):
    """No -wal or -shm file can be created beside it: SQLite's mode=ro alone cannot read a WAL
    archive there, so it is opened immutable (no log is pending)."""
    path = make_sample(shared / "archive.db")
    add_rule_row(path)
    before = digest(path)
    read_only_folder(shared)
    results = run_unprivileged(shared, *[["--db", "archive.db", *argv] for argv in READING])
    for argv, (code, out, err) in zip(READING, results, strict=True):
        assert (code, err) == (0, ""), (argv, err)
        assert out, argv
    stats_out = results[0][1]
    assert re.search(r"^  posts +16$", stats_out, re.M)
    assert results[1][1].startswith("4 posts for 'sanctions'")
    assert "chat 5  sanctions" in results[4][1]
    assert results[6][1].startswith("post 1 · ")
    assert results[7][1].startswith("ok: archive.db")
    assert sorted(p.name for p in shared.iterdir()) == ["archive.db"] and digest(path) == before


@pytest.mark.parametrize("make_read_only", [read_only_folder, read_only_file_in_writable_folder],
                         ids=["read-only folder", "read-only file"])
def test_writing_commands_on_a_read_only_archive_are_one_line_and_change_nothing(shared, make_read_only):
    path = make_sample(shared / "archive.db")
    add_rule_row(path)
    with contextlib.redirect_stdout(None):
        assert main(["--db", str(path), "channels", "add", "watchedone"]) == 0
    before = digest(path)
    make_read_only(shared)
    results = run_unprivileged(shared, *[["--db", "archive.db", *argv] for argv in WRITING])
    for code, _, err in results:
        assert_one_line_error(code, err, "archive.db is read-only", "this command writes to it")
    assert digest(path) == before


def test_a_pending_write_ahead_log_in_a_read_only_folder_says_how_to_read_it(shared, sample):
    """A crash left committed changes in the -wal file: reading without them would show an old
    archive, and SQLite cannot read them without creating the -shm file."""
    writer = sqlite3.connect(sample, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO subscribers (chat_id, created_at) VALUES (77, '2025-12-01')")
    shutil.copy(sample, shared / "archive.db")
    shutil.copy(f"{sample}-wal", shared / "archive.db-wal")  # as a crash leaves it, without the -shm
    writer.close()
    read_only_folder(shared)
    [(code, _, err)] = run_unprivileged(shared, ["--db", "archive.db", "stats"])
    assert_one_line_error(code, err, "its write-ahead log (archive.db-wal) holds changes",
                          "where its folder is writable")


def test_an_older_archive_is_upgraded_by_reading_it_where_it_is_writable_and_else_says_how(shared, tmp_path):
    path = archive_at_version(shared / "archive.db", 5)
    read_only_folder(shared)
    results = run_unprivileged(shared, ["--db", "archive.db", "stats"], ["--db", "archive.db", "check"],
                               ["--db", "archive.db", "channels", "add", "newchannel"])
    for code, _, err in results[::2]:
        assert_one_line_error(code, err, f"schema version 5, older than this chanwatch's ({SCHEMA_VERSION})",
                              "run any chanwatch command on it once where it is writable")
    assert results[1][0] == 0 and "schema version 5" in results[1][1]
    assert user_version(path) == 5
    writable = archive_at_version(tmp_path / "writable.db", 5)  # where it can be written, reading upgrades it
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["--db", str(writable), "stats", "--json"]) == 0
    assert json.loads(out.getvalue())["posts"] == 0 and user_version(writable) == SCHEMA_VERSION


# --- a full disk -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _filled(folder: Path) -> Iterator[None]:
    """The file system holding `folder` full to the last byte for the duration."""
    fillers = [folder / "filler", folder / "crumbs"]
    try:
        for filler, chunk in zip(fillers, (4096, 64), strict=True):  # blocks, then the last partial one
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
        yield
    finally:
        for filler in fillers:
            filler.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A 1 MiB tmpfs mounted at a folder, or None where mounting is not allowed."""
    point = tmp_path / "small"
    point.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)],
                                 capture_output=True, timeout=30, check=False).returncode == 0
    except OSError:
        mounted = False
    try:
        yield point if mounted else None
    finally:
        if mounted:  # lazily if something still holds a file there: never leave the mount behind
            if subprocess.run(["umount", str(point)], timeout=30, check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], timeout=30, check=True)


def test_a_full_disk_is_one_line_and_leaves_the_archive_consistent(tmp_path, sample, capsys):
    """On a real full file system (a small tmpfs) where this container may mount one; elsewhere the
    same commands meet a real write failure of their own process (a file size limit), which SQLite
    reports as an I/O error: one line too, and the archive consistent."""
    with small_disk(tmp_path) as disk:
        if disk is None:
            _write_failure_without_a_mount(sample)
            return
        path = disk / "archive.db"
        shutil.copy(sample, path)
        with _filled(disk):
            code, _, err = run(capsys, "--db", str(path), "stats")  # not even room for the -shm file
        assert_one_line_error(code, err, "the disk holding the archive", "is full", "free some space")
        reader = sqlite3.connect(path)  # a running daemon would hold these: -wal and -shm exist
        try:
            reader.execute("SELECT count(*) FROM posts").fetchone()
            with _filled(disk):
                failures = [run(capsys, "--db", str(path), *argv) for argv in (WRITING[0], WRITING[2])]
            for code, _, err in failures:
                assert_one_line_error(code, err, "is full", "nothing was half-written", "free some space")
            assert reader.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            added = "SELECT count(*) FROM channels WHERE username = 'newchannel'"
            assert reader.execute(added).fetchone() == (0,)
            assert reader.execute("SELECT count(*) FROM rules").fetchone() == (0,)
        finally:
            reader.close()
        assert run(capsys, "--db", str(path), *WRITING[0])[0] == 0  # room again: it works


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def _write_failure_without_a_mount(path: Path) -> None:
    reader = sqlite3.connect(path)  # -wal and -shm exist, so only the commit needs room
    reader.execute("SELECT count(*) FROM posts").fetchone()
    for argv in WRITING[0], WRITING[2]:
        done = subprocess.run([sys.executable, "-m", "bot", "--db", str(path), *argv], capture_output=True,
                              text=True, timeout=60, env=clean_env(), preexec_fn=_limit_file_size,
                              check=False)
        assert_one_line_error(done.returncode, done.stderr, "disk I/O error")
    assert reader.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert reader.execute("SELECT count(*) FROM channels WHERE username = 'newchannel'").fetchone() == (0,)
    reader.close()


# --- another process holds the write lock ----------------------------------------------------------


def test_a_command_waits_for_another_writer_says_so_then_gives_up_in_one_line(sample, capsys):
    holder = sqlite3.connect(sample, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        code = main(["--db", str(sample), "--lock-wait", "0.6", "channels", "add", "newchannel"])
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
    _, err = capsys.readouterr()
    notice, error = err.strip().splitlines()
    assert notice == (f"chanwatch: waiting for another process writing to {sample} (an import or "
                      "`chanwatch run`?) — Ctrl-C to give up")
    assert_one_line_error(code, error, "is locked by another process writing to it")
    assert waited >= 0.6  # it waited the whole --lock-wait (no upper bound: this machine is noisy)
    assert holder.execute("SELECT count(*) FROM channels WHERE username = 'newchannel'").fetchone() == (0,)
    holder.close()


def test_a_command_that_only_reads_does_not_wait_for_a_writer(sample, capsys):
    holder = sqlite3.connect(sample, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO subscribers (chat_id, created_at) VALUES (77, '2025-12-01')")
    try:
        code, out, err = run(capsys, "--db", str(sample), "--lock-wait", "0", "stats", "--json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (code, err) == (0, "") and json.loads(out)["posts"] == 16


def test_a_command_goes_on_when_the_other_writer_finishes_while_it_waits(sample, capsys, monkeypatch):
    """The other writer commits as soon as the command says it is waiting: the command then takes
    the lock and succeeds."""
    holder = sqlite3.connect(sample, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    class ReleaseOnNotice(io.StringIO):
        def write(self, text: str) -> int:
            if "waiting for another process" in text and holder.in_transaction:
                holder.execute("COMMIT")
            return super().write(text)

    stderr = ReleaseOnNotice()
    monkeypatch.setattr(sys, "stderr", stderr)
    code = main(["--db", str(sample), "--lock-wait", "0.4", "channels", "add", "newchannel"])
    out = capsys.readouterr().out
    assert code == 0 and "@newchannel: added" in out
    assert stderr.getvalue().startswith("chanwatch: waiting for another process writing to")
    assert holder.execute("SELECT count(*) FROM channels WHERE username = 'newchannel'").fetchone() == (1,)
    holder.close()


def test_lock_wait_must_be_a_number_of_seconds(capsys):
    code, _, err = run(capsys, "--lock-wait", "soon", "stats")
    assert code == 2 and "not a number of seconds" in err


# --- output that cannot be written -----------------------------------------------------------------


def _cli_to(stdout: int, *argv: str, db: Path, unbuffered: bool = False) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run([sys.executable, "-m", "bot", "--db", str(db), *argv], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=60, env=env, check=False)


OUTPUTS = [["stats"], ["search", "sanctions"], ["export"]]
NO_SPACE = "chanwatch: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("argv", OUTPUTS, ids=lambda argv: argv[0])
def test_output_to_a_full_device_is_one_line_and_exit_2(sample, argv):
    with open("/dev/full", "w") as full:
        done = _cli_to(full.fileno(), *argv, db=sample)
    assert done.returncode == 2
    assert done.stderr == NO_SPACE


def test_output_to_a_full_device_unbuffered_is_the_same_line(sample):
    with open("/dev/full", "w") as full:
        done = _cli_to(full.fileno(), "stats", db=sample, unbuffered=True)
    assert (done.returncode, done.stderr) == (2, NO_SPACE)


@pytest.mark.parametrize("argv", OUTPUTS, ids=lambda argv: argv[0])
def test_a_reader_that_left_ends_the_command_quietly_with_exit_0(sample, argv):
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` that has already left
    try:
        done = _cli_to(write_end, *argv, db=sample)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")


def test_help_to_a_full_device_is_one_line(sample):
    with open("/dev/full", "w") as full:
        done = _cli_to(full.fileno(), "--help", db=sample)
    assert (done.returncode, done.stderr) == (2, NO_SPACE)
