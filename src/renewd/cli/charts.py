"""Bar and line charts over days, as SVG text: no library, nothing fetched, every value exact in
its tooltip. Drawn for `forecast --out` (an HTML page or one SVG file)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from html import escape

WIDTH, HEIGHT = 960, 250
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 40, 34


@dataclass(frozen=True)
class Series:
    """One thing counted per day: `values` to draw, `texts` to show (exact, formatted)."""

    name: str
    values: list[float]
    texts: list[str]
    color: str


def chart(
    title: str, days: list[date], bars: list[Series], line: Series | None = None, y: int = 0
) -> str:
    """An `<svg>` of stacked bars per day (and a line across them), placed at height `y`."""
    n = len(days)
    totals = [sum(s.values[i] for s in bars) for i in range(n)]
    top = max([*totals, *(line.values if line else []), 0.0])
    ticks = _ticks(top)
    scale = ticks[-1] or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = plot_w / max(n, 1)

    def ypos(value: float) -> float:
        return TOP + plot_h * (1 - value / scale)

    parts = [
        f'<svg class="chart" x="0" y="{y}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'data-left="{LEFT}" data-width="{plot_w}" data-days="{n}">',
        f'<text class="title" x="{LEFT}" y="18">{escape(title)}</text>',
    ]
    for tick in ticks:
        at = ypos(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at:.1f}" y2="{at:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{at + 4:.1f}" text-anchor="end">'
            f"{_short(tick)}</text>"
        )
    for i, label in _labels(days):
        x = LEFT + band * (i + 0.5)
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{label}</text>"
        )
    parts += _legend([*bars, *([line] if line else [])])
    for i, day in enumerate(days):
        base = 0.0
        for series in bars:
            value = series.values[i]
            if value <= 0:
                continue
            y0, y1 = ypos(base + value), ypos(base)
            base += value
            parts.append(
                f'<rect class="bar" x="{LEFT + band * i + band * 0.1:.1f}" y="{y0:.1f}" '
                f'width="{max(band * 0.8, 0.5):.1f}" height="{max(y1 - y0, 0.5):.1f}" '
                f'fill="{series.color}"><title>{day} {escape(series.name)}: '
                f"{escape(series.texts[i])}</title></rect>"
            )
    if line is not None:
        points = " ".join(
            f"{LEFT + band * (i + 0.5):.1f},{ypos(v):.1f}" for i, v in enumerate(line.values)
        )
        parts.append(f'<polyline class="line" points="{points}" stroke="{line.color}"/>')
    if not any(totals) and not (line and any(line.values)):
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" '
            'text-anchor="middle">none in this range</text>'
        )
    parts.append(
        f'<line class="guide" x1="0" x2="0" y1="{TOP}" y2="{TOP + plot_h}" visibility="hidden"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _ticks(top: float) -> list[float]:
    """0 and a few round steps (1, 2 or 5 times a power of ten) up to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = math.ceil(top / step)
    return [step * k for k in range(count + 1)]


def _short(value: float) -> str:
    """Axis labels: 1.5k, 20k, 3M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _labels(days: list[date]) -> list[tuple[int, str]]:
    """About eight dates along the axis; a month's name where it changes."""
    every = max(1, math.ceil(len(days) / 8))
    shown = []
    for i in range(0, len(days), every):
        day = days[i]
        first = i == 0 or days[i - every].month != day.month
        shown.append((i, day.strftime("%b %d") if first else day.strftime("%d")))
    return shown


def _legend(series: list[Series]) -> list[str]:
    parts, x = [], WIDTH - RIGHT
    for item in reversed(series):
        x -= 14 + 7 * len(item.name) + 18
        parts.append(f'<rect x="{x}" y="9" width="12" height="12" fill="{item.color}"/>')
        parts.append(f'<text class="legend" x="{x + 16}" y="19">{escape(item.name)}</text>')
    return parts
