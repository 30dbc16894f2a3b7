"""Import an integration's library on demand, check its version, patch it reversibly.

Borrowed idea (not code) from OpenTelemetry's `BaseInstrumentor`: the dependency range
is checked *before* anything is patched, so an unsupported version fails loudly at
start-up instead of silently recording nothing, and every patch can be undone.

Patches are recorded on the wrapper itself (`__lightkeeper_original__`), which makes
them idempotent (a second `instrument_*` call sees its own wrapper and stops) and lets
an instance-level patch call the *unwrapped* class method, so instrumenting one client
and all clients at once never counts a call twice.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any

_ORIGINAL = "__lightkeeper_original__"


class MissingDependencyError(ImportError):
    """The library an integration instruments is absent or outside the supported range."""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:  # "0rc1", "1b2": stop at the first pre-release marker
            break
    return tuple(parts)


def require(
    module: str, *, integration: str, distribution: str, minimum: str, below: str, extra: str | None = None
) -> types.ModuleType:
    """Import `module` when `distribution` is installed within [minimum, below).

    The error names what to install (the lightkeeper extra when there is one),
    because "No module named 'celery'" from deep inside a worker start-up does not
    say which package fixes it.
    """
    wanted = f"{distribution}>={minimum},<{below}"
    hint = f"pip install 'lightkeeper[{extra}]'" if extra else f"pip install '{wanted}'"
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(
            f"lightkeeper's {integration} integration needs {wanted}, which is not installed; "
            f"install it with: {hint}"
        ) from None
    found = _version_tuple(installed)
    if not _version_tuple(minimum) <= found < _version_tuple(below):
        raise MissingDependencyError(
            f"lightkeeper's {integration} integration supports {wanted}, but {distribution} "
            f"{installed} is installed; install a supported version with: {hint}"
        )
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"lightkeeper's {integration} integration could not import {module} ({exc}); "
            f"reinstall it with: {hint}"
        ) from exc


def original(func: Any) -> Any:
    """The function underneath a lightkeeper wrapper (itself when not wrapped)."""
    return getattr(func, _ORIGINAL, func)


def is_wrapped(func: Any) -> bool:
    return getattr(func, _ORIGINAL, None) is not None


def _mark(wrapper: Any, wrapped: Any) -> Any:
    setattr(wrapper, _ORIGINAL, wrapped)
    wrapper.__wrapped__ = wrapped
    wrapper.__name__ = getattr(wrapped, "__name__", "wrapper")
    wrapper.__doc__ = getattr(wrapped, "__doc__", None)
    return wrapper


def patch_class(cls: type, name: str, make: Callable[[Any], Any]) -> bool:
    """Replace `cls.name` by `make(original_function)`; False when already patched."""
    current = getattr(cls, name)
    if is_wrapped(current):
        return False
    setattr(cls, name, _mark(make(current), current))
    return True


def unpatch_class(cls: type, name: str) -> bool:
    current = cls.__dict__.get(name)
    if current is None or not is_wrapped(current):
        return False
    wrapped = original(current)
    # Restore exactly what was there: an inherited method leaves no own attribute behind.
    if any(name in base.__dict__ and base.__dict__[name] is wrapped for base in cls.__mro__[1:]):
        delattr(cls, name)
    else:
        setattr(cls, name, wrapped)
    return True


def patch_instance(obj: Any, name: str, make: Callable[[Any], Any]) -> bool:
    """Patch one object only; the wrapper receives the *unwrapped* class function.

    `make` builds the same `(self, ...)` wrapper as for `patch_class`; it is bound to
    `obj`, so one wrapper implementation serves both modes.
    """
    if is_wrapped(vars(obj).get(name)):
        return False
    func = original(getattr(type(obj), name))
    wrapper = _mark(make(func), func)
    setattr(obj, name, types.MethodType(wrapper, obj))
    return True


def unpatch_instance(obj: Any, name: str) -> bool:
    current = vars(obj).get(name)
    if current is None or not is_wrapped(current):
        return False
    delattr(obj, name)
    return True


# --- Seam for the tracing module --------------------------------------------------
# Spans for the same engines, clients and apps are added by lightkeeper's tracing
# set-up (OpenTelemetry contrib instrumentations). It registers a callback per
# integration; callbacks run for every target instrumented before or after, so the
# order of `instrument()` and `instrument_*()` calls does not matter. A target of
# None means "every client of that library".

_hooks: dict[str, list[Callable[[Any], None]]] = {}
_targets: dict[str, list[Callable[[], Any]]] = {}
_seam_lock = threading.Lock()
_GONE = object()


def _ref(target: Any) -> Callable[[], Any]:
    """A weak reference when possible; a collected target reads as _GONE."""
    if target is None:
        return lambda: None
    try:
        ref = weakref.ref(target)
    except TypeError:
        return lambda: target
    return lambda: _GONE if (alive := ref()) is None else alive


def on_instrument(integration: str, callback: Callable[[Any], None]) -> None:
    """Run `callback(target)` for every target of `integration`, past and future."""
    with _seam_lock:
        if callback in _hooks.setdefault(integration, []):
            return
        _hooks[integration].append(callback)
        existing = [t for t in (ref() for ref in _targets.get(integration, [])) if t is not _GONE]
    for target in existing:
        callback(target)


def instrumented(integration: str, target: Any) -> None:
    """Called by each integration once it has instrumented `target` (None: all)."""
    with _seam_lock:
        refs = [r for r in _targets.get(integration, []) if r() is not _GONE]
        refs.append(_ref(target))
        _targets[integration] = refs
        callbacks = list(_hooks.get(integration, []))
    for callback in callbacks:
        callback(target)


def uninstrumented(integration: str, target: Any) -> None:
    with _seam_lock:
        refs = _targets.get(integration, [])
        _targets[integration] = [r for r in refs if r() is not target and r() is not _GONE]
