"""Business counters: one line in application code, a bounded series in Prometheus.

    lightkeeper.declare_usage({"content_item_created": {"plan": ["free", "pro", "team"]}})
    lightkeeper.usage("content_item_created", plan="pro")
    lightkeeper.auth_attempt(outcome="failure", method="password")

Events are declared (the `usage_events` setting, or `declare_usage()`) so a typo or an
id passed as a label value can never mint a series: a call the declaration does not
allow raises where a developer sees it (`usage_strict`, on in test and dev) and is
otherwise dropped and counted in `lightkeeper_usage_events_dropped_total{reason}`.
With nothing declared, names are free-form as before, capped per process.

Every allowed (event, labels) child is resolved when the declaration is read, so a
call is one dict lookup and an increment. Every event's label names join the family
(`usage_events_total{event, plan, ...}`); events without a label leave it empty,
which PromQL reads as absent.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Literal

from prometheus_client import REGISTRY, Counter

from lightkeeper import catalogue
from lightkeeper.sdk import multiprocess
from lightkeeper.sdk.metrics import family
from lightkeeper.sdk.settings import Settings, current_settings
from lightkeeper.sdk.usage_declarations import EVENT_NAME, Declaration, Declared, combinations, merge, parse

AuthOutcome = Literal["success", "failure", "locked"]
AuthMethod = Literal["password", "oauth", "token"]
AUTH_OUTCOMES: tuple[AuthOutcome, ...] = ("success", "failure", "locked")
AUTH_METHODS: tuple[AuthMethod, ...] = ("password", "oauth", "token")
# Distinct names counted while nothing is declared; later newcomers are dropped.
MAX_UNDECLARED_EVENTS = 100


class UsageError(ValueError):
    """A usage() or auth_attempt() call the declaration does not allow (strict mode)."""


class _State:
    """Everything the slow path decides from; replaced whole when a declaration changes."""

    def __init__(self, settings_declared: Declared, code_declared: Declared, strict: bool) -> None:
        self.settings_declared = settings_declared
        self.code_declared = code_declared
        self.strict = strict
        declared = merge(settings_declared, code_declared)
        self.declared: Declared | None = declared or None
        self.label_names: tuple[str, ...] = tuple(sorted({n for labels in declared.values() for n in labels}))


_lock = threading.Lock()
_state: _State | None = None
_counter: Any = None
_counter_labels: tuple[str, ...] | None = None
# (event,) or (event, (label, value), ...) in the caller's keyword order -> counter child.
# Read without a lock (a dict lookup is atomic under the GIL); replaced, never emptied.
_children: dict[Any, Any] = {}
_auth_children: dict[tuple[str, str], Any] = {}


def usage(event: str, amount: float = 1.0, **labels: str) -> None:
    """Count a business event, e.g. `lightkeeper.usage("content_item_created", plan="pro")`.

    The event and its label values must be declared (see `declare_usage`); identifiers
    (users, organisations) belong in log lines through `lightkeeper.bind()`, never here.
    """
    child = _children.get((event, *labels.items()) if labels else event)
    if child is None:
        child = _resolve(event, labels)
        if child is None:
            return
    if not 0.0 <= amount < math.inf:  # also refuses NaN, which would poison the counter for good
        _reject("invalid_amount", f"usage amount must be a finite number >= 0, not {amount!r}")
        return
    child.inc(amount)


def declare_usage(events: Declaration) -> None:
    """Declare usage events from code: a list of names, or name -> label -> allowed values.

    For services that do not set `usage_events`; adds to (and per event replaces) what
    the settings declare. Declare before counting: an event that brings a new label
    name rebuilds `usage_events_total`, which restarts its counts from zero.
    """
    parsed = parse(events)
    with _lock:
        state = _current_state()
        _apply(_State(state.settings_declared, merge(state.code_declared, parsed), state.strict))


def auth_attempt(outcome: AuthOutcome, method: AuthMethod = "password") -> None:
    """Count a sign-in attempt in `auth_attempts_total{method, outcome}`.

    Who tried is not a label: bind the user or organisation to the request's log lines
    with `lightkeeper.bind()` instead.
    """
    child = _auth_children.get((outcome, method))
    if child is None:
        if outcome in AUTH_OUTCOMES and method in AUTH_METHODS:
            child = _auth_children[(outcome, method)] = family(catalogue.AUTH_ATTEMPTS).labels(
                method, outcome
            )
        else:
            _current_state()
            _reject(
                "invalid_auth",
                f"auth_attempt(outcome={outcome!r}, method={method!r}): outcome is one of "
                f"{', '.join(AUTH_OUTCOMES)} and method one of {', '.join(AUTH_METHODS)}",
            )
            return
    child.inc()


def configure(settings: Settings) -> None:
    """Take the declaration and strictness of the settings `instrument()` was given."""
    parsed = parse(settings.usage_events)
    with _lock:
        code = _state.code_declared if _state is not None else {}
        _apply(_State(parsed, code, settings.effective_usage_strict))


def configure_hook(app: Any, settings: Settings, runtime: Any) -> None:
    """`instrument()` set-up hook (see lightkeeper.sdk.instrument)."""
    configure(settings)


def reset() -> None:
    """Forget every declaration (for tests): names become free-form again."""
    with _lock:
        _apply(_State({}, {}, _state.strict if _state is not None else True))


def cache_hit(cache: str) -> None:
    """Count a hit of the named cache (`cache_hits_total{cache}`); pair with `cache_miss`."""
    family(catalogue.CACHE_HITS).labels(_checked("cache", cache)).inc()


def cache_miss(cache: str) -> None:
    """Count a miss of the named cache (`cache_misses_total{cache}`); pair with `cache_hit`."""
    family(catalogue.CACHE_MISSES).labels(_checked("cache", cache)).inc()


def _checked(kind: str, name: str) -> str:
    # Names come from code, not from requests; reject anything that looks like data
    # (ids, emails) before it becomes a label value that lives forever.
    if not EVENT_NAME.match(name):
        raise ValueError(f"{kind} name {name!r} must be a short lowercase identifier such as 'profiles'")
    return name


# --- slow path: the first call of each (event, labels), and every refused call -----------


def _current_state() -> _State:
    """The state, read from the settings on first use when instrument() never ran (workers)."""
    global _state
    if _state is None:
        settings = current_settings()
        _apply(_State(parse(settings.usage_events), {}, settings.effective_usage_strict))
    assert _state is not None
    return _state


def _apply(state: _State) -> None:
    """Install `state`: the family (rebuilt only when its label names change) and its children."""
    global _state, _counter, _counter_labels, _children
    labels = ("event", *state.label_names)
    if _counter is None or _counter_labels != labels:
        if _counter is not None:
            REGISTRY.unregister(_counter)
        multiprocess.activate_if_needed()
        signal = catalogue.USAGE_EVENTS
        _counter = Counter(signal.base_name, signal.help, labels, registry=REGISTRY)
        _counter_labels = labels
    children: dict[Any, Any] = {}
    for event, declared in (state.declared or {}).items():
        for combination in combinations(declared):
            key = (event, *combination) if combination else event
            children[key] = _child(state, event, dict(combination))
    _state = state
    _children = children


def _child(state: _State, event: str, labels: dict[str, str]) -> Any:
    return _counter.labels(event, *(labels.get(name, "") for name in state.label_names))


def _resolve(event: str, labels: dict[str, str]) -> Any:
    with _lock:
        state = _current_state()
        key = (event, *labels.items()) if labels else event
        found = _children.get(key)
        if found is not None:
            return found
        problem = _problem(state, event, labels)
        if problem is None:
            if state.declared is None and len(_children) >= MAX_UNDECLARED_EVENTS:
                problem = (
                    "too_many_events",
                    f"more than {MAX_UNDECLARED_EVENTS} distinct undeclared usage events; declare them",
                )
            else:
                # Known combination in another keyword order, or a free-form name.
                child = _children[key] = _child(state, event, labels)
                return child
    _reject(*problem)
    return None


def _problem(state: _State, event: str, labels: dict[str, str]) -> tuple[str, str] | None:
    if not isinstance(event, str) or not EVENT_NAME.match(event):
        return "invalid_name", f"usage event {event!r} must be a short lowercase identifier"
    if state.declared is None:
        if labels:
            return "unknown_label", f"usage({event!r}) got labels {sorted(labels)}, but no label is declared"
        return None
    allowed = state.declared.get(event)
    if allowed is None:
        return (
            "unknown_event",
            f"usage event {event!r} is not declared; declared: {', '.join(state.declared)}",
        )
    extra = sorted(set(labels) - set(allowed))
    if extra:
        return "unknown_label", f"usage({event!r}) got undeclared label(s) {', '.join(extra)}"
    missing = sorted(set(allowed) - set(labels))
    if missing:
        return "missing_label", f"usage({event!r}) needs label(s) {', '.join(missing)}"
    for name, value in labels.items():
        if value not in allowed[name]:
            # The value is not echoed: an undeclared value may be exactly the id it must not be.
            return "unknown_value", (
                f"usage({event!r}): {name} is not one of the declared values {', '.join(allowed[name])}"
            )
    return None


def _reject(reason: str, message: str) -> None:
    """Count the refused call; raise too where a developer will see it."""
    family(catalogue.USAGE_EVENTS_DROPPED).labels(reason).inc()
    state = _state
    if state is None or state.strict:
        raise UsageError(message)
