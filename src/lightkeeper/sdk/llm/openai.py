"""OpenAI: chat completions, responses and embeddings, sync and async, streamed or not.

    lightkeeper.instrument_openai(client)   # one OpenAI / AsyncOpenAI client
    lightkeeper.instrument_openai()         # every client in the process

A streamed chat completion reports usage only in a final chunk, and only when the
request asked for it (`stream_options={"include_usage": True}`). Lightkeeper does not
add that option behind the caller's back - the extra chunk has no choices and would
break code reading `chunk.choices[0]` - so a stream without it is counted as
unpriced, never as free.
"""

from __future__ import annotations

import importlib
from typing import Any

from lightkeeper.sdk.integrations import patching
from lightkeeper.sdk.llm import pricing, record, tokens
from lightkeeper.sdk.llm.tokens import Tokens
from lightkeeper.sdk.llm.wrap import Endpoint, async_wrapper, sync_wrapper

__all__ = ["instrument_openai", "uninstrument_openai"]

PROVIDER = "openai"


class ChatChunks:
    """Accumulates a chat completion stream: model, final usage chunk, text."""

    __slots__ = ("_text", "awaiting_usage", "model", "tokens")

    def __init__(self, capture: bool = False) -> None:
        self.model: str | None = None
        self.tokens: Tokens | None = None
        self.awaiting_usage = False
        self._text: list[str] | None = [] if capture else None

    def observe(self, chunk: Any) -> None:
        if self.model is None:
            self.model = chunk.model
        usage = chunk.usage
        choices = chunk.choices
        if usage is not None:
            self.tokens = tokens.openai_chat(usage)
            self.awaiting_usage = False
        elif choices and choices[0].finish_reason is not None:
            self.awaiting_usage = True
        if self._text is not None:
            self._text.extend(c.delta.content for c in choices if c.delta.content)

    def content(self) -> Any:
        return "".join(self._text) if self._text is not None else None


class ResponseEvents:
    """Accumulates a Responses API event stream; usage arrives with the terminal event."""

    __slots__ = ("_text", "awaiting_usage", "model", "tokens")

    def __init__(self, capture: bool = False) -> None:
        self.model: str | None = None
        self.tokens: Tokens | None = None
        self.awaiting_usage = False
        self._text: list[str] | None = [] if capture else None

    def observe(self, event: Any) -> None:
        kind = event.type
        if kind == "response.output_text.delta":
            if self._text is not None:
                self._text.append(event.delta)
        elif kind in ("response.created", "response.completed", "response.incomplete", "response.failed"):
            response = event.response
            self.model = response.model or self.model
            if response.usage is not None:
                self.tokens = tokens.openai_responses(response.usage)

    def content(self) -> Any:
        return "".join(self._text) if self._text is not None else None


class _NoStream:
    model: str | None = None
    tokens: Tokens | None = None
    awaiting_usage = False

    def __init__(self, capture: bool = False) -> None:
        pass

    def observe(self, chunk: Any) -> None:
        pass

    def content(self) -> Any:
        return None


def _chat_content(result: Any) -> Any:
    return [choice.message.content for choice in result.choices]


def _responses_content(result: Any) -> Any:
    return result.output_text


CHAT = Endpoint(PROVIDER, "chat", ("messages",), tokens.openai_chat, _chat_content, ChatChunks)
RESPONSES = Endpoint(
    PROVIDER, "chat", ("input", "instructions"), tokens.openai_responses, _responses_content, ResponseEvents
)
EMBEDDINGS = Endpoint(PROVIDER, "embeddings", ("input",), tokens.openai_chat, lambda _: None, _NoStream)

# (module, sync class, async class, attribute path on a client, endpoint)
_TARGETS = (
    ("openai.resources.chat.completions", "Completions", "AsyncCompletions", ("chat", "completions"), CHAT),
    ("openai.resources.responses", "Responses", "AsyncResponses", ("responses",), RESPONSES),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", ("embeddings",), EMBEDDINGS),
)


def _load() -> Any:
    return patching.require(
        "openai", integration="OpenAI", distribution="openai", minimum="1.40", below="4", extra="llm"
    )


def instrument_openai(client: Any = None) -> None:
    """Measure and price the calls of one OpenAI client, or of every client when None.

    Chat completions, responses and embeddings, sync and async, streamed or not:
    tokens (cached input and reasoning included), latency, time to first chunk, cost in
    USD from the offline price table, a span per call and a cost event. Idempotent.
    """
    openai = _load()
    changed = False
    for module_name, sync_name, async_name, path, endpoint in _TARGETS:
        module = importlib.import_module(module_name)
        if client is None:
            changed |= patching.patch_class(getattr(module, sync_name), "create", sync_wrapper(endpoint))
            changed |= patching.patch_class(getattr(module, async_name), "create", async_wrapper(endpoint))
            continue
        resource = client
        for name in path:
            resource = getattr(resource, name)
        asynchronous = isinstance(client, openai.AsyncOpenAI)
        make = async_wrapper(endpoint) if asynchronous else sync_wrapper(endpoint)
        changed |= patching.patch_instance(resource, "create", make)
    if changed:
        record.declare_families()
        pricing.warm_up_in_background()
        patching.instrumented("openai", client)


def uninstrument_openai(client: Any = None) -> None:
    """Undo `instrument_openai` for the same target (None: the process-wide patch)."""
    _load()
    for module_name, sync_name, async_name, path, _ in _TARGETS:
        if client is None:
            module = importlib.import_module(module_name)
            patching.unpatch_class(getattr(module, sync_name), "create")
            patching.unpatch_class(getattr(module, async_name), "create")
            continue
        resource = client
        for name in path:
            resource = getattr(resource, name)
        patching.unpatch_instance(resource, "create")
    patching.uninstrumented("openai", client)
