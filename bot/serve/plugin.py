"""The chanwatch Datasette plugin: its hooks. Each one acts only on a Datasette that `bot.serve.app.build`
made (it carries a `chanwatch` ServeConfig), so another Datasette in the same process is left alone.

- `register_routes`: chanwatch's pages (`bot.serve.pages.ROUTES`), the home page at `/` among them.
- `permission_allowed`: only the archive's tables are served (`storage.browse.ARCHIVE_TABLES`; every
  other table, known or added later, is refused), arbitrary SQL and the database download are off,
  canned queries run.
- `asgi_wrapper`: the token and the closed paths (`bot.serve.access.guard`).
- `prepare_connection`: the SQL functions `storage.search` compiles queries to.
- `handle_exception`: the error pages, in place of Datasette's default (unregistered by `build`), which
  prints each exception with its local variables through rich when rich is installed: the token or
  archive rows in the server's output, and a ValueError outside an `except` block (404s became 500s).
- `render_cell`: links for the references Datasette cannot infer (no declared single-column foreign
  key): a post's origin channel, the channel id of the version, reading and file tables.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from datasette import Response, hookimpl
from datasette.app import Datasette
from datasette.utils.asgi import Base400
from datasette.views.base import DatasetteError
from markupsafe import Markup, escape

from bot.serve.access import DATABASE, ASGIApp, Receive, Scope, Send, guard
from bot.serve.pages import ROUTES
from bot.serve.pages import serve_config as _config
from storage.browse import ARCHIVE_TABLES
from storage.search import register_functions

log = logging.getLogger(__name__)

CLOSED_ACTIONS = frozenset({"execute-sql", "view-database-download", "permissions-debug", "debug-menu"})

CHANNEL_LINKS = frozenset({("posts", "origin_channel_id"), ("message_versions", "channel_id"),
                           ("message_stats", "channel_id"), ("tg_files", "channel_id"),
                           ("message_media", "channel_id")})
"""Channel ids Datasette cannot link itself: no foreign key is declared (messages.channel_id is one)."""


@hookimpl
def register_routes(datasette: Datasette) -> list[tuple[str, Callable[..., Any]]]:
    """chanwatch's pages (they answer 404 on a Datasette that is not chanwatch's)."""
    return list(ROUTES)


@hookimpl
def permission_allowed(datasette: Datasette, actor: Any, action: str, resource: Any) -> bool | None:
    """The archive's tables and canned queries only; no SQL of the visitor's, no download."""
    if _config(datasette) is None:
        return None
    if action in CLOSED_ACTIONS:
        return False
    if action == "view-table" and isinstance(resource, tuple):
        database, table = resource
        return database == DATABASE and table in ARCHIVE_TABLES
    if action == "view-database" and resource not in (DATABASE, None):
        return False
    return None


@hookimpl
def asgi_wrapper(datasette: Datasette) -> Callable[[ASGIApp], ASGIApp]:
    """Datasette behind the token check and the closed paths. The settings are looked up per request:
    Datasette builds its app (for `datasette.client`) before `build` has given it chanwatch's."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def chanwatch_app(scope: Scope, receive: Receive, send: Send) -> None:
            config = _config(datasette)
            await (app if config is None else guard(app, config.token))(scope, receive, send)

        return chanwatch_app

    return wrap


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Datasette) -> None:
    """The SQL functions search queries call (`chanwatch_fold`, `chanwatch_name`)."""
    if _config(datasette) is not None and database == DATABASE:
        register_functions(conn)


@hookimpl
def render_cell(row: Any, value: Any, column: str, table: str | None, database: str,
                datasette: Datasette) -> Markup | None:
    """A channel id Datasette cannot link as a link to chanwatch's page for that channel."""
    if (_config(datasette) is None or database != DATABASE or (table, column) not in CHANNEL_LINKS
            or not isinstance(value, int)):
        return None
    return Markup(f'<a href="/-/chanwatch/channel/{value}">{escape(str(value))}</a>')


@hookimpl
def handle_exception(datasette: Datasette, request: Any, exception: Exception
                     ) -> Callable[[], Awaitable[Response]]:
    """The error page: a client's mistake (404, 400, 403) with its message; anything else a 500 whose
    cause goes to the log by type and message only (no local variables, no archive rows). It answers
    for any Datasette in the process: `build` took Datasette's default handler away."""

    async def page() -> Response:
        if isinstance(exception, Base400 | DatasetteError):
            status, message = exception.status, str(exception.args[0] if exception.args else exception)
        else:
            status, message = 500, "Something went wrong on the server; its log says what."
            log.error("serve: %s on %s: %s", type(exception).__name__, request.path, exception)
        if request.path.endswith(".json"):
            return Response.json({"ok": False, "error": message, "status": status}, status=status)
        template = datasette.jinja_env.select_template([f"{status}.html", "error.html"])
        html = await template.render_async({"ok": False, "error": message, "status": status, "title": None,
                                            "urls": datasette.urls, "app_css_hash": datasette.app_css_hash(),
                                            "menu_links": lambda: []})
        return Response.html(html, status=status)

    return page
