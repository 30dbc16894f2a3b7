"""The wrapper around a provider method, shared by the OpenAI and Anthropic integrations.

`Endpoint` says what one method is (provider, GenAI operation, where its usage sits
in a response, how to read its stream). `sync_wrapper` / `async_wrapper` turn it into
a `make(original)` for `patching.patch_class` and `patching.patch_instance`. Opening
the record is guarded like closing it: if Lightkeeper fails, the original method is
called exactly as it would have been. A call that another instrumentation already
traces gets no span from Lightkeeper (see `coexist`), only its metrics and cost event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightkeeper.sdk.llm import coexist
from lightkeeper.sdk.llm.record import ERROR, OK, Call
from lightkeeper.sdk.llm.streams import Accumulator, ObservedAsyncStream, ObservedStream
from lightkeeper.sdk.llm.tokens import Tokens

_log = logging.getLogger("lightkeeper.llm")


@dataclass(frozen=True, slots=True)
class Endpoint:
    provider: str
    gen_ai_operation: str
    # Request keyword arguments that hold the prompt: hashed for the cost event, and
    # read as text only with content capture on.
    prompt_keys: tuple[str, ...]
    tokens: Callable[[Any], Tokens | None]
    content: Callable[[Any], Any]
    # Builds the stream reader; its argument says whether to keep the streamed text.
    accumulator: Callable[[bool], Accumulator]


def _open(endpoint: Endpoint, resource: Any, kwargs: dict[str, Any]) -> Call | None:
    try:
        # The message list is copied (not its messages): chat code appends the answer to
        # the very list it sent, before the call's prompt is hashed off the call path.
        prompt: dict[str, Any] | None = None
        for key in endpoint.prompt_keys:
            if key in kwargs:
                value = kwargs[key]
                if prompt is None:
                    prompt = {}
                prompt[key] = list(value) if type(value) is list else value
        call = Call(endpoint.provider, endpoint.gen_ai_operation, kwargs.get("model"), prompt)
        started = call.span
        if started is not None and coexist.traced_elsewhere(
            endpoint.provider, resource, started[2], started[1]
        ):
            call.span = call.content_in = None
        return call
    except Exception:
        _log.debug("opening an LLM call record failed", exc_info=True)
        return None


def _response(endpoint: Endpoint, call: Call, result: Any) -> None:
    try:
        model = getattr(result, "model", None)
        content = endpoint.content(result) if call.content_in is not None else None
        usage = getattr(result, "usage", None)
    except Exception:
        _log.debug("reading an LLM response failed", exc_info=True)
        model, content, usage = None, None, None
    model = model if isinstance(model, str) else None
    call.finish(OK, None, model, None, content, usage=usage, reader=endpoint.tokens)


def sync_wrapper(endpoint: Endpoint) -> Callable[[Any], Any]:
    def make(create: Any) -> Any:
        def create_recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _open(endpoint, self, kwargs)
            if call is None:
                return create(self, *args, **kwargs)
            try:
                result = create(self, *args, **kwargs)
            except Exception as exc:
                call.finish(ERROR, None, None, exc)
                raise
            if kwargs.get("stream") and hasattr(result, "__next__"):
                return ObservedStream(result, call, endpoint.accumulator(call.content_in is not None))
            _response(endpoint, call, result)
            return result

        return create_recorded

    return make


def async_wrapper(endpoint: Endpoint) -> Callable[[Any], Any]:
    def make(create: Any) -> Any:
        async def create_recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _open(endpoint, self, kwargs)
            if call is None:
                return await create(self, *args, **kwargs)
            try:
                result = await create(self, *args, **kwargs)
            except Exception as exc:
                call.finish(ERROR, None, None, exc)
                raise
            if kwargs.get("stream") and hasattr(result, "__anext__"):
                return ObservedAsyncStream(result, call, endpoint.accumulator(call.content_in is not None))
            _response(endpoint, call, result)
            return result

        return create_recorded

    return make
