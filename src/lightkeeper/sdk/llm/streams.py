"""Streams handed back to the caller: the provider's own chunks, observed on the way.

The wrapper yields exactly the objects the provider's stream yields (no copies, no
extra or missing chunks) and records the call once: when the stream is exhausted,
when it raises, or - for a stream closed or garbage-collected before its end - with
status "abandoned" and whatever usage it had seen by then. Attributes it does not
define (`response`, `until_done()`...) are the wrapped stream's.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Protocol

from lightkeeper.sdk.llm.record import ABANDONED, ERROR, OK, Call
from lightkeeper.sdk.llm.tokens import Tokens

_log = logging.getLogger("lightkeeper.llm")


# Chunks read on `close()` when the answer is complete but its usage has not arrived
# yet: it follows in the next event or two, already sent by the provider.
MAX_DRAINED = 8


class Accumulator(Protocol):
    """Reads usage, model and (when captured) text out of one provider's chunks.

    `awaiting_usage`: the answer is complete (a finish reason, the last content block)
    but the usage that follows it has not been read - a caller that stops at the
    finish reason would otherwise lose the call's token counts.
    """

    model: str | None
    tokens: Tokens | None
    awaiting_usage: bool

    def observe(self, chunk: Any) -> None: ...

    def content(self) -> Any: ...


class _Observed:
    # `_observe` is the accumulator's bound method, looked up once: the per-chunk path
    # is one call into it and one test for the first chunk.
    __slots__ = ("_acc", "_call", "_chunks", "_inner", "_observe")

    def __init__(self, inner: Any, call: Call, acc: Accumulator) -> None:
        self._inner = inner
        self._call = call
        self._acc = acc
        self._observe = acc.observe
        self._chunks = inner

    def _see(self, chunk: Any) -> None:
        call = self._call
        try:
            if call.first_chunk_at is None:
                call.first_chunk_at = time.perf_counter()
            self._observe(chunk)
        except Exception:
            _log.debug("reading an LLM stream chunk failed", exc_info=True)

    def _finish(self, status: str, error: BaseException | None = None) -> None:
        call = self._call
        if call.done:
            return
        acc = self._acc
        try:
            content = acc.content() if call.content_in is not None else None
        except Exception:
            content = None
        call.finish(status, acc.tokens, acc.model, error, content)

    def __getattr__(self, name: str) -> Any:
        if name in _Observed.__slots__:  # not set yet: __init__ never ran to the end
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __del__(self) -> None:
        # Collected half-read: the provider bills what it sent, so record it.
        with contextlib.suppress(Exception):  # interpreter shutdown
            self._finish(ABANDONED)


class ObservedStream(_Observed):
    """A synchronous provider stream, observed.

    Chunks are read through the provider stream's own iterator (`iter(stream)`, the
    generator a `for` loop over it would use), not its `__next__`: the openai and
    anthropic streams' `__next__` is one more Python call per chunk, a third of what
    the wrapper would cost. Both hand out the same chunks of the same source.
    """

    __slots__ = ()

    def __init__(self, inner: Any, call: Call, acc: Accumulator) -> None:
        super().__init__(inner, call, acc)
        try:
            chunks = iter(inner)
        except Exception:  # no __iter__ (a bare iterator-like object): its __next__ then
            chunks = inner
        self._chunks = chunks if hasattr(chunks, "__next__") else inner

    def __iter__(self) -> ObservedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._finish(OK)
            raise
        except Exception as exc:
            self._finish(ERROR, exc)
            raise
        call = self._call  # `_see`, inlined: this runs once per chunk
        try:
            if call.first_chunk_at is None:
                call.first_chunk_at = time.perf_counter()
            self._observe(chunk)
        except Exception:
            _log.debug("reading an LLM stream chunk failed", exc_info=True)
        return chunk

    def close(self) -> None:
        if not self._call.done and self._acc.awaiting_usage:
            self._drain()
        self._finish(ABANDONED)
        self._inner.close()

    def _drain(self) -> None:
        try:
            for _ in range(MAX_DRAINED):
                self._acc.observe(next(self._chunks))
                if not self._acc.awaiting_usage:  # the answer was complete, and now its usage too
                    self._finish(OK)
                    return
        except StopIteration:
            self._finish(OK)
        except Exception:
            _log.debug("reading the rest of an LLM stream failed", exc_info=True)

    def __enter__(self) -> ObservedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ObservedAsyncStream(_Observed):
    """An asynchronous provider stream, observed."""

    __slots__ = ()

    def __aiter__(self) -> ObservedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._inner.__anext__()
        except StopAsyncIteration:
            self._finish(OK)
            raise
        except Exception as exc:
            self._finish(ERROR, exc)
            raise
        self._see(chunk)
        return chunk

    async def close(self) -> None:
        if not self._call.done and self._acc.awaiting_usage:
            await self._drain()
        self._finish(ABANDONED)
        await self._inner.close()

    async def _drain(self) -> None:
        try:
            for _ in range(MAX_DRAINED):
                self._acc.observe(await self._inner.__anext__())
                if not self._acc.awaiting_usage:
                    self._finish(OK)
                    return
        except StopAsyncIteration:
            self._finish(OK)
        except Exception:
            _log.debug("reading the rest of an LLM stream failed", exc_info=True)

    async def __aenter__(self) -> ObservedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
