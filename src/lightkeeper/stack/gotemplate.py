"""Expand the small subset of Prometheus alert templates the generated rules use.

`promtool test rules` compares annotations exactly, so the generated test cases must
know what `{{ $value | humanizePercentage }}` prints. These are ports of Prometheus'
template functions (template/template.go, 2.x), limited to what `rules.py` writes;
anything else raises, so a new template construct cannot slip into the rules untested.
"""

from __future__ import annotations

import math
import re

_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _g4(v: float) -> str:
    """Go's fmt `%.4g` (same rules as C for the values alerts produce)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return f"{_g4(v)}{prefix}"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}"


def humanize1024(v: float) -> str:
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return f"{_g4(v)}{prefix}"


def humanize_percentage(v: float) -> str:
    return f"{_g4(v * 100)}%"


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return f"{_g4(v)}s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes, hours, days = whole % 60, (whole // 60) % 60, (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


FUNCTIONS = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizePercentage": humanize_percentage,
    "humanizeDuration": humanize_duration,
}


def expand(text: str, labels: dict[str, str], value: float | None) -> str:
    """What Prometheus prints for `text` given the alert's series labels and value.

    Raises ValueError, naming the offending action, for anything outside the subset
    above: a bare `{{ $value }}` (Go's `%v` float formatting is not ported), an unknown
    or chained function, an unclosed `{{` or a stray `}}`.
    """

    def action(match: re.Match[str]) -> str:
        body = match.group(1)
        if body.startswith("$labels."):
            name = body.removeprefix("$labels.")
            if not _LABEL.match(name):
                raise ValueError(f"{{{{ {body} }}}} does not name a label; write {{{{ $labels.<name> }}}}")
            if name not in labels:
                raise ValueError(f"template uses $labels.{name}, which the alert's series does not carry")
            return labels[name]
        parts = [p.strip() for p in body.split("|")]
        if parts[0] != "$value":
            raise ValueError(f"unsupported template action {{{{ {body} }}}}; use $labels.<name> or $value")
        if len(parts) == 1:
            raise ValueError(
                f"{{{{ {body} }}}} prints Go's raw float formatting, which is not predicted here; "
                f"pipe it through one of {', '.join(FUNCTIONS)}"
            )
        if len(parts) > 2 or parts[1] not in FUNCTIONS:
            raise ValueError(
                f"unsupported template function in {{{{ {body} }}}}; "
                f"use exactly one of {', '.join(FUNCTIONS)}"
            )
        if value is None:
            raise ValueError("template uses $value but the test case has no value")
        return FUNCTIONS[parts[1]](value)

    expanded = _ACTION.sub(action, text)
    for marker in ("{{", "}}"):
        if marker in _ACTION.sub("", text):
            raise ValueError(f"unbalanced {marker!r} in template {text!r}")
    return expanded
