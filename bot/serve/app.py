"""The served archive assembled: a Datasette over the archive file, read-only, with chanwatch's plugin,
metadata and templates, and the settings that keep it to the archive (no SQL of the visitor's, no
download, no suggested facets on a large archive).

    ds = build(Path("chanwatch.db"), media_dir=Path("media"), token=None)
    app = ds.app()      # an ASGI app: uvicorn runs it (`chanwatch serve`), httpx drives it in tests
"""

from __future__ import annotations

from pathlib import Path

from datasette.app import Database, Datasette
from datasette.plugins import pm

from bot.serve import plugin
from bot.serve.access import DATABASE
from bot.serve.metadata import metadata
from bot.serve.pages import ServeConfig

TEMPLATES = Path(__file__).with_name("templates")
SETTINGS = {
    "default_allow_sql": False,
    "allow_download": False,
    "allow_csv_stream": True,
    "suggest_facets": False,  # each suggestion is a query per column: slow over a million messages
    "default_page_size": 50,
    "sql_time_limit_ms": 5000,
}


DEFAULT_ERRORS = "datasette.handle_exception"


def build(db_path: Path, *, media_dir: Path, token: str | None = None) -> Datasette:
    """A Datasette serving the archive at `db_path` read-only (SQLite's `mode=ro`: the daemon may be
    writing to it meanwhile) under the name `archive`, with chanwatch's pages and rules."""
    if not pm.is_registered(plugin):
        pm.register(plugin, name="chanwatch")
    # Ours replaces Datasette's error page hook, which prints each exception with its local variables
    # through rich when rich is installed (the CLI's tables use it): the token or archive rows in the
    # server's output, and a ValueError outside an except block that turned every 404 into a 500.
    if pm.has_plugin(DEFAULT_ERRORS):
        pm.unregister(name=DEFAULT_ERRORS)
    ds = Datasette(metadata=metadata(), template_dir=str(TEMPLATES), settings=SETTINGS)
    ds.chanwatch = ServeConfig(media_dir=media_dir, token=token)  # type: ignore[attr-defined]
    ds.remove_database("_memory")
    ds.add_database(Database(ds, path=str(db_path), is_mutable=True), name=DATABASE)
    return ds
