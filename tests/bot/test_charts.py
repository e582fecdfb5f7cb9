"""`bot.charts`: each chart is one well-formed, self-contained `<svg>` with one mark per figure,
escaped labels, and a small "no data" figure for empty input."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import pytest

from bot.charts import (
    bar_chart,
    carry_graph,
    distribution_chart,
    line_chart,
    matrix_chart,
    nice_ticks,
    timeline_chart,
)
from storage.reports import DELAY_BUCKETS

D1, D2, D3 = date(2025, 12, 17), date(2025, 12, 18), date(2025, 12, 19)
HOSTILE = "<script>alert(1)</script> & co"


def parse(svg: str) -> ET.Element:
    """The chart as an element tree (ElementTree raises on anything not well-formed)."""
    root = ET.fromstring(svg)
    assert root.tag == "svg" and root.get("role") == "img" and root.get("viewBox")
    assert root[0].tag == "title"
    return root


def marks(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(tag) if cls in (e.get("class") or "").split()]


def luminance(fill: str) -> int:
    return sum(int(fill[i:i + 2], 16) for i in (1, 3, 5))


def all_charts(label: str) -> list[str]:
    """Every chart kind with `label` as a series, row, column and title."""
    return [
        bar_chart([(label, 3), ("other", 5)], title=label),
        timeline_chart({label: [(D1, 2)], "other": [(D2, 1)]}, title=label),
        distribution_chart([(label, [1, 0, 0, 0, 2])], DELAY_BUCKETS, title=label),
        matrix_chart([label], [label, "x"], {(label, label): 0.5}, title=label),
        line_chart([(label, [(0, 0), (1, 10)]), ("other", [(0, 1)])], title=label, x_label=label,
                   y_label=label),
        carry_graph(label, [(label, 60, "forward")], title=label),
    ]


def test_a_bar_chart_draws_one_bar_per_value_longer_for_the_larger():
    root = parse(bar_chart([("ru", 40), ("en", 12), ("fr", 0)], title="Languages", unit="messages"))
    bars = marks(root, "rect", "bar")
    assert len(bars) == 3
    assert float(bars[0].get("width")) > float(bars[1].get("width")) > float(bars[2].get("width")) == 0
    assert "40 messages" in ET.tostring(root, encoding="unicode")


def test_an_axis_has_round_ticks_covering_the_data():
    assert nice_ticks(0, 7.5) == [0, 2, 4, 6, 8]
    assert nice_ticks(0, 1_400_000) == [0, 500_000, 1_000_000, 1_500_000]
    assert nice_ticks(0, 1, integer=True) == [0, 1]
    assert nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_a_timeline_draws_a_line_per_series_over_every_day_and_a_legend_and_iso_days():
    svg = timeline_chart({"MFARussia": [(D1, 3), (D3, 1)], "rusembc": [(D2, 2)]}, title="Messages per day")
    root = parse(svg)
    lines = marks(root, "polyline", "series")
    assert len(lines) == 2
    assert [len(line.get("points").split()) for line in lines] == [3, 3]  # the missing days drawn as 0
    assert len(marks(root, "rect", "swatch")) == 2
    texts = [t.text for t in root.iter("text")]
    assert "2025-12-17" in texts and "MFARussia" in texts


def test_a_single_series_needs_no_legend():
    root = parse(timeline_chart({"MFARussia": [(D1, 3)]}, title="Messages per day"))
    assert len(marks(root, "polyline", "series")) == 1 and not marks(root, "rect", "swatch")


def test_a_distribution_draws_a_segment_per_nonzero_bucket_sized_by_its_share():
    root = parse(distribution_chart([("rusembc", [1, 1, 0, 0, 0]), ("uk", [1, 0, 0, 0, 3])], DELAY_BUCKETS,
                                    title="Delay after the origin"))
    segments = marks(root, "rect", "segment")
    assert len(segments) == 4
    widths = [float(s.get("width")) for s in segments]
    assert widths[0] == pytest.approx(widths[1]) and widths[3] == pytest.approx(3 * widths[2])
    assert len(marks(root, "rect", "swatch")) == len(DELAY_BUCKETS)


def test_a_distribution_refuses_counts_that_do_not_match_the_buckets():
    with pytest.raises(ValueError, match="3 counts for 5 buckets"):
        distribution_chart([("uk", [1, 2, 3])], DELAY_BUCKETS, title="Delays")


def test_a_matrix_draws_every_cell_and_shades_the_larger_value_darker():
    values = {("MFARussia", "rusembc"): 0.67, ("MFARussia", "uk"): 0.2, ("ministry", "uk"): 0.05}
    root = parse(matrix_chart(["MFARussia", "ministry"], ["rusembc", "uk"], values, title="Carried"))
    cells = marks(root, "rect", "cell")
    assert len(cells) == 4
    fills = [c.get("fill") for c in cells]
    assert luminance(fills[0]) < luminance(fills[1]) < luminance(fills[3]) < luminance(fills[2])
    assert fills[2] == "#ffffff"  # no value: a blank cell


def test_a_line_chart_draws_a_line_per_series_with_its_axis_labels():
    root = parse(line_chart([("@rusembc", [(24, 900), (0, 0), (1, 120)]), ("@uk", [(0, 10)])],
                            title="Views", x_label="hours after posting", y_label="views"))
    lines = marks(root, "polyline", "series")
    assert len(lines) == 2
    xs = [float(p.split(",")[0]) for p in lines[0].get("points").split()]
    assert xs == sorted(xs)
    texts = [t.text for t in root.iter("text")]
    assert "hours after posting" in texts and "views" in texts


def test_a_carry_graph_draws_an_edge_per_carrier_fastest_first_copies_dashed():
    root = parse(carry_graph("MFARussia", [("uk", 90000, "forward"), ("rusembc", 300, "copy"),
                                           ("lost", None, "forward")], title="Who carried it"))
    edges = marks(root, "path", "edge")
    assert len(edges) == 3 and len(marks(root, "rect", "node")) == 4
    assert [e.find("title").text for e in edges] == [
        "rusembc: copy after 5m", "uk: forward after 1d 1h", "lost: forward after -"]
    assert edges[0].get("stroke-dasharray") and edges[1].get("stroke-dasharray") is None


@pytest.mark.parametrize("index", range(6))
def test_every_label_comes_out_escaped_and_nothing_points_outside(index):
    svg = all_charts(HOSTILE)[index]
    root = parse(svg)
    assert "<script" not in svg and "&lt;script&gt;" in svg and "&amp; co" in svg
    assert not list(root.iter("script")) and not list(root.iter("a")) and not list(root.iter("image"))
    assert "http" not in svg and "href" not in svg


def test_a_long_label_is_clipped_on_the_figure_but_whole_in_its_tooltip():
    name = "An extremely long channel title that would run over the bars"
    root = parse(bar_chart([(name, 1)], title="Posts"))
    assert name not in [t.text for t in root.iter("text")]
    assert any(t.text.endswith("…") for t in root.iter("text") if t.text)
    assert marks(root, "rect", "bar")[0].find("title").text == f"{name}: 1"


@pytest.mark.parametrize("svg", [
    bar_chart([], title="Empty"),
    timeline_chart({}, title="Empty"),
    timeline_chart({"silent": []}, title="Empty"),
    distribution_chart([], DELAY_BUCKETS, title="Empty"),
    matrix_chart([], ["x"], {}, title="Empty"),
    line_chart([("none", [])], title="Empty", x_label="h", y_label="v"),
    carry_graph("MFARussia", [], title="Empty"),
], ids=["bar", "timeline", "timeline-empty-series", "distribution", "matrix", "line", "carry"])
def test_empty_input_gives_a_small_no_data_figure(svg):
    root = parse(svg)
    assert [t.text for t in root.iter("text")] == ["Empty", "no data"]
