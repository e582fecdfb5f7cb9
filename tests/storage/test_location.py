"""`parse_location`: a `--db`/CHANWATCH_DB value is an SQLite path or a server URL, never a URL taken
for a path; no message carries a URL's password."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.location import LocationError, ServerUrl, SqlitePath, parse_location, sqlite_path


@pytest.mark.parametrize("text, path", [
    ("archive.db", Path("archive.db")),
    ("/srv/chanwatch/archive.db", Path("/srv/chanwatch/archive.db")),
    ("./odd://name.db", Path("./odd://name.db")),  # a path spelled as one is a path
    ("C://archive.db", Path("C://archive.db")),  # one letter is a drive, not a scheme
    ("postgresql:archive.db", Path("postgresql:archive.db")),  # no // after the colon: a file name
    ("sqlite:///archive.db", Path("archive.db")),
    ("sqlite:////srv/archive.db", Path("/srv/archive.db")),
    ("SQLite:///archive.db", Path("archive.db")),
])
def test_paths_and_sqlite_urls_name_an_sqlite_file(text, path):
    assert parse_location(text) == SqlitePath(path)


def test_a_tilde_in_a_path_or_an_sqlite_url_is_the_home_directory():
    assert parse_location("~/a.db") == parse_location("sqlite:///~/a.db") == SqlitePath(Path.home() / "a.db")


@pytest.mark.parametrize("text", [
    "postgresql://alice:s3cret@db.example:5432/chanwatch",
    "postgres://alice:s3cret@db.example/chanwatch",
    "postgresql+psycopg://alice:s3cret@db.example/chanwatch",
    "PostgreSQL://alice:s3cret@db.example/chanwatch",
])
def test_postgresql_urls_are_server_urls_whose_password_is_never_shown(text):
    location = parse_location(text)
    assert isinstance(location, ServerUrl) and location.scheme == "postgresql"
    assert "s3cret" not in repr(location) and "s3cret" not in location.redacted
    assert "alice:***@db.example" in location.redacted
    with pytest.raises(LocationError, match="the demo works on an SQLite file, not a PostgreSQL") as got:
        sqlite_path(text, "the demo")
    assert "s3cret" not in str(got.value)


def test_a_url_without_a_password_is_shown_whole():
    assert parse_location("postgresql://alice@db.example/cw").redacted == "postgresql://alice@db.example/cw"


def test_a_password_given_as_a_url_option_is_never_shown():
    location = parse_location("postgresql://alice@db.example/cw?sslmode=require&password=s3cret&x=1")
    assert location.redacted == "postgresql://alice@db.example/cw?sslmode=require&password=***&x=1"


@pytest.mark.parametrize("text, scheme", [
    ("mysql://bob:hunter2@db.example/cw", "'mysql://'"),
    ("postgresq://bob:hunter2@db.example/cw", "'postgresq://'"),  # a typo in the scheme
    ("file:///srv/archive.db", "'file://'"),
])
def test_another_scheme_is_an_error_naming_it_and_the_accepted_forms(text, scheme):
    with pytest.raises(LocationError) as got:
        parse_location(text)
    message = str(got.value)
    assert scheme in message and "sqlite:///archive.db" in message and "file path" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("text", ["sqlite://", "sqlite:///", "sqlite://host/archive.db",
                                  "sqlite:///archive.db?mode=ro"])
def test_an_sqlite_url_that_names_no_plain_file_is_an_error(text):
    with pytest.raises(LocationError, match="sqlite"):
        parse_location(text)
