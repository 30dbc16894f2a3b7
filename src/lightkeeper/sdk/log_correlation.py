"""Trace ids in log lines: the ids of the current span, for logs, Sentry tags and exemplars.

A leaf module (it imports nothing from lightkeeper): logging, error reporting and
the server span all need the ids, and none of them should need the others for it.
It never imports OpenTelemetry either; outside a traced process it answers None.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["add_trace_ids", "ids_of", "trace_ids"]

_ids_cache: tuple[Any, str, str] = (None, "", "")
_current_span: Any = None  # opentelemetry.trace.get_current_span, bound on first use


def trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as hex, or None outside a span."""
    trace_api = sys.modules.get("opentelemetry.trace")
    if trace_api is None:
        return None
    return ids_of(trace_api.get_current_span().get_span_context())


def ids_of(ctx: Any) -> tuple[str, str] | None:
    """(trace_id, span_id) of a span context as hex; None for the invalid context.

    The lines of one span share its context object, so the last answer is kept.
    """
    global _ids_cache
    if not ctx.trace_id:
        return None
    cached = _ids_cache
    if cached[0] is not ctx:
        # to_bytes().hex(): a quarter of the cost of a "032x" format spec
        cached = (ctx, ctx.trace_id.to_bytes(16, "big").hex(), ctx.span_id.to_bytes(8, "big").hex())
        _ids_cache = cached
    return cached[1], cached[2]


def add_trace_ids(_: Any, __: str, event_dict: Any) -> Any:
    """structlog processor: `trace_id` / `span_id` of the span the line is written in.

    Reads the current span context only; nothing is created or formatted twice for the
    lines of one span. Lines written outside any span keep the `null` ids. Added to the
    logging pipeline only once spans are recorded, so OpenTelemetry is importable here.
    """
    global _current_span
    current = _current_span
    if current is None:
        from opentelemetry.trace import get_current_span as current

        _current_span = current
    found = ids_of(current().get_span_context())
    if found is not None:
        event_dict.setdefault("trace_id", found[0])
        event_dict.setdefault("span_id", found[1])
    return event_dict
