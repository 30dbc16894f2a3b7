"""Whether another instrumentation already writes the GenAI span of a call.

One call must not show up as two sibling or nested `chat` spans, each with its own
token counts: the trace would double every sum taken over it. When another library
traces the call, Lightkeeper leaves the span to it (its metrics and cost events are
written all the same). Three ways a call can already be traced:

- the provider's SDK does it (anthropic >= 2 opens a call span of its own unless the
  client's `open_telemetry` option turns its traces off);
- an instrumentor is active for the provider (OpenLLMetry's or OpenLIT's), whichever
  of its wrapper and ours is the outer one;
- the current span is another library's GenAI client span (an outer wrapper we do not
  know by name).

Nothing is imported here: instrumentors are looked up in `sys.modules`, so a process
without them pays a dictionary miss per traced call and nothing when tracing is off.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

# Instrumentor classes by provider: (module, class). Each is a `BaseInstrumentor`, a
# per-class singleton whose `_instance` tells whether it was ever created.
INSTRUMENTORS: dict[str, tuple[tuple[str, str], ...]] = {
    "openai": (
        ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),
        ("openlit.instrumentation.openai", "OpenAIInstrumentor"),
    ),
    "anthropic": (
        ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
        ("openlit.instrumentation.anthropic", "AnthropicInstrumentor"),
    ),
}
_PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system")


def traced_elsewhere(provider: str, resource: Any, trace_api: Any, parent: Any = None) -> bool:
    """True when the call about to be made on `resource` gets a GenAI span from someone else.

    `parent`: the current OpenTelemetry context when the caller already has it.
    """
    return _instrumented(provider) or _sdk_traces(resource) or _inside_genai_span(provider, trace_api, parent)


def _instrumented(provider: str) -> bool:
    # Looked up on every call, not remembered: an instrumentor can be enabled (or
    # disabled) at any time, and a miss in `sys.modules` costs next to nothing.
    for module_name, class_name in INSTRUMENTORS.get(provider, ()):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        instance = getattr(getattr(module, class_name, None), "_instance", None)
        if instance is not None and getattr(instance, "is_instrumented_by_opentelemetry", False):
            return True
    return False


# Per client: anthropic sets a client's `open_telemetry` option only when the client
# is made (a copy gets its own), and reading it copies two dicts on every access.
_client_traces: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
# Per client class: whether it has the option at all (openai's has not). A class that
# has none is asked nothing more, not even a failed attribute lookup per call.
_class_has_option: dict[type, bool] = {}


def _sdk_traces(resource: Any) -> bool:
    """The anthropic SDK's own call spans: on by default where the client has the option."""
    client = getattr(resource, "_client", None)
    if client is None:
        return False
    kind = type(client)
    has_option = _class_has_option.get(kind)
    if has_option is None:
        has_option = _class_has_option[kind] = hasattr(kind, "open_telemetry")
    if not has_option:
        return "open_telemetry" in getattr(client, "__dict__", ()) and _reads_traces_on(client)
    try:
        return _client_traces[client]
    except KeyError:
        found = _client_traces[client] = _reads_traces_on(client)
        return found
    except TypeError:  # a client that takes no weak reference: asked every time
        return _reads_traces_on(client)


def _reads_traces_on(client: Any) -> bool:
    options = getattr(client, "open_telemetry", None)
    if not isinstance(options, dict):
        return False
    traces = options.get("traces")
    return isinstance(traces, dict) and bool(traces.get("enabled"))


def _inside_genai_span(provider: str, trace_api: Any, parent: Any = None) -> bool:
    span = trace_api.get_current_span(parent)
    if not span.is_recording() or getattr(span, "kind", None) != trace_api.SpanKind.CLIENT:
        return False
    attributes = getattr(span, "attributes", None) or {}
    if "gen_ai.operation.name" not in attributes:
        return False
    named = [attributes[key] for key in _PROVIDER_KEYS if key in attributes]
    return not named or provider in named
