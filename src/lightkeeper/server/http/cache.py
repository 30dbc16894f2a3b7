"""One value kept for a few seconds: the rendered status page."""

from __future__ import annotations

import threading
import time


class TtlCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._value: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()  # handlers run in the threadpool

    def get(self) -> str | None:
        with self._lock:
            return self._value if time.monotonic() < self._expires else None

    def put(self, value: str) -> str:
        with self._lock:
            self._value, self._expires = value, time.monotonic() + self.seconds
        return value

    def clear(self) -> None:
        with self._lock:
            self._value, self._expires = None, 0.0
