"""Server-side SVG temperature charts (pure): no JavaScript library, no npm build, tablet-friendly.

A chart is the mean line over a min–max band per time bucket, with the zone's limits drawn
as dashed lines, so an excursion is obvious at a glance; gaps in the data stay gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Bucket:
    t_ns: int
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Threshold:
    celsius: float
    label: str
    kind: str  # css class suffix: "target", "limit", "hard"


# The chart is served as an image, which cannot see the page's stylesheet: it carries its own.
_STYLE = (
    "<style>"
    "svg{font:11px system-ui,sans-serif}"
    ".plot{fill:#fcfcfd;stroke:#ccc}.grid{stroke:#eee}"
    ".ylab{text-anchor:end;fill:#666}.xlab{text-anchor:middle;fill:#666}"
    ".band{fill:#0f7c8c33;stroke:none}.mean{fill:none;stroke:#0f7c8c;stroke-width:1.8}"
    ".last{fill:#0f7c8c}.title{font-weight:600;fill:#333}"
    ".th{stroke-dasharray:5 4;stroke-width:1.2}.thlab{text-anchor:end;font-size:10px}"
    ".th-target{stroke:#1b7f3b;fill:#1b7f3b}.th-limit{stroke:#b26a00;fill:#b26a00}"
    ".th-hard{stroke:#b3261e;fill:#b3261e}.thlab{stroke:none}"
    ".empty{text-anchor:middle;fill:#999}"
    "</style>"
)
_TICK_STEPS_S = (600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400)


def _fmt_time(t_ns: int, step_s: int) -> str:
    when = datetime.fromtimestamp(t_ns / NS_PER_S, tz=UTC)
    return when.strftime("%m-%d" if step_s >= 86400 else "%H:%M")


def temperature_svg(
    buckets: Sequence[Bucket],
    *,
    start_ns: int,
    end_ns: int,
    thresholds: Sequence[Threshold] = (),
    title: str = "",
    width: int = 720,
    height: int = 240,
    max_gap_s: int | None = None,
) -> str:
    """An SVG document (UTC times) for one compartment's temperatures over a window."""
    left, right, top, bottom = 44, 10, 22, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max(1, end_ns - start_ns)
    values = [b.low for b in buckets] + [b.high for b in buckets]
    values += [t.celsius for t in thresholds]
    lo, hi = (min(values), max(values)) if values else (0.0, 10.0)
    pad = max(1.0, (hi - lo) * 0.08)
    lo, hi = lo - pad, hi + pad

    def x(t_ns: int) -> float:
        return left + plot_w * (t_ns - start_ns) / span

    def y(c: float) -> float:
        return top + plot_h * (hi - c) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="chart" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        _STYLE,
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<rect class="plot" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>',
    ]
    # Horizontal grid: about five round degree steps.
    step_c = next(s for s in (0.5, 1, 2, 5, 10, 20, 50) if (hi - lo) / s <= 6)
    c = step_c * (lo // step_c + 1)
    while c < hi:
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(c):.1f}" '
                   f'y2="{y(c):.1f}"/><text class="ylab" x="{left - 4}" y="{y(c) + 4:.1f}">'
                   f"{c:g}</text>")  # fmt: skip
        c += step_c
    step_s = next((s for s in _TICK_STEPS_S if span / NS_PER_S / s <= 8), _TICK_STEPS_S[-1])
    tick = (start_ns // (step_s * NS_PER_S) + 1) * step_s * NS_PER_S
    while tick < end_ns:
        out.append(f'<line class="grid" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" '
                   f'y2="{top + plot_h}"/><text class="xlab" x="{x(tick):.1f}" '
                   f'y="{height - 6}">{_fmt_time(tick, step_s)}</text>')  # fmt: skip
        tick += step_s * NS_PER_S
    for t in thresholds:
        out.append(f'<line class="th th-{escape(t.kind)}" x1="{left}" x2="{left + plot_w}" '
                   f'y1="{y(t.celsius):.1f}" y2="{y(t.celsius):.1f}"/>'
                   f'<text class="thlab th-{escape(t.kind)}" x="{left + plot_w - 2}" '
                   f'y="{y(t.celsius) - 3:.1f}">{escape(t.label)}</text>')  # fmt: skip
    for run in _runs(buckets, max_gap_s):
        band = [f"{x(b.t_ns):.1f},{y(b.high):.1f}" for b in run]
        band += [f"{x(b.t_ns):.1f},{y(b.low):.1f}" for b in reversed(run)]
        out.append(f'<polygon class="band" points="{" ".join(band)}"/>')
        line = " ".join(f"{x(b.t_ns):.1f},{y(b.mean):.1f}" for b in run)
        out.append(f'<polyline class="mean" points="{line}"/>')
    if not buckets:
        out.append(f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}">'
                   "no readings in this window</text>")  # fmt: skip
    else:
        last = buckets[-1]
        out.append(f'<circle class="last" cx="{x(last.t_ns):.1f}" cy="{y(last.mean):.1f}" '
                   'r="3"/>')  # fmt: skip
    out.append(f'<text class="title" x="{left}" y="14">{escape(title)}</text></svg>')
    return "".join(out)


def _runs(buckets: Sequence[Bucket], max_gap_s: int | None) -> list[list[Bucket]]:
    """Split where consecutive buckets are further apart than ``max_gap_s`` (missing data)."""
    runs: list[list[Bucket]] = []
    for b in sorted(buckets, key=lambda b: b.t_ns):
        if runs and (max_gap_s is None or b.t_ns - runs[-1][-1].t_ns <= max_gap_s * NS_PER_S):
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs
