"""`chanwatch search`, and how a post reads on the terminal (`format_post`, also used by `rules test`)
and as a `--json` line (`post_json`). The search itself is `storage.search`."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from bot.cli.common import EXIT_OK, CliError, Command, archive_path, int_at_least, open_archive, plural
from bot.formatting import channel_label, minute
from storage import search
from storage.exchange.export import files_json
from storage.records import Post


def _one_line(text: str, width: int) -> str:
    """Collapse whitespace and shorten to `width` characters."""
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" …") if text else ""


def post_json(post: Post, files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A post as one `--json` line: its text, origin, every sighting with a link, and its files
    (`storage.exchange.export.file_json`, as export writes them)."""
    return {
        "post_id": post.id,
        "text": post.text,
        "date": post.date,
        "lang": post.lang,
        "media_kind": post.media_kind,
        "edited_at": post.edited_at,
        "edited": post.edited,
        "snippet": post.snippet,
        "origin": {
            "channel_id": post.origin_channel_id, "username": post.origin_username,
            "title": post.origin_title, "message_id": post.origin_message_id,
            "author": post.origin_author, "date": post.date, "url": post.origin_url,
        },
        "sightings": [
            {"channel_id": s.channel_id, "username": s.username, "title": s.title,
             "message_id": s.message_id, "date": s.date, "relation": s.relation, "url": s.url,
             "deleted_at": s.deleted_at, "last_seen": s.last_seen, "deleted_via": s.deleted_via}
            for s in post.sightings
        ],
        "files": files or [],
    }


def format_post(post: Post) -> str:
    """A post for people: date, origin, who else carried it, a snippet and links."""
    origin = channel_label(post.origin_username, post.origin_title, post.origin_channel_id)
    head = f"{minute(post.date)}  {origin}"
    if post.origin_title and post.origin_username:
        head += f" ({post.origin_title})"
    others = [s for s in post.sightings if s.relation != "original"]
    if others:
        names = list(dict.fromkeys(channel_label(s.username, s.title, s.channel_id).lstrip("@")
                                   for s in others))
        verb = "forwarded by" if any(s.relation == "forward" for s in others) else "copied by"
        more = f", +{len(names) - 1} more" if len(names) > 1 else ""
        head += f"  · {verb} {names[0]}{more}"
    flags = [flag for flag, on in (
        ("edited", post.edited),
        ("deleted", any(s.deleted_at for s in post.sightings)),
    ) if on]
    if flags:
        head += f"  [{', '.join(flags)}]"
    snippet = _one_line(post.snippet or post.text, 300) or f"({post.media_kind or 'no text'})"
    links = list(dict.fromkeys(
        [u for u in (post.origin_url,) if u] + [s.url for s in post.sightings]
    ))[:3]
    lines = [head, *textwrap.wrap(snippet, width=100, initial_indent="  ", subsequent_indent="  ")]
    if links:
        lines.append("  " + "  ".join(links))
    lines += [f"  {s.url} {s.deletion}" for s in post.sightings if s.deletion][:3]
    return "\n".join(lines)


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="QUERY", nargs="?",  # "?": a QUERY starting with - (bot.cli.app)
                        help="e.g. 'canada sanctions', 'санкции OR sanctions', '#RussiaCanada'")
    parser.add_argument("--limit", type=int_at_least(0), default=20,
                        help="posts per page (default 20); 0 prints only how many match")
    parser.add_argument("--offset", type=int_at_least(0), default=0, help="skip this many posts")
    parser.add_argument("--json", action="store_true", help="one JSON object per post per line")
    limit = search.COUNT_LIMIT
    parser.add_argument("--exact", action="store_true",
                        help=f"count every match, and rank all of them for sort:rank (slower past "
                             f"{limit:,} matches, where the total otherwise shows as {limit:,}+)")


def _summary(page: search.SearchPage, query: str, limit: int, offset: int) -> str:
    """The first line: how many posts match and which of them follow, true for every --limit and
    --offset (`--limit 0` asks for the count alone)."""
    noun = plural(page.total, "post", exact=page.total_exact)
    if page.total == 0:
        return f"no posts found for {query!r}"
    if page.posts:
        first, last = offset + 1, offset + len(page.posts)
        return f"{page.total_text} {noun} for {query!r}; showing {first}-{last}"
    one = noun == "post"
    count = f"{page.total_text} {noun} {'matches' if one else 'match'} {query!r}"
    if limit == 0:
        return count
    return f"{count}; --offset {offset} skips {'it' if one else 'them all'}: lower --offset"


def _search(args: argparse.Namespace) -> int:
    if args.query is None:
        raise CliError("search: give a query, e.g. chanwatch search 'canada sanctions'")
    with open_archive(archive_path(args), readonly=True) as conn:
        page = search.search(conn, args.query, limit=args.limit, offset=args.offset, exact_total=args.exact)
        if args.json:
            for post in page.posts:
                print(json.dumps(post_json(post, files_json(conn, post.id)), ensure_ascii=False))
            return EXIT_OK
        print(_summary(page, args.query, args.limit, args.offset))
        for name in page.unknown_channels:
            print(f"note: the archive knows no channel {name!r} (see chanwatch channels list)",
                  file=sys.stderr)
        if not page.posts:
            return EXIT_OK
        last = args.offset + len(page.posts)
        print()
        print("\n\n".join(format_post(p) for p in page.posts))
        if last < page.total:
            print(f"\nmore: --offset {last}")
    return EXIT_OK


COMMANDS = (
    Command("search", "search the archive (the query language of /search and alert rules)", _search,
            _search_arguments,
            "Search canonical posts. Words match by stem (sanction ~ sanctions, Канада ~ Канаде); "
            "OR, -word, \"exact phrase\", prefix*, #hashtag, channel:, from:, since:, until:, lang:, is:."),
)
