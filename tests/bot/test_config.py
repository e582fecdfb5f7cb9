"""Settings: defaults, parsing, and one clear line naming the variable for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

HASH = "0123456789abcdef0123456789abcdef"
TOKEN = "123456789:AAH-secret_token_value_abcdefghijklmno"


def load(tmp_path: Path, **env: str) -> Settings:
    """Settings from `env` alone (an empty .env, so a developer's own .env cannot leak in)."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return load_settings(env_file=empty, environ=env)


def test_defaults_need_no_variables(tmp_path):
    settings = load(tmp_path)
    assert settings.poll_interval == 60 and settings.channels == () and settings.api_id is None


def test_values_are_parsed(tmp_path):
    settings = load(
        tmp_path, TG_API_ID="12345", TG_API_HASH=HASH, TG_BOT_TOKEN=TOKEN,
        CHANWATCH_CHANNELS="@MFARussia, https://t.me/rusembc rusembc", CHANWATCH_ADMINS="1, 2",
        CHANWATCH_ALERT_CHAT="-1001234", CHANWATCH_KEYWORDS="sanctions OR санкции; #Arctic",
        CHANWATCH_JOIN="yes", TG_SERVER="[::1]:4430", CHANWATCH_DIGEST_SCHEDULE="30 7 * * 1-5",
    )
    assert settings.channels == ("MFARussia", "rusembc")
    assert settings.admins == {1, 2} and settings.alert_chat == -1001234
    assert settings.keywords == ("sanctions OR санкции", "#Arctic")
    assert settings.join is True and settings.server == ("::1", 4430)


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("CHANWATCH_POLL_INTERVAL=120\nCHANWATCH_DB=/tmp/x.db\n")
    settings = load_settings(env_file=env_file, environ={"CHANWATCH_POLL_INTERVAL": "30"})
    assert settings.poll_interval == 30 and settings.db_path == Path("/tmp/x.db")


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("TG_API_ID", "abc", "numeric api_id"),
        ("CHANWATCH_POLL_INTERVAL", "1", "at least 5"),
        ("CHANWATCH_CHANNELS", "MFARussia,not a channel!", "channel usernames"),
        ("CHANWATCH_ADMINS", "me", "numeric Telegram user ids"),
        ("CHANWATCH_DIGEST_SCHEDULE", "every day", "cron expression"),
        ("CHANWATCH_TIMEZONE", "Mars/Olympus", "IANA time zone"),
        ("CHANWATCH_JOIN", "maybe", "true or false"),
        ("TG_SERVER", "localhost", "host:port"),
        ("TG_SERVER_PUBLIC_KEY", "/nonexistent.pem", "PEM file"),
        ("CHANWATCH_MEDIA", "photo,pictures", "kinds separated by commas"),
        ("CHANWATCH_MEDIA_MAX_MB", "-1", "whole number of megabytes"),
        ("CHANWATCH_MEDIA_MAX_MB", "big", "0: no cap"),
        ("CHANWATCH_WEB_URL", "t.me", "http(s) URL"),
        ("CHANWATCH_WEB_URL", "ftp://t.me", "http(s) URL"),
        ("CHANWATCH_WEB_RATE", "0", "more than 0 and at most 10"),
        ("CHANWATCH_WEB_RATE", "fast", "requests a second"),
        ("CHANWATCH_WEB_RATE", "nan", "at most 10"),
        ("CHANWATCH_SOURCE", "telegram", "auto (the API when a user session is configured, else"),
        ("CHANWATCH_FETCH_ORIGINS", "sometimes", "true or false"),
        ("CHANWATCH_LEASE_SECONDS", "5", "at least 10"),
        ("CHANWATCH_LEASE_SECONDS", "a minute", "whole number of seconds"),
    ],
)
def test_bad_value_names_the_variable_and_the_fix(tmp_path, name, value, fix):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **{name: value})
    assert caught.value.variable == name
    assert str(caught.value).startswith(f"{name}: ") and fix in str(caught.value)


@pytest.mark.parametrize("name", ["TG_API_HASH", "TG_BOT_TOKEN"])
def test_bad_secret_is_not_echoed(tmp_path, name):
    secret = "not-valid-secret-123:xyz"
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **{name: secret})
    assert secret not in str(caught.value)


def test_secrets_stay_out_of_repr(tmp_path):
    settings = load(tmp_path, TG_API_ID="1", TG_API_HASH=HASH, TG_BOT_TOKEN=TOKEN, TG_SESSION="1Aabc==")
    assert HASH not in repr(settings) and TOKEN not in repr(settings) and "1Aabc" not in repr(settings)
    assert set(settings.secrets()) == {HASH, TOKEN, "1Aabc=="}


@pytest.mark.parametrize(
    ("missing", "variable"),
    [("TG_API_ID", "TG_API_ID"), ("TG_API_HASH", "TG_API_HASH")],
)
def test_run_with_a_session_and_a_bot_requires_the_api_credentials_by_name(tmp_path, missing, variable):
    env = {"TG_API_ID": "1", "TG_API_HASH": HASH, "TG_SESSION": "x", "TG_BOT_TOKEN": TOKEN}
    del env[missing]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **env).require_run()
    assert caught.value.variable == variable and "the user session needs it" in str(caught.value)


def test_run_with_no_credentials_at_all_reads_by_web_and_demands_nothing(tmp_path):
    settings = load(tmp_path, TG_API_ID="", TG_SESSION="", TG_BOT_TOKEN="")  # as config.example.env has them
    settings.require_run()
    assert not settings.has_user_session and settings.default_source == "web"


def test_run_with_a_bot_token_but_no_api_id_names_tg_api_id_and_why(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, TG_BOT_TOKEN=TOKEN).require_run()
    assert caught.value.variable == "TG_API_ID"
    assert "the bot (TG_BOT_TOKEN) needs it" in str(caught.value) and TOKEN not in str(caught.value)


def test_run_with_a_bot_only_needs_no_session_and_reads_by_web(tmp_path):
    settings = load(tmp_path, TG_API_ID="1", TG_API_HASH=HASH, TG_BOT_TOKEN=TOKEN)
    settings.require_run()
    assert settings.default_source == "web"


def test_source_auto_reads_by_api_with_a_session_and_web_forces_the_preview(tmp_path):
    full = {"TG_API_ID": "1", "TG_API_HASH": HASH, "TG_BOT_TOKEN": TOKEN}
    assert load(tmp_path, **full, TG_SESSION="x").default_source == "api"
    assert load(tmp_path, **full, TG_SESSION_FILE="user.session").default_source == "api"
    assert load(tmp_path, **full, TG_SESSION="x", CHANWATCH_SOURCE="WEB").default_source == "web"


def test_source_api_without_a_session_names_the_session_and_chanwatch_login(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, TG_API_ID="1", TG_API_HASH=HASH, CHANWATCH_SOURCE="api").require_run()
    assert caught.value.variable == "TG_SESSION"
    assert "TG_SESSION_FILE" in str(caught.value) and "chanwatch login" in str(caught.value)


def test_a_bad_source_names_the_three_choices(tmp_path):
    with pytest.raises(ConfigError, match="CHANWATCH_SOURCE: must be auto .*, api or web; got 'telegram'"):
        load(tmp_path, CHANWATCH_SOURCE="telegram")


def test_missing_env_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="--env-file"):
        load_settings(env_file=tmp_path / "nope.env", environ={})


def test_example_config_loads_and_documents_every_setting():
    example = Path(__file__).resolve().parents[2] / "config.example.env"
    settings = load_settings(env_file=example, environ={})
    assert settings.keywords == ("sanctions OR санкции", "#Arctic OR Арктика")
    import re

    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example.read_text(), re.M))
    source = (Path(__file__).resolve().parents[2] / "bot" / "config.py").read_text()
    used = set(re.findall(r'"((?:TG|CHANWATCH)_[A-Z0-9_]+)"', source))
    assert used <= documented, f"undocumented: {used - documented}"


def test_the_bot_session_lives_beside_the_users_session_file_else_beside_the_archive(tmp_path):
    assert Settings(db_path=tmp_path / "a.db").bot_session_path == tmp_path / "a-bot.session"
    assert Settings(session_file=tmp_path / "me").bot_session_path == tmp_path / "me-bot.session"
    assert Settings(session_file=tmp_path / "me.session").bot_session_path == tmp_path / "me-bot.session"
    assert Settings(bot_session_file=tmp_path / "b", session_file=tmp_path / "me").bot_session_path == (
        tmp_path / "b.session")
    assert Settings(db_path=Path(":memory:")).bot_session_path is None
    settings = load_settings(environ={"TG_BOT_SESSION_FILE": str(tmp_path / "bot.session")})
    assert settings.bot_session_path == tmp_path / "bot.session"


def test_media_settings_default_to_photos_and_documents_up_to_50_mb_beside_the_archive(tmp_path):
    settings = load(tmp_path, CHANWATCH_DB=str(tmp_path / "a.db"))
    assert settings.media_kinds == frozenset({"photo", "document"}) and settings.media_max_mb == 50
    assert settings.media_dir == tmp_path / "media"
    assert Settings(db_path=Path(":memory:")).media_dir == Path("media")


def test_media_settings_read_all_none_a_list_a_cap_and_a_folder(tmp_path):
    assert load(tmp_path, CHANWATCH_MEDIA="all").media_kinds is None
    assert load(tmp_path, CHANWATCH_MEDIA="none").media_kinds == frozenset()
    listed = load(tmp_path, CHANWATCH_MEDIA="Photo, video", CHANWATCH_MEDIA_MAX_MB="0",
                  CHANWATCH_MEDIA_DIR=str(tmp_path / "files"))
    assert listed.media_kinds == frozenset({"photo", "video"}) and listed.media_max_mb == 0
    assert listed.media_dir == tmp_path / "files"


def test_web_preview_defaults_to_t_me_at_one_request_a_second_and_reads_a_mirror_and_a_rate(tmp_path):
    assert (load(tmp_path).web_url, load(tmp_path).web_rate) == ("https://t.me", 1.0)
    settings = load(tmp_path, CHANWATCH_WEB_URL="http://127.0.0.1:8080/", CHANWATCH_WEB_RATE="0.5")
    assert (settings.web_url, settings.web_rate) == ("http://127.0.0.1:8080", 0.5)


def test_the_source_defaults_to_auto_reads_api_or_web_and_origins_are_not_fetched_unless_asked(tmp_path):
    assert (load(tmp_path).source, load(tmp_path).fetch_origins) == ("auto", False)
    settings = load(tmp_path, CHANWATCH_SOURCE="Web", CHANWATCH_FETCH_ORIGINS="true")
    assert (settings.source, settings.fetch_origins) == ("web", True)
    assert load(tmp_path, CHANWATCH_SOURCE="api").source == "api"


def test_the_web_token_is_a_secret_and_a_short_one_is_refused_without_showing_it(tmp_path):
    web = "served-archive-token-0123"
    settings = load(tmp_path, CHANWATCH_WEB_TOKEN=web)
    assert settings.web_token == web and web not in repr(settings) and web in settings.secrets()
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, CHANWATCH_WEB_TOKEN="short-one")
    assert caught.value.variable == "CHANWATCH_WEB_TOKEN" and "short-one" not in str(caught.value)


def test_the_lease_period_defaults_to_a_minute_and_reads_whole_seconds(tmp_path):
    assert load(tmp_path).lease_seconds == 60
    assert load(tmp_path, CHANWATCH_LEASE_SECONDS="10").lease_seconds == 10
