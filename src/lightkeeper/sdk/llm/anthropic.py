"""Anthropic: messages, sync and async, streamed or not.

    lightkeeper.instrument_anthropic(client)   # one Anthropic / AsyncAnthropic client
    lightkeeper.instrument_anthropic()         # every client in the process

A stream reports usage twice: `message_start` carries the input side (with the cache
reads and writes that `input_tokens` leaves out) and `message_delta` the running
output count. A stream abandoned before `message_delta` is still priced for its input.
"""

from __future__ import annotations

import importlib
from typing import Any

from lightkeeper.sdk.integrations import patching
from lightkeeper.sdk.llm import pricing, record, tokens
from lightkeeper.sdk.llm.tokens import Tokens
from lightkeeper.sdk.llm.wrap import Endpoint, async_wrapper, sync_wrapper

__all__ = ["instrument_anthropic", "uninstrument_anthropic"]

PROVIDER = "anthropic"
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class MessageEvents:
    """Accumulates a message stream: usage from message_start, updated by message_delta."""

    __slots__ = ("_text", "_usage", "awaiting_usage", "model", "tokens")

    def __init__(self, capture: bool = False) -> None:
        self.model: str | None = None
        self.tokens: Tokens | None = None
        self.awaiting_usage = False
        self._usage: dict[str, int] = {}
        self._text: list[str] | None = [] if capture else None

    def _merge(self, usage: Any) -> None:
        for name in _USAGE_FIELDS:
            value = getattr(usage, name, None)
            if isinstance(value, int):
                self._usage[name] = value
        self.tokens = tokens.anthropic(self._usage)

    def observe(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_delta":
            if self._text is not None:
                text = getattr(event.delta, "text", None)
                if text:
                    self._text.append(text)
        elif kind == "message_start":
            self.model = event.message.model
            self._merge(event.message.usage)
        elif kind == "content_block_stop":
            self.awaiting_usage = True
        elif kind == "content_block_start":
            self.awaiting_usage = False
        elif kind == "message_delta" and event.usage is not None:
            self._merge(event.usage)
            self.awaiting_usage = False

    def content(self) -> Any:
        return "".join(self._text) if self._text is not None else None


def _content(result: Any) -> Any:
    return [getattr(block, "text", None) for block in result.content]


MESSAGES = Endpoint(PROVIDER, "chat", ("system", "messages"), tokens.anthropic, _content, MessageEvents)


def _load() -> Any:
    return patching.require(
        "anthropic", integration="Anthropic", distribution="anthropic", minimum="0.30", below="3", extra="llm"
    )


def _classes() -> tuple[type, type]:
    module = importlib.import_module("anthropic.resources.messages")
    return module.Messages, module.AsyncMessages


def instrument_anthropic(client: Any = None) -> None:
    """Measure and price the messages calls of one Anthropic client, or of every client.

    Sync and async, streamed or not: tokens (cache reads and cache writes included),
    latency, time to first chunk, cost in USD from the offline price table, a span per
    call and a cost event. Idempotent.
    """
    anthropic = _load()
    sync_cls, async_cls = _classes()
    if client is None:
        changed = patching.patch_class(sync_cls, "create", sync_wrapper(MESSAGES))
        changed |= patching.patch_class(async_cls, "create", async_wrapper(MESSAGES))
    else:
        asynchronous = isinstance(client, anthropic.AsyncAnthropic)
        make = async_wrapper(MESSAGES) if asynchronous else sync_wrapper(MESSAGES)
        changed = patching.patch_instance(client.messages, "create", make)
    if changed:
        record.declare_families()
        pricing.warm_up_in_background()
        patching.instrumented("anthropic", client)


def uninstrument_anthropic(client: Any = None) -> None:
    """Undo `instrument_anthropic` for the same target (None: the process-wide patch)."""
    _load()
    sync_cls, async_cls = _classes()
    if client is None:
        patching.unpatch_class(sync_cls, "create")
        patching.unpatch_class(async_cls, "create")
    else:
        patching.unpatch_instance(client.messages, "create")
    patching.uninstrumented("anthropic", client)
