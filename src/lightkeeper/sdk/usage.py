"""Business counters: one line in application code, a bounded series in Prometheus."""

from __future__ import annotations

import re

from lightkeeper import catalogue
from lightkeeper.sdk.metrics import family

_NAME = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


def _checked(kind: str, name: str) -> str:
    # Names come from code, not from requests; reject anything that looks like data
    # (ids, emails) before it becomes a label value that lives forever.
    if not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} must be a short lowercase identifier such as 'content_item_created'"
        )
    return name


def usage(event: str, amount: float = 1.0) -> None:
    """Count a business event, e.g. `lightkeeper.usage("content_item_created")`."""
    family(catalogue.USAGE_EVENTS).labels(_checked("usage event", event)).inc(amount)


def cache_hit(cache: str) -> None:
    family(catalogue.CACHE_HITS).labels(_checked("cache", cache)).inc()


def cache_miss(cache: str) -> None:
    family(catalogue.CACHE_MISSES).labels(_checked("cache", cache)).inc()
