"""Merged latency sketches of settled roll-up ranges, kept in memory between requests.

A year-long window merges ~40 sketches a probe; most of them (whole past months, the
days of a month long gone) give the same merge on every request. Only ranges whose
buckets were all rolled long ago are cached (see `SETTLED`), so the cache never holds
a merge that a regular roll-up would still change; a re-roll in this process clears it.
A re-roll of an old bucket by another replica is seen after `MAX_AGE` at the latest.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

SETTLED = timedelta(days=2)  # roll-ups run every minute; two days is far past "rolled"
MAX_ENTRIES = 64
MAX_AGE = 3600.0

Key = tuple[str, str, datetime, datetime]
_entries: OrderedDict[Key, tuple[float, dict[str, bytes]]] = OrderedDict()
_lock = threading.Lock()


def clear() -> None:
    with _lock:
        _entries.clear()


def get_or_build(key: Key, now: datetime, build: Callable[[], dict[str, bytes]]) -> dict[str, bytes]:
    """`build()` for ranges ending less than `SETTLED` ago; a cached result for older ones."""
    if key[3] + SETTLED > now:
        return build()
    with _lock:
        found = _entries.get(key)
        if found is not None and time.monotonic() - found[0] < MAX_AGE:
            _entries.move_to_end(key)
            return found[1]
    value = build()
    with _lock:
        _entries[key] = (time.monotonic(), value)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value
