"""One JSON line per event, for structlog and stdlib `logging` alike.

structlog-native calls go straight to a bytes writer (the fast path the access log
uses); stdlib records (uvicorn, libraries, the app's own `logging.getLogger`) are
rendered by structlog's `ProcessorFormatter` with the same processors, so every line
on stdout has the same shape, the same request context and the same redaction.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import threading
import time
from typing import IO, Any, cast

import orjson
import structlog
import structlog.contextvars as structlog_contextvars
from structlog.types import EventDict, Processor, WrappedLogger

from lightkeeper import catalogue
from lightkeeper.sdk import redact
from lightkeeper.sdk.context import _request_context, request_bound
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.settings import Settings
from lightkeeper.sdk.tracebacks import TracebackText
from lightkeeper.sdk.write_behind import WriteBehind

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40, "critical": 50}

# Extra processors other SDK modules contribute (trace ids from OpenTelemetry, ...).
_extra_processors: list[Processor] = []
_lock = threading.Lock()
_configured_with: Settings | None = None


def add_processor(processor: Processor) -> None:
    """Let another SDK module enrich every event (e.g. trace_id / span_id)."""
    with _lock:
        if processor not in _extra_processors:
            _extra_processors.append(processor)
    if _configured_with is not None:
        configure_logging(_configured_with, force=True)


# (second, "YYYY-mm-ddTHH:MM:SS.") replaced as one tuple: lines are rendered in more
# than one thread (the request line's flusher), and a reader must never pair one
# second's number with another second's text.
_ts_cache: list[tuple[int, str]] = [(0, "")]


def _second_text(sec: int) -> str:
    cached = _ts_cache[0]
    if cached[0] == sec:
        return cached[1]
    text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
    _ts_cache[0] = (sec, text)
    return text


class _PendingTraceback:
    """An event's exception, held in its `exception` field until redaction has run.

    The redaction processor sees only this placeholder (its repr is empty: no rule,
    not even a service's own pattern, can match it) and `_add_traceback` then puts
    the text in its place: the traceback is
    cleaned by `_tracebacks`, which redacts a stack's frames once and only the
    exception's own line per occurrence, instead of scanning kilobytes of frames on
    every failing request. The exception is referenced for the length of one
    pipeline run, never beyond.
    """

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __repr__(self) -> str:
        return ""


# The text every log line's `exception` field carries, redacted part by part.
_tracebacks = TracebackText(redact.redact_text)
redact.on_reconfigure(_tracebacks.forget)


def _format_exc_info(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog's `format_exc_info`, with the cheap formatter (no 3.11 column carets).

    The stdlib formatter parses every source line of the stack with `ast`; on a
    failing request that was most of the cost of the whole request. The text is
    made after redaction (`_add_traceback`); the field keeps its place in the line.
    """
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if isinstance(exc_info, BaseException):
        exc: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        exc = exc_info[1]
    else:
        exc = sys.exc_info()[1]
    if exc is not None:
        event_dict["exception"] = _PendingTraceback(exc)
    return event_dict


def _add_traceback(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The redacted traceback text in place of its placeholder (right after redaction)."""
    pending = event_dict.get("exception")
    if pending.__class__ is _PendingTraceback:
        event_dict["exception"] = _tracebacks(pending.exc)
    return event_dict


# Open `lightkeeper.testing.capture_logs()` blocks; events go there instead of stdout.
_captures: list[list[dict[str, Any]]] = []


def _prepare(sample_rate: float) -> Processor:
    """Request context, level, INFO sampling and traceback text: the fields that
    must exist before redaction runs."""
    dropped = family(catalogue.LOG_EVENTS_SAMPLED_OUT) if sample_rate < 1.0 else None
    rand = random.random
    get_context = _request_context.get

    def prepare(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        level = event_dict.setdefault("level", "warning" if method_name == "warn" else method_name)
        if dropped is not None and _LEVELS.get(level, 20) <= 20 and rand() >= sample_rate:
            dropped.labels(level).inc()
            raise structlog.DropEvent
        ctx = get_context()
        if ctx:
            for key, value in ctx.items():
                event_dict.setdefault(key, value)
        # structlog's own contextvars (bind_contextvars) cost a full context copy
        # to merge; only pay for it once the application has used them.
        if getattr(structlog_contextvars, "_CONTEXT_VARS", True):
            structlog_contextvars.merge_contextvars(logger, method_name, event_dict)
        if "exc_info" in event_dict and not _logged_before(event_dict):
            _format_exc_info(logger, method_name, event_dict)
        return event_dict

    return prepare


# Set on an exception whose traceback a Lightkeeper line already carries.
_LOGGED_ATTR = "_lightkeeper_logged"


def mark_logged(exc: BaseException) -> None:
    """The middleware logged this exception: a server that logs it again after the
    re-raise (uvicorn's "Exception in ASGI application") must not repeat the
    traceback, so each exception has one traceback line."""
    with contextlib.suppress(AttributeError, TypeError):  # a type that refuses attributes
        setattr(exc, _LOGGED_ATTR, True)


def was_logged(exc: BaseException) -> bool:
    return bool(getattr(exc, _LOGGED_ATTR, False))


def _logged_before(event_dict: EventDict) -> bool:
    """A stdlib record (a server's) about an exception already logged: its line
    names the exception type instead of repeating the traceback."""
    if "_record" not in event_dict:
        return False
    exc_info = event_dict["exc_info"]
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if not was_logged(exc):
        return False
    del event_dict["exc_info"]
    event_dict["exception"] = f"{type(exc).__name__} (traceback in the unhandled_exception line)"
    return True


def _finish(settings: Settings) -> Processor:
    """Identity, timestamp and the trace keys every line carries (Loki derived
    fields can rely on them), added after redaction: they are Lightkeeper's own."""
    static = {"service": settings.service, "environment": settings.environment, "version": settings.version}
    cache = _ts_cache
    now_ns = time.time_ns

    def finish(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        if "service" not in event_dict:
            event_dict.update(static)
        else:
            for key, value in static.items():
                event_dict.setdefault(key, value)
        now = now_ns()
        sec = now // 1_000_000_000
        cached = cache[0]
        text = cached[1] if cached[0] == sec else _second_text(sec)
        event_dict["timestamp"] = text + str(now // 1000 % 1_000_000).zfill(6) + "Z"
        if "trace_id" not in event_dict:
            event_dict["trace_id"] = None
            event_dict["span_id"] = None
        return event_dict

    return finish


def _render(_: WrappedLogger, __: str, event_dict: EventDict) -> bytes:
    if _captures:
        for sink in _captures:
            sink.append(dict(event_dict))
        raise structlog.DropEvent
    return orjson.dumps(event_dict, default=repr, option=orjson.OPT_APPEND_NEWLINE)


def shared_processors(settings: Settings) -> list[Processor]:
    """Everything but rendering; used by structlog calls and stdlib records alike.

    Few, fused processors on purpose: on a cold request path each processor call
    costs as much as the work inside it. Sampling drops an event before any work is
    spent on it, and the fields Lightkeeper itself produces (timestamp, identity,
    trace ids) are added after redaction, which then only scans the caller's fields.
    """
    chain: list[Processor] = [
        _prepare(settings.log_info_sample_rate),
        redact.structlog_processor,
        _add_traceback,  # redacts the traceback itself, a stack's frames once
        *_extra_processors,
        _finish(settings),
    ]
    return chain


class _LineWriter:
    """structlog logger that writes each rendered line in one `write` call."""

    __slots__ = ("_flush", "_write")

    def __init__(self, stream: IO[bytes]) -> None:
        self._write = stream.write
        self._flush = stream.flush

    def msg(self, line: bytes) -> None:
        waiting = _waiting
        if waiting is not None and waiting.pending:
            waiting.flush()
        self._write(line)
        self._flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stdout_bytes() -> IO[bytes]:
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else cast(IO[bytes], _TextAsBytes(stream))


class _TextAsBytes:
    """Adapter for captured or replaced text streams (pytest's capsys, notebooks)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        return self._stream.write(data.decode("utf-8", "replace"))

    def flush(self) -> None:
        self._stream.flush()


def configure_logging(settings: Settings, *, force: bool = False, stream: IO[bytes] | None = None) -> None:
    """Route structlog and stdlib logging through one JSON pipeline on stdout.

    Idempotent: called again with the same settings it does nothing, so several
    `instrument()` calls (tests, two apps) do not stack handlers.
    """
    global _configured_with, _waiting
    with _lock:
        if not force and stream is None and _configured_with == settings:
            return
        if _waiting is not None:
            _waiting.close()  # its lines go to the stream they were meant for
        _configured_with = settings
        out = stream or _stdout_bytes()
        level = logging.getLevelNamesMapping()[settings.log_level]
        processors = shared_processors(settings)
        global _pipeline, _min_level, _access
        writer = _LineWriter(out)
        _pipeline = ([*processors, _render], writer)
        _min_level = level
        _access = _AccessLine(settings, writer)
        _waiting = _access.buffer
        _refresh_fast_line()
        structlog.configure(
            processors=[*processors, _render],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=lambda *_: writer,
            context_class=dict,
            cache_logger_on_first_use=False,
        )
        _route_stdlib(settings, processors, out, level)


class _BytesStreamHandler(logging.Handler):
    """Writes the formatter's line to the same byte stream structlog uses."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            if not line:  # captured by lightkeeper.testing
                return
            waiting = _waiting
            if waiting is not None and waiting.pending:
                waiting.flush()
            self._stream.write(line.encode("utf-8") + b"\n")
            self._stream.flush()
        except structlog.DropEvent:  # sampled out: dropped, never raised into the caller
            return
        except Exception:  # logging must never take the service down
            self.handleError(record)


def _add_logger_name(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("logger", record.name)
    return event_dict


def _stdlib_renderer(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    if _captures:
        for sink in _captures:
            sink.append(dict(event_dict))
        return ""
    return orjson.dumps(event_dict, default=repr).decode()


def _route_stdlib(settings: Settings, processors: list[Processor], out: IO[bytes], level: int) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_add_logger_name, *processors],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _stdlib_renderer],
    )
    handler = _BytesStreamHandler(out)
    handler.setFormatter(formatter)
    handler.set_name("lightkeeper")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "lightkeeper" or isinstance(existing, logging.StreamHandler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn installs its own handlers on these; send them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # uvicorn's access log would duplicate lightkeeper's richer request line.
    logging.getLogger("uvicorn.access").disabled = settings.access_log
    for name in settings.quiet_loggers:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))


def emit(method_name: str, event_dict: dict[str, Any]) -> None:
    """Log one event through the configured processors, without a BoundLogger.

    The per-request access line uses this: it runs exactly the processors and
    writer every other line uses, minus the bound-logger layer (context copy and
    keyword re-packing), which costs as much as the rest of the line together.
    """
    pipeline = _pipeline
    if pipeline is None:
        getattr(structlog.get_logger("lightkeeper"), method_name)(event_dict.pop("event"), **event_dict)
        return
    if _LEVELS.get(method_name, 20) < _min_level:
        return
    processors, writer = pipeline
    event: Any = event_dict
    try:
        for processor in processors:
            event = processor(None, method_name, event)
    except structlog.DropEvent:
        return
    writer.msg(event)


def is_configured() -> bool:
    return _pipeline is not None


_pipeline: tuple[list[Processor], _LineWriter] | None = None
_min_level = logging.INFO


class _AccessLine:
    """The per-request line, assembled from pieces rendered once.

    Identity, level and event are the same for every request of one (method, route,
    status), and paths, client addresses and user agents repeat: each is redacted and
    JSON-encoded the first time it is seen and remembered as JSON text (only when it
    was clean: a value that had to be masked is masked again every time). Per request
    the line is then one f-string of known-safe pieces (digits, the issued request id)
    and remembered JSON, with no JSON encoder call. The result parses to exactly what
    the general pipeline (`emit`) produces for the same event (tested), and `access()`
    falls back to that pipeline whenever it could not be equivalent.
    """

    def __init__(self, settings: Settings, writer: _LineWriter) -> None:
        self.write = writer._write
        self.flush = writer._flush
        self.sample_rate = settings.log_info_sample_rate
        self.identity = {
            "service": settings.service,
            "environment": settings.environment,
            "version": settings.version,
        }
        # Lines wait up to this long and are written in batches (see write_behind).
        self.buffer = (
            WriteBehind(self._write_batch, settings.flush_interval_ms / 1000, "log")
            if settings.flush_interval_ms
            else None
        )
        self.prefixes: dict[tuple[str, str, int], str] = {}
        self.texts: dict[str, str] = {}  # clean path or address -> its JSON text
        self.agents: dict[bytes, str] = {}  # raw clean User-Agent -> its JSON text
        self.dropped: Any = None

    def forget(self) -> None:
        """Redaction options changed: what was clean may no longer be."""
        self.texts.clear()
        self.agents.clear()

    def prefix(self, method: str, route: str, status: int) -> str:
        head = {
            "event": "http_request",
            "method": method,
            "route": route,
            "status_code": status,
            "level": "info",
            **self.identity,
            # the fast line runs only with no trace processor installed (see access())
            "trace_id": None,
            "span_id": None,
        }
        found = orjson.dumps(head)[:-1].decode() + ","  # open object, ready for the rest
        if len(self.prefixes) < 10_000:  # bounded by routes x methods x statuses anyway
            self.prefixes[(method, route, status)] = found
        return found

    def text(self, value: str) -> str:
        return self._render(self.texts, value, value)

    def agent(self, raw: bytes) -> str:
        return self._render(self.agents, raw, decode_agent(raw))

    @staticmethod
    def _render(memo: dict[Any, str], key: Any, value: str) -> str:
        clean = _redact_field(value)
        rendered = _dumps(clean).decode()
        if clean is value:  # remembered only when nothing had to be masked
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[key] = rendered
        return rendered

    def render(
        self,
        method: str,
        route: str,
        status: int,
        path: str,
        duration_us: int,
        client_ip: str | None,
        user_agent: bytes | None,
        request_id: str,
        now: int,
    ) -> str:
        texts = self.texts
        path_text = texts.get(path) or self.text(path)
        client_text = "null" if client_ip is None else texts.get(client_ip) or self.text(client_ip)
        agent_text = (self.agents.get(user_agent) or self.agent(user_agent)) if user_agent else "null"
        sec = now // 1_000_000_000
        cached = _ts_cache[0]
        second = cached[1] if cached[0] == sec else _second_text(sec)
        prefix = self.prefixes.get((method, route, status)) or self.prefix(method, route, status)
        # Plain {} fields only: a format spec ({:03d}) costs more than the rest of the line.
        return (
            f'{prefix}"path":{path_text},'
            f'"duration_ms":{duration_us // 1000}.{str(duration_us % 1000).zfill(3)},'
            f'"client_ip":{client_text},"user_agent":{agent_text},"request_id":"{request_id}",'
            f'"timestamp":"{second}{str(now // 1000 % 1_000_000).zfill(6)}Z"}}\n'
        )

    def _write_batch(self, batch: list[tuple[Any, ...]]) -> None:
        render = self.render
        self.write("".join([render(*record) for record in batch]).encode())
        self.flush()

    def drop(self) -> None:
        if self.dropped is None:
            self.dropped = family(catalogue.LOG_EVENTS_SAMPLED_OUT).labels("info")
        self.dropped.inc()


_MEMO_MAX = 4096


def _forget_rendered() -> None:
    if _access is not None:
        _access.forget()


redact.on_reconfigure(_forget_rendered)


def decode_agent(raw: bytes) -> str:
    """The logged form of a raw User-Agent header: at most 256 bytes, never fails."""
    return raw[:256].decode("latin-1")


def _refresh_fast_line() -> None:
    """The fast line is used only while it can equal the general pipeline's output."""
    global _fast
    plain = not _captures and not _extra_processors and _min_level <= logging.INFO
    _fast = _access if plain else None


def start_capture(sink: list[dict[str, Any]]) -> None:
    flush_access_lines()  # lines of earlier requests belong to the stream, not the capture
    _captures.append(sink)
    _refresh_fast_line()


def stop_capture(sink: list[dict[str, Any]]) -> None:
    _captures.remove(sink)
    _refresh_fast_line()


_access: _AccessLine | None = None
_fast: _AccessLine | None = None
_waiting: WriteBehind | None = None  # the current line's buffer, when lines are buffered
_redact_field = redact.redact_field
_random = random.random
_time_ns = time.time_ns
_dumps = orjson.dumps
# structlog's bind_contextvars registry: once the app uses it, lines need the merge.
# If structlog ever stops exposing it, assume it is in use (the general path).
_structlog_vars: Any = getattr(structlog_contextvars, "_CONTEXT_VARS", None)
if not isinstance(_structlog_vars, dict):
    _structlog_vars = {"unknown": True}


def access(
    method: str,
    route: str,
    status: int,
    path: str,
    duration_us: int,
    client_ip: str | None,
    user_agent: bytes | None,
    request_id: str | None = None,
) -> None:
    """Log the request line; the request hot path calls this once per request.

    `request_id` is the id the middleware issued and put in the context (from
    `lightkeeper.sdk.request_id`: a sane token, never secret-shaped). The fast line
    writes it as is, so it is used only while the context still holds exactly that id.
    """
    fast = _fast
    ctx = _request_context.get()
    if (
        fast is None
        or status >= 500
        or request_id is None
        or duration_us.__class__ is not int  # the line writes its digits as they are
        or ctx is None
        or len(ctx) != 1
        or ctx.get("request_id") is not request_id
        or ctx.bound is not None  # something was bound (in any task): the line carries it
        or ctx.root is not None
        or _structlog_vars
    ):
        event = {
            "event": "http_request",
            "method": method,
            "route": route,
            "path": path,
            "status_code": status,
            "duration_ms": duration_us / 1000,
            "client_ip": client_ip,
            "user_agent": decode_agent(user_agent) if user_agent else None,
        }
        # What the request bound in any of its tasks or threads (the sending task's
        # own fields are merged by the pipeline, under these).
        for key, value in request_bound().items():
            event.setdefault(key, value)
        emit("error" if status >= 500 else "info", event)
        return
    if fast.sample_rate < 1.0 and _random() >= fast.sample_rate:
        fast.drop()
        return
    buffer = fast.buffer
    if buffer is not None:
        # The values are rendered later, in a batch; the timestamp is taken now.
        buffer.add((method, route, status, path, duration_us, client_ip, user_agent, request_id, _time_ns()))
        return
    issued = cast(str, request_id)  # not None here: checked above
    line = fast.render(method, route, status, path, duration_us, client_ip, user_agent, issued, _time_ns())
    fast.write(line.encode())
    fast.flush()


def flush_access_lines() -> None:
    """Write the request lines still waiting in the buffer now.

    For code that reads stdout right after a request (a test, a process about to
    `os._exit`); other lines, exit and fork already do this.
    """
    waiting = _waiting
    if waiting is not None:
        waiting.flush()
