"""A short write-behind buffer: records collected on the request path, written in batches.

Rendering and writing one request line costs three to four times more inside a busy
server than in a warm loop: between two requests the server's own code has pushed the
line's code and data out of the CPU caches, and every line is a `write` system call.
Rendering a batch of lines back to back, then writing them in one call, pays that
once per batch. The request path only appends a tuple.

What that costs, and how it is bounded:

- a line reaches the stream at most `interval` seconds after its request ended (its
  timestamp is still the time the request ended);
- at most `max_records` records wait; the request that reaches the cap writes the
  batch itself, so a stalled stream slows requests down (as an unbuffered write
  would) instead of growing memory;
- `flush()` is called before any other line is written (order on the stream stays the
  order of events), at interpreter exit, and in the parent before a fork (those two
  process-wide hooks are installed by `instrument()`, or when a flusher first starts,
  never by importing this module: a script that only imports Lightkeeper keeps its
  atexit and fork hooks as they were);
- a process killed with SIGKILL loses at most the last `interval` of request lines.

A background thread does the timed flush rather than the event loop: test clients and
short-lived loops close their loop without running pending callbacks, and a line must
not wait for the next request to be written.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

Sink = Callable[[list[Any]], None]

# The flusher also wakes this often when idle, so a record whose wake-up was lost to a
# race between two appending threads waits at most this long.
_IDLE_WAKE_SECONDS = 1.0


class WriteBehind:
    """Collects records and hands them to `sink` in order, in batches."""

    def __init__(self, sink: Sink, interval: float, name: str, max_records: int = 1024) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive; write directly when it is 0")
        self._sink = sink
        self._name = f"lightkeeper-flush-{name}"
        self.interval = interval
        self._max = max_records
        self.pending: deque[Any] = deque()  # append/popleft are atomic: no lock per record
        self._lock = threading.Lock()  # one flush at a time, so batches keep their order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        _live.add(self)

    def add(self, record: Any) -> None:
        records = self.pending
        records.append(record)
        waiting = len(records)
        if waiting == 1:  # the first record of a batch starts the clock
            if self._closed:
                self.flush()
            elif self._thread is None:
                self._start()
            self._wake.set()
        elif waiting >= self._max:
            self.flush()

    def flush(self) -> None:
        """Hand every waiting record to the sink now (in the caller's thread)."""
        with self._lock:
            records = self.pending
            waiting = len(records)
            if not waiting:
                return
            batch = [records.popleft() for _ in range(waiting)]
            self._sink(batch)

    def close(self) -> None:
        """Write what waits and stop the flusher; later records are written at once."""
        self._closed = True
        _live.discard(self)
        self._wake.set()
        self.flush()

    def _start(self) -> None:
        install_process_hooks()
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        wake = self._wake
        while not self._closed:
            wake.wait(_IDLE_WAKE_SECONDS)
            wake.clear()
            if not self.pending:
                continue
            time.sleep(self.interval)  # let the batch fill
            try:
                self.flush()
            except Exception as exc:  # a broken stream must not kill the flusher
                _report(exc)

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here, and its lock may have been held.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self.pending.clear()  # written by the parent before the fork


def _report(exc: BaseException) -> None:
    with contextlib.suppress(Exception):  # stderr gone too: nothing left to tell
        sys.stderr.write(f"lightkeeper: batched records could not be written: {exc!r}\n")


_live: weakref.WeakSet[WriteBehind] = weakref.WeakSet()


def flush_all() -> None:
    for buffer in list(_live):
        try:
            buffer.flush()
        except Exception as exc:
            _report(exc)


def _after_fork_in_child() -> None:
    for buffer in list(_live):
        buffer._after_fork_in_child()


_hooks_installed = False
_hooks_lock = threading.Lock()


def install_process_hooks() -> None:
    """Flush at exit and around `fork()` from now on; later calls do nothing."""
    global _hooks_installed
    if _hooks_installed:
        return
    with _hooks_lock:
        if _hooks_installed:
            return
        atexit.register(flush_all)
        os.register_at_fork(before=flush_all, after_in_child=_after_fork_in_child)
        _hooks_installed = True
