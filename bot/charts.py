"""Charts for the reports as inline SVG: bars, timelines, delay distributions, a carry matrix,
engagement curves and a post's carry graph. Pure functions, each returning one `<svg>` string.

The SVG is written by hand, without JavaScript or a plotting library, because issue #16 wants a
report that is one self-contained file: no script, no network, no external reference (not even the
SVG namespace URL: inline SVG in HTML needs none). Each chart has `role="img"`, a `<title>` and its
size in the `viewBox`, so it scales with the page; colours come from one fixed palette; every label
from the archive is clipped and escaped. Empty input gives a small "no data" figure, never an error.
Marks carry a class (`bar`, `series`, `segment`, `cell`, `edge`, `node`) and a `<title>` tooltip with
the exact figure.

Example: `bar_chart([("rusembc", 12), ("RussianEmbassyUK", 7)], title="Posts carried")`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta

from bot.formatting import cut, duration, escape

__all__ = ["PALETTE", "bar_chart", "carry_graph", "distribution_chart", "line_chart", "matrix_chart",
           "nice_ticks", "timeline_chart"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
           "#ff9da7", "#bab0ac")
"""Series colours, in order (Tableau 10: distinct, readable on white); they repeat past ten."""
RAMP = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027")
"""Ordered buckets (fast to slow) of a distribution, green to red."""
SHADE_LOW, SHADE_HIGH = (0xf7, 0xfb, 0xff), (0x08, 0x30, 0x6b)
"""A matrix cell's fill runs from SHADE_LOW (0) to SHADE_HIGH (the largest value)."""
INK, GRID, MUTED = "#222", "#ddd", "#666"
WIDTH = 640
LABEL_CHARS = 24
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _esc(text: object) -> str:
    return escape(str(text))


def _label(text: str, limit: int = LABEL_CHARS) -> str:
    """A label on one line, clipped to `limit` characters and escaped."""
    return _esc(cut(" ".join(str(text).split()), limit))


def _num(value: float) -> str:
    """A figure for people: '1,234', '0.25'."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _short(value: float) -> str:
    """An axis figure kept short: '950', '12k', '1.5M'."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return _num(round(value / size, 1)) + suffix
    return _num(value)


def nice_ticks(lo: float, hi: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering `lo`..`hi` in about `count`
    steps; the first tick is at or below `lo`, the last at or above `hi`. `integer` keeps steps whole
    (counts)."""
    if not hi > lo:
        hi = lo + 1
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1, round(step))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _svg(width: float, height: float, title: str, body: list[str], kind: str) -> str:
    """The figure around `body`: its title as `<title>` (for screen readers and tooltips) and drawn."""
    return (f'<svg class="chart {kind}" role="img" viewBox="0 0 {width:g} {height:g}" '
            f'width="{width:g}" height="{height:g}" style="max-width:100%;height:auto" {FONT}>'
            f"<title>{_esc(title)}</title>"
            f'<text class="heading" x="8" y="16" font-weight="bold" fill="{INK}">{_label(title, 90)}</text>'
            + "".join(body) + "</svg>")


def _no_data(title: str, kind: str) -> str:
    """The small figure an empty chart is: its title and "no data"."""
    return _svg(320, 56, title, [f'<text class="empty" x="160" y="40" text-anchor="middle" fill="{MUTED}">'
                                 "no data</text>"], kind)


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = INK, extra: str = "") -> str:
    """A text element; `text` must be escaped already."""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{text}</text>'


def _legend(names: Sequence[str], colours: Sequence[str], y: float, *, dashes: Sequence[str] = ()
            ) -> tuple[list[str], float]:
    """Legend items in rows of four from `y`, a colour swatch each or, with `dashes`, a line drawn
    with that dash pattern; returns the marks and the height used."""
    marks, per_row, item = [], 4, (WIDTH - 16) / 4
    for i, (name, colour) in enumerate(zip(names, colours, strict=True)):
        x, row_y = 8 + (i % per_row) * item, y + (i // per_row) * 16
        if dashes:
            marks.append(f'<line x1="{x:.1f}" y1="{row_y + 5:.1f}" x2="{x + 18:.1f}" y2="{row_y + 5:.1f}" '
                         f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dashes[i]}"/>')
            offset = 22
        else:
            marks.append(f'<rect class="swatch" x="{x:.1f}" y="{row_y:.1f}" width="10" height="10" '
                         f'fill="{colour}"/>')
            offset = 14
        marks.append(_text(x + offset, row_y + 9, _label(name, 22)))
    rows = math.ceil(len(names) / per_row)
    return marks, rows * 16


def _x_axis(ticks: Sequence[float], scale: float, x0: float, lo: float, top: float, bottom: float,
            fmt: Callable[[float], str] = _short, *, label_y: float | None = None) -> list[str]:
    """Vertical grid lines at `ticks` between `top` and `bottom`, labelled above `top` (or at label_y)."""
    marks = []
    for tick in ticks:
        x = x0 + (tick - lo) * scale
        marks.append(f'<line class="grid" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                     f'stroke="{GRID}"/>')
        marks.append(_text(x, label_y if label_y is not None else top - 4, _esc(fmt(tick)),
                           anchor="middle", fill=MUTED))
    return marks


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> str:
    """Horizontal bars, one per (label, value), in the given order, on a shared axis from 0; each
    value is written at its bar's end followed by `unit` ('%' close up, a word after a space).
    Values are non-negative quantities (a negative one is drawn as 0).

    Example: `bar_chart([("ru", 40), ("en", 12)], title="Languages", unit="messages")`.
    """
    if not bars:
        return _no_data(title, "bar-chart")
    suffix = unit if unit in ("%", "") else f" {unit}"
    whole = all(float(v).is_integer() for _, v in bars)
    ticks = nice_ticks(0, max(max(v for _, v in bars), 0) or 1, integer=whole)
    label_w, right, top, row = 160, 96, 44, 20
    x0, width = label_w + 8, WIDTH - label_w - 8 - right
    scale = width / ticks[-1]
    bottom = top + row * len(bars)
    marks = _x_axis(ticks, scale, x0, 0, top - 6, bottom)
    for i, (label, value) in enumerate(bars):
        y = top + i * row
        w = max(value, 0) * scale
        figure = _esc(f"{_num(value)}{suffix}")
        marks.append(_text(label_w, y + 13, _label(label), anchor="end"))
        marks.append(f'<rect class="bar" x="{x0:.1f}" y="{y + 3:.1f}" width="{w:.1f}" height="14" '
                     f'fill="{PALETTE[0]}"><title>{_esc(label)}: {figure}</title></rect>')
        marks.append(_text(x0 + w + 4, y + 14, figure, fill=MUTED))
    return _svg(WIDTH, bottom + 8, title, marks, "bar-chart")


def _polyline(points: Sequence[tuple[float, float]], colour: str, name: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="1.8" '
            f'stroke-linejoin="round" points="{coords}"><title>{_esc(name)}</title></polyline>')


def _plot_frame(y_ticks: Sequence[float], x0: float, x1: float, top: float, bottom: float) -> list[str]:
    """Horizontal grid lines at `y_ticks` (the last at `top`, 0 at `bottom`) labelled at the left."""
    marks = []
    scale = (bottom - top) / (y_ticks[-1] - y_ticks[0])
    for tick in y_ticks:
        y = bottom - (tick - y_ticks[0]) * scale
        marks.append(f'<line class="grid" x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" '
                     f'stroke="{GRID}"/>')
        marks.append(_text(x0 - 4, y + 4, _esc(_short(tick)), anchor="end", fill=MUTED))
    return marks


def timeline_chart(series: Mapping[str, Sequence[tuple[date, int]]], *, title: str) -> str:
    """One line per series (e.g. messages per channel per day) over the days from the first to the
    last of any series; a day a series does not list counts 0. The x axis is labelled with ISO days;
    a legend names the series when there are several.

    Example: `timeline_chart({"MFARussia": [(date(2025, 12, 17), 3)]}, title="Messages per day")`.
    """
    present = {name: dict(points) for name, points in series.items() if points}
    if not present:
        return _no_data(title, "timeline-chart")
    first = min(min(days) for days in present.values())
    last = max(max(days) for days in present.values())
    span = (last - first).days
    y_ticks = nice_ticks(0, max(max(v.values()) for v in present.values()) or 1, integer=True)
    x0, x1, top, bottom = 48, WIDTH - 40, 32, 212
    x_scale = (x1 - x0) / span if span else 0
    y_scale = (bottom - top) / y_ticks[-1]

    def x_of(day: date) -> float:
        return x0 + (day - first).days * x_scale if span else (x0 + x1) / 2

    marks = _plot_frame(y_ticks, x0, x1, top, bottom)
    step = max(1, math.ceil((span + 1) / 6))
    for k in range(0, span + 1, step):
        day = first + timedelta(days=k)
        marks.append(f'<line class="tick" x1="{x_of(day):.1f}" y1="{bottom:.1f}" x2="{x_of(day):.1f}" '
                     f'y2="{bottom + 4:.1f}" stroke="{MUTED}"/>')
        marks.append(_text(x_of(day), bottom + 16, day.isoformat(), anchor="middle", fill=MUTED))
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(present))]
    for (name, values), colour in zip(present.items(), colours, strict=True):
        days = [first + timedelta(days=k) for k in range(span + 1)]
        marks.append(_polyline([(x_of(d), bottom - values.get(d, 0) * y_scale) for d in days], colour, name))
        if span <= 62:
            marks += [f'<circle class="point" cx="{x_of(d):.1f}" cy="{bottom - n * y_scale:.1f}" r="2.5" '
                      f'fill="{colour}"><title>{_esc(name)} {d.isoformat()}: {n:,}</title></circle>'
                      for d, n in sorted(values.items())]
    height = bottom + 26
    if len(present) > 1:
        legend, used = _legend(list(present), colours, height)
        marks += legend
        height += used
    return _svg(WIDTH, height + 4, title, marks, "timeline-chart")


def distribution_chart(rows: Sequence[tuple[str, Sequence[int]]], buckets: Sequence[str], *,
                       title: str) -> str:
    """One bar per row split into its share of each bucket (e.g. an amplifier's carried posts by
    delay: buckets fast to slow, coloured green to red), with the row's total at the end; each
    segment's tooltip has its count. `counts` align with `buckets`.

    Example: `distribution_chart([("rusembc", [1, 1, 0, 0, 0])], DELAY_BUCKETS, title="Delays")`.
    """
    if not rows or not buckets:
        return _no_data(title, "distribution-chart")
    for label, counts in rows:
        if len(counts) != len(buckets):
            raise ValueError(f"{label!r}: {len(counts)} counts for {len(buckets)} buckets")
    if len(buckets) <= len(RAMP):
        colours = [RAMP[round(i * (len(RAMP) - 1) / max(len(buckets) - 1, 1))] for i in range(len(buckets))]
    else:
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(buckets))]
    legend, used = _legend(list(buckets), colours, 26)
    label_w, right, row = 160, 64, 20
    top = 26 + used + 18
    x0, width = label_w + 8, WIDTH - label_w - 8 - right
    bottom = top + row * len(rows)
    marks = legend + _x_axis([0, 0.25, 0.5, 0.75, 1], width, x0, 0, top - 4, bottom,
                             lambda share: f"{share:.0%}")
    for i, (label, counts) in enumerate(rows):
        y, total, x = top + i * row, sum(counts), float(x0)
        marks.append(_text(label_w, y + 13, _label(label), anchor="end"))
        for bucket, count, colour in zip(buckets, counts, colours, strict=True):
            if count <= 0 or total <= 0:
                continue
            w = width * count / total
            marks.append(f'<rect class="segment" x="{x:.1f}" y="{y + 3:.1f}" width="{w:.1f}" height="14" '
                         f'fill="{colour}"><title>{_esc(label)}, {_esc(bucket)}: {count:,} '
                         f"({count / total:.0%})</title></rect>")
            x += w
        marks.append(_text(x0 + width + 6, y + 14, f"n={total:,}", fill=MUTED))
    return _svg(WIDTH, bottom + 8, title, marks, "distribution-chart")


def _shade(share: float) -> str:
    """The fill between SHADE_LOW (0) and SHADE_HIGH (1)."""
    share = min(max(share, 0.0), 1.0)
    return "#" + "".join(f"{round(lo + (hi - lo) * share):02x}" for lo, hi in zip(SHADE_LOW, SHADE_HIGH,
                                                                                 strict=True))


def matrix_chart(rows: Sequence[str], cols: Sequence[str], values: Mapping[tuple[str, str], float], *,
                 title: str) -> str:
    """A grid of `rows` × `cols` (e.g. origin × amplifier), each cell shaded by its value against the
    largest one and labelled with it; a pair without a value is a blank cell.

    Example: `matrix_chart(["MFARussia"], ["rusembc"], {("MFARussia", "rusembc"): 67}, title="Carried %")`.
    """
    if not rows or not cols:
        return _no_data(title, "matrix-chart")
    label_w, cell_w, cell_h = 160, 56, 26
    head = 16 + 4.5 * max(len(cut(" ".join(col.split()), LABEL_CHARS)) for col in cols)  # slanted labels
    most = max((v for v in values.values() if v > 0), default=1)
    x0, top = label_w + 8, 26 + head
    width = max(x0 + cell_w * len(cols) + 16, min(WIDTH, 24 + 7 * len(title)))  # room for the heading
    marks = []
    for j, col in enumerate(cols):
        cx = x0 + j * cell_w + cell_w / 2
        marks.append(_text(cx, top - 6, _label(col),
                           extra=f' transform="rotate(-45 {cx:.1f} {top - 6:.1f})"'))
    for i, row in enumerate(rows):
        y = top + i * cell_h
        marks.append(_text(label_w, y + cell_h / 2 + 4, _label(row), anchor="end"))
        for j, col in enumerate(cols):
            x, value = x0 + j * cell_w, values.get((row, col))
            fill = "#ffffff" if value is None else _shade(value / most)
            tip = f"{_esc(row)} → {_esc(col)}: {'-' if value is None else _num(value)}"
            marks.append(f'<rect class="cell" x="{x:.1f}" y="{y:.1f}" width="{cell_w}" height="{cell_h}" '
                         f'fill="{fill}" stroke="{GRID}"><title>{tip}</title></rect>')
            if value is not None:
                ink = "#fff" if value / most > 0.55 else INK
                marks.append(_text(x + cell_w / 2, y + cell_h / 2 + 4, _esc(_short(value)), anchor="middle",
                                   fill=ink))
    return _svg(width, top + cell_h * len(rows) + 8, title, marks, "matrix-chart")


def line_chart(series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, title: str, x_label: str,
               y_label: str) -> str:
    """One line per (name, points) over numeric axes with round ticks (e.g. views against hours after
    posting), the y axis from 0 for non-negative data; a legend names the series when there are
    several.

    Example: `line_chart([("@rusembc", [(0, 0), (1, 120), (24, 900)])], title="Views", x_label="hours",
    y_label="views")`.
    """
    present = [(name, sorted(points)) for name, points in series if points]
    if not present:
        return _no_data(title, "line-chart")
    xs = [x for _, points in present for x, _ in points]
    ys = [y for _, points in present for _, y in points]
    x_ticks = nice_ticks(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    y_ticks = nice_ticks(min(0, min(ys)), max(ys) if max(ys) > min(0, min(ys)) else 1)
    x0, x1, top, bottom = 56, WIDTH - 24, 32, 212
    x_scale = (x1 - x0) / (x_ticks[-1] - x_ticks[0])
    y_scale = (bottom - top) / (y_ticks[-1] - y_ticks[0])
    marks = _plot_frame(y_ticks, x0, x1, top, bottom)
    marks += _x_axis(x_ticks, x_scale, x0, x_ticks[0], top, bottom, label_y=bottom + 14)
    marks.append(_text((x0 + x1) / 2, bottom + 30, _label(x_label, 60), anchor="middle", fill=MUTED))
    mid = (top + bottom) / 2
    marks.append(_text(12, mid, _label(y_label, 30), anchor="middle", fill=MUTED,
                       extra=f' transform="rotate(-90 12 {mid:.1f})"'))
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(present))]
    for (name, points), colour in zip(present, colours, strict=True):
        marks.append(_polyline([(x0 + (x - x_ticks[0]) * x_scale, bottom - (y - y_ticks[0]) * y_scale)
                                for x, y in points], colour, name))
    height = bottom + 40
    if len(present) > 1:
        legend, used = _legend([name for name, _ in present], colours, height)
        marks += legend
        height += used
    return _svg(WIDTH, height + 4, title, marks, "line-chart")


RELATION_DASH = {"forward": "", "copy": "6 4", "original": "2 3"}
"""How an edge is drawn by the carrier's relation: a forward solid, a copy without attribution dashed."""


def carry_graph(origin: str, carriers: Sequence[tuple[str, int | None, str]], *, title: str) -> str:
    """A post's origin at the left and each channel that carried it at the right, fastest first
    (unknown delays last), joined by an edge drawn by the relation ('forward' solid, 'copy' dashed,
    'original' dotted; a legend names those drawn) and labelled with the delay.

    Example: `carry_graph("MFARussia", [("rusembc", 300, "forward")], title="Who carried it")`.
    """
    if not carriers:
        return _no_data(title, "carry-graph")
    ordered = sorted(carriers, key=lambda c: (c[1] is None, c[1] or 0))
    row, top, node_w = 28, 30, 190
    height = top + row * len(ordered)
    origin_y = top + (height - top) / 2 - 11
    left_x, right_x = 8, WIDTH - 8 - node_w
    marks = [f'<rect class="node origin" x="{left_x}" y="{origin_y:.1f}" width="{node_w}" height="22" rx="4" '
             f'fill="{PALETTE[0]}"><title>{_esc(origin)}</title></rect>',
             _text(left_x + 8, origin_y + 15, _label(origin, 28), fill="#fff")]
    for i, (name, delay, relation) in enumerate(ordered):
        y = top + i * row + 3
        sx, sy, ex, ey = left_x + node_w, origin_y + 11, right_x, y + 11
        bend = (ex - sx) / 2
        dash = RELATION_DASH.get(relation, "")
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        marks.append(f'<path class="edge {_esc(relation)}" d="M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} '
                     f'{ex - bend:.1f},{ey:.1f} {ex:.1f},{ey:.1f}" fill="none" stroke="{MUTED}" '
                     f'stroke-width="1.5"{dashed}>'
                     f"<title>{_esc(name)}: {_esc(relation)} after {duration(delay)}</title></path>")
        how = relation if delay is None else f"{duration(delay)} · {relation}"
        marks.append(_text(ex - 6, ey - 4, _esc(how), anchor="end", fill=MUTED))
        marks.append(f'<rect class="node" x="{right_x}" y="{y:.1f}" width="{node_w}" height="22" rx="4" '
                     f'fill="#f2f2f2" stroke="{GRID}"><title>{_esc(name)}</title></rect>')
        marks.append(_text(right_x + 8, y + 15, _label(name, 28)))
    relations = list(dict.fromkeys(relation for _, _, relation in ordered))
    legend, used = _legend(relations, [MUTED] * len(relations), height + 8,
                           dashes=[RELATION_DASH.get(r, "") or "none" for r in relations])
    return _svg(WIDTH, height + 12 + used, title, marks + legend, "carry-graph")
