"""Datasette metadata for the archive: titles, what is hidden, facets, labels, canned queries, and the
tables that are not served at all. Built from `storage.browse`'s lists, so a table added to the schema
later is not served until it is named there as part of the archive."""

from __future__ import annotations

from typing import Any

from bot.serve.access import DATABASE
from storage.browse import CANNED_QUERIES, DERIVED_TABLES, PRIVATE_TABLES

TABLES: dict[str, dict[str, Any]] = {
    "channels": {
        "description": "Every channel the archive knows: the watched ones and those seen only as a forward "
                       "origin. A channel's page: /-/chanwatch/channel/ID.",
        "label_column": "username",
        "facets": ["watched", "status", "source"],
        "sort": "username",
    },
    "posts": {
        "description": "One row per canonical post, however many channels carried it; its page with every "
                       "sighting: /-/chanwatch/post/ID. The folded words, stems and tags are hidden "
                       "(add ?_col=words to see them).",
        "facets": ["media_kind", "language", "origin_username"],
        "sort_desc": "date",
    },
    "messages": {
        "description": "Every message seen in a channel: a sighting of a post (original, forward or copy). "
                       "The raw JSON Telegram sent is hidden (add ?_col=raw to see it).",
        "facets": ["relation", "channel_id"],
        "sort_desc": "date",
    },
    "message_versions": {"description": "The earlier versions of edited messages.",
                         "sort_desc": "replaced_at"},
    "message_stats": {"description": "Engagement readings: views, forwards, replies, reactions over time."},
    "tg_files": {"description": "Files the messages carry, and whether they were downloaded.",
                 "facets": ["kind", "state"]},
    "message_media": {"description": "Which message carries which file."},
    "media_files": {"description": "Downloaded files, by SHA-256; /-/chanwatch/media/SHA serves one.",
                    "label_column": "path", "facets": ["mime_type"]},
    **{name: {"hidden": True} for name in DERIVED_TABLES},
    **{name: {"allow": False, "hidden": True} for name in PRIVATE_TABLES},
}


def metadata() -> dict[str, Any]:
    """The whole metadata document Datasette is started with."""
    return {
        "title": "chanwatch archive",
        "description": "Public Telegram channels as chanwatch archived them. Search, posts and reports: "
                       "/-/chanwatch",
        "allow_sql": False,
        "databases": {
            DATABASE: {
                "allow_sql": False,
                "tables": TABLES,
                "queries": {name: dict(query) for name, query in CANNED_QUERIES.items()},
            },
        },
    }
