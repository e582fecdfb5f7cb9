"""Settings from the environment and `.env` (python-dotenv), validated with one clear line per mistake.

The environment wins over `.env`. Secrets (api hash, session, bot token) are never part of a repr or
an error message: an error names the variable and how to fix it, never its value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.clock import cron_trigger
from bot.names import parse_channel_name
from storage.location import LocationError, ServerUrl, parse_location, sqlite_path
from storage.query import QueryError, parse

T = TypeVar("T")

_BOT_TOKEN = re.compile(r"^\d{3,}:[A-Za-z0-9_-]{30,}$")
_API_HASH = re.compile(r"^[0-9a-fA-F]{32}$")

SECRET_NAMES = ("TG_API_HASH", "TG_SESSION", "TG_BOT_TOKEN", "CHANWATCH_WEB_TOKEN")


class ConfigError(Exception):
    """A missing or bad setting: `variable` names it, the message says how to fix it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """Everything chanwatch reads from its environment."""

    db_path: Path | ServerUrl = Path("chanwatch.db")  # an SQLite file, or a PostgreSQL server (#17)
    api_id: int | None = None
    api_hash: str | None = field(default=None, repr=False)
    session: str | None = field(default=None, repr=False)
    session_file: Path | None = None
    bot_token: str | None = field(default=None, repr=False)
    bot_session_file: Path | None = None
    channels: tuple[str, ...] = ()
    admins: frozenset[int] = frozenset()
    alert_chat: int | None = None
    keywords: tuple[str, ...] = ()
    poll_interval: int = 60
    recheck_interval: int = 900
    recheck_window_ids: int = 200
    recheck_window_days: int = 3
    sweep_per_hour: int = 120  # the slow deletion sweep's GetMessages requests an hour (0: off)
    digest_schedule: str = "0 8 * * *"
    timezone: str = "UTC"
    join: bool = False
    flood_max_wait: int = 60
    alert_max_age_hours: int = 48
    alert_media: bool = False  # an instant alert for a post whose photo is downloaded is that photo
    server: tuple[str, int] | None = None
    server_public_key: str | None = None
    server_dc: int = 2
    media_kinds: frozenset[str] | None = frozenset({"photo", "document"})
    media_max_mb: int = 50
    media_path: Path | None = None
    stats_days: int = 14  # engagement re-read for messages this young (days); 0: off
    web_url: str = "https://t.me"  # where the web preview is read (a mirror, the tests' local server)
    web_rate: float = 1.0  # web-preview requests a second, across all channels
    source: str = "auto"  # how channels are read: auto (the API with a user session, else web), api, web
    fetch_origins: bool = False  # the web reader fetches an unwatched forward origin's post once
    web_token: str | None = field(default=None, repr=False)  # what `chanwatch serve` asks every request for
    reader: str | None = None  # CHANWATCH_READER: this `run`'s name among several readers (else host:pid)
    lease_seconds: int = 60  # CHANWATCH_LEASE_SECONDS: a reader alive, its leases held, this long


    def secrets(self) -> list[str]:
        """The secret values, for log redaction."""
        return [s for s in (self.api_hash, self.session, self.bot_token, self.web_token) if s]

    @property
    def has_user_session(self) -> bool:
        """Whether a user session is configured (TG_SESSION or TG_SESSION_FILE set): the reading account
        that the API source needs. Whether it is logged in is checked when it connects."""
        return self.session is not None or self.session_file is not None

    @property
    def default_source(self) -> str:
        """How a channel with no source of its own is read: 'api' or 'web'. CHANWATCH_SOURCE=auto is
        'api' when a user session is configured, else 'web'."""
        return resolve_source(self.source, self.has_user_session)

    def require_run(self) -> None:
        """Check what `chanwatch run` needs before anything is opened or connected, for its mode:
        nothing at all to read by web; api_id/api_hash for a bot (TG_BOT_TOKEN) or a user session;
        a user session when CHANWATCH_SOURCE=api. The keyword queries too, so a typo is found first.
        Nothing is demanded that the mode does not use."""
        if self.source == "api" and not self.has_user_session:
            raise ConfigError("TG_SESSION", "CHANWATCH_SOURCE=api reads channels through a user session, "
                              "and none is set; run `chanwatch login` and set TG_SESSION (string session) or "
                              "TG_SESSION_FILE, or set CHANWATCH_SOURCE=auto to read by web preview")
        if self.has_user_session or self.bot_token is not None:
            who = "the user session" if self.has_user_session else "the bot (TG_BOT_TOKEN)"
            try:
                self.require_api()
            except ConfigError as exc:
                detail = str(exc).removeprefix(f"{exc.variable}: ")
                raise ConfigError(exc.variable, f"{detail}; {who} needs it (to read channels by web "
                                  "preview with no Telegram account, leave out TG_BOT_TOKEN, TG_SESSION "
                                  "and TG_SESSION_FILE)") from None
        check_keywords(self.keywords)

    def require_api(self) -> tuple[int, str]:
        """api_id and api_hash, which every Telegram client needs (`login`, `backfill`, `run`)."""
        if self.api_id is None:
            raise ConfigError("TG_API_ID", "not set; get api_id and api_hash at https://my.telegram.org "
                              "(API development tools) and put them in .env")
        if self.api_hash is None:
            raise ConfigError("TG_API_HASH", "not set; it is shown next to api_id at https://my.telegram.org")
        return self.api_id, self.api_hash

    def require_session(self) -> None:
        """A user session (string or file), which reading channels needs (`backfill`, `run`)."""
        if self.session is None and self.session_file is None:
            raise ConfigError("TG_SESSION", "no user session; run `chanwatch login` and set TG_SESSION "
                              "(string session) or TG_SESSION_FILE")

    @property
    def bot_session_path(self) -> Path | None:
        """Where the bot's session lives (its login and the access hashes of the chats it talked to):
        TG_BOT_SESSION_FILE, else beside the user's session file (`<name>-bot.session`), else beside
        the archive (in the working directory for a PostgreSQL archive); None (in memory) only for an
        in-memory archive."""
        if self.bot_session_file is not None:
            return session_file_path(self.bot_session_file)
        if self.session_file is not None:
            user = session_file_path(self.session_file)
            return user.with_name(user.name.removesuffix(".session") + "-bot.session")
        if isinstance(self.db_path, ServerUrl):
            return Path("chanwatch-bot.session")
        if str(self.db_path) == ":memory:":
            return None
        return self.db_path.with_name(self.db_path.stem + "-bot.session")

    @property
    def media_dir(self) -> Path:
        """Where downloaded media live: CHANWATCH_MEDIA_DIR, else `media/` beside the archive (in the
        working directory for an in-memory archive)."""
        return media_dir_of(self.media_path, self.db_path)

    def require_bot_token(self) -> str:
        """The bot token (`login --bot`, `run`)."""
        if self.bot_token is None:
            raise ConfigError("TG_BOT_TOKEN", "not set; create a bot with @BotFather and paste its token")
        return self.bot_token


def resolve_source(source: str, has_user_session: bool) -> str:
    """'api' or 'web' for CHANWATCH_SOURCE `source`: auto is 'api' with a user session, else 'web'."""
    if source in ("api", "web"):
        return source
    return "api" if has_user_session else "web"


def default_source_from(env: Mapping[str, str | None]) -> str:
    """The default source from unparsed `env` (see `read_env`), for the offline commands that show
    it; a CHANWATCH_SOURCE that is not api or web counts as auto (`run` refuses a bad one)."""
    source = (_get(env, "CHANWATCH_SOURCE") or "auto").lower()
    return resolve_source(source, bool(_get(env, "TG_SESSION") or _get(env, "TG_SESSION_FILE")))


def lease_seconds_from(env: Mapping[str, str | None]) -> int:
    """CHANWATCH_LEASE_SECONDS of unparsed `env` (see `read_env`), default 60: `Settings.lease_seconds`,
    and what the offline `chanwatch status` counts a reader alive by (a ConfigError when bad)."""
    return _parse(env, "CHANWATCH_LEASE_SECONDS", _positive(10), 60,
                  "must be a whole number of seconds, at least 10")


def media_dir_of(media_path: Path | None, db_path: Path | ServerUrl) -> Path:
    """CHANWATCH_MEDIA_DIR if given, else `media/` beside the archive at `db_path` (in the working
    directory for an in-memory or PostgreSQL archive): one rule for the daemon and the offline `media`
    commands."""
    if media_path is not None:
        return media_path
    if isinstance(db_path, ServerUrl) or str(db_path) == ":memory:":
        return Path("media")
    return db_path.with_name("media")


def session_file_path(path: Path) -> Path:
    """The file Telethon's SQLiteSession writes for `path` (it appends '.session' when missing)."""
    return path if path.name.endswith(".session") else path.with_name(path.name + ".session")


def _get(env: Mapping[str, str | None], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _parse(env: Mapping[str, str | None], name: str, convert: Callable[[str], T], default: T, hint: str) -> T:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        return convert(raw)
    except (ValueError, TypeError, OSError) as exc:
        shown = "" if name in SECRET_NAMES else f"; got {raw!r}"
        raise ConfigError(name, f"{hint}{shown}") from exc


def _positive(minimum: int) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError(raw)
        return value
    return convert


def _web_url(raw: str) -> str:
    parsed = urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
        raise ValueError(raw)
    return raw.rstrip("/")


def _web_rate(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 10:  # NaN fails too
        raise ValueError(raw)
    return value


SOURCES = ("auto", "api", "web")


def _source(raw: str) -> str:
    lowered = raw.lower()
    if lowered not in SOURCES:
        raise ValueError(raw)
    return lowered


def _stats_days(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 365:
        raise ValueError(raw)
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _ids(raw: str) -> frozenset[int]:
    return frozenset(int(part) for part in re.split(r"[,\s]+", raw) if part)


def _channels(raw: str) -> tuple[str, ...]:
    names = [parse_channel_name(p) for p in re.split(r"[,\s]+", raw) if p]
    return tuple(dict.fromkeys(names))


def _server(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not 0 < int(port) < 65536:
        raise ValueError(raw)
    return host.strip("[]"), int(port)


def _cron(raw: str) -> str:
    cron_trigger(raw)  # the dispatcher's crontab rules (Sunday = 0), not APScheduler's own
    return raw


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(raw) from exc
    return raw


def _token(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        if not pattern.match(raw):
            raise ValueError("bad format")
        return raw
    return convert


def _pem(raw: str) -> str:
    text = Path(raw).expanduser().read_text(encoding="ascii")
    if "PUBLIC KEY" not in text:
        raise ValueError(raw)
    return text


MEDIA_KINDS = ("photo", "video", "document", "audio", "voice", "gif", "sticker")


def _media_kinds(raw: str) -> frozenset[str] | None:
    """`all` (None: every kind), `none` (no kind) or a comma list of MEDIA_KINDS."""
    lowered = raw.strip().lower()
    if lowered == "all":
        return None
    if lowered == "none":
        return frozenset()
    kinds = frozenset(k for k in re.split(r"[,\s]+", lowered) if k)
    if not kinds or not kinds <= set(MEDIA_KINDS):
        raise ValueError(raw)
    return kinds


def read_env(env_file: str | Path | None = None,
             environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The variables of `.env` (or `env_file`) overlaid by the environment, unparsed.

    A missing `env_file` is a ConfigError; a missing `./.env` is no file at all.
    """
    environ = os.environ if environ is None else environ
    path = Path(env_file) if env_file else Path(".env")
    if env_file and not path.is_file():
        raise ConfigError("--env-file", f"{path} does not exist or is not a file")
    env: dict[str, str | None] = dict(dotenv_values(path)) if path.is_file() else {}
    env.update(environ)
    return env


def db_path_from(env: Mapping[str, str | None]) -> Path | ServerUrl:
    """CHANWATCH_DB of `env` (see `read_env`), else ./chanwatch.db."""
    return archive_file(_get(env, "CHANWATCH_DB") or "chanwatch.db", "CHANWATCH_DB")


def archive_file(text: str, variable: str) -> Path | ServerUrl:
    """The archive that `text` (from `variable`: --db or CHANWATCH_DB) names: an SQLite file's path or
    a PostgreSQL server's URL; a ConfigError for a URL of no kind chanwatch knows (`storage.location`),
    so no such URL becomes a directory."""
    try:
        location = parse_location(text)
    except LocationError as exc:
        raise ConfigError(variable, str(exc)) from None
    return location if isinstance(location, ServerUrl) else location.path


def sqlite_file(text: str, variable: str, what: str) -> Path:
    """`archive_file` for `what`, a command that works on SQLite files only (the demo, `serve`)."""
    try:
        return sqlite_path(text, what)
    except LocationError as exc:
        raise ConfigError(variable, str(exc)) from None


WEB_TOKEN_MIN = 16
WEB_TOKEN_HINT = (f"must be at least {WEB_TOKEN_MIN} characters without spaces; make one with "
                  "`python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`")


def _web_token(raw: str) -> str:
    if len(raw) < WEB_TOKEN_MIN or any(c.isspace() for c in raw):
        raise ValueError("bad format")
    return raw


def web_token_from(env: Mapping[str, str | None]) -> str | None:
    """CHANWATCH_WEB_TOKEN of `env` (see `read_env`): the token `chanwatch serve` asks every request for,
    or None; ConfigError (never showing the value) when it is too short to guess at."""
    return _parse(env, "CHANWATCH_WEB_TOKEN", _web_token, None, WEB_TOKEN_HINT)


def alert_chat_from(env: Mapping[str, str | None]) -> int | None:
    """CHANWATCH_ALERT_CHAT of `env` (see `read_env`), or None; ConfigError if it is not a chat id."""
    return _parse(env, "CHANWATCH_ALERT_CHAT", int, None,
                  "must be a numeric chat id (a user id, or -100... for a group or channel)")


KEYWORDS_EXAMPLE = "e.g. CHANWATCH_KEYWORDS=canada sanctions; arctic OR ice; visa -tourism"


def check_keywords(queries: tuple[str, ...]) -> tuple[str, ...]:
    """Each CHANWATCH_KEYWORDS query parsed as `/search` would; ConfigError naming the query, the
    position in it and the fix for the first one that does not parse."""
    for number, query in enumerate(queries, 1):
        try:
            parse(query)
        except QueryError as exc:
            which = f"query {number} of {len(queries)}" if len(queries) > 1 else "the query"
            raise ConfigError("CHANWATCH_KEYWORDS",
                              f"{which}, {query!r}: {exc.message} at position {exc.position}: {exc.hint}; "
                              f"queries are separated by ';', {KEYWORDS_EXAMPLE}") from None
    return queries


_READER = re.compile(r"[\w.:@-]{1,64}")


def _reader_name(raw: str) -> str:
    if not _READER.fullmatch(raw):
        raise ValueError(raw)
    return raw


def _keywords(raw: str) -> tuple[str, ...]:
    return check_keywords(tuple(q.strip() for q in raw.split(";") if q.strip()))


def load_settings(env_file: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting from `.env` (or `env_file`) overlaid by the environment; raise
    ConfigError for the first bad one."""
    env = read_env(env_file, environ)
    p = _parse
    return Settings(
        db_path=db_path_from(env),
        api_id=p(env, "TG_API_ID", _positive(1), None,
                 "must be the numeric api_id from https://my.telegram.org"),
        api_hash=p(env, "TG_API_HASH", _token(_API_HASH), None,
                   "must be the 32-character api_hash from https://my.telegram.org"),
        session=_get(env, "TG_SESSION"),
        session_file=p(env, "TG_SESSION_FILE", lambda r: Path(r).expanduser(), None, "must be a path"),
        bot_token=p(env, "TG_BOT_TOKEN", _token(_BOT_TOKEN), None,
                    "does not look like a bot token (123456:ABC...); copy it again from @BotFather"),
        bot_session_file=p(env, "TG_BOT_SESSION_FILE", lambda r: Path(r).expanduser(), None,
                           "must be a path"),
        channels=p(env, "CHANWATCH_CHANNELS", _channels, (),
                   "must be channel usernames or t.me links separated by commas, e.g. MFARussia,rusembc"),
        admins=p(env, "CHANWATCH_ADMINS", _ids, frozenset(),
                 "must be numeric Telegram user ids separated by commas (ask @userinfobot for yours)"),
        alert_chat=alert_chat_from(env),
        keywords=p(env, "CHANWATCH_KEYWORDS", _keywords, (), "must be search queries separated by ';'"),
        poll_interval=p(env, "CHANWATCH_POLL_INTERVAL", _positive(5), 60,
                        "must be a whole number of seconds, at least 5"),
        recheck_interval=p(env, "CHANWATCH_RECHECK_INTERVAL", _positive(30), 900,
                           "must be a whole number of seconds, at least 30"),
        recheck_window_ids=p(env, "CHANWATCH_RECHECK_WINDOW", _positive(1), 200,
                             "must be a whole number of messages, at least 1"),
        recheck_window_days=p(env, "CHANWATCH_RECHECK_DAYS", _positive(0), 3,
                              "must be a whole number of days"),
        sweep_per_hour=p(env, "CHANWATCH_SWEEP_PER_HOUR", _positive(0), 120,
                         "must be a whole number of requests an hour (0: no sweep)"),
        digest_schedule=p(env, "CHANWATCH_DIGEST_SCHEDULE", _cron, "0 8 * * *",
                          "must be a cron expression with 5 fields, e.g. '0 8 * * *' for 08:00 daily"),
        timezone=p(env, "CHANWATCH_TIMEZONE", _timezone, "UTC",
                   "must be an IANA time zone name, e.g. Europe/Berlin or America/Toronto"),
        join=p(env, "CHANWATCH_JOIN", _bool, False, "must be true or false"),
        flood_max_wait=p(env, "CHANWATCH_FLOOD_MAX_WAIT", _positive(0), 60,
                         "must be a whole number of seconds"),
        alert_max_age_hours=p(env, "CHANWATCH_ALERT_MAX_AGE", _positive(0), 48,
                              "must be a whole number of hours (0: alert however old a new post is)"),
        alert_media=p(env, "CHANWATCH_ALERT_MEDIA", _bool, False, "must be true or false"),
        server=p(env, "TG_SERVER", _server, None, "must be host:port, e.g. 149.154.167.40:443"),
        server_public_key=p(env, "TG_SERVER_PUBLIC_KEY", _pem, None,
                            "must be the path of a readable PEM file holding an RSA PUBLIC KEY"),
        server_dc=p(env, "TG_SERVER_DC", _positive(1), 2, "must be a data-centre number, e.g. 2"),
        media_kinds=p(env, "CHANWATCH_MEDIA", _media_kinds, frozenset({"photo", "document"}),
                      f"must be all, none, or kinds separated by commas from {', '.join(MEDIA_KINDS)}, "
                      "e.g. photo,document"),
        media_max_mb=p(env, "CHANWATCH_MEDIA_MAX_MB", _positive(0), 50,
                       "must be a whole number of megabytes (0: no cap)"),
        media_path=p(env, "CHANWATCH_MEDIA_DIR", lambda r: Path(r).expanduser(), None, "must be a path"),
        stats_days=p(env, "CHANWATCH_STATS_DAYS", _stats_days, 14,
                     "must be a whole number of days from 0 to 365 (0: no engagement re-reads)"),
        web_url=p(env, "CHANWATCH_WEB_URL", _web_url, "https://t.me",
                  "must be an http(s) URL with a host and no query, e.g. https://t.me"),
        web_rate=p(env, "CHANWATCH_WEB_RATE", _web_rate, 1.0,
                   "must be web-preview requests a second, more than 0 and at most 10, e.g. 1 or 0.5"),
        source=p(env, "CHANWATCH_SOURCE", _source, "auto",
                 "must be auto (the API when a user session is configured, else the web preview), "
                 "api or web"),
        fetch_origins=p(env, "CHANWATCH_FETCH_ORIGINS", _bool, False, "must be true or false"),
        web_token=web_token_from(env),
        reader=p(env, "CHANWATCH_READER", _reader_name, None,
                 "must be a name of 1 to 64 letters, digits and . _ : @ -, unique to this reader"),
        lease_seconds=lease_seconds_from(env),
    )
