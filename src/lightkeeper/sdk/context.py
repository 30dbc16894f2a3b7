"""Per-request context shared by logs, outbound calls and background work.

Two layers, because two readers want different things:

- What a task's own log lines carry is task-local. `bind()` never mutates the dict
  other tasks see: it sets a new `Frame` in the ContextVar (copy-on-write, as
  structlog's contextvars do), so two `asyncio.gather` children of one request
  binding `job=` each see only their own value.
- What the request's access line carries is request-wide. The middleware writes that
  line after the endpoint returns, from its own task, where a sync endpoint's binds
  (made in a thread-pool copy of the context) or a child task's would be invisible.
  So every frame of a request points at the request's root frame, and `bind()` also
  records the fields there (`Frame.bound`); only the access line and the unhandled
  exception line read them.

The request path pays for one `Frame` (a dict) and one `ContextVar.set`, as it did
when the context was one shared dict. Integrations (Celery, httpx) read
the request id from here to propagate it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any


class Frame(dict[str, Any]):
    """The fields one task's log lines carry; never mutated once set, so a plain dict
    to every reader (a log line iterates it as it would any dict).

    `root` is the request's first frame (None on the root itself, so no frame refers
    to itself). `bound`, on the root only, collects everything bound anywhere in the
    request (None until the first bind). Both are class-level defaults: the frame
    the middleware creates per request costs what a dict costs, and instance
    attributes appear only on frames `bind()` makes.
    """

    root: Frame | None = None
    bound: dict[str, Any] | None = None


_request_context: ContextVar[Frame | None] = ContextVar("lightkeeper_request", default=None)
# Only guards creating a root's `bound` dict: binds from two pool threads of one
# request must not each install their own.
_bound_lock = threading.Lock()


def current() -> Mapping[str, Any]:
    """The fields this task's log lines carry; empty outside a request (or task)."""
    return _request_context.get() or {}


def current_request_id() -> str | None:
    """The id of the request being served (to pass on to other systems), or None outside one."""
    frame = _request_context.get()
    return None if frame is None else frame.get("request_id")


def request_bound() -> Mapping[str, Any]:
    """Everything bound anywhere in the current request, for the lines written on
    its behalf after its tasks and threads are done (access line, unhandled error)."""
    frame = _request_context.get()
    if frame is None:
        return {}
    root = frame if frame.root is None else frame.root
    bound = root.bound
    return {} if bound is None else dict(bound)  # a copy: a pool thread may still bind


def start(values: dict[str, Any]) -> Token[Frame | None]:
    """Begin a new context for a unit of work (a copy of `values`); `end()` ends it."""
    return _request_context.set(Frame(values))


def end(token: Token[Frame | None]) -> None:
    _request_context.reset(token)


def bind(**values: Any) -> None:
    """Add fields to this task's log lines and to the request's access line.

    A no-op outside a request (or a `scoped()` unit of work): there is no line to
    add them to.
    """
    frame = _request_context.get()
    if frame is None:
        return
    root = frame if frame.root is None else frame.root  # a Frame may be empty: falsy
    child = Frame(frame)
    child.update(values)
    child.root = root
    _request_context.set(child)
    bound = root.bound
    if bound is None:
        with _bound_lock:
            bound = root.bound
            if bound is None:
                bound = root.bound = {}
    bound.update(values)


@contextmanager
def scoped(**values: Any) -> Iterator[dict[str, Any]]:
    """A context for work that is not an HTTP request (a Celery task, a CLI job)."""
    ctx = Frame(values)
    token = _request_context.set(ctx)
    try:
        yield ctx
    finally:
        _request_context.reset(token)
