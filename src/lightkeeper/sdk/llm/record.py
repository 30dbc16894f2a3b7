"""What one LLM call leaves behind: metrics, a span and a cost event.

A `Call` is opened before the provider is called and finished exactly once - when the
response arrives, when a stream ends, is closed or is collected half-read, or when
the call raises. Finishing only stamps the end time and queues the call: pricing,
metric updates, the span and the cost event are written in batches off the caller's
path (at most `flush_interval_ms` later, and before anything reads the metrics), the
way request metrics are. Everything after the provider's answer runs inside a guard:
a failure here is logged at debug level and never reaches the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lightkeeper import catalogue
from lightkeeper.sdk import settings as settings_module
from lightkeeper.sdk.context import current as current_context
from lightkeeper.sdk.integrations._labels import exception_type
from lightkeeper.sdk.llm import events, pricing, spans
from lightkeeper.sdk.llm.labels import Models, Operation, Operations, current_operation
from lightkeeper.sdk.llm.tokens import Tokens
from lightkeeper.sdk.metrics import before_collect, family
from lightkeeper.sdk.settings import Settings
from lightkeeper.sdk.write_behind import WriteBehind

_log = logging.getLogger("lightkeeper.llm")

OK = "ok"
ERROR = "error"
ABANDONED = "abandoned"
NOT_BILLED = "not billed (the provider returned an error)"
NO_USAGE = "unpriced: no usage reported"
UNKNOWN_MODEL = "unpriced: model not in the price table"
_NO_TOKENS = Tokens()
_time_ns = time.time_ns
_perf_counter = time.perf_counter


class Config:
    """The LLM settings in the shape the hot path wants, rebuilt when `instrument()` reruns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models = Models(settings.llm_max_models)
        self.operations = Operations(settings.llm_operations)
        self.prices = settings.llm_prices
        self.capture_content = settings.llm_capture_content
        self.hash_user = events.user_hasher(settings.llm_user_salt)
        self.hash_prompt = events.prompt_hasher(settings.llm_user_salt)
        self.batched = settings.flush_interval_ms > 0
        # Metric children by label values: `labels()` costs more than the update itself.
        self.children: dict[tuple[Any, ...], Any] = {}
        self.series: dict[tuple[str, str, str, str, str], Series] = {}


_config: Config | None = None


def config() -> Config:
    global _config
    wanted = settings_module._current  # what instrument() last remembered
    found = _config
    if found is None or (wanted is not None and found.settings is not wanted):
        found = _config = Config(wanted if wanted is not None else settings_module.load_settings())
    return found


def reset() -> None:
    """Write what waits, then forget the configuration and model labels (tests; a new `instrument()`)."""
    global _config
    flush()
    _config = None


class Call:
    """One call in flight. `finish()` records it; later calls to it do nothing."""

    __slots__ = (
        "bound",
        "content_in",
        "content_out",
        "done",
        "end",
        "error",
        "first_chunk_at",
        "gen_ai_operation",
        "operation",
        "prompt",
        "provider",
        "reader",
        "request_model",
        "response_model",
        "span",
        "start",
        "start_ns",
        "status",
        "tokens",
        "usage",
    )

    def __init__(self, provider: str, gen_ai_operation: str, request_model: Any, content_in: Any) -> None:
        self.provider = provider
        self.gen_ai_operation = gen_ai_operation
        self.request_model = request_model if isinstance(request_model, str) else None
        self.operation: Operation | None = current_operation()
        # The request's frame, never mutated once set: its request id is read when recording.
        self.bound: Mapping[str, Any] = current_context()
        self.span = span = spans.start()
        self.prompt = content_in  # hashed off the call path, for the cost event
        self.content_in = content_in if span is not None and config().capture_content else None
        self.first_chunk_at: float | None = None
        self.done = False
        self.start_ns = _time_ns()
        self.start = _perf_counter()

    def finish(
        self,
        status: str,
        tokens: Tokens | None,
        response_model: str | None = None,
        error: BaseException | None = None,
        content_out: Any = None,
        usage: Any = None,
        reader: Callable[[Any], Tokens | None] | None = None,
    ) -> None:
        """Queue the call for recording. `usage` + `reader`: read the tokens later, off the call path."""
        if self.done:
            return
        self.end = _perf_counter()
        self.done = True
        self.status = status
        self.tokens = tokens
        self.usage = usage
        self.reader = reader
        self.response_model = response_model
        self.error = type(error) if error is not None else None  # not the traceback's frames
        self.content_out = content_out
        try:
            if config().batched:
                _waiting.add(self)
            else:
                _write([self])
        except Exception:
            _log.debug("recording an LLM call failed", exc_info=True)


def _write(batch: list[Call]) -> None:
    for call in batch:
        try:
            _record(call)
        except Exception:
            _log.debug("recording an LLM call failed", exc_info=True)


_waiting = WriteBehind(_write, 0.05, "llm")


def flush() -> None:
    """Record every queued call now (before a metrics read; in tests)."""
    _waiting.flush()


before_collect(flush)

SIGNALS = (
    catalogue.GEN_AI_OPERATION_DURATION,
    catalogue.GEN_AI_TIME_TO_FIRST_CHUNK,
    catalogue.GEN_AI_TOKEN_USAGE,
    catalogue.GEN_AI_ERRORS,
    catalogue.LLM_REQUESTS,
    catalogue.LLM_COST,
    catalogue.LLM_UNPRICED_CALLS,
)


def declare_families() -> None:
    """Create the LLM metric families up front (called by `instrument_*`).

    Exposed (HELP/TYPE) from the first scrape, and never created in the middle of a
    registry read: the batch written by the read's own flush would miss that read.
    """
    for signal in SIGNALS:
        family(signal)


def _child(cfg: Config, signal: catalogue.Signal, *labels: str) -> Any:
    key = (signal.name, *labels)
    found = cfg.children.get(key)
    if found is None:
        found = cfg.children[key] = family(signal).labels(*labels)
    return found


class Series:
    """The metric children one kind of call updates, found with one lookup per call.

    Keyed by (provider, GenAI operation, model label, operation label, status). A child
    that only some calls touch (time to first chunk, tokens, cost, unpriced) is made on
    first use: making it would expose a zero series that no call ever wrote.
    """

    __slots__ = (
        "_cfg",
        "_cost",
        "_first_chunk",
        "_input",
        "_output",
        "_unpriced",
        "duration",
        "key",
        "requests",
    )

    def __init__(self, cfg: Config, key: tuple[str, str, str, str, str]) -> None:
        provider, gen_op, model, operation, status = key
        self._cfg = cfg
        self.key = key
        self.duration = _child(cfg, catalogue.GEN_AI_OPERATION_DURATION, provider, gen_op, model)
        self.requests = _child(cfg, catalogue.LLM_REQUESTS, provider, model, operation, status)
        self._first_chunk: Any = None
        self._input: Any = None
        self._output: Any = None
        self._cost: Any = None
        self._unpriced: Any = None

    def first_chunk(self) -> Any:
        if self._first_chunk is None:
            provider, gen_op, model, _, _ = self.key
            self._first_chunk = _child(
                self._cfg, catalogue.GEN_AI_TIME_TO_FIRST_CHUNK, provider, gen_op, model
            )
        return self._first_chunk

    def input_tokens(self) -> Any:
        if self._input is None:
            provider, gen_op, model, _, _ = self.key
            self._input = _child(self._cfg, catalogue.GEN_AI_TOKEN_USAGE, provider, gen_op, model, "input")
        return self._input

    def output_tokens(self) -> Any:
        if self._output is None:
            provider, gen_op, model, _, _ = self.key
            self._output = _child(self._cfg, catalogue.GEN_AI_TOKEN_USAGE, provider, gen_op, model, "output")
        return self._output

    def cost(self) -> Any:
        if self._cost is None:
            provider, _, model, operation, _ = self.key
            self._cost = _child(self._cfg, catalogue.LLM_COST, provider, model, operation)
        return self._cost

    def unpriced(self) -> Any:
        if self._unpriced is None:
            provider, _, model, _, _ = self.key
            self._unpriced = _child(self._cfg, catalogue.LLM_UNPRICED_CALLS, provider, model)
        return self._unpriced


_MAX_SERIES = 4096


def _series(cfg: Config, key: tuple[str, str, str, str, str]) -> Series:
    found = cfg.series.get(key)
    if found is None:
        if len(cfg.series) >= _MAX_SERIES:  # labels are capped; this only bounds odd statuses
            cfg.series.clear()
        found = cfg.series[key] = Series(cfg, key)
    return found


def _record(call: Call) -> None:
    cfg = config()
    tokens = call.tokens
    if tokens is None and call.reader is not None and call.usage is not None:
        tokens = call.reader(call.usage)
    response_model = call.response_model
    status = call.status
    model = cfg.models(call.request_model or response_model)
    op = call.operation
    operation = cfg.operations(op.name) if op is not None else call.gen_ai_operation
    provider, gen_op = call.provider, call.gen_ai_operation
    duration = call.end - call.start
    first_chunk_at = call.first_chunk_at
    ttfc = first_chunk_at - call.start if first_chunk_at is not None else None

    series = _series(cfg, (provider, gen_op, model, operation, status))
    series.duration.observe(duration)
    if ttfc is not None:
        series.first_chunk().observe(ttfc)
    if tokens is not None:
        series.input_tokens().observe(tokens.input)
        if gen_op != "embeddings":
            series.output_tokens().observe(tokens.output)
    series.requests.inc()
    if call.error is not None:
        _child(cfg, catalogue.GEN_AI_ERRORS, model, exception_type(call.error)).inc()

    cost: float | None = None
    if tokens is None:
        source = NOT_BILLED if status == ERROR else NO_USAGE
        if status == ERROR:
            cost = 0.0
    else:
        priced = pricing.price_at(
            provider, response_model or call.request_model or "", tokens, call.start_ns, cfg.prices
        )
        source = priced.source if priced is not None else UNKNOWN_MODEL
        cost = float(priced.usd) if priced is not None else None
    if cost is None:
        series.unpriced().inc()
    elif cost > 0:
        series.cost().inc(cost)

    if call.span is not None:
        _span(call, cfg, tokens, operation, cost, source)
    if events.has_sinks():
        when = datetime.fromtimestamp(call.start_ns / 1e9, tz=UTC)
        events.emit(_event(call, cfg, when, tokens, operation, cost, source, duration, ttfc))


def _span(
    call: Call, cfg: Config, tokens: Tokens | None, operation: str, cost: float | None, source: str
) -> None:
    request_model = call.request_model or call.response_model or "unknown"
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": call.gen_ai_operation,
        "gen_ai.provider.name": call.provider,
        "gen_ai.request.model": request_model,
        "lightkeeper.llm.operation": operation,
        "lightkeeper.llm.status": call.status,
        "lightkeeper.llm.price_source": source,
    }
    if call.response_model:
        attributes["gen_ai.response.model"] = call.response_model
    if tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = tokens.input
        attributes["gen_ai.usage.output_tokens"] = tokens.output
        attributes["gen_ai.usage.cache_read.input_tokens"] = tokens.cache_read
        attributes["gen_ai.usage.cache_creation.input_tokens"] = tokens.cache_write
        attributes["gen_ai.usage.reasoning.output_tokens"] = tokens.reasoning
    if cost is not None:
        attributes["lightkeeper.llm.cost_usd"] = cost
    if call.error is not None:
        attributes["error.type"] = call.error.__name__
    if call.first_chunk_at is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = call.first_chunk_at - call.start
    if cfg.capture_content:
        if call.content_in is not None:
            attributes["gen_ai.input.messages"] = spans.content(call.content_in)
        if call.content_out is not None:
            attributes["gen_ai.output.messages"] = spans.content(call.content_out)
    end_ns = call.start_ns + int((call.end - call.start) * 1e9)
    name = f"{call.gen_ai_operation} {request_model}"
    spans.emit(call.span, name, call.start_ns, end_ns, attributes, call.error is not None)


def _event(
    call: Call,
    cfg: Config,
    when: datetime,
    tokens: Tokens | None,
    operation: str,
    cost: float | None,
    source: str,
    duration: float,
    ttfc: float | None,
) -> events.CostEvent:
    op = call.operation
    user_id = op.user_id if op is not None and op.user_id is not None else call.bound.get("user_id")
    workspace = call.bound.get("workspace_id")
    if op is not None and op.workspace_id is not None:
        workspace = op.workspace_id
    counted = tokens or _NO_TOKENS
    prompt_hash = None
    if call.prompt is not None:
        try:
            prompt_hash = cfg.hash_prompt(call.prompt)
        except Exception:  # an object json cannot even str(): the event goes without it
            _log.debug("hashing an LLM prompt failed", exc_info=True)
    return events.CostEvent(
        timestamp=when,
        provider=call.provider,
        model=call.response_model or call.request_model or "unknown",
        operation=operation,
        status=call.status,
        input_tokens=counted.input,
        output_tokens=counted.output,
        cache_read_tokens=counted.cache_read,
        cache_write_tokens=counted.cache_write,
        reasoning_tokens=counted.reasoning,
        cost_usd=cost,
        price_source=source,
        latency_seconds=duration,
        time_to_first_chunk_seconds=ttfc,
        user_hash=cfg.hash_user(str(user_id)) if user_id is not None else None,
        workspace_id=str(workspace) if workspace is not None else None,
        request_id=call.bound.get("request_id"),
        prompt_hash=prompt_hash,
    )
