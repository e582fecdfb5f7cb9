"""Where an archive is: `parse_location` tells an SQLite file's path from a database server's URL.

`--db` and CHANWATCH_DB pass through here, so the choice of backend has one place (issue #17 adds
PostgreSQL behind `ServerUrl`). Text that looks like a URL (`scheme://…`) is never taken for a path:
before, `--db postgresql://…` silently created a directory called `postgresql:` with an SQLite file
in it. Accepted:
- a path: `archive.db`, `~/chanwatch/archive.db`, `./odd://name` (a path never starts with a scheme);
- `sqlite:///archive.db` (relative) and `sqlite:////srv/archive.db` (absolute), as SQLAlchemy and
  dj-database-url write them: the path is what follows `sqlite:///`;
- `postgresql://…` and `postgres://…` (also `postgresql+DRIVER://…`): a `ServerUrl`, a PostgreSQL
  archive (`database.connect_sync`, `Database.open`); the few commands that read SQLite files only
  (the demo, `serve`) take `sqlite_path`, which refuses it saying how to get a file.
A URL's password never reaches a message: `ServerUrl.redacted`, and no error repeats the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+)://")
"""`scheme://` at the start. Two letters at least: `C://x` is a Windows drive, not a scheme."""

POSTGRES_SCHEMES = ("postgresql", "postgres")
ACCEPTED = ("a file path (archive.db)", "sqlite:///archive.db", "sqlite:////absolute/path.db",
            "postgresql://user@host/database")


class LocationError(ValueError):
    """Text that names no archive this version can open; the message says what to write instead."""


@dataclass(frozen=True)
class SqlitePath:
    """An SQLite archive: the file's path (`~` expanded)."""

    path: Path


@dataclass(frozen=True)
class ServerUrl:
    """A database server's archive: `scheme` (`postgresql`), the URL as given (secret: not in repr)."""

    scheme: str
    url: str = field(repr=False)

    def __str__(self) -> str:
        """What an f-string shows: the redacted URL, so no message can carry the password."""
        return self.redacted

    @property
    def redacted(self) -> str:
        """The URL with its password replaced by `***`: what may be shown or logged."""
        return _redact(self.url)


_PASSWORD_OPTION = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
"""libpq also takes the password as an option: `postgresql://alice@host/db?password=...`."""


def _redact(url: str) -> str:
    head, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return head + sep + userinfo + at + host + slash + _PASSWORD_OPTION.sub(r"\1***", tail)


def parse_location(text: str) -> SqlitePath | ServerUrl:
    """Where `text` (a `--db` or CHANWATCH_DB value) puts the archive; LocationError for a URL of no
    kind chanwatch knows (the message names the scheme and the accepted forms, never the URL).

    >>> parse_location("sqlite:////srv/a.db")
    SqlitePath(path=PosixPath('/srv/a.db'))
    """
    match = _URL.match(text)
    if match is None:
        return SqlitePath(Path(text).expanduser())
    scheme = match["scheme"].lower()
    rest = text[match.end():]
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise LocationError("an sqlite:// URL names a file: sqlite:///archive.db (relative) or "
                                "sqlite:////absolute/path.db")
        if "?" in rest or "#" in rest:
            raise LocationError("sqlite:// URLs take no options (? or #): give the path alone")
        return SqlitePath(Path(rest[1:]).expanduser())
    if scheme.split("+", 1)[0] in POSTGRES_SCHEMES:
        return ServerUrl("postgresql", text)
    raise LocationError(f"'{scheme}://' is not a kind of archive chanwatch knows; give "
                        f"{', '.join(ACCEPTED[:-1])} or {ACCEPTED[-1]}")


def sqlite_path(text: str, what: str) -> Path:
    """The SQLite file `text` names, for `what` (a command that works on SQLite files only);
    LocationError for a server URL (saying how to make a file of it) or a URL of an unknown scheme."""
    location = parse_location(text)
    if isinstance(location, ServerUrl):
        raise LocationError(f"{what} works on an SQLite file, not a PostgreSQL server; give a file path "
                            "(archive.db), or copy the archive into one with "
                            "`chanwatch migrate-db URL archive.db`")
    return location.path
