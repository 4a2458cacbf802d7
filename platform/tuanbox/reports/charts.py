"""Server-side SVG charts for the dashboard (pure): bars by day, a funnel, compared lines.

Drawn inline in the page, so they scale with it and need no request of their own; styled
with presentation attributes only (the CSP allows no inline style), each with a title and
an aria-label, and every chart sits beside a table holding the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

INK, GRID, MUTED = "#333", "#e6e6e6", "#666"
PALETTE = ("#c8102e", "#0f6f8c", "#1b7f3b", "#b26a00")
FONT = 'font-family="system-ui,sans-serif" font-size="12"'


def _open(width: int, height: int, title: str) -> list[str]:
    t = escape(title)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="chart" role="img" aria-label="{t}" {FONT}>',
        f"<title>{t}</title>",
    ]


def _nice_max(value: int) -> int:
    if value <= 0:
        return 1
    step = 1
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def bars(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    fmt: Callable[[int], str] = str,
    empty: str = "",
    width: int = 720,
    height: int = 220,
) -> str:
    """Vertical bars (one per day), the first, middle and last labels under them."""
    left, right, top, bottom = 56, 8, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    out = _open(width, height, title)
    top_value = _nice_max(max((v for _, v in points), default=0))
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{escape(fmt(int(top_value * frac)))}</text>"
        )
    if not points:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(empty)}</text></svg>'
        )
        return "".join(out)
    slot = plot_w / len(points)
    gap = min(2.0, slot * 0.2)
    for n, (label, value) in enumerate(points):
        h = plot_h * value / top_value
        x = left + n * slot + gap / 2
        out.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(0.5, slot - gap):.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{escape(label)}: '
            f"{escape(fmt(value))}</title></rect>"
        )
    for n in sorted({0, len(points) // 2, len(points) - 1}):
        x = left + (n + 0.5) * slot
        out.append(
            f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(points[n][0])}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def funnel(steps: Sequence[tuple[str, int]], *, title: str, width: int = 720) -> str:
    """Horizontal bars, widest first, each with its count and its share of the step before."""
    row, label_w = 40, 150
    height = row * len(steps) + 8
    out = _open(width, height, title)
    widest = max((v for _, v in steps), default=0) or 1
    before: int | None = None
    for n, (label, value) in enumerate(steps):
        y = 4 + n * row
        w = (width - label_w - 8) * value / widest
        share = f" ({value / before:.0%})" if before else ""
        out.append(
            f'<text x="0" y="{y + 22}" fill="{INK}">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{max(1.0, w):.1f}" height="{row - 10}" '
            f'fill="{PALETTE[n % len(PALETTE)]}"/>'
            f'<text x="{label_w + 6}" y="{y + 22}" fill="#fff" stroke="{INK}" '
            f'stroke-width="0.6" paint-order="stroke">{value:,}{share}</text>'
        )
        before = value
    out.append("</svg>")
    return "".join(out)


def lines(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    title: str,
    fmt: Callable[[int], str] = str,
    width: int = 720,
    height: int = 220,
) -> str:
    """One line per series over the same days, with a legend above."""
    left, right, top, bottom = 56, 8, 30, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    out = _open(width, height, title)
    top_value = _nice_max(max((v for _, vs in series for v in vs), default=0))
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
            f"{escape(fmt(int(top_value * frac)))}</text>"
        )
    n = len(labels)
    step = plot_w / max(1, n - 1)
    for i, (name, values) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="6 3"' if i % 2 else ""
        pts = " ".join(
            f"{left + k * step:.1f},{top + plot_h * (1 - v / top_value):.1f}"
            for k, v in enumerate(values)
        )
        out.append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
            f'<rect x="{left + i * 200}" y="6" width="14" height="4" fill="{color}"/>'
            f'<text x="{left + i * 200 + 18}" y="12" fill="{INK}">{escape(name[:28])}</text>'
        )
    for k in sorted({0, n // 2, n - 1} if n else set()):
        out.append(
            f'<text x="{left + k * step:.1f}" y="{height - 8}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(labels[k])}</text>'
        )
    out.append("</svg>")
    return "".join(out)
