"""What a service declares about its workflows: entities with statuses, and named aggregates.

Plain frozen dataclasses checked at construction, so a typo in a status list fails when
the service starts, not silently at 3 a.m. as a gauge that never moves. No SQLAlchemy
import here: declaring is free, only `instrument_workflow()` touches a database.

The same rules hold for `lightkeeper.yaml` (`lightkeeper.spec` checks them again for
the generator); `from_config` turns that section, as plain data, into these types.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightkeeper import catalogue

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_STATUS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_STUCK_AFTER = ("30m", "24h")


class DeclarationError(ValueError):
    """A workflow declaration that cannot be sampled as written."""


def threshold_seconds(text: str) -> int:
    """Seconds in a stuck threshold written like Prometheus durations (`30m`, `2h`, `1d`)."""
    match = _DURATION.match(text)
    if match is None:
        raise DeclarationError(f"stuck threshold {text!r} is not a duration such as 30m, 2h or 24h")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise DeclarationError(f"{kind} {value!r} must be a lowercase name such as 'content_item'")
    return value


def _identifier(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise DeclarationError(f"{kind} {value!r} must be a plain SQL identifier")
    return value


@dataclass(frozen=True)
class Entity:
    """A table whose rows move through statuses, sampled into the workflow gauges.

    `table` is a table name (optionally `schema.table`), a SQLAlchemy `Table` or a
    mapped model class. Statuses are grouped by what they mean for alerting: rows in a
    `processing` status are expected to leave it (they are counted as stuck past each
    `stuck_after` threshold, measured from `age_column`); `waiting` rows wait for a
    person (drafts, reviews) and are never stuck; `terminal` and `failed` rows are done.
    Any status found in the data but declared nowhere is counted as `other`, so a new
    status in the code cannot create unbounded series before the declaration catches up.
    """

    table: Any
    processing: Sequence[str]
    terminal: Sequence[str] = ()
    failed: Sequence[str] = ()
    waiting: Sequence[str] = ()
    status_column: str = "status"
    age_column: str = "updated_at"
    stuck_after: Sequence[str] = DEFAULT_STUCK_AFTER
    name: str | None = None

    def __post_init__(self) -> None:
        for attr in ("processing", "terminal", "failed", "waiting", "stuck_after"):
            value = getattr(self, attr)
            if isinstance(value, str):
                raise DeclarationError(f"{attr} is a list of strings, not the string {value!r}")
            object.__setattr__(self, attr, tuple(value))
        object.__setattr__(self, "name", _name("entity name", self.name or _table_name(self.table)))
        _identifier("status_column", self.status_column)
        _identifier("age_column", self.age_column)
        if not self.processing:
            raise DeclarationError(f"entity {self.name!r}: declare at least one processing status")
        seen: dict[str, str] = {}
        for group in ("processing", "waiting", "terminal", "failed"):
            for status in getattr(self, group):
                if not isinstance(status, str) or not _STATUS.match(status):
                    raise DeclarationError(f"entity {self.name!r}: status {status!r} is not a plain word")
                if status == catalogue.WORKFLOW_OTHER_STATUS:
                    raise DeclarationError(
                        f"entity {self.name!r}: {status!r} is reserved for undeclared statuses"
                    )
                if status in seen:
                    raise DeclarationError(
                        f"entity {self.name!r}: status {status!r} is both {seen[status]} and {group}"
                    )
                seen[status] = group
        self._check_thresholds()

    def _check_thresholds(self) -> None:
        if not self.stuck_after or len(self.stuck_after) > catalogue.WORKFLOW_MAX_STUCK_THRESHOLDS:
            most = catalogue.WORKFLOW_MAX_STUCK_THRESHOLDS
            raise DeclarationError(f"entity {self.name!r}: declare 1 to {most} stuck thresholds")
        seconds = [threshold_seconds(t) for t in self.stuck_after]
        low, high = catalogue.WORKFLOW_MIN_STUCK_SECONDS, catalogue.WORKFLOW_MAX_STUCK_SECONDS
        for text, value in zip(self.stuck_after, seconds, strict=True):
            if not low <= value <= high:
                raise DeclarationError(f"entity {self.name!r}: stuck threshold {text} is outside 30m ... 24h")
        if len(set(seconds)) != len(seconds):
            raise DeclarationError(f"entity {self.name!r}: stuck thresholds {list(self.stuck_after)} repeat")

    @property
    def label(self) -> str:
        """The `entity` label value: `name`, or the table's name when none was given."""
        assert self.name is not None  # set by __post_init__
        return self.name

    @property
    def statuses(self) -> tuple[str, ...]:
        """Every declared status: the `status` label values besides `other`."""
        return (*self.processing, *self.waiting, *self.terminal, *self.failed)

    @property
    def thresholds(self) -> tuple[tuple[str, int], ...]:
        """(label as written, seconds), shortest first."""
        return tuple(sorted(((t, threshold_seconds(t)) for t in self.stuck_after), key=lambda p: p[1]))


@dataclass(frozen=True)
class Aggregate:
    """A named query whose single number becomes `workflow_aggregate{name=...}`.

    For what a status count cannot say: invites pending, content waiting for approval
    longer than a day, workspaces active in the last 24 hours or 7 days. `sql` is a SQL
    string or a SQLAlchemy select returning one row with one number (NULL reads as 0);
    it runs read-only, under the sampler's statement timeout.
    """

    name: str
    sql: Any = field(repr=False)

    def __post_init__(self) -> None:
        _name("aggregate name", self.name)
        if isinstance(self.sql, str) and not self.sql.strip():
            raise DeclarationError(f"aggregate {self.name!r} has no SQL")
        if self.sql is None:
            raise DeclarationError(f"aggregate {self.name!r} has no SQL")


def _table_name(table: Any) -> str:
    """The name an entity gets by default: its table's name, without the schema."""
    if isinstance(table, str):
        return table.rsplit(".", 1)[-1]
    found = getattr(table, "__table__", table)
    name = getattr(found, "name", None)
    if not isinstance(name, str):
        raise DeclarationError(f"{table!r} is neither a table name, a SQLAlchemy Table nor a mapped model")
    return name


def check_unique(entities: Iterable[Entity], aggregates: Iterable[Aggregate]) -> None:
    """Entities and aggregates share the `workflow_sample_age_seconds` label: one name, one thing."""
    names = [e.label for e in entities] + [a.name for a in aggregates]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DeclarationError(f"workflow names {repeated} are declared more than once")


_ENTITY_KEYS = {
    "table": "table",
    "status_column": "status_column",
    "age_column": "age_column",
    "processing_statuses": "processing",
    "waiting_statuses": "waiting",
    "terminal_statuses": "terminal",
    "failed_statuses": "failed",
    "stuck_thresholds": "stuck_after",
}


def from_config(
    workflow: Mapping[str, Mapping[str, Any]], aggregates: Mapping[str, str | Mapping[str, Any]] | None = None
) -> tuple[list[Entity], list[Aggregate]]:
    """Declarations from `lightkeeper.yaml`'s `workflow:` and `workflow_aggregates:` sections as data.

    Keys follow the spec (`processing_statuses`, `stuck_thresholds`, ...); an entity's
    table defaults to its name; an aggregate is its SQL or `{sql: ..., description: ...}`.
    Unknown keys are errors here too.
    """
    entities = []
    for name, entry in workflow.items():
        unknown = sorted(set(entry) - set(_ENTITY_KEYS))
        if unknown:
            raise DeclarationError(f"workflow.{name}: unknown keys {unknown}; known: {sorted(_ENTITY_KEYS)}")
        arguments = {_ENTITY_KEYS[k]: v for k, v in entry.items() if v is not None}
        arguments.setdefault("table", name)
        entities.append(Entity(name=name, **arguments))
    found = []
    for name, given in (aggregates or {}).items():
        sql = given if isinstance(given, str) else given.get("sql")
        found.append(Aggregate(name=name, sql=sql))
    check_unique(entities, found)
    return entities, found
