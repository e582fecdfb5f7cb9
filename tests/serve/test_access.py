"""What the served archive refuses: the tables that are not the archive, Datasette's introspection
pages, SQL of the visitor's, the download, withheld columns; and the token rules."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from bot.serve.access import COOKIE, cookie_value, guard, table_query
from bot.serve.app import build
from tests.serve.archive import RULE, SUBSCRIBER
from tests.serve.conftest import TOKEN

PRIVATE = ("subscribers", "rules", "alerts", "media_runs", "readers", "leases", "account_channels", "roles")


@pytest.mark.parametrize("table", PRIVATE)
async def test_tables_that_are_not_the_archive_are_refused_in_every_format(client, table):
    for suffix in ("", ".json", ".csv"):
        page = await client.get(f"/archive/{table}{suffix}")
        assert page.status_code == 403, (table, suffix)
        assert str(SUBSCRIBER) not in page.text


async def test_a_table_added_to_the_schema_later_is_not_served_until_named_as_archive(tmp_path, archive):
    path = tmp_path / "later.db"
    with sqlite3.connect(archive[0]) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
        copy.execute("CREATE TABLE future_private (chat_id INTEGER)")
        copy.execute("INSERT INTO future_private VALUES (987654321)")
    app = build(path, media_dir=tmp_path).app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        page = await c.get("/archive/future_private.json")
        listing = await c.get("/archive")
    assert page.status_code == 403 and "987654321" not in page.text
    assert "future_private" not in listing.text


async def test_no_page_of_the_archive_shows_a_subscriber_or_a_rule(client):
    for url in ("/", "/archive", "/archive.json", "/-/chanwatch/search?q=secret", "/-/chanwatch/reports",
                "/archive/messages", "/archive/channels.json"):
        page = await client.get(url)
        assert page.status_code in (200, 400), url
        assert str(SUBSCRIBER) not in page.text and RULE not in page.text, url


@pytest.mark.parametrize("path", ["/-/versions", "/-/versions.json", "/-/plugins.json", "/-/settings.json",
                                  "/-/config", "/-/databases.json", "/-/threads.json", "/-/actor.json",
                                  "/-/metadata.json", "/-/permissions", "/-/messages", "/-/allow-debug",
                                  "/-/patterns", "/archive.db", "/_memory", "/_internal.json"])
async def test_datasettes_introspection_pages_and_the_download_are_closed(client, path):
    page = await client.get(path)
    assert page.status_code == (403 if path.startswith("/_internal") else 404)  # Datasette's own refusal
    assert "datasette_version" not in page.text and "sqlite_version" not in page.text


async def test_sql_of_the_visitors_own_is_refused_but_canned_queries_run(client):
    sql = "select chat_id from subscribers"
    assert (await client.get("/archive", params={"sql": sql})).status_code == 403
    assert (await client.get("/archive.json", params={"sql": sql})).status_code == 403
    where = await client.get("/archive/posts.json",
                             params={"_where": "id in (select chat_id from subscribers)"})
    assert where.status_code == 403
    canned = await client.get("/archive/forwards_by_origin.json", params={"channel": "RussianEmbassyUK",
                                                                        "_shape": "array"})
    assert canned.status_code == 200
    assert [(r["origin"], r["forwards"]) for r in canned.json()] == [("MFARussia", 2)]


async def test_the_access_hash_is_never_shown_filtered_sorted_or_faceted(client, archive):
    with sqlite3.connect(archive[0]) as conn:
        hashes = [str(h) for (h,) in conn.execute(
            "SELECT access_hash FROM channels WHERE access_hash IS NOT NULL")]
    assert hashes
    for params in ({}, {"_col": "access_hash"}, {"_sort": "access_hash"}, {"_facet": "access_hash"},
                   {"access_hash__gt": "0"}, {"access_hash": hashes[0]}):
        for suffix in ("", ".json", ".csv"):
            page = await client.get(f"/archive/channels{suffix}", params=params)
            assert page.status_code == 200, (params, suffix)
            assert not any(h in page.text for h in hashes), (params, suffix)
    rows = (await client.get("/archive/channels.json", params={"access_hash": "1", "_shape": "array"})).json()
    assert len(rows) == 3  # the filter was dropped, not applied


async def test_derived_search_columns_are_hidden_unless_asked_for(client):
    rows = (await client.get("/archive/posts.json", params={"_shape": "array"})).json()
    assert rows and not {"words", "stems", "tags"} & set(rows[0])
    asked = (await client.get("/archive/posts.json", params={"_shape": "array", "_col": "stems"})).json()
    assert "stems" in asked[0] and "words" not in asked[0]


def test_the_table_query_drops_withheld_pairs_and_adds_nocol():
    assert table_query("channels", "_sort=access_hash&watched=1&access_hash__gt=5") == (
        "watched=1&_nocol=access_hash")
    assert table_query("posts", "_col=words") == "_col=words&_nocol=stems&_nocol=tags"


async def test_row_pages_of_posts_and_channels_are_chanwatchs_own_pages(client):
    post = await client.get("/archive/posts/2")
    assert post.status_code == 302 and post.headers["location"] == "/-/chanwatch/post/2"
    channel = await client.get("/archive/channels/1001.json")
    assert channel.status_code == 302 and channel.headers["location"] == "/-/chanwatch/channel/1001"


# -- the token ------------------------------------------------------------------------------------


async def test_with_a_token_a_request_without_it_gets_a_401_page_with_nothing_of_the_archive(guarded):
    for url in ("/", "/archive/posts.json", "/-/chanwatch/search?q=sanctions", "/-/chanwatch/post/2",
                "/-/static/app.css"):
        page = await guarded.get(url)
        assert page.status_code == 401, url
        assert "needs its token" in page.text
        assert "MFARussia" not in page.text and "sanctions" not in page.text


async def test_a_wrong_bearer_or_cookie_is_refused_and_the_right_bearer_passes(guarded):
    wrong = "Bearer " + TOKEN[:-1] + "x"
    assert (await guarded.get("/", headers={"Authorization": wrong})).status_code == 401
    assert (await guarded.get("/", headers={"Cookie": f"{COOKIE}={TOKEN}"})).status_code == 401
    assert (await guarded.get("/?token=wrong-token-wrong-token")).status_code == 401
    page = await guarded.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200 and "MFARussia" in page.text


async def test_the_token_in_the_address_sets_a_strict_httponly_cookie_and_leaves_the_address(guarded):
    visit = await guarded.get("/-/chanwatch/search", params={"q": "санкция", "token": TOKEN})
    assert visit.status_code == 303
    assert visit.headers["location"] == "/-/chanwatch/search?q=%D1%81%D0%B0%D0%BD%D0%BA%D1%86%D0%B8%D1%8F"
    cookie = visit.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    guarded.cookies.set(COOKIE, cookie_value(TOKEN))
    page = await guarded.get(visit.headers["location"])
    assert page.status_code == 200 and "<mark>санкциями</mark>" in page.text


async def test_the_token_visit_redirects_only_within_the_site(guarded):
    sent = []

    async def send(message):
        sent.append(message)

    async def never_called(scope, receive, send):
        raise AssertionError("the visit with the token is answered by the guard")

    scope = {"type": "http", "path": "//evil.example/x", "query_string": f"token={TOKEN}".encode(),
             "headers": []}
    await guard(never_called, TOKEN)(scope, None, send)
    assert sent[0]["status"] == 303 and dict(sent[0]["headers"])[b"location"] == b"/evil.example/x"
    visit = await guarded.get(f"/-/chanwatch/channel/%D0%BC%D0%B8%D0%B4?token={TOKEN}")
    assert visit.headers["location"] == "/-/chanwatch/channel/%D0%BC%D0%B8%D0%B4"


async def test_the_raw_json_of_messages_is_hidden_unless_asked_for(client):
    rows = (await client.get("/archive/messages.json", params={"_shape": "array"})).json()
    assert rows and "raw" not in rows[0] and "text" in rows[0]
    asked = (await client.get("/archive/messages.json", params={"_shape": "array", "_col": "raw"})).json()
    assert json.loads(asked[0]["raw"])["_"] == "Message"
