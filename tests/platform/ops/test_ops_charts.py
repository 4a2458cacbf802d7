"""Unit tests of the server-side SVG chart (pure)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from tuanbox.ops.charts import Bucket, Threshold, temperature_svg

MIN = 60 * 10**9
T0 = 1_795_910_400 * 10**9


def test_gaps_split_the_line_and_limits_are_drawn() -> None:
    buckets = [Bucket(T0 + m * MIN, 3.0 + m / 10, 2.5, 4.0 + m / 10) for m in range(10)]
    buckets += [Bucket(T0 + m * MIN, 9.0, 8.5, 9.5) for m in range(40, 50)]  # after a gap
    svg = temperature_svg(
        buckets, start_ns=T0, end_ns=T0 + 60 * MIN, title="L1 · 0-1 <chilled>",
        thresholds=[Threshold(8.0, "limit 8", "limit"), Threshold(12.0, "hard 12", "hard")],
        max_gap_s=300,
    )  # fmt: skip
    root = ET.fromstring(svg)  # noqa: S314 - our own output; checks it is well-formed XML
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert root.find("s:title", ns).text == "L1 · 0-1 <chilled>"  # type: ignore[union-attr]
    assert len(root.findall("s:polyline", ns)) == 2
    assert len(root.findall("s:polygon", ns)) == 2
    labels = [t.text for t in root.findall("s:text", ns)]
    assert "limit 8" in labels
    assert "hard 12" in labels
    # Styles travel inside the SVG: an <img> cannot see the page's stylesheet.
    assert root.find("s:style", ns) is not None


def test_higher_is_drawn_higher_and_time_runs_left_to_right() -> None:
    svg = temperature_svg(
        [Bucket(T0, 2.0, 2.0, 2.0), Bucket(T0 + 30 * MIN, 10.0, 10.0, 10.0)],
        start_ns=T0, end_ns=T0 + 60 * MIN,
    )  # fmt: skip
    points = re.search(r'class="mean" points="([^"]+)"', svg)
    assert points is not None
    (x1, y1), (x2, y2) = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    assert x1 < x2
    assert y2 < y1  # SVG y grows downwards


def test_empty_window_says_so() -> None:
    svg = temperature_svg([], start_ns=T0, end_ns=T0 + 60 * MIN)
    assert "no readings in this window" in svg
