"""LLM calls measured and priced inside the service, with no proxy in the request path.

`instrument_openai()` / `instrument_anthropic()` wrap the clients' own methods;
`instrument_llm()` (or `instrument(app, llm=True)`) patches both libraries' classes
once. Each call yields GenAI-convention metrics (tokens, latency, time to first
chunk), Lightkeeper's request, cost and unpriced-call counters, a span, and a
`CostEvent` for registered sinks. Modules: `tokens` (usage blocks -> one convention),
`pricing` (offline genai-prices), `labels` (bounded labels, `llm_operation`),
`record` (one call -> signals), `streams`, `wrap`, `spans`, `events`, and one module
per provider.
"""

from __future__ import annotations

import importlib.util

from lightkeeper.sdk.llm.events import CostEvent, CostSink, add_sink, remove_sink
from lightkeeper.sdk.llm.labels import llm_operation

__all__ = [
    "CostEvent",
    "CostSink",
    "add_sink",
    "instrument_llm",
    "llm_operation",
    "remove_sink",
]


def instrument_llm() -> list[str]:
    """Patch every OpenAI and Anthropic client class that is installed; returns which were.

    With `llm_events_url` set, cost events are also shipped to the server from here on.

    A provider whose library is not installed is skipped silently: a service using only
    one of them needs nothing else.
    """
    from lightkeeper.sdk import settings as settings_module
    from lightkeeper.sdk.llm.shipper import install

    current = settings_module._current  # what instrument() last remembered
    settings = current if current is not None else settings_module.load_settings()
    if settings.llm_events_url:
        install(settings)
    done: list[str] = []
    if importlib.util.find_spec("openai") is not None:
        from lightkeeper.sdk.llm.openai import instrument_openai

        instrument_openai()
        done.append("openai")
    if importlib.util.find_spec("anthropic") is not None:
        from lightkeeper.sdk.llm.anthropic import instrument_anthropic

        instrument_anthropic()
        done.append("anthropic")
    return done
