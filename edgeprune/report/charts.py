"""Hand-made inline SVG charts: no plotting library, no script, nothing fetched.

Each function returns one ``<svg>`` element as a string (text escaped), sized by its
``viewBox`` so the page can scale it. Points and bars carry ``<title>`` tooltips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
SLOWER_COLOUR, FASTER_COLOUR = "#d62728", "#2ca02c"
FONT = 'font-family="sans-serif" font-size="11"'


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    low: float
    high: float
    tooltip: str
    flag: str = ""  # "slower" / "faster": drawn in colour


@dataclass(frozen=True)
class Line:
    name: str
    points: list[Point] = field(default_factory=list)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def line_chart(lines: Sequence[Line], x_labels: dict[float, str], y_title: str, width: int = 720,
               height: int = 260) -> str:
    """Lines of points with low-high whiskers; ``x_labels`` maps x positions to tick labels."""
    left, right, top, bottom = 64, 16, 12, 40
    points = [p for line in lines for p in line.points]
    xs = [p.x for p in points]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    ticks = nice_ticks(0.0, max(p.high for p in points) * 1.05)
    y1 = ticks[-1]

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (1 - y / y1) * (height - top - bottom)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for t in ticks:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" {FONT}>{_fmt(t)}</text>')
    for x, label in x_labels.items():
        out.append(f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" text-anchor="middle" {FONT}>{escape(label)}</text>')
    out.append(f'<text x="14" y="{(height - bottom) / 2:.0f}" transform="rotate(-90 14 {(height - bottom) / 2:.0f})" '
               f'text-anchor="middle" {FONT}>{escape(y_title)}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#999"/>')
    for i, line in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in line.points)
        out.append(f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for p in line.points:
            fill = {"slower": SLOWER_COLOUR, "faster": FASTER_COLOUR}.get(p.flag, colour)
            out.append(f'<line x1="{sx(p.x):.1f}" x2="{sx(p.x):.1f}" y1="{sy(p.low):.1f}" y2="{sy(p.high):.1f}" '
                       f'stroke="{colour}" stroke-opacity="0.5"/>')
            out.append(f'<circle class="run" cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="{4 if p.flag else 3}" '
                       f'fill="{fill}"><title>{escape(p.tooltip)}</title></circle>')
        out.append(f'<rect x="{left + 8 + 180 * i}" y="{height - 14}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{left + 22 + 180 * i}" y="{height - 5}" {FONT}>{escape(line.name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(bars: Sequence[tuple[str, Sequence[float], str]], legend: Sequence[str], unit: str,
              width: int = 720, label_width: int = 260) -> str:
    """Horizontal bars: one row per (label, values, tooltip), one bar per value, side by side."""
    per_bar, gap, bottom = 9, 6, 36
    top = 26 if len(legend) > 1 else 8
    groups = max((len(v) for _, v, _ in bars), default=1)
    row = per_bar * groups + gap
    height = top + row * len(bars) + bottom
    ticks = nice_ticks(0.0, max((max(v) for _, v, _ in bars if v), default=1.0))
    x1 = ticks[-1]
    plot = width - label_width - 16

    def sx(value: float) -> float:
        return label_width + value / x1 * plot

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for t in ticks:
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{height - bottom}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{height - bottom + 14}" text-anchor="middle" {FONT}>{_fmt(t)}</text>')
    out.append(f'<text x="{label_width + plot / 2:.0f}" y="{height - bottom + 28}" text-anchor="middle" {FONT}>'
               f'{escape(unit)}</text>')
    for r, (label, values, tooltip) in enumerate(bars):
        y = top + r * row
        short = label if len(label) <= 40 else label[:37] + "..."
        out.append(f'<text x="{label_width - 6}" y="{y + row / 2 + 1:.1f}" text-anchor="end" {FONT}>'
                   f'{escape(short)}<title>{escape(label)}</title></text>')
        for g, value in enumerate(values):
            out.append(f'<rect class="bar" x="{label_width}" y="{y + g * per_bar}" width="{max(sx(value) - label_width, 0.5):.1f}" '
                       f'height="{per_bar - 1}" fill="{PALETTE[g % len(PALETTE)]}"><title>{escape(tooltip)}</title></rect>')
    if len(legend) > 1:
        for g, name in enumerate(legend):
            out.append(f'<rect x="{label_width + 140 * g}" y="4" width="10" height="10" fill="{PALETTE[g % len(PALETTE)]}"/>')
            out.append(f'<text x="{label_width + 14 + 140 * g}" y="13" {FONT}>{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
