"""Errors: Sentry when a DSN is set, and always a JSON log line with the stack trace.

    SENTRY_DSN=https://key@o1.ingest.sentry.io/1        # or LIGHTKEEPER_SENTRY_DSN
    lightkeeper.instrument(app)                          # unhandled errors reach Sentry once
    lightkeeper.capture_exception(exc, workspace_id=7)   # handled errors on critical paths

Decisions, and why:

* Exactly once. Lightkeeper's middleware swallows an unhandled exception after the
  500 is sent (the server would otherwise log it a second time), so Sentry's ASGI
  wrapper never sees it; the middleware hands it to `report()` instead. An exception
  already reported (by `capture_exception` before a re-raise) is marked and skipped.
* Cheap failure path. sentry-sdk's defaults serialise the local variables and read
  the source file of every frame (~40 frames under FastAPI), about 10 ms per event.
  Lightkeeper sends source lines for the application's own frames only (from
  linecache) and no local variables unless asked (`sentry_local_variables`: a local
  may hold a request body or a secret under any name). At most
  `sentry_events_per_fingerprint_per_minute` events are sent per fingerprint
  (exception type and the line that raised it): an error storm costs a counter
  increment per repeat, and the next event sent says how many were held back. Every
  occurrence is still counted (`http_exceptions_total`,
  `lightkeeper_error_events_suppressed_total`) and logged.
* Privacy. `before_send`, `before_send_transaction` and `before_breadcrumb` run the
  shared redaction (`lightkeeper.sdk.redact`): request bodies are dropped, cookies and
  auth headers masked, query strings, messages, locals, breadcrumbs, extra, contexts
  and user data scanned. `send_default_pii` stays off.
* Sentry trouble never reaches the application: events that cannot be delivered
  (endpoint down, hung, queue full, rate limited) are counted in
  `lightkeeper_telemetry_export_failures_total{exporter="sentry"}`; each request to
  Sentry is bounded by `sentry_timeout_seconds`.
"""

from __future__ import annotations

import contextlib
import linecache
import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

from lightkeeper import catalogue
from lightkeeper.sdk import context, redact
from lightkeeper.sdk.integrations import patching
from lightkeeper.sdk.log_correlation import trace_ids
from lightkeeper.sdk.logs import emit
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.settings import Settings

__all__ = ["capture_exception", "configure_errors", "redact_event", "report", "sentry_enabled"]

_log = logging.getLogger("lightkeeper.errors")
_REPORTED = "__lightkeeper_reported__"
MAX_LOCALS_PER_FRAME = 40
MAX_LOCAL_REPR = 512
APP_FRAMES_WITH_DETAIL = 5
SOURCE_LINES = 5
# Event parts that never hold request data and are large: not walked by the redaction.
_NOT_WALKED = frozenset(
    {
        "modules",
        "sdk",
        "debug_meta",
        "timestamp",
        "start_timestamp",
        "event_id",
        "platform",
        "level",
        "release",
        "environment",
        "server_name",
        "type",
    }
)
_DELIVERY_FAILURES = frozenset(
    {"network_error", "send_error", "queue_overflow", "ratelimit_backoff", "buffer_overflow"}
)
_RESERVED_LOG_KEYS = frozenset({"event", "exc_info", "exception_type", "level", "timestamp"})


# -------------------------------------------------------------------- rate limit


class FingerprintBudget:
    """At most `per_minute` events per fingerprint, refilled continuously.

    Bounded: past `max_keys` fingerprints the least recently seen one is forgotten.
    `take` returns the number of occurrences held back since the last event that was
    let through, or None when this one is held back.
    """

    def __init__(self, per_minute: int | None, max_keys: int = 1024) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._entries: OrderedDict[Any, list[float]] = OrderedDict()  # key -> [tokens, at, held]
        self._lock = threading.Lock()

    def take(self, key: Any) -> int | None:
        limit = self.per_minute
        if limit is None:
            return 0
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = [float(limit), now, 0.0]
                self._entries[key] = entry
                if len(self._entries) > self.max_keys:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
                entry[0] = min(float(limit), entry[0] + (now - entry[1]) * limit / 60.0)
                entry[1] = now
            if entry[0] >= 1.0:
                entry[0] -= 1.0
                held = int(entry[2])
                entry[2] = 0.0
                return held
            entry[2] += 1.0
            return None


def fingerprint(exc: BaseException) -> tuple[str, str, int]:
    """Exception type and the line that raised it: what makes two errors "the same"."""
    tb = exc.__traceback__
    if tb is None:
        return (type(exc).__qualname__, "", 0)
    while tb.tb_next is not None:
        tb = tb.tb_next
    return (type(exc).__qualname__, tb.tb_frame.f_code.co_filename, tb.tb_lineno)


# ------------------------------------------------------------------------- state


class _Sentry:
    def __init__(self, key: tuple[Any, ...], budget: FingerprintBudget, local_variables: str) -> None:
        self.key = key
        self.budget = budget
        self.local_variables = local_variables


_lock = threading.RLock()
_sentry: _Sentry | None = None
_fork_hook_registered = False


def sentry_dsn(settings: Settings) -> str | None:
    return settings.sentry_dsn or os.environ.get("SENTRY_DSN", "").strip() or None


def sentry_enabled() -> bool:
    return _sentry is not None


def configure_errors(settings: Settings) -> bool:
    """Initialise sentry-sdk from the settings (idempotent); True when Sentry is on.

    A Sentry client the application initialised itself is kept; Lightkeeper only adds
    its redaction and request-id / trace-id tags to it.
    """
    global _sentry
    with _lock:
        sentry_sdk = _existing_sentry()
        if sentry_sdk is not None and not _is_ours(sentry_sdk):
            _adopt(sentry_sdk.get_client(), settings)
            return True
        dsn = sentry_dsn(settings)
        if dsn is None:
            # Sentry is process wide: a client set up by an earlier instrument() stays.
            return sentry_sdk is not None and _sentry is not None
        key = (
            dsn,
            settings.environment,
            settings.version,
            settings.sentry_traces_sample_rate,
            settings.sentry_profiles_sample_rate,
            settings.sentry_timeout_seconds,
            settings.sentry_local_variables,
            settings.sentry_events_per_fingerprint_per_minute,
        )
        if sentry_sdk is not None and _sentry is not None and _sentry.key == key:
            return True
        _init(dsn, settings)
        _sentry = _Sentry(
            key,
            FingerprintBudget(settings.sentry_events_per_fingerprint_per_minute or None),
            settings.sentry_local_variables,
        )
        return True


def _existing_sentry() -> Any:
    """sentry_sdk when a client is active in this process (never imports it)."""
    import sys

    sentry_sdk = sys.modules.get("sentry_sdk")
    if sentry_sdk is None or not sentry_sdk.get_client().is_active():
        return None
    return sentry_sdk


def _is_ours(sentry_sdk: Any) -> bool:
    return bool(sentry_sdk.get_client().options.get("before_send") is before_send)


def _adopt(client: Any, settings: Settings) -> None:
    """Chain Lightkeeper's redaction after the application's own hooks."""
    global _sentry
    options = client.options
    if options.get("before_send") is before_send:
        return
    for name, ours in (
        ("before_send", before_send),
        ("before_send_transaction", before_send_transaction),
        ("before_breadcrumb", before_breadcrumb),
    ):
        theirs = options.get(name)
        options[name] = ours if theirs is None else _chain(theirs, ours)
    if _sentry is None:
        _sentry = _Sentry(
            ("adopted",),
            FingerprintBudget(settings.sentry_events_per_fingerprint_per_minute or None),
            "all" if options.get("include_local_variables") else "none",
        )


def _chain(first: Any, second: Any) -> Any:
    def chained(item: Any, hint: Any) -> Any:
        item = first(item, hint)
        return None if item is None else second(item, hint)

    return chained


def _init(dsn: str, settings: Settings) -> None:
    global _fork_hook_registered
    sentry_sdk = patching.require(
        "sentry_sdk",
        integration="errors",
        distribution="sentry-sdk",
        minimum="2.0",
        below="3",
        extra="sentry",
    )
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        release=settings.version,
        traces_sample_rate=settings.sentry_traces_sample_rate or None,
        profiles_sample_rate=settings.sentry_profiles_sample_rate or None,
        integrations=_integrations(performance=settings.sentry_traces_sample_rate > 0),
        disabled_integrations=_disabled_integrations(),
        in_app_exclude=["lightkeeper"],
        auto_enabling_integrations=False,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=settings.sentry_local_variables == "all",
        include_source_context=settings.sentry_local_variables == "all",
        before_send=before_send,
        before_send_transaction=before_send_transaction,
        before_breadcrumb=before_breadcrumb,
        transport=_transport_class(settings.sentry_timeout_seconds),
        shutdown_timeout=min(2.0, settings.sentry_timeout_seconds),
    )
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_renew_transport_pool)
        _fork_hook_registered = True


def _integrations(performance: bool) -> list[Any]:
    """Celery and SQLAlchemy, plus Starlette/FastAPI when Sentry performance is on.

    sentry-sdk's Starlette/FastAPI integrations wrap every request (an isolation scope,
    a transaction, session tracking, a wrapper per middleware) for about as much time
    as all of Lightkeeper's metrics and logs. Errors do not need them: Lightkeeper's
    middleware reports unhandled exceptions with the request's method, URL, headers
    (redacted) and route. They are enabled when `sentry_traces_sample_rate` > 0,
    because Sentry's transactions come from them.
    """
    from sentry_sdk.integrations import DidNotEnable

    wanted = [("celery", "CeleryIntegration"), ("sqlalchemy", "SqlalchemyIntegration")]
    if performance:
        wanted = [("starlette", "StarletteIntegration"), ("fastapi", "FastApiIntegration"), *wanted]
    found: list[Any] = []
    for module, name in wanted:
        try:
            integration = __import__(f"sentry_sdk.integrations.{module}", fromlist=[name])
            found.append(getattr(integration, name)())
        except (DidNotEnable, ImportError):
            continue
    return found


def _disabled_integrations() -> list[Any]:
    """Default integrations whose data costs more than it tells, or may hold secrets.

    Modules: the list of every installed package is attached to, and serialised with,
    each event (most of an event's size and of sentry-sdk's per-event CPU once locals
    are off). Argv: command lines carry tokens (`--password x`) that no pattern finds.
    """
    from sentry_sdk.integrations.argv import ArgvIntegration
    from sentry_sdk.integrations.modules import ModulesIntegration

    return [ModulesIntegration, ArgvIntegration]


def _transport_class(timeout: float) -> Any:
    from sentry_sdk.transport import HttpTransport

    failures = family(catalogue.TELEMETRY_EXPORT_FAILURES).labels("sentry")

    class CountingTransport(HttpTransport):
        """sentry-sdk's HTTP transport with a bounded timeout and lost events counted."""

        TIMEOUT = timeout  # type: ignore[assignment]  # urllib3 takes float seconds

        def record_lost_event(
            self, reason: str, data_category: Any = None, item: Any = None, *, quantity: int = 1
        ) -> None:
            category = item.data_category if item is not None else data_category
            if reason in _DELIVERY_FAILURES and category in ("error", "transaction"):
                failures.inc()
            super().record_lost_event(reason, data_category, item, quantity=quantity)

    return CountingTransport


def _renew_transport_pool() -> None:
    # A forked child must not share the parent's pooled sockets to Sentry.
    try:
        import sys

        sentry_sdk = sys.modules.get("sentry_sdk")
        transport = sentry_sdk.get_client().transport if sentry_sdk is not None else None
        if transport is not None and hasattr(transport, "_make_pool"):
            transport._pool = transport._make_pool()
    except Exception:
        _log.debug("could not renew the Sentry connection pool after fork", exc_info=True)


# ------------------------------------------------------------------- reporting


def report(
    exc: BaseException,
    extra: dict[str, Any] | None = None,
    *,
    handled: bool = True,
    scope: dict[str, Any] | None = None,
    route: str | None = None,
) -> bool:
    """Send `exc` to Sentry (rate limited per fingerprint); True when an event was sent.

    Safe to call for the same exception several times: only the first call reports.
    """
    state = _sentry
    if state is None or getattr(exc, _REPORTED, False):
        return False
    with contextlib.suppress(Exception):  # a class with __slots__: Sentry's dedupe still applies
        setattr(exc, _REPORTED, True)
    held = state.budget.take(fingerprint(exc))
    if held is None:
        family(catalogue.ERROR_EVENTS_SUPPRESSED).labels(
            type(exc).__name__[: catalogue.MAX_LABEL_VALUE_LENGTH]
        ).inc()
        return False
    import sentry_sdk
    from sentry_sdk.utils import event_from_exception

    client = sentry_sdk.get_client()
    event, hint = event_from_exception(
        exc, client_options=client.options, mechanism={"type": "lightkeeper", "handled": handled}
    )
    contexts: dict[str, Any] = {}
    if extra:
        contexts["lightkeeper"] = dict(extra)
    if held:
        event.setdefault("extra", {})["lightkeeper.similar_events_held_back"] = held
    if scope is not None and scope.get("type") == "http":
        event["request"] = request_info(scope)  # only for events actually sent
        if route:
            event["transaction"] = f"{scope.get('method')} {route}"
    sentry_sdk.capture_event(event, hint=hint, contexts=contexts or None)
    return True


def request_info(scope: dict[str, Any]) -> dict[str, Any]:
    """Sentry's `request` interface from an ASGI scope (redacted later, in before_send)."""
    headers = {}
    host = ""
    for key, value in scope.get("headers") or ():
        name = key.decode("latin-1")
        headers[name] = value.decode("latin-1")
        if name == "host":
            host = headers[name]
    if not host and scope.get("server"):
        server = scope["server"]
        host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    path = scope.get("root_path", "") + scope.get("path", "")
    return {
        "method": scope.get("method"),
        "url": f"{scope.get('scheme', 'http')}://{host}{path}",
        "query_string": (scope.get("query_string") or b"").decode("latin-1"),
        "headers": headers,
    }


def report_unhandled(
    exc: BaseException, scope: dict[str, Any] | None = None, route: str | None = None
) -> None:
    """Middleware exception hook: the request's data comes from the ASGI scope."""
    report(exc, handled=False, scope=scope, route=route)


def capture_exception(exc: BaseException, **context_fields: Any) -> None:
    """Report a handled error: to Sentry when configured, and always as one JSON log line.

    The keyword arguments describe the situation (ids of the workspace, project, job...);
    they are redacted like every log field and sent to Sentry as the `lightkeeper` context.
    """
    try:
        report(exc, context_fields, handled=True)
    except Exception:  # reporting must never raise into the caller's error handling
        _log.debug("sentry reporting failed", exc_info=True)
    fields = {(f"context_{k}" if k in _RESERVED_LOG_KEYS else k): v for k, v in context_fields.items()}
    emit(
        "error",
        {"event": "handled_exception", "exception_type": type(exc).__name__, **fields, "exc_info": exc},
    )


# ------------------------------------------------------------------- redaction


def _tag(event: dict[str, Any]) -> None:
    tags = event.get("tags")
    if not isinstance(tags, dict):
        tags = {} if tags is None else dict(tags) if isinstance(tags, list) else {}
        event["tags"] = tags
    bound = context.current()
    request_id = bound.get("request_id")
    if request_id is not None:
        tags.setdefault("request_id", request_id)
    others = {k: v for k, v in bound.items() if k != "request_id"}
    if others:  # fields bound with lightkeeper.bind(...) or by the Celery integration
        contexts = event.get("contexts")
        if isinstance(contexts, dict):
            contexts.setdefault("lightkeeper_request", others)
        else:
            event["contexts"] = {"lightkeeper_request": others}
    ids = trace_ids()
    if ids is not None:
        tags.setdefault("trace_id", ids[0])


def _redact_request(request: dict[str, Any]) -> dict[str, Any]:
    out = dict(request)
    out.pop("data", None)  # bodies are never recorded
    if "cookies" in out:
        out["cookies"] = redact.MASK
    headers = out.get("headers")
    if isinstance(headers, dict):
        out["headers"] = dict(redact.redact_headers(headers))
    elif isinstance(headers, list):
        out["headers"] = [list(pair) for pair in redact.redact_headers(headers)]
    query = out.get("query_string")
    if isinstance(query, str) and query:
        out["query_string"] = redact.redact_url("?" + query)[1:]
    elif isinstance(query, bytes) and query:
        out["query_string"] = redact.redact_url("?" + query.decode("latin-1"))[1:]
    if isinstance(out.get("url"), str):
        out["url"] = redact.redact_url(out["url"])
    for key in ("env", "method"):
        if key in out:
            out[key] = redact.redact_value(out[key])
    return out


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Sentry event (or transaction) with every secret masked."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in _NOT_WALKED:
            out[key] = value
        elif key == "request" and isinstance(value, dict):
            out[key] = _redact_request(value)
        elif key == "breadcrumbs" and isinstance(value, dict) and isinstance(value.get("values"), list):
            crumbs = [_clean_breadcrumb(c) if isinstance(c, dict) else c for c in value["values"]]
            rest = redact.redact_value({k: v for k, v in value.items() if k != "values"})
            out[key] = {**rest, "values": crumbs}
        elif key == "user" and isinstance(value, dict):
            out[key] = redact.redact_mapping(value)
        elif key == "extra" and isinstance(value, dict) and isinstance(value.get("celery-job"), dict):
            # Task arguments are application data: never sent, whatever send_default_pii says.
            job = {**value["celery-job"], "args": redact.MASK, "kwargs": redact.MASK}
            out[key] = redact.redact_value({**value, "celery-job": job})
        else:
            out[key] = redact.redact_value(value)
    return out


def _app_frames(event: dict[str, Any], hint: dict[str, Any] | None) -> None:
    """Source lines for the application's own frames, and their locals when asked for.

    sentry-sdk reads whole source files per frame and serialises every frame's locals;
    here only in-app frames get lines (from linecache, read once per file) and, with
    `sentry_local_variables="app"`, locals: each redacted as a structure first (nested
    keys such as `password` are masked) and then cut to a short repr.
    """
    state = _sentry
    if state is None or state.local_variables == "all" or not hint:
        return
    exc_info = hint.get("exc_info")
    if not exc_info or exc_info[2] is None:
        return
    values = (event.get("exception") or {}).get("values") or []
    if not values:
        return
    frames = (values[-1].get("stacktrace") or {}).get("frames") or []
    tb_frames = []
    tb = exc_info[2]
    while tb is not None:
        tb_frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    with_locals = state.local_variables == "app"
    done = 0
    for event_frame, (frame, lineno) in zip(reversed(frames), reversed(tb_frames), strict=False):
        if done >= APP_FRAMES_WITH_DETAIL:
            break
        if not event_frame.get("in_app") or event_frame.get("lineno") != lineno:
            continue
        filename = frame.f_code.co_filename
        if event_frame.get("abs_path") not in (None, filename):
            continue
        done += 1
        if with_locals:
            event_frame["vars"] = _frame_locals(frame)
        if "context_line" not in event_frame:
            event_frame["pre_context"] = [
                linecache.getline(filename, n).rstrip("\n")
                for n in range(max(1, lineno - SOURCE_LINES), lineno)
            ]
            event_frame["context_line"] = linecache.getline(filename, lineno).rstrip("\n")
            event_frame["post_context"] = [
                linecache.getline(filename, n).rstrip("\n")
                for n in range(lineno + 1, lineno + 1 + SOURCE_LINES)
            ]


def _frame_locals(frame: Any) -> dict[str, str]:
    from sentry_sdk.utils import safe_repr

    variables: dict[str, str] = {}
    for name, value in list(frame.f_locals.items())[:MAX_LOCALS_PER_FRAME]:
        if redact.is_sensitive_key(name):
            variables[name] = redact.MASK
            continue
        try:
            shown = redact.redact_value(value)
        except Exception:
            shown = "<unrepresentable>"
        variables[name] = safe_repr(shown)[:MAX_LOCAL_REPR]
    return variables


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Sentry hook: tags, application frames' locals, then the shared redaction."""
    exc_info = hint.get("exc_info") if "log_record" in hint else None
    if exc_info and getattr(exc_info[1], _REPORTED, False):
        # A log record about an exception already reported or rate-limited here:
        # uvicorn logs each one the middleware re-raises, and Sentry's logging
        # integration would make that an event past the per-fingerprint budget.
        return None
    _tag(event)
    _app_frames(event, hint)
    return redact_event(event)


def before_send_transaction(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    _tag(event)
    return redact_event(event)


def _clean_breadcrumb(crumb: dict[str, Any]) -> dict[str, Any]:
    data = crumb.get("data")
    if isinstance(data, dict) and (crumb.get("type") == "log" or "db.params" in data):
        # A log breadcrumb's data is the record's `extra` (Celery puts task arguments
        # there); SQL parameters are values. Neither can be redacted by shape: drop them.
        crumb = {k: v for k, v in crumb.items() if k != "data"}
        if "db.params" in data:
            crumb["data"] = {k: v for k, v in data.items() if k != "db.params"}
    redacted: dict[str, Any] = redact.redact_value(crumb)
    return redacted


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None) -> dict[str, Any] | None:
    """Breadcrumbs are kept in memory until an event leaves; clean them on the way in."""
    return _clean_breadcrumb(crumb)


# ------------------------------------------------------------------------- hooks


def attach(runtime: Any) -> None:
    """Hand an instrumented app's unhandled exceptions to Sentry (called once Sentry is on)."""
    if report_unhandled not in runtime.exception_hooks:
        runtime.exception_hooks.append(report_unhandled)
