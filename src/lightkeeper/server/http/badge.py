"""Shields-style SVG badges: a probe's current state for READMEs and dashboards."""

from __future__ import annotations

from xml.sax.saxutils import escape

_COLOURS = {"up": "#1a7f37", "down": "#cf222e", "maintenance": "#0969da", "unknown": "#57606a"}
_CHAR_WIDTH = 7  # px per character at 11 px Verdana; close enough for short labels


def svg(label: str, state: str) -> str:
    """A two-part badge; the `<title>` and `aria-label` carry the words, not only the colour."""
    left, right = len(label) * _CHAR_WIDTH + 10, len(state) * _CHAR_WIDTH + 10
    total = left + right
    colour = _COLOURS.get(state, _COLOURS["unknown"])
    text = escape(f"{label}: {state}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f' aria-label="{text}"><title>{text}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="5" y="14">{escape(label)}</text>'
        f'<text x="{left + 5}" y="14">{escape(state)}</text></g></svg>'
    )
