"""Small text helpers for writing PromQL: selectors, numbers, durations.

Numbers go through `Decimal` so a threshold computed as 14.4 x 0.001 is written
`0.0144`, never `0.014400000000000001`: rules are read by people at 3 a.m. and
diffed in review, and a float artefact there hides the intended value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from prometheus_client.utils import floatToGoString

from lightkeeper.catalogue import Signal

_UNITS: tuple[tuple[str, int], ...] = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_RE2_META = set("\\.+*?()|[]{}^$")

Matcher = tuple[str, str, str]  # (label, op, value) with op in = != =~ !~


def decimal(value: float | int | str | Decimal) -> Decimal:
    """The decimal a person meant: floats via their shortest repr (0.1 stays 0.1)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def number(value: float | int | str | Decimal) -> str:
    """A clean decimal literal without exponent: 0.0144, 2147483648, 0.00001."""
    d = decimal(value)
    if not d.is_finite():
        raise ValueError(f"threshold {value!r} is not a finite number")
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "") else text


def seconds(text: str) -> int:
    """Whole seconds in a duration such as `5m`, `1h30m`, `30d`."""
    total, digits = 0, ""
    for ch in text:
        if ch.isdigit():
            digits += ch
        elif ch in _SECONDS and digits:
            total += int(digits) * _SECONDS[ch]
            digits = ""
        else:
            raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h, 30d")
    if digits or not text:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 5m, 1h, 30d")
    return total


def duration(total_seconds: int | float) -> str:
    """Shortest exact Prometheus duration using one unit: 300 -> 5m, 4320 -> 72m, 0 -> 0s."""
    value = math.ceil(total_seconds)
    if value <= 0:
        return "0s"
    for unit, size in _UNITS:
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}s"  # pragma: no cover - seconds always divide


_go_float: Callable[[float], str] = floatToGoString


def le_label(bound: float) -> str:
    """A histogram bucket bound as prometheus-client writes it in `le` (0.5, 1.0, 10.0)."""
    return _go_float(bound)


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def regex_escape(value: str) -> str:
    """Escape RE2 metacharacters so a route template matches only itself."""
    return "".join(f"\\{ch}" if ch in _RE2_META else ch for ch in value)


def one_of(values: Iterable[str]) -> str:
    """An anchored-by-Prometheus alternation matching exactly these literal values."""
    return "|".join(regex_escape(v) for v in sorted(set(values)))


def in_matcher(label: str, values: Sequence[str]) -> Matcher:
    """`label="v"` for one value, `label=~"a|b"` for several."""
    unique = sorted(set(values))
    if len(unique) == 1:
        return (label, "=", unique[0])
    return (label, "=~", one_of(unique))


def selector(metric: Signal | str, matchers: Iterable[Matcher] = ()) -> str:
    """`name{label="value",...}`; pass a catalogue Signal (or a recording-rule name)."""
    name = metric.name if isinstance(metric, Signal) else metric
    parts = [f"{label}{op}{quote(value)}" for label, op, value in matchers]
    return f"{name}{{{','.join(parts)}}}" if parts else name


def by(*labels: str) -> str:
    return f"by ({', '.join(labels)})"
