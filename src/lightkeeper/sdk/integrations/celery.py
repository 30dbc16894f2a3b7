"""Celery: task metrics, request-id propagation, worker JSON logs, readiness check.

    # celery_app.py (imported by the API and by the worker)
    import lightkeeper
    lightkeeper.instrument_celery(app, metrics_port=9808)

    # readiness in the API
    from lightkeeper.celery import celery_check
    lightkeeper.instrument(api, checks=[celery_check(app, timeout=0.7)])

Everything hangs on Celery's signals, not on patched internals. Importing this module
connects nothing; `instrument_celery()` does. Signals are process wide, so once any app
is instrumented every task of the process is recorded; the handlers are connected with
a `dispatch_uid`, so a second call adds nothing. A worker never calls `instrument()`:
its start (`worker_init`) runs the same process set-up (`lightkeeper.sdk.lifecycle`).

Where things happen in a prefork worker: `received` and hard time limits are seen by
the main process; `started`, `succeeded`, `failed`, `retried`, durations and soft time
limits by the pool child running the task. Both write to the same families, so run
the worker in multi-process mode (`LIGHTKEEPER_MULTIPROCESS_DIR` or
`PROMETHEUS_MULTIPROC_DIR`) and expose them with `metrics_port`, which serves the
aggregated registry from the main process (a worker has no HTTP server of its own).

Propagation: `before_task_publish` stamps the publish time and the current request
id into the message headers. On the worker the task runs inside a lightkeeper context
holding `request_id`, `task` and `task_id`, so every log line it writes carries them;
queue wait is measured from the stamp (or the ETA, for delayed tasks) to the start.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import start_http_server

from lightkeeper import catalogue
from lightkeeper.sdk import context, lifecycle, multiprocess
from lightkeeper.sdk.integrations import _labels, patching
from lightkeeper.sdk.logs import configure_logging as configure_json_logging
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.request_id import accept_or_new
from lightkeeper.sdk.settings import Settings, current_settings, load_settings

__all__ = [
    "CeleryUnavailableError",
    "celery_check",
    "instrument_celery",
    "sample_queues",
    "sample_workers",
    "uninstrument_celery",
]

PUBLISHED_AT_HEADER = "lightkeeper_published_at"
REQUEST_ID_HEADER = "lightkeeper_request_id"
MAX_SAMPLED_QUEUES = 32
# A soft limit fires a few milliseconds after the pool started the job, which is a
# little before `task_prerun`; a task that catches SoftTimeLimitExceeded and returns
# at once can therefore show a run time just under its limit.
_SOFT_LIMIT_TOLERANCE = 0.05

_UID = "lightkeeper.celery."


class CeleryUnavailableError(RuntimeError):
    """No broker connection, or no worker answered the ping in time."""


# --- state (per process) ---------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """What `instrument_celery` was asked for, per app."""

    settings: Settings
    configure_logging: bool
    queues: tuple[str, ...] | None
    sample_interval: float | None
    metrics_port: int | None
    metrics_addr: str


_apps: weakref.WeakKeyDictionary[Any, _Options] = weakref.WeakKeyDictionary()
_running: dict[str, tuple[Any, float, float | None]] = {}  # task id -> (context token, start, soft limit)
_soft_counted: set[str] = set()
# Celery (5.7) sends task_failure twice for a hard time limit: from the timeout
# handler and again when the pool reports the killed job. Ids seen recently, bounded.
_hard_limit_seen: dict[str, None] = {}
_MAX_HARD_LIMIT_SEEN = 1024
_state_children: dict[tuple[str, str], Any] = {}
_duration_children: dict[str, Any] = {}
_wait_children: dict[str, Any] = {}
_sampler_stop: threading.Event | None = None
_metrics_server_started = False
_lock = threading.Lock()


def _load() -> Any:
    patching.require(
        "celery", integration="celery", distribution="celery", minimum="5.3", below="6", extra="celery"
    )
    import celery.exceptions
    import celery.signals

    return celery


# --- public API ------------------------------------------------------------------------


def instrument_celery(
    celery_app: Any,
    *,
    settings: Settings | None = None,
    configure_logging: bool | None = None,
    queues: Iterable[str] | None = None,
    sample_interval: float | None = 15.0,
    metrics_port: int | None = None,
    metrics_addr: str = "0.0.0.0",
) -> None:
    """Record task metrics and propagate request ids for `celery_app` (idempotent).

    `settings` feeds the worker's JSON logging (default: `LIGHTKEEPER_*` environment);
    `configure_logging=False` leaves Celery's own logging alone. On a worker,
    `sample_interval` seconds apart a background thread of the main process samples
    the length of `queues` (default: the queues the worker consumes) and pings the
    workers (None: no thread). `metrics_port` serves `/metrics` from the worker.
    """
    celery = _load()
    if settings is None:
        settings = current_settings()
    if sample_interval is not None and sample_interval <= 0:
        raise ValueError("sample_interval must be greater than 0 (or None to disable sampling)")
    options = _Options(
        settings=settings,
        configure_logging=settings.configure_logging if configure_logging is None else configure_logging,
        queues=tuple(queues) if queues is not None else None,
        sample_interval=sample_interval,
        metrics_port=metrics_port,
        metrics_addr=metrics_addr,
    )
    first_time = celery_app not in _apps
    _apps[celery_app] = options
    for signal, handler in _handlers(celery.signals, options.configure_logging):
        signal.connect(handler, weak=False, dispatch_uid=_UID + handler.__name__)
    if first_time:
        patching.instrumented("celery", celery_app)


def uninstrument_celery(celery_app: Any) -> None:
    """Forget `celery_app`; the signal handlers go when no instrumented app is left."""
    celery = _load()
    _apps.pop(celery_app, None)
    patching.uninstrumented("celery", celery_app)
    if len(_apps) == 0:
        for signal, handler in _handlers(celery.signals, configure_logging=True):
            signal.disconnect(handler, dispatch_uid=_UID + handler.__name__)


def celery_check(celery_app: Any, timeout: float = 0.7) -> Callable[[], bool]:
    """A readiness check named "celery": true when a worker answers a ping in time.

    It stops at the first answer, so a healthy cluster answers in one round trip;
    when none answers within `timeout` (or the broker is unreachable) it raises
    `CeleryUnavailableError`, whose message never contains the broker URL.
    """
    if timeout <= 0:
        raise ValueError("timeout must be greater than 0")

    def celery() -> bool:
        if not _ping(celery_app, timeout, limit=1):
            raise CeleryUnavailableError(f"no Celery worker answered a ping within {timeout:g}s")
        return True

    return celery


def sample_workers(celery_app: Any, timeout: float = 1.0) -> int:
    """Ping every worker, set `celery_workers_up` to the number that answered, return it.

    Waits the full `timeout` (Celery cannot know how many workers exist); an
    unreachable broker sets the gauge to 0 and raises `CeleryUnavailableError`.
    """
    gauge = family(catalogue.CELERY_WORKERS_UP)
    try:
        count = len(_ping(celery_app, timeout, limit=None))
    except CeleryUnavailableError:
        gauge.set(0)
        raise
    gauge.set(count)
    return count


def sample_queues(
    celery_app: Any, queues: Iterable[str] | None = None, timeout: float = 2.0
) -> dict[str, int]:
    """Messages waiting per queue, read from the broker; sets `celery_queue_length`.

    Uses a passive queue declaration, which every kombu transport answers with a
    message count (Redis: LLEN over the priority lists; RabbitMQ: the queue's own
    count), so the same code serves both. A queue that does not exist has 0 waiting.
    """
    names = list(queues) if queues is not None else _default_queues(celery_app)
    names = names[:MAX_SAMPLED_QUEUES]
    sizes: dict[str, int] = {}
    with _connection(celery_app, timeout) as conn:
        channel = conn.channel()
        try:
            for name in names:
                try:
                    sizes[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except conn.channel_errors:
                    sizes[name] = 0  # NOT_FOUND: Redis drops an empty list; AMQP closes the channel
                    with contextlib.suppress(Exception):
                        channel.close()
                    channel = conn.channel()
        finally:
            with contextlib.suppress(Exception):
                channel.close()
    gauge = family(catalogue.CELERY_QUEUE_LENGTH)
    for name, size in sizes.items():
        gauge.labels(name).set(size)
    return sizes


# --- broker access with bounded waits -----------------------------------------------


@contextlib.contextmanager
def _connection(celery_app: Any, timeout: float) -> Iterator[Any]:
    """A fresh broker connection that gives up after `timeout`, never retrying forever.

    The app's own retry policy (100 retries by default) suits publishing, not a probe.
    Errors name the failure (e.g. "Connection refused"), never the broker URL.
    """
    conn = celery_app.connection_for_read(
        transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0}
    )
    conn.connect_timeout = timeout
    try:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        except Exception as exc:
            raise CeleryUnavailableError(f"Celery broker unreachable ({_reason(exc)})") from None
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.release()


def _reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return str(seen.strerror)
        if isinstance(seen, TimeoutError):
            return "timed out"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def _ping(celery_app: Any, timeout: float, limit: int | None) -> list[Any]:
    with _connection(celery_app, timeout) as conn:
        try:
            replies = celery_app.control.ping(timeout=timeout, connection=conn, limit=limit)
        except Exception as exc:
            raise CeleryUnavailableError(f"Celery broker unreachable ({_reason(exc)})") from None
    return list(replies or [])


def _default_queues(celery_app: Any) -> list[str]:
    declared = celery_app.amqp.queues
    consumed = getattr(declared, "consume_from", None)
    return sorted((consumed or declared).keys())


# --- signal handlers ---------------------------------------------------------------------


def _handlers(signals: Any, configure_logging: bool) -> list[tuple[Any, Callable[..., None]]]:
    pairs: list[tuple[Any, Callable[..., None]]] = [
        (signals.before_task_publish, _before_publish),
        (signals.task_received, _received),
        (signals.task_prerun, _prerun),
        (signals.task_postrun, _postrun),
        (signals.task_success, _success),
        (signals.task_failure, _failure),
        (signals.task_retry, _retry),
        (signals.task_rejected, _rejected),
        (signals.task_unknown, _unknown),
        (signals.worker_init, _worker_init),
        (signals.worker_ready, _worker_ready),
        (signals.worker_shutdown, _worker_shutdown),
    ]
    if configure_logging:
        pairs += [(signals.setup_logging, _setup_logging), (signals.worker_process_init, _process_init)]
    return pairs


def _count(task: str, state: str) -> None:
    key = (task, state)
    child = _state_children.get(key)
    if child is None:
        child = _state_children[key] = family(catalogue.CELERY_TASKS).labels(task, state)
    child.inc()


def _before_publish(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    headers[PUBLISHED_AT_HEADER] = time.time()
    request_id = context.current_request_id()
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id


def _received(sender: Any = None, request: Any = None, **_: Any) -> None:
    _count(_labels.task_name(getattr(request, "name", None)), "received")


def _header(request: Any, key: str) -> Any:
    # Message headers become attributes of the task's request context (protocol 2);
    # `request.headers` holds them when a task is applied eagerly with headers=.
    found = getattr(request, key, None)
    if found is None:
        found = (getattr(request, "headers", None) or {}).get(key)
    return found


def _prerun(sender: Any = None, task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task is None or task_id is None:
        return
    request = task.request
    name = _labels.task_name(task.name)
    _count(name, "started")
    published = _header(request, PUBLISHED_AT_HEADER)
    if isinstance(published, int | float) and not isinstance(published, bool):
        ready_at = max(float(published), _eta_timestamp(getattr(request, "eta", None)))
        child = _wait_children.get(name)
        if child is None:
            child = _wait_children[name] = family(catalogue.CELERY_TASK_QUEUE_WAIT).labels(name)
        child.observe(max(time.time() - ready_at, 0.0))  # clocks of two hosts may disagree
    values: dict[str, Any] = {"task": name, "task_id": task_id}
    request_id = _header(request, REQUEST_ID_HEADER)
    if isinstance(request_id, str):
        # The header crossed the broker: validate it like an inbound HTTP header.
        values["request_id"] = accept_or_new(request_id.encode("utf-8", "replace"))
    else:
        # An eager task (`task.apply()`, task_always_eager) runs inside its caller.
        inherited = context.current_request_id()
        if inherited is not None:
            values["request_id"] = inherited
    _running[task_id] = (context.start(values), time.perf_counter(), _soft_limit(task, request))


def _eta_timestamp(eta: Any) -> float:
    if isinstance(eta, datetime):
        return eta.timestamp()
    if isinstance(eta, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(eta).timestamp()
    return 0.0


def _soft_limit(task: Any, request: Any) -> float | None:
    limits = getattr(request, "timelimit", None)
    soft = limits[1] if isinstance(limits, list | tuple) and len(limits) == 2 else None
    if soft is None:
        soft = getattr(task, "soft_time_limit", None)
    if soft is None:
        soft = task.app.conf.task_soft_time_limit
    return float(soft) if isinstance(soft, int | float) and soft > 0 else None


def _postrun(
    sender: Any = None, task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    entry = _running.pop(task_id, None) if task_id is not None else None
    if entry is None or task is None:
        return
    token, start, soft_limit = entry
    elapsed = time.perf_counter() - start
    name = _labels.task_name(task.name)
    child = _duration_children.get(name)
    if child is None:
        child = _duration_children[name] = family(catalogue.CELERY_TASK_DURATION).labels(name)
    child.observe(elapsed)
    if state == "REJECTED":
        _count(name, "rejected")
    if task_id in _soft_counted:
        _soft_counted.discard(task_id)
    elif soft_limit is not None and elapsed + _SOFT_LIMIT_TOLERANCE >= soft_limit:
        # The task caught SoftTimeLimitExceeded (or ran in a pool that does not enforce
        # limits): it still ran past its soft limit.
        family(catalogue.CELERY_TASK_TIME_LIMITS).labels(name, "soft").inc()
    with contextlib.suppress(ValueError):  # ended in another context (should not happen)
        context.end(token)


def _success(sender: Any = None, **_: Any) -> None:
    _count(_labels.task_name(getattr(sender, "name", None)), "succeeded")


def _retry(sender: Any = None, **_: Any) -> None:
    _count(_labels.task_name(getattr(sender, "name", None)), "retried")


def _failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    from celery.exceptions import Reject, SoftTimeLimitExceeded, TimeLimitExceeded

    if isinstance(exception, Reject):
        return  # counted as rejected by task_postrun
    if isinstance(exception, TimeLimitExceeded) and task_id is not None:
        if task_id in _hard_limit_seen:
            return
        _hard_limit_seen[task_id] = None
        if len(_hard_limit_seen) > _MAX_HARD_LIMIT_SEEN:
            del _hard_limit_seen[next(iter(_hard_limit_seen))]
    name = _labels.task_name(getattr(sender, "name", None))
    _count(name, "failed")
    error_type = _labels.exception_type(exception) if exception is not None else _labels.OTHER
    family(catalogue.CELERY_TASK_FAILURES).labels(name, error_type).inc()
    if isinstance(exception, SoftTimeLimitExceeded):
        family(catalogue.CELERY_TASK_TIME_LIMITS).labels(name, "soft").inc()
        if task_id is not None and task_id in _running:
            _soft_counted.add(task_id)
    elif isinstance(exception, TimeLimitExceeded):
        family(catalogue.CELERY_TASK_TIME_LIMITS).labels(name, "hard").inc()


def _rejected(sender: Any = None, message: Any = None, **_: Any) -> None:
    # A message the worker could not accept. Its task name is broker input: it becomes
    # a label only when it names a task this app registered.
    headers = getattr(message, "headers", None)
    name = headers.get("task") if isinstance(headers, dict) else None
    registered = getattr(getattr(sender, "app", None), "tasks", {})
    known = isinstance(name, str) and name in registered
    _count(_labels.task_name(name) if known else _labels.OTHER, "rejected")


def _unknown(sender: Any = None, name: Any = None, **_: Any) -> None:
    # Not a registered task: the name comes from whoever published, not from our code.
    _count(_labels.OTHER, "rejected")


# --- worker lifecycle -------------------------------------------------------------------


def _options_for(app: Any) -> _Options | None:
    return _apps.get(app) if app is not None else None


def _setup_logging(**_: Any) -> None:
    # Connecting a receiver is what tells Celery to leave logging to us.
    settings = next((o.settings for o in list(_apps.values()) if o.configure_logging), None)
    if settings is not None:
        configure_json_logging(settings)


def _process_init(**_: Any) -> None:
    _setup_logging()  # a pool child started by spawn has not inherited the set-up


def _worker_init(sender: Any = None, **_: Any) -> None:
    """A worker starting: the process set-up `instrument()` does in a web server, and `/metrics`."""
    global _metrics_server_started
    options = _options_for(getattr(sender, "app", None))
    lifecycle.start(options.settings if options is not None else load_settings())
    if options is None or options.metrics_port is None:
        return
    with _lock:
        if _metrics_server_started:
            return
        start_http_server(
            options.metrics_port, addr=options.metrics_addr, registry=multiprocess.exposition_registry()
        )
        _metrics_server_started = True


def _worker_ready(sender: Any = None, **_: Any) -> None:
    global _sampler_stop
    app = getattr(sender, "app", None)
    options = _options_for(app)
    if options is None or options.sample_interval is None:
        return
    with _lock:
        if _sampler_stop is not None:
            return
        _sampler_stop = threading.Event()
        thread = threading.Thread(
            target=_sample_loop,
            args=(app, options, _sampler_stop),
            name="lightkeeper-celery-sampler",
            daemon=True,
        )
        thread.start()


def _worker_shutdown(**_: Any) -> None:
    global _sampler_stop
    with _lock:
        if _sampler_stop is not None:
            _sampler_stop.set()
            _sampler_stop = None


def _sample_loop(app: Any, options: _Options, stop: threading.Event) -> None:
    import structlog

    log = structlog.get_logger("lightkeeper.celery")
    interval = options.sample_interval or 15.0
    timeout = min(interval / 2, 2.0)
    last_error: str | None = None
    while not stop.is_set():
        try:
            sample_queues(app, options.queues, timeout=timeout)
            sample_workers(app, timeout=timeout)
            last_error = None
        except Exception as exc:
            # Logged once per new failure, not every interval while the broker is down.
            error = f"{type(exc).__name__}: {exc}"
            if error != last_error:
                log.warning("celery_sampling_failed", error=error)
                last_error = error
        stop.wait(interval)
