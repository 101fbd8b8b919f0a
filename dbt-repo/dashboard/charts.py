"""Inline SVG charts: the dashboard is one static file with no JavaScript.

A static page can be served by nginx from a bucket, cached and archived per
run, and it renders the same for every viewer without a BI server to run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 860, 280, 56, 40, 16
COLOURS = {
    "new_users": "#2f7ed8",
    "retained_users": "#8bbc21",
    "resurrected_users": "#f28f43",
    "churned_users": "#c42525",
    "active_users": "#1aadce",
}


def _ticks(low: float, high: float, count: int = 8) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        return [low]
    raw_step = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) // step) + 1)]


def growth_bars(weeks: Sequence[dict], labels: dict[str, str]) -> str:
    """Stacked bars: new + retained + resurrected above zero, churned below."""
    if not weeks:
        return "<p>No weeks yet.</p>"
    up = ["retained_users", "new_users", "resurrected_users"]
    top = max(sum(w[k] for k in up) for w in weeks) or 1
    bottom = max(w["churned_users"] for w in weeks) or 0
    span = top + bottom
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    zero_y = PAD_TOP + plot_h * top / span
    slot = (WIDTH - PAD_LEFT - 10) / len(weeks)
    bar_w = max(2.0, slot * 0.7)
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Weekly growth accounting">']
    for value in _ticks(-bottom, top):
        y = zero_y - plot_h * value / span
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value:,.0f}</text>'
        )
    for i, week in enumerate(weeks):
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        y = zero_y
        for key in up:
            h = plot_h * week[key] / span
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{COLOURS[key]}">'
                f"<title>{escape(str(week['period_start']))} {labels[key]}: {week[key]:,}</title></rect>"
            )
        h = plot_h * week["churned_users"] / span
        churn_colour = COLOURS["churned_users"]
        parts.append(
            f'<rect x="{x:.1f}" y="{zero_y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{churn_colour}">'
            f"<title>{escape(str(week['period_start']))} churned: {week['churned_users']:,}</title></rect>"
        )
        if len(weeks) <= 26 or i % max(1, len(weeks) // 13) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" class="axis" '
                f'text-anchor="middle">{escape(str(week["period_start"])[5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def line(points: Sequence[tuple[str, float]], colour: str, label: str) -> str:
    if not points:
        return "<p>No data yet.</p>"
    top = max(v for _, v in points) or 1
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = (WIDTH - PAD_LEFT - 10) / max(1, len(points) - 1)
    coords = " ".join(
        f"{PAD_LEFT + i * step:.1f},{PAD_TOP + plot_h * (1 - v / top):.1f}" for i, (_, v) in enumerate(points)
    )
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">']
    for value in _ticks(0, top):
        y = PAD_TOP + plot_h * (1 - value / top)
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value:,.0f}</text>'
        )
    parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
    every = max(1, len(points) // 10)
    for i, (name, _) in enumerate(points):
        if i % every == 0:
            parts.append(
                f'<text x="{PAD_LEFT + i * step:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" class="axis" '
                f'text-anchor="middle">{escape(name[5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
