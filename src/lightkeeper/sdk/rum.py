"""Browser web vitals and front-end errors: the served snippet and the beacon endpoint.

The endpoint is open to the internet by nature (every visitor's browser posts to it),
so nothing in a beacon is trusted: the body is size-capped before it is read in full,
validated against a closed schema with plausible ranges, rate-limited per client, and
bot traffic is refused. Labels come only from closed sets: `page` must be one of the
app's own route templates (a raw path is matched against the route table, anything
else is "other") and `device` one of three classes, so hostile or buggy pages cannot
mint series. Error messages and stacks are free text and go only to the log and to
Sentry, both through the shared redaction.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from importlib import resources
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightkeeper import catalogue, route_table
from lightkeeper.sdk import error_reporting, redact
from lightkeeper.sdk.endpoints import _respond
from lightkeeper.sdk.logs import emit
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.settings import Settings

# Crawlers, monitors and automation that render pages but are not users: their
# vitals would describe the data centre, not the audience.
BOT_USER_AGENT = re.compile(
    rb"bot|crawl|spider|slurp|headless|lighthouse|pagespeed|pingdom|uptime|monitor|phantom|"
    rb"selenium|puppeteer|playwright|python-|curl/|wget/|go-http|java/|okhttp|axios/|node-fetch",
    re.IGNORECASE,
)
# Clients remembered by the rate limiter; the least recently seen is forgotten first.
MAX_TRACKED_CLIENTS = 10_000
MAX_ERRORS_PER_BEACON = 10
_MS_LIMIT = 120_000.0  # no real page view takes two minutes to paint: a forged value
_ACCEPTED_TYPES = (b"text/plain", b"application/json")
_JS_ERROR_TYPES = frozenset(catalogue.RUM_ERROR_TYPES)

Milliseconds = Annotated[float, Field(ge=0.0, le=_MS_LIMIT, strict=True, allow_inf_nan=False)]


class _Vitals(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lcp: Milliseconds | None = None
    inp: Milliseconds | None = None
    cls: Annotated[float, Field(ge=0.0, le=50.0, strict=True, allow_inf_nan=False)] | None = None
    fcp: Milliseconds | None = None
    ttfb: Milliseconds | None = None


class _Error(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["error", "rejection"]
    name: Annotated[str, Field(max_length=64, strict=True)] = "Error"
    message: Annotated[str, Field(max_length=1000, strict=True)] = ""
    stack: Annotated[str, Field(max_length=4000, strict=True)] = ""


class Beacon(BaseModel):
    """What rum.js posts: one page view's vitals (once) and the errors since the last beacon."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page: Annotated[str, Field(min_length=1, max_length=512, strict=True)]
    device: Literal["mobile", "tablet", "desktop"]
    vitals: _Vitals | None = None
    errors: Annotated[list[_Error], Field(max_length=MAX_ERRORS_PER_BEACON)] = []


class _Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class TokenBuckets:
    """Per-client token buckets with a bounded number of clients.

    A client may burst up to `capacity` beacons (a page with a few errors and its
    vitals), then `rate` per second. Forgetting the least recently seen client when
    full can only make the limit more lenient for it, never grow memory.
    """

    def __init__(
        self, per_minute: int, capacity: float | None = None, max_clients: int = MAX_TRACKED_CLIENTS
    ):
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else max(1.0, min(float(per_minute), 10.0))
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return allowed

    def __len__(self) -> int:
        return len(self._buckets)


class PageNames:
    """Maps the page a beacon names to one of the app's route templates, or "other".

    The route list is the app's own (mutable) list, read again whenever its length
    changes, so routes added after `instrument()` count too.
    """

    def __init__(self, routes: Any) -> None:
        self._routes = routes
        self._seen_length = -1
        self._templates: dict[str, Any] = {}

    def _index(self) -> dict[str, Any]:
        length = len(self._routes) if self._routes is not None else 0
        if length != self._seen_length:
            self._templates = {e.template: e.regex for e in route_table.endpoints(self._routes)}
            self._seen_length = length
        return self._templates

    def resolve(self, page: str) -> str:
        templates = self._index()
        if page in templates:
            return page[: catalogue.MAX_LABEL_VALUE_LENGTH]
        path = page.split("?", 1)[0].split("#", 1)[0]
        for template, regex in templates.items():
            if regex is not None and regex.match(path):
                return template[: catalogue.MAX_LABEL_VALUE_LENGTH]
        return catalogue.RUM_OTHER_PAGE


def _script(endpoint: str) -> bytes:
    source = resources.files("lightkeeper.sdk").joinpath("static/rum.js").read_text("utf-8")
    return source.replace('"__LK_ENDPOINT__"', orjson.dumps(endpoint).decode()).encode()


_VITALS = {
    "lcp": (catalogue.WEB_VITALS_LCP, 1000.0),
    "inp": (catalogue.WEB_VITALS_INP, 1000.0),
    "cls": (catalogue.WEB_VITALS_CLS, 1.0),
    "fcp": (catalogue.WEB_VITALS_FCP, 1000.0),
    "ttfb": (catalogue.WEB_VITALS_TTFB, 1000.0),
}


def _client(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _header(scope: dict[str, Any], name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


class RumEndpoint:
    """Serves rum.js and records the beacons it sends; one per instrumented app."""

    def __init__(self, settings: Settings, routes: Any) -> None:
        self.max_bytes = settings.rum_max_beacon_bytes
        self.pages = PageNames(routes)
        self.limiter = TokenBuckets(settings.rum_beacons_per_minute)
        self.script = _script(settings.rum_path)
        rejected = family(catalogue.RUM_BEACONS_REJECTED)
        self._rejected = {reason: rejected.labels(reason) for reason in catalogue.RUM_REJECT_REASONS}

    async def serve(
        self, kind: str, scope: dict[str, Any], receive: Any, send: Any, extra: list[Any]
    ) -> None:
        if kind == "rum_js":
            cache = (b"cache-control", b"public, max-age=3600")
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/javascript; charset=utf-8"),
                        (b"content-length", str(len(self.script)).encode()),
                        cache,
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": self.script})
            return
        try:
            beacon = await self._accept(scope, receive)
        except _Rejected as refused:
            self._rejected[refused.reason].inc()
            await _respond(send, refused.status, refused.reason.encode() + b"\n", b"text/plain", extra)
            return
        self.record(beacon)
        await _respond(send, 204, b"", b"text/plain", extra)

    async def _accept(self, scope: dict[str, Any], receive: Any) -> Beacon:
        if scope.get("method") != "POST":
            raise _Rejected(405, "method")
        user_agent = _header(scope, b"user-agent")
        if not user_agent or BOT_USER_AGENT.search(user_agent):
            raise _Rejected(403, "bot")
        content_type = _header(scope, b"content-type").split(b";", 1)[0].strip().lower()
        if content_type not in _ACCEPTED_TYPES:
            raise _Rejected(415, "content_type")
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise _Rejected(413, "too_large")
        # Before the body is read: a flood costs a dict lookup, not a parse.
        if not self.limiter.take(_client(scope)):
            raise _Rejected(429, "rate_limited")
        body = await self._read(receive)
        try:
            return Beacon.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError, TypeError):
            raise _Rejected(400, "invalid") from None

    async def _read(self, receive: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Rejected(400, "invalid")  # the client went away mid-body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _Rejected(413, "too_large")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def record(self, beacon: Beacon) -> None:
        page = self.pages.resolve(beacon.page)
        if beacon.vitals is not None:
            for name, (signal, divisor) in _VITALS.items():
                value = getattr(beacon.vitals, name)
                if value is not None:
                    family(signal).labels(page, beacon.device).observe(value / divisor)
        for error in beacon.errors:
            _report_error(page, beacon.device, error)


def _error_type(error: _Error) -> str:
    if error.kind == "rejection":
        return "unhandled_rejection"
    return error.name if error.name in _JS_ERROR_TYPES else "other"


def _report_error(page: str, device: str, error: _Error) -> None:
    error_type = _error_type(error)
    family(catalogue.FRONTEND_ERRORS).labels(page, error_type).inc()
    message = redact.redact_text(error.message)
    stack = redact.redact_text(error.stack)
    emit(
        "warning",
        {
            "event": "frontend_error",
            "page": page,
            "device": device,
            "error_type": error_type,
            "error_message": message,
            "error_stack": stack,
        },
    )
    if error_reporting.sentry_enabled():
        import sentry_sdk

        # before_send (the shared redaction) runs on this event like on every other.
        sentry_sdk.capture_event(
            {
                "level": "error",
                "logger": "lightkeeper.rum",
                "message": f"{error.name}: {message}"[:1000],
                "tags": {"page": page, "device": device, "error_type": error_type},
                "extra": {"stack": stack},
            }
        )


def configure_hook(app: Any, settings: Settings, runtime: Any) -> None:
    """instrument() hook: give the runtime its RUM endpoint when `rum_enabled`."""
    if not settings.rum_enabled:
        runtime.rum = None
        return
    router = getattr(app, "router", None)
    runtime.rum = RumEndpoint(settings, getattr(router, "routes", None))
