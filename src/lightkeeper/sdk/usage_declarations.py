"""Reading a usage declaration: which events exist and which label values each may carry.

Kept apart from `usage` so the settings can check `usage_events` when they are loaded
(a typo fails at start-up, naming the setting) without importing the counters, which
read the settings in turn. The rules themselves are the catalogue's, shared with the
spec, so `lightkeeper.yaml` and the service cannot disagree on what a valid declaration is.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

from lightkeeper import catalogue

# event -> label name -> allowed values (label names sorted, values in declared order)
Declared = dict[str, dict[str, tuple[str, ...]]]
Declaration = Mapping[str, Mapping[str, Sequence[str]]] | Sequence[str]

EVENT_NAME = re.compile(catalogue.USAGE_NAME_PATTERN)
_LABEL_NAME = re.compile(catalogue.USAGE_LABEL_PATTERN)
_IDENTIFIER = re.compile(catalogue.USAGE_IDENTIFIER_LABEL)
# A label value is a category picked in code (a plan, a channel), never free text.
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def parse(declaration: Declaration) -> Declared:
    """Check `declaration` (event names, or a mapping of event -> label -> values).

    Raises ValueError naming the offending event or label, so the message is useful
    whether it came from a setting, an environment variable or `declare_usage()`.
    """
    if isinstance(declaration, str | bytes):
        raise ValueError("usage events are a list of names or a mapping of name -> labels, not one string")
    events: Mapping[str, Mapping[str, Sequence[str]] | None] = (
        declaration if isinstance(declaration, Mapping) else dict.fromkeys(declaration)
    )
    parsed: Declared = {}
    for event, labels in events.items():
        if not isinstance(event, str) or not EVENT_NAME.match(event):
            raise ValueError(
                f"usage event {event!r} must be a short lowercase identifier such as 'content_item_created'"
            )
        parsed[event] = _labels(event, labels or {})
    series = sum(_series(labels) for labels in parsed.values())
    if series > catalogue.USAGE_MAX_SERIES:
        raise ValueError(
            f"the usage declaration allows {series} label combinations, more than "
            f"{catalogue.USAGE_MAX_SERIES}; declare fewer label values"
        )
    return parsed


def _labels(event: str, labels: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    if not isinstance(labels, Mapping):
        raise ValueError(f"usage event {event!r}: labels are a mapping of label name -> allowed values")
    if len(labels) > catalogue.USAGE_MAX_LABELS_PER_EVENT:
        raise ValueError(
            f"usage event {event!r} declares {len(labels)} labels; at most "
            f"{catalogue.USAGE_MAX_LABELS_PER_EVENT} are allowed"
        )
    checked: dict[str, tuple[str, ...]] = {}
    for name in sorted(labels):
        where = f"usage event {event!r}, label {name!r}"
        if not isinstance(name, str) or not _LABEL_NAME.match(name):
            raise ValueError(f"{where}: a label name is a short lowercase identifier such as 'plan'")
        if name in catalogue.USAGE_RESERVED_LABELS:
            raise ValueError(f"{where}: {name} is reserved; choose another label name")
        if _IDENTIFIER.search(name):
            raise ValueError(
                f"{where}: identifiers (users, organisations, e-mails) never become metric labels; "
                "bind them to log lines with lightkeeper.bind()"
            )
        values = labels[name]
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"{where}: list the allowed values, e.g. [free, pro, team]")
        if len(values) > catalogue.USAGE_MAX_VALUES_PER_LABEL:
            raise ValueError(
                f"{where}: {len(values)} values; at most {catalogue.USAGE_MAX_VALUES_PER_LABEL} are allowed"
            )
        for value in values:
            if not isinstance(value, str) or not _LABEL_VALUE.match(value):
                raise ValueError(f"{where}: value {value!r} is not a short category name such as 'pro'")
        if len(set(values)) != len(values):
            raise ValueError(f"{where}: values repeat")
        checked[name] = tuple(values)
    return checked


def _series(labels: Mapping[str, Sequence[str]]) -> int:
    count = 1
    for values in labels.values():
        count *= len(values)
    return count


def combinations(labels: Mapping[str, tuple[str, ...]]) -> list[tuple[tuple[str, str], ...]]:
    """Every allowed ((label, value), ...) tuple of one event, labels in sorted order."""
    names = sorted(labels)
    return [
        tuple(zip(names, values, strict=True)) for values in itertools.product(*(labels[n] for n in names))
    ]


def merge(*declarations: Declared) -> Declared:
    """Later declarations of the same event replace earlier ones."""
    merged: Declared = {}
    for declared in declarations:
        merged.update(declared)
    return merged
