"""A PostgreSQL archive's failures, met on the real test server, read as one line saying what is wrong
and what to do, with a `kind`, naming the server by its URL without the password
(`storage.faults.explain`, fed by `storage.pg`'s errors)."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from storage.database import connect_sync
from storage.faults import StorageError, explain, problem_kind
from storage.ingest import ingest_batch
from storage.location import ServerUrl
from tests.pg_support import require_server
from tests.storage.factories import MFA, STATEMENT, batch, msg


def with_login(url: ServerUrl, user: str, password: str, database: str | None = None) -> ServerUrl:
    """The test server's URL with another user and password (and database)."""
    head, _, rest = url.url.partition("://")
    host_and_path = rest.rpartition("@")[2]
    if database is not None:
        host, _, _ = host_and_path.partition("/")
        host_and_path = f"{host}/{database}"
    return ServerUrl("postgresql", f"{head}://{user}:{password}@{host_and_path}")


def refused(url: ServerUrl) -> StorageError:
    with pytest.raises(StorageError) as failed:
        connect_sync(url)
    return failed.value


def assert_one_line_naming(error: StorageError, url: ServerUrl, secret: str) -> None:
    text = str(error)
    assert "\n" not in text and url.redacted in text
    assert secret not in text and secret not in repr(error.__cause__) and secret not in repr(error.args)


def test_a_wrong_password_is_a_refused_login_saying_where_to_fix_it():
    import psycopg

    server = require_server()
    with psycopg.connect(server.url) as conn:
        user = conn.info.user
    url = with_login(server, user, "not-the-password-9f2")
    error = refused(url)
    assert error.kind == "auth"
    assert "refused the login (password authentication failed for user" in str(error)
    assert "fix the user or password in the URL" in str(error)
    assert_one_line_naming(error, url, "not-the-password-9f2")


def test_a_database_that_does_not_exist_says_to_create_it_or_fix_the_name():
    import psycopg

    server = require_server()
    with psycopg.connect(server.url) as conn:
        user, password = conn.info.user, conn.info.password or "no-password-given"
    url = with_login(server, user, password, database="no_such_archive_4c1")
    error = refused(url)
    assert error.kind == "nodatabase"
    assert 'database "no_such_archive_4c1" does not exist' in str(error) and "createdb" in str(error)
    assert_one_line_naming(error, url, password)


def test_a_port_nothing_listens_on_is_an_unreachable_server():
    require_server()
    with socket.socket() as probe:  # a port just free: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = ServerUrl("postgresql", f"postgresql://someone:s3cret@127.0.0.1:{port}/test")
    error = refused(url)
    assert error.kind == "unreachable"
    assert str(error).startswith(f"cannot reach the PostgreSQL server of postgresql://someone:***@127.0.0.1:{port}"
                                 "/test: Connection refused; start the server")
    assert_one_line_naming(error, url, "s3cret")


def test_writing_in_a_read_only_session_says_the_archive_is_read_only_here(pg_url):
    conn = connect_sync(pg_url)
    conn.execute("SET default_transaction_read_only = on")
    with pytest.raises(sqlite3.Error) as failed:
        ingest_batch(conn, batch(MFA, msg(MFA, 1, STATEMENT)))
    error = explain(failed.value, pg_url)
    assert (error.kind, problem_kind(failed.value)) == ("readonly", "readonly")
    assert "is read-only for this session" in str(error) and "this command writes to it" in str(error)
    assert_one_line_naming(error, pg_url, "chanwatch-test")
    conn.close()


def test_a_connection_the_server_ended_is_a_lost_connection_then_and_after(pg_url):
    import psycopg

    conn = connect_sync(pg_url)
    with psycopg.connect(pg_url.url, autocommit=True) as admin:  # waits until that backend has gone
        assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (conn.raw.info.backend_pid,)
                             ).fetchone()[0]
    for _ in range(2):  # the server's goodbye, then a closed connection
        with pytest.raises(sqlite3.Error) as failed:
            conn.execute("SELECT count(*) FROM posts")
        error = explain(failed.value, "ignored: the error names its server", daemon=True)
        assert error.kind == "gone"
        assert str(error).startswith(f"lost the connection to the PostgreSQL server of {pg_url.redacted}")
        assert str(error).endswith("check the server: the next cycle tries again")
    conn.close()


def test_a_statement_past_the_servers_timeout_says_which_setting_to_raise(pg_url):
    conn = connect_sync(pg_url)
    conn.execute("SET statement_timeout = 1")
    with pytest.raises(sqlite3.OperationalError) as failed:
        conn.execute("SELECT pg_sleep(5)")
    error = explain(failed.value, pg_url)
    assert error.kind == "timeout" and "statement_timeout" in str(error)
    assert str(error).endswith("and run the command again")
    conn.close()


def test_a_full_disk_on_the_server_says_nothing_was_half_written():
    import psycopg

    url = ServerUrl("postgresql", "postgresql://someone:s3cret@db.example:5432/archive")
    exc = psycopg.errors.DiskFull("could not extend file \"base/16384/16385\": No space left on device")
    error = explain(exc, url)
    assert error.kind == "full"
    assert str(error) == (
        "the disk of the PostgreSQL server of postgresql://someone:***@db.example:5432/archive is full; "
        "nothing was half-written (the transaction rolled back): free some space on the server and run "
        "the command again")
