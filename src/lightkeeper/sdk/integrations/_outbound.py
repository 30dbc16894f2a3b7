"""The outbound-HTTP signals, recorded the same way whichever client made the call.

httpx and requests differ in how they expose a request; once each has reduced it to
(host, method, status) this module owns the labels, the child cache and its bound.
"""

from __future__ import annotations

from typing import Any

from lightkeeper import catalogue
from lightkeeper.sdk.integrations import _labels
from lightkeeper.sdk.metrics import family

# Keys are raw (host as the client gives it); label values are bounded by
# _labels.host_label, but the raw keys are not, hence the cap on cached children.
_MAX_CACHED = 4096
_children: dict[tuple[Any, str, int], tuple[Any, Any]] = {}
_failure_children: dict[tuple[Any, str], Any] = {}


def _host(raw: Any) -> str:
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    return _labels.host_label(text)


def record(raw_host: Any, method: str, status: int, elapsed: float) -> None:
    """One answered request; `raw_host` is str or bytes, exactly as the client has it."""
    key = (raw_host, method, status)
    pair = _children.get(key)
    if pair is None:
        host = _host(raw_host)
        labels = (host, _labels.http_method(method), _labels.status_code(status))
        pair = (
            family(catalogue.HTTP_CLIENT_REQUESTS).labels(*labels),
            family(catalogue.HTTP_CLIENT_DURATION).labels(host),
        )
        if len(_children) < _MAX_CACHED:
            _children[key] = pair
    pair[0].inc()
    pair[1].observe(elapsed)


def failed(raw_host: Any, kind: str) -> None:
    """A request that got no response: timeout, connect, read, write, protocol, other."""
    key = (raw_host, kind)
    child = _failure_children.get(key)
    if child is None:
        child = family(catalogue.HTTP_CLIENT_FAILURES).labels(_host(raw_host), kind)
        if len(_failure_children) < _MAX_CACHED:
            _failure_children[key] = child
    child.inc()
