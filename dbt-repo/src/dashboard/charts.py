"""Inline SVG charts: the dashboard is one static file with no JavaScript.

A static page can be served by nginx under a strict Content-Security-Policy
(no script at all), cached and archived per run, and it renders the same for
every viewer without a BI server to run. Hovering a mark shows its value
through SVG `<title>`; choosing a grain is done with CSS alone (see the
template).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 860, 280, 64, 40, 16, 34
COLOURS = {
    "new_users": "#2f7ed8",
    "retained_users": "#8bbc21",
    "resurrected_users": "#f28f43",
    "churned_users": "#c42525",
    "active_users": "#1aadce",
}
# A qualitative palette for series that have no colour of their own (categories, segments).
PALETTE = ("#2f7ed8", "#8bbc21", "#f28f43", "#910000", "#1aadce", "#492970", "#77a1e5", "#c42525", "#a6c96a")


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: Sequence[float | None]


def _ticks(low: float, high: float, count: int = 8) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        return [low]
    raw_step = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _number(value: float, percent: bool = False) -> str:
    if percent:
        return f"{value:.0%}"
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.2f}"


def _open(label: str, height: int = HEIGHT) -> list[str]:
    return [f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}">']


def _y_axis(
    parts: list[str], ticks: Sequence[float], to_y: Callable[[float], float], percent: bool = False
) -> None:
    for value in ticks:
        y = to_y(value)
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
            f"{_number(value, percent)}</text>"
        )


def _x_labels(
    parts: list[str], names: Sequence[str], x_of: Callable[[int], float], height: int = HEIGHT
) -> None:
    every = max(1, math.ceil(len(names) / 9))  # a full date is ~60 px of the 860 wide
    for i, name in enumerate(names):
        if i % every == 0:
            parts.append(
                f'<text x="{x_of(i):.1f}" y="{height - PAD_BOTTOM + 16}" class="axis" '
                f'text-anchor="middle">{escape(name)}</text>'
            )


def diverging_bars(periods: Sequence[str], up: Sequence[Series], down: Sequence[Series], label: str) -> str:
    """Stacked bars per period: the `up` series above zero, the `down` series drawn below it."""
    if not periods:
        return "<p>No data yet.</p>"
    top = max(sum(s.values[i] or 0 for s in up) for i in range(len(periods))) or 1
    bottom = max((sum(s.values[i] or 0 for s in down) for i in range(len(periods))), default=0)
    span = top + bottom
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    zero_y = PAD_TOP + plot_h * top / span
    slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / len(periods)
    bar_w = max(1.0, slot * 0.72)
    parts = _open(label)
    _y_axis(parts, _ticks(-bottom, top), lambda v: zero_y - plot_h * v / span)
    for i, period in enumerate(periods):
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        above, below = zero_y, zero_y
        for series, is_up in [(s, True) for s in up] + [(s, False) for s in down]:
            value = series.values[i] or 0
            h = plot_h * value / span
            if is_up:
                above -= h
                y = above
            else:
                y, below = below, below + h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{series.colour}">'
                f"<title>{escape(period)} {escape(series.label)}: {_number(value)}</title></rect>"
            )
    parts.append(
        f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" class="zero"/>'
    )
    _x_labels(parts, periods, lambda i: PAD_LEFT + i * slot + slot / 2)
    parts.append("</svg>")
    return "".join(parts)


def lines(
    names: Sequence[str], series: Sequence[Series], label: str, percent: bool = False, height: int = HEIGHT
) -> str:
    """One line per series over the same x axis; gaps (None) break a line."""
    values = [v for s in series for v in s.values if v is not None]
    if not names or not values:
        return "<p>No data yet.</p>"
    top = max(values) or 1
    plot_h = height - PAD_BOTTOM - PAD_TOP
    step = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(1, len(names) - 1)

    def x_of(i: int) -> float:
        return PAD_LEFT + i * step if len(names) > 1 else PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) / 2

    def y_of(v: float) -> float:
        return PAD_TOP + plot_h * (1 - v / top)

    parts = _open(label, height)
    _y_axis(parts, _ticks(0, top, 6), y_of, percent)
    for s in series:
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x_of(i):.1f},{y_of(v):.1f}")
        for run in runs:
            if run:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.colour}" stroke-width="2">'
                    f"<title>{escape(s.label)}</title></polyline>"
                )
        if len(names) <= 120:  # hover targets, one per point
            for i, v in enumerate(s.values):
                if v is not None:
                    parts.append(
                        f'<circle cx="{x_of(i):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{s.colour}">'
                        f"<title>{escape(names[i])} {escape(s.label)}: {_number(v, percent)}</title></circle>"
                    )
    _x_labels(parts, names, x_of, height)
    parts.append("</svg>")
    return "".join(parts)


def heatmap(rows: Sequence[str], columns: int, cells: dict[tuple[int, int], float], label: str) -> str:
    """A triangle of rates: rows (cohorts) by columns (periods since), shaded and labelled."""
    if not rows:
        return "<p>No data yet.</p>"
    cell_w = min(60.0, (WIDTH - 110) / max(1, columns))
    cell_h = 22
    height = 30 + cell_h * len(rows)
    width = 110 + cell_w * columns + 4
    # Drawn at its natural size (not stretched to the page), so a small triangle keeps small text.
    parts = [
        f'<svg viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" height="{height}" role="img" '
        f'aria-label="{escape(label)}" class="heatmap">'
    ]
    for c in range(columns):
        parts.append(
            f'<text x="{110 + (c + 0.5) * cell_w:.1f}" y="16" class="axis" text-anchor="middle">{c}</text>'
        )
    for r, name in enumerate(rows):
        y = 24 + r * cell_h
        parts.append(f'<text x="104" y="{y + 15}" class="axis" text-anchor="end">{escape(name)}</text>')
        for c in range(columns):
            if (r, c) not in cells:
                continue
            rate = cells[(r, c)]
            # White to the retention blue; text flips to white on dark cells.
            shade = f"rgb({int(255 - 208 * rate)},{int(255 - 129 * rate)},{int(255 - 39 * rate)})"
            ink = "#fff" if rate > 0.55 else "#1d2733"
            x = 110 + c * cell_w
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" fill="{shade}">'
                f"<title>cohort {escape(name)}, +{c}: {rate:.1%}</title></rect>"
            )
            if cell_w >= 30:
                parts.append(
                    f'<text x="{x + cell_w / 2:.1f}" y="{y + 15}" class="cell" fill="{ink}" '
                    f'text-anchor="middle">{rate:.0%}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)
