"""`chanwatch serve`: what it refuses before listening (one line, exit 2), and a real server on a free
port that answers over HTTP and stops on Ctrl-C."""

from __future__ import annotations

import httpx
import pytest

from tests.bot.conftest import run_cli
from tests.serve.server import served


@pytest.fixture(autouse=True)
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHANWATCH_WEB_TOKEN", raising=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_host_other_than_loopback_is_refused_without_a_token(capsys, archive, host):
    code, out, err = run_cli(capsys, "--db", str(archive[0]), "serve", "--host", host, "--port", "0")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"chanwatch: --host {host} can be reached from other machines: "
                          "set CHANWATCH_WEB_TOKEN")


def test_a_token_too_short_to_be_safe_is_refused_without_showing_it(capsys, archive, monkeypatch):
    monkeypatch.setenv("CHANWATCH_WEB_TOKEN", "secret1")
    code, _, err = run_cli(capsys, "--db", str(archive[0]), "serve", "--host", "0.0.0.0", "--port", "0")
    assert code == 2 and err.count("\n") == 1
    assert "CHANWATCH_WEB_TOKEN: must be at least 16 characters" in err and "secret1" not in err


def test_a_missing_archive_is_one_line_before_anything_listens(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--db", str(tmp_path / "none.db"), "serve", "--port", "0")
    assert code == 2 and err.startswith("chanwatch: no archive at ") and err.count("\n") == 1


def test_serve_on_port_zero_prints_its_address_answers_and_stops_on_ctrl_c(archive):
    with served(archive[0]) as address:
        home = httpx.get(address)
        assert home.status_code == 200 and "@MFARussia" in home.text
        assert httpx.get(address + "-/versions.json").status_code == 404


def test_with_a_token_the_served_archive_asks_for_it(archive):
    token = "a-token-for-the-served-archive"
    with served(archive[0], "--host", "127.0.0.1", env={"CHANWATCH_WEB_TOKEN": token}) as address:
        assert httpx.get(address).status_code == 401
        assert httpx.get(address, headers={"Authorization": f"Bearer {token}"}).status_code == 200
