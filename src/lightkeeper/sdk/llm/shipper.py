"""Cost events to the Lightkeeper server's ingest API, off the LLM call's path.

The sink only appends to a bounded buffer under a lock: the LLM call never waits on
the network and never sees an error from it. A daemon thread sends batches; a batch
that fails to arrive (server down, timeout, 5xx, 429) stays in hand and is resent with
capped exponential backoff and full jitter, so a fleet of services does not hammer a
server that is coming back. Resending is safe because the server is idempotent by
`event_id`: a batch it stored but whose answer was lost is not counted twice. What does
not fit in the buffer while the server is away is dropped and counted
(`lightkeeper_llm_events_dropped_total{reason="buffer_full"}`), as is a batch the server
refuses for good (`reason="rejected"`: bad token, invalid body), which no retry would fix.
The token is sent only in the Authorization header and never logged.

Across `fork()` (gunicorn `--preload`, Celery prefork) the child starts afresh: an
empty buffer, a new lock and HTTP connection pool, and its own sending thread. The
events buffered before the fork stay the parent's to send, so each is sent once; the
inherited sockets are left to the parent (closing them from the child could end the
parent's TLS session).
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from datetime import UTC
from typing import Any

import httpx

from lightkeeper import catalogue
from lightkeeper.sdk.llm import events
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.settings import Settings

_log = logging.getLogger("lightkeeper.llm")

INGEST_PATH = "/api/llm/events"
BUFFER_FULL = "buffer_full"
REJECTED = "rejected"
# Answers worth another try; any other 4xx means this batch will never be accepted.
_RETRYABLE = frozenset({408, 425, 429})


def to_json(event: events.CostEvent) -> dict[str, Any]:
    """The JSON form the server's contract names: the dataclass's fields, times in ISO-8601 UTC."""
    body = dataclasses.asdict(event)
    moment = event.timestamp
    if moment.tzinfo is None:  # the recorder stamps UTC; a naive time would be refused
        moment = moment.replace(tzinfo=UTC)
    body["timestamp"] = moment.isoformat()
    return body


class Shipper:
    """A `CostSink` with its own sending thread; `start()` before use, `close()` to drain."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        buffer_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 5.0,
        timeout: float = 2.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.endpoint = url.rstrip("/") + INGEST_PATH
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout, headers=self._headers)
        self._buffer: deque[events.CostEvent] = deque()
        self._in_hand: list[events.CostEvent] = []  # the batch being sent or retried
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._flush_requested = False
        self._failures = 0
        self._thread: threading.Thread | None = None
        self._dropped = family(catalogue.LLM_EVENTS_DROPPED)
        for reason in (BUFFER_FULL, REJECTED):
            self._dropped.labels(reason)  # exposed at zero from the start

    # --- the sink (called on the LLM call's thread) -------------------------------
    def __call__(self, event: events.CostEvent) -> None:
        with self._lock:
            if len(self._buffer) + len(self._in_hand) >= self.buffer_size or self._stopping:
                full = True
            else:
                full = False
                self._buffer.append(event)
                if len(self._buffer) >= self.batch_size:
                    self._wake.notify()
        if full:
            self._dropped.labels(BUFFER_FULL).inc()

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer) + len(self._in_hand)

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        """Start the sending thread and the exit hook (here, never at import)."""
        if self._thread is not None:
            return
        _install_fork_hook()
        _started.add(self)
        self._start_thread()
        atexit.register(self.close)

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lightkeeper-llm-shipper", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and may have held the lock; its buffer
        # and the batch in hand are the parent's to send.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._buffer = deque()
        self._in_hand = []
        self._failures = 0
        self._flush_requested = False
        self._client = httpx.Client(timeout=self._timeout, headers=self._headers)
        if self._stopping:  # closed before the fork: stays closed
            self._thread = None
            return
        self._start_thread()

    def flush(self) -> None:
        """Ask the thread to send what waits now rather than at the next interval."""
        with self._lock:
            self._flush_requested = True
            self._wake.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Send what waits, trying for at most `timeout` seconds; then stop (at exit)."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._client.close()
        atexit.unregister(self.close)

    # --- the sending thread --------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._in_hand:
                    self._wait_for_work()
                    if not self._buffer:
                        if self._stopping:
                            return
                        continue
                    count = min(self.batch_size, len(self._buffer))
                    self._in_hand = [self._buffer.popleft() for _ in range(count)]
                self._flush_requested = False
                batch = list(self._in_hand)
                stopping = self._stopping
            outcome = self._send(batch)
            with self._lock:
                if outcome != "retry":
                    self._in_hand = []
                    self._failures = 0
                    continue
                if stopping:  # at exit: one try only; what is left is lost with the process
                    return
                self._failures += 1
                cap = min(self.backoff_max, self.backoff_base * 2 ** (self._failures - 1))
                delay = random.uniform(0, cap)  # full jitter
                self._wake.wait_for(lambda: self._stopping, timeout=delay)

    def _wait_for_work(self) -> None:
        """Under the lock: until a batch is full, a flush or stop is asked, or the interval ends."""
        deadline = time.monotonic() + self.flush_interval
        while not (self._stopping or self._flush_requested or len(self._buffer) >= self.batch_size):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(remaining)

    def _send(self, batch: list[events.CostEvent]) -> str:
        try:
            response = self._client.post(self.endpoint, json={"events": [to_json(e) for e in batch]})
        except httpx.HTTPError as exc:
            if self._failures == 0:
                _log.warning("LLM cost events not delivered (%s); retrying with backoff", type(exc).__name__)
            return "retry"
        if response.status_code < 300:
            if self._failures:
                _log.info("LLM cost events delivered again after %d failed tries", self._failures)
            return "sent"
        if response.status_code >= 500 or response.status_code in _RETRYABLE:
            if self._failures == 0:
                _log.warning("LLM cost events not delivered (HTTP %d); retrying", response.status_code)
            return "retry"
        _log.error(
            "the server refused %d LLM cost events (HTTP %d); they were dropped",
            len(batch),
            response.status_code,
        )
        self._dropped.labels(REJECTED).inc(len(batch))
        return "rejected"


_started: weakref.WeakSet[Shipper] = weakref.WeakSet()
_fork_hook_installed = False
_fork_hook_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _install_lock
    _install_lock = threading.Lock()  # a parent thread may have held it
    for shipper in list(_started):
        shipper._after_fork_in_child()


def _install_fork_hook() -> None:
    """Once per process, when a first shipper starts (never at import)."""
    global _fork_hook_installed
    with _fork_hook_lock:
        if not _fork_hook_installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True


_installed: tuple[tuple[Any, ...], Shipper] | None = None
_install_lock = threading.Lock()


def _shape(settings: Settings) -> tuple[Any, ...]:
    return (
        settings.llm_events_url,
        settings.llm_events_token,
        settings.llm_events_buffer_size,
        settings.llm_events_batch_size,
        settings.llm_events_flush_interval_seconds,
    )


def install(settings: Settings) -> Shipper | None:
    """Register one shipper per process for these settings (none when no URL is set).

    Called again with different settings (a new `instrument()`), the old shipper is
    drained and replaced; with the same ones, nothing changes.
    """
    global _installed
    with _install_lock:
        shape = _shape(settings)
        if _installed is not None:
            old_shape, old = _installed
            if old_shape == shape:
                return old
            events.remove_sink(old)
            old.close()
            _installed = None
        if not settings.llm_events_url:
            return None
        shipper = Shipper(
            settings.llm_events_url,
            settings.llm_events_token,
            buffer_size=settings.llm_events_buffer_size,
            batch_size=settings.llm_events_batch_size,
            flush_interval=settings.llm_events_flush_interval_seconds,
        )
        shipper.start()
        events.add_sink(shipper)
        _installed = (shape, shipper)
        return shipper


def installed() -> Shipper | None:
    return _installed[1] if _installed is not None else None
