"""One OpenTelemetry span per LLM call, named `{operation} {model}` (GenAI conventions).

The span is written when the call ends, with the start time and parent context taken
when it began, so a stream read later (or in another task) still nests under the
request that made the call, and calls pay nothing when no tracer provider is set up:
OpenTelemetry is never imported here, only looked up in `sys.modules`.

Prompt and completion text is attached only with `llm_capture_content`, and always
passed through the shared redaction first: the application's own provider may export
without Lightkeeper's redacting exporter.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from lightkeeper.sdk import redact

MAX_CONTENT_CHARS = 8192
_TRACER_NAME = "lightkeeper.llm"


# (provider, its tracer): the SDK builds a new Tracer and scope on every get_tracer(),
# which would cost each call more than the rest of opening it.
_tracer: tuple[Any, Any] = (None, None)


def start() -> Any:
    """The tracer and parent context for a call starting now, or None without tracing."""
    global _tracer
    trace_api = sys.modules.get("opentelemetry.trace")
    if trace_api is None:
        return None
    provider = trace_api.get_tracer_provider()
    known, tracer = _tracer
    if provider is not known:
        if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
            return None
        tracer = provider.get_tracer(_TRACER_NAME)
        _tracer = (provider, tracer)
    context_api = sys.modules["opentelemetry.context"]
    return tracer, context_api.get_current(), trace_api


def content(value: Any) -> str:
    """Prompt or completion as JSON text, secrets masked, cut to a bounded size."""
    text = json.dumps(redact.redact_value(value), default=str, ensure_ascii=False)
    return redact.redact_text(text[:MAX_CONTENT_CHARS])


def emit(
    started: Any, name: str, start_ns: int, end_ns: int, attributes: dict[str, Any], error: bool
) -> None:
    tracer, parent, trace_api = started
    span = tracer.start_span(
        name, context=parent, kind=trace_api.SpanKind.CLIENT, start_time=start_ns, attributes=attributes
    )
    if error:
        span.set_status(trace_api.Status(trace_api.StatusCode.ERROR))
    span.end(end_time=end_ns)
