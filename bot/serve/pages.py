"""chanwatch's own pages inside Datasette: home, search, a query's matches over time, a post, a channel,
the amplification report and downloaded media. Each handler reads the archive through
`Database.execute_fn` with a `storage` function (no SQL here), builds plain values and renders a Jinja
template from bot/serve/templates/ (autoescaped: user text is never marked safe; only the SVG of
`bot.charts`, the HTML of `bot.report_html` and `storage.word_diff.html_diff`, which escape every
text themselves, are).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from datasette.app import Datasette
from datasette.utils.asgi import NotFound, Request, Response
from markupsafe import Markup

from bot.charts import carry_graph, line_chart
from bot.formatting import channel_label
from bot.post_text import deletion_text, file_text, reactions_text, sighting_name, version_head, when
from bot.report_html import amplification_html, channel_html, query_html
from bot.serve.access import DATABASE
from storage.browse import stored_file
from storage.channels import channel_by_username, channel_listing, channel_names
from storage.post_record import PostRecord, PostRefError, Sighting, find_post, post_record
from storage.query import QueryError
from storage.records import parse_iso
from storage.reports import (
    Amplification,
    ChannelReport,
    amplification,
    channel_report,
    days_window,
    query_timeline,
)
from storage.search import highlight_spans, search
from storage.sparkline import delay_text
from storage.stats import archive_stats
from storage.word_diff import html_diff, word_diff

T = TypeVar("T")

PAGE_SIZE = 20
SEARCH_EXAMPLE = "canada sanctions -visa since:2025-12-01"
DIFF_CONTEXT = 80


@dataclass(frozen=True)
class ServeConfig:
    """What the pages need beyond the archive: where downloaded media live, and the access token
    (None: open, loopback only)."""

    media_dir: Path
    token: str | None = None


def serve_config(datasette: Datasette) -> ServeConfig | None:
    """The chanwatch settings of this Datasette (set by `bot.serve.app.build`); None on another one."""
    found = getattr(datasette, "chanwatch", None)
    return found if isinstance(found, ServeConfig) else None


def config_of(datasette: Datasette) -> ServeConfig:
    """The chanwatch settings of this Datasette; a page asked of another answers 404."""
    found = serve_config(datasette)
    if found is None:
        raise NotFound("not a chanwatch archive")
    return found


async def read(datasette: Datasette, fn: Callable[..., T], *args: Any) -> T:
    """`fn(conn, *args)` on the archive's read-only connection, off the event loop."""
    config_of(datasette)
    return await datasette.get_database(DATABASE).execute_fn(lambda conn: fn(conn, *args))


async def render(datasette: Datasette, request: Request, template: str, context: dict[str, Any],
                 status: int = 200) -> Response:
    """A chanwatch template rendered in Datasette's environment (its base page, CSS and autoescape)."""
    html = await datasette.render_template(f"chanwatch/{template}", context, request=request)
    return Response.html(html, status=status)


# -- home -----------------------------------------------------------------------------------------


def _home(conn: sqlite3.Connection) -> dict[str, Any]:
    stats = archive_stats(conn, datetime.now(UTC))
    channels = [c for c in channel_listing(conn, include_unwatched=True) if c.messages]
    return {"stats": stats, "channels": channels}


async def home(datasette: Datasette, request: Request) -> Response:
    """The archive at a glance: counts, channels with their messages, a search box."""
    context = await read(datasette, _home)
    return await render(datasette, request, "home.html", {**context, "example": SEARCH_EXAMPLE})


# -- search ---------------------------------------------------------------------------------------


def marked(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """`text` cut into (piece, matched) runs at `spans`, for the template to wrap matches in <mark>."""
    runs: list[tuple[str, bool]] = []
    at = 0
    for start, end in sorted(spans):
        if start < at:
            continue
        if start > at:
            runs.append((text[at:start], False))
        runs.append((text[start:end], True))
        at = end
    if at < len(text):
        runs.append((text[at:], False))
    return runs


def query_error(query: str, exc: QueryError) -> dict[str, Any]:
    """What the page says of a query that does not parse: why, where (the text split there), the fix."""
    return {"message": exc.message, "hint": exc.hint, "position": exc.position,
            "before": query[:exc.position], "after": query[exc.position:]}


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 10_000 else 1


async def search_page(datasette: Datasette, request: Request) -> Response:
    """Posts matching `?q=` in the project's own query language (`storage.search`), newest first, paged;
    a query that does not parse shows where and why, with an example that works."""
    query = (request.args.get("q") or "").strip()
    number = _page_number(request.args.get("page"))
    context: dict[str, Any] = {"q": query, "page": number, "example": SEARCH_EXAMPLE}
    if not query:
        return await render(datasette, request, "search.html", context)
    try:
        found = await read(datasette, search, query, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    except QueryError as exc:
        context["error"] = query_error(query, exc)
        return await render(datasette, request, "search.html", context, status=400)
    results = [{
        "post": post,
        "snippet": marked(post.snippet or "", highlight_spans(post.snippet or "", found.query)),
        "origin": channel_label(post.origin_username, post.origin_title, post.origin_channel_id),
        "channels": sorted({channel_label(s.username, s.title, s.channel_id) for s in post.sightings}),
    } for post in found.posts]
    shown_to = (number - 1) * PAGE_SIZE + len(found.posts)
    context.update(results=results, total=found.total_text, first=(number - 1) * PAGE_SIZE + 1, last=shown_to,
                   more=shown_to < found.total or not found.total_exact and len(found.posts) == PAGE_SIZE,
                   unknown=found.unknown_channels)
    return await render(datasette, request, "search.html", context)


async def timeline_page(datasette: Datasette, request: Request) -> Response:
    """A query's matches per day per channel (`storage.reports.query_timeline`): how a topic rose."""
    query = (request.args.get("q") or "").strip()
    context: dict[str, Any] = {"q": query, "example": SEARCH_EXAMPLE}
    if query:
        try:
            context["body"] = Markup(query_html(await read(datasette, query_timeline, query)))
        except QueryError as exc:
            context["error"] = query_error(query, exc)
            return await render(datasette, request, "timeline.html", context, status=400)
    return await render(datasette, request, "timeline.html", context)


# -- a post ---------------------------------------------------------------------------------------


def _post(conn: sqlite3.Connection, ref: str) -> PostRecord | None:
    try:
        return post_record(conn, find_post(conn, ref))
    except PostRefError:
        return None


def _hours(stamp: str, origin: datetime) -> float | None:
    moment = parse_iso(stamp)
    return None if moment is None else (moment - origin).total_seconds() / 3600


def post_charts(record: PostRecord) -> tuple[str, str | None]:
    """The post's carry graph, and its engagement curves (None with no readings), as inline SVG."""
    origin = channel_label(record.origin_username, record.origin_title, record.origin_channel_id)
    carriers = [(sighting_name(s), None if s.relation == "original" else round(s.delay_s), s.relation)
                for s in record.sightings]
    graph = carry_graph(origin, carriers, title=f"Who carried post {record.post_id}")
    posted = parse_iso(record.date)
    assert posted is not None
    series = []
    for s in record.sightings:
        points = [(hours, float(r.views)) for r in s.readings
                  if r.views is not None and (hours := _hours(r.at, posted)) is not None]
        if points:
            series.append((sighting_name(s), points))
    curve = line_chart(series, title="Views after posting", x_label="hours after posting",
                       y_label="views") if series else None
    return graph, curve


def _sighting_view(s: Sighting, post_text: str) -> dict[str, Any]:
    versions = []
    for index, v in enumerate(s.versions):
        before = s.versions[index - 1] if index else None
        diff = None if before is None else Markup(html_diff(word_diff(before.text, v.text),
                                                            context=DIFF_CONTEXT))
        versions.append({"head": version_head(index + 1, v, s, before), "text": v.text, "diff": diff})
    return {"s": s, "name": sighting_name(s), "delay": delay_text(s.delay_s), "date": when(s.date),
            "deleted": deletion_text(s), "reactions": reactions_text(s.reactions),
            "versions": versions if len(versions) > 1 else [],
            "other_text": len(s.versions) == 1 and s.versions[0].text not in ("", post_text)}


async def post_page(datasette: Datasette, request: Request) -> Response:
    """One post: its text and origin, every sighting with its delay and link, who carried it (a graph),
    each sighting's versions as word diffs, deletion intervals, its files and its engagement curve."""
    ref = request.url_vars["post"]
    record = await read(datasette, _post, ref)
    if record is None:
        return await render(datasette, request, "missing.html", {"what": f"post {ref}"}, status=404)
    graph, curve = post_charts(record)
    files = [{"f": f, "text": file_text(f),
              "image": (f.mime_type or "").startswith("image/") and f.mime_type != "image/svg+xml"}
             for f in record.files]
    context = {
        "record": record, "date": when(record.date),
        "origin": channel_label(record.origin_username, record.origin_title, record.origin_channel_id),
        "sightings": [_sighting_view(s, record.text) for s in record.sightings],
        "graph": Markup(graph), "curve": Markup(curve) if curve else None, "files": files,
    }
    return await render(datasette, request, "post.html", context)


# -- a channel and the reports --------------------------------------------------------------------


def _window(request: Request) -> tuple[date | None, date | None]:
    return days_window(request.args.get("since") or None, request.args.get("until") or None)


def _channel_id(conn: sqlite3.Connection, name: str) -> int | None:
    name = name.strip().lstrip("@")
    if name.isdigit() and name.isascii():
        return int(name) if channel_names(conn, int(name)) is not None else None
    return channel_by_username(conn, name) if name else None


def _channel(conn: sqlite3.Connection, name: str, since: date | None, until: date | None
             ) -> ChannelReport | None:
    found = _channel_id(conn, name)
    return None if found is None else channel_report(conn, found, since, until)


async def channel_page(datasette: Datasette, request: Request) -> Response:
    """One channel's activity (`storage.reports.channel_report`), `since`/`until` optional."""
    name = request.url_vars["channel"]
    try:
        since, until = _window(request)
    except ValueError as exc:
        return await render(datasette, request, "missing.html", {"what": str(exc), "bad": True}, status=400)
    report = await read(datasette, _channel, name, since, until)
    if report is None:
        return await render(datasette, request, "missing.html", {"what": f"channel {name}"}, status=404)
    return await render(datasette, request, "channel.html", {
        "report": report, "name": name, "since": since or "", "until": until or "",
        "body": Markup(channel_html(report))})


def _amplification(conn: sqlite3.Connection, origin: str | None, since: date | None,
                   until: date | None) -> Amplification:
    origin_id = None
    if origin:
        origin_id = _channel_id(conn, origin)
        if origin_id is None:
            raise LookupError(f"no channel @{origin.lstrip('@')} in the archive")
    return amplification(conn, origin_id, since, until)


async def reports_page(datasette: Datasette, request: Request) -> Response:
    """The amplification report, with its origin and window as form fields."""
    origin = (request.args.get("origin") or "").strip() or None
    context: dict[str, Any] = {"origin": origin or "", "since": request.args.get("since") or "",
                               "until": request.args.get("until") or ""}
    try:
        since, until = _window(request)
        report = await read(datasette, _amplification, origin, since, until)
    except (ValueError, LookupError) as exc:
        return await render(datasette, request, "reports.html", {**context, "error": str(exc)}, status=400)
    body = Markup(amplification_html(report, post_href=lambda post_id: f"/-/chanwatch/post/{post_id}"))
    return await render(datasette, request, "reports.html", {**context, "body": body})


# -- media ----------------------------------------------------------------------------------------


def _read_file(path: Path) -> bytes:
    return path.read_bytes()


async def media(datasette: Datasette, request: Request) -> Response:
    """A downloaded file by its SHA-256, only when the archive records it and it lies inside the media
    directory; served so that the browser runs nothing in it."""
    root = config_of(datasette).media_dir.resolve()
    found = await read(datasette, stored_file, request.url_vars["sha"])
    target = (root / found.path).resolve() if found is not None else None
    if target is None or not target.is_relative_to(root) or not target.is_file():
        return Response.text("no such file in the archive's media store", status=404)
    body = await asyncio.to_thread(_read_file, target)
    return Response(body, content_type=found.mime_type or "application/octet-stream", headers={
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, max-age=86400"})


ROUTES = (
    (r"^/$", home),
    (r"^/-/chanwatch/?$", home),
    (r"^/-/chanwatch/search$", search_page),
    (r"^/-/chanwatch/timeline$", timeline_page),
    (r"^/-/chanwatch/post/(?P<post>[^/]+)$", post_page),
    (r"^/-/chanwatch/channel/(?P<channel>[^/]+)$", channel_page),
    (r"^/-/chanwatch/reports$", reports_page),
    (r"^/-/chanwatch/media/(?P<sha>[0-9a-f]{64})$", media),
)
"""chanwatch's pages, registered with Datasette by `bot.serve.plugin.register_routes`."""
