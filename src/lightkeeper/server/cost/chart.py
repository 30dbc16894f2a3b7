"""The Cost page's daily bar chart as inline SVG: no JavaScript, readable by screen readers."""

from __future__ import annotations

from datetime import date
from html import escape

WIDTH, HEIGHT, PAD = 720, 180, 24


def daily_svg(days: list[tuple[date, float]]) -> str:
    top = max((cost for _, cost in days), default=0.0) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(days), 1)
    bars = []
    for n, (day, cost) in enumerate(days):
        h = (HEIGHT - 2 * PAD) * cost / top
        x, y = PAD + n * step, HEIGHT - PAD - h
        label = escape(f"{day.isoformat()}: ${cost:.2f}")
        bars.append(
            f'<rect class="bar" fill="#2f5d8a" x="{x:.1f}" y="{y:.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{h:.1f}">'
            f"<title>{label}</title></rect>"
        )
    return (
        f'<svg role="img" aria-label="Daily LLM cost, peak ${top:.2f}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'
    )
