"""Who may read the served archive, and which of Datasette's own paths are open: one ASGI middleware
in front of Datasette (installed through the `asgi_wrapper` hook).

- With a token (CHANWATCH_WEB_TOKEN) every request must carry it: `Authorization: Bearer TOKEN`, or the
  cookie that one visit with `?token=TOKEN` sets (HttpOnly, SameSite=Strict; the visit is redirected
  to the same address without the token, so it stays out of history and logs). Anything else gets a
  401 page that holds nothing from the archive. Without a token (loopback only) every request passes.
- Datasette's introspection pages (/-/versions, /-/plugins, /-/settings, /-/metadata, /-/actor…) and
  the database download answer 404: only the archive's pages, chanwatch's pages and static files are
  served.
- Table pages never show, filter, sort or facet on a withheld column (`storage.browse.WITHHELD_COLUMNS`)
  and hide the derived and bulky ones (`HIDDEN_COLUMNS`) unless asked for; a post's or a channel's row page is
  chanwatch's own page for it, and the posts table's search box (`_search`) is chanwatch's search.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from storage.browse import HIDDEN_COLUMNS, WITHHELD_COLUMNS

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "chanwatch_token"
DATABASE = "archive"
"""The name the archive is served under: /archive/posts, /archive/messages…"""

OPEN_PREFIXES = ("/-/static/", "/-/static-plugins/", "/-/chanwatch")
"""The only /-/ paths served: Datasette's static files and chanwatch's pages."""

UNAUTHORIZED_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chanwatch: token needed</title></head>
<body><h1>This archive needs its token</h1>
<p>Open the address you were given (it ends in <code>?token=...</code>) once in this browser,
or send the header <code>Authorization: Bearer TOKEN</code>.
The token is the server's CHANWATCH_WEB_TOKEN.</p></body></html>
"""

NOT_FOUND_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1>Not found</h1><p><a href="/">chanwatch</a></p></body></html>
"""


def cookie_value(token: str) -> str:
    """What the cookie holds: a keyed hash of the token, so the cookie jar never holds the token."""
    return hmac.new(token.encode(), b"chanwatch serve cookie", hashlib.sha256).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _cookies(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in (_header(scope, b"cookie") or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            found[name] = value
    return found


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def presented(scope: Scope, token: str) -> bool:
    """Whether the request carries the token: the bearer header or the cookie."""
    auth = _header(scope, b"authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and _same(value.strip(), token):
        return True
    return _same(_cookies(scope).get(COOKIE, ""), cookie_value(token))


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _table_of(path: str) -> tuple[str, str] | None:
    """(table, rest) for a path under /archive/, e.g. ('posts', '/5') for /archive/posts/5."""
    prefix = f"/{DATABASE}/"
    if not path.startswith(prefix):
        return None
    table, _, rest = path[len(prefix):].partition("/")
    table = table.split(".", 1)[0]  # /archive/posts.json
    return table, ("/" + rest if rest else "")


def _mentions(key: str, value: str, columns: tuple[str, ...]) -> bool:
    """Whether a query-string pair reads one of `columns`: a filter (`col__gt=`), `_sort=col`,
    `_facet=col`, `_col=col`, `_label=col`…"""
    if key.split("__", 1)[0] in columns:
        return True
    return key.startswith("_") and value in columns


def table_query(table: str, query: str) -> str:
    """The query string a table page is served with: pairs touching a withheld column dropped, and the
    hidden and withheld columns left out (`_nocol`) unless a hidden one is asked for by `_col`."""
    withheld = WITHHELD_COLUMNS.get(table, ())
    hidden = HIDDEN_COLUMNS.get(table, ())
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not _mentions(k, v, withheld)]
    asked = {v for k, v in pairs if k == "_col"}
    pairs = [(k, v) for k, v in pairs if not (k == "_nocol" and v in withheld + hidden)]
    pairs += [("_nocol", c) for c in (*withheld, *(c for c in hidden if c not in asked))]
    return urlencode(pairs)


def guard(app: ASGIApp, token: str | None) -> ASGIApp:
    """`app` behind the token check and the path rules of this module's docstring."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path: str = scope.get("path", "/")
        query = scope.get("query_string", b"").decode("latin-1")
        if token is not None and not presented(scope, token):
            given = dict(parse_qsl(query)).get("token")
            if given is None or not _same(given, token):
                await _respond(send, 401, UNAUTHORIZED_PAGE,
                               [(b"www-authenticate", b'Bearer realm="chanwatch"')])
                return
            rest = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"])
            here = "/" + quote(path, safe="/~:@!$&'()*+,;=").lstrip("/")  # never //host: no open redirect
            location = here + ("?" + rest if rest else "")
            cookie = f"{COOKIE}={cookie_value(token)}; Path=/; HttpOnly; SameSite=Strict"
            await _respond(send, 303, b"", [(b"location", location.encode("ascii")),
                                            (b"set-cookie", cookie.encode())])
            return
        if path.startswith("/-/") and not path.startswith(OPEN_PREFIXES) or path.endswith(".db"):
            await _respond(send, 404, NOT_FOUND_PAGE)
            return
        where = _table_of(path)
        if where is not None:
            table, rest = where
            number = rest.strip("/").split(".", 1)[0]
            if table in ("posts", "channels") and number.isdigit():
                page = "post" if table == "posts" else "channel"
                await _respond(send, 302, b"", [(b"location", f"/-/chanwatch/{page}/{number}".encode())])
                return
            words = dict(parse_qsl(query)).get("_search") if table == "posts" else None
            if words and not rest:  # Datasette's raw FTS misses stems and capital Cyrillic: search ours
                await _respond(send, 302, b"", [(b"location", b"/-/chanwatch/search?" + urlencode(
                    {"q": words}).encode("ascii"))])
                return
            if not rest and (table in WITHHELD_COLUMNS or table in HIDDEN_COLUMNS):
                changed = table_query(table, query).encode("latin-1")
                scope = {**scope, "query_string": changed}
        await app(scope, receive, send)

    return guarded
