"""The runbooks' words and queries, loaded once from `runbook_content.yaml`.

On-call text changes more often than the code that lays it out, and reviewers of a
runbook change should read sentences, not Python. This module validates the file (every
category has causes, steps, a bounded silence, an escalation rule and a fallback panel
and queries) and answers what one alert's runbook says. A family added elsewhere
without an entry still gets a complete runbook from its category, so generation never
breaks on it; the tests name such families so someone writes their own text.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lightkeeper.stack import promql
from lightkeeper.stack.names import Category, DashboardKey
from lightkeeper.stack.rule_defs import AlertDef

DATA_FILE = "runbook_content.yaml"
# Families written outside alert_families.yaml (meta_rules.py and slo_rules.py).
EXTRA_FAMILIES: tuple[str, ...] = (
    "watchdog",
    "deployment",
    "deployment_grace",
    "maintenance",
    "slo",
    "slo_no_data",
)
# The placeholders `logs` and `traces` may use; anything else in braces is a typo.
PLACEHOLDERS: frozenset[str] = frozenset({"threshold_ms"})
# Longest silence a runbook may suggest: longer ones outlive the incident and hide the next one.
MAX_SILENCE_SECONDS = 24 * 3600

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Silence(_Model):
    duration: str
    never: str = Field(min_length=1)

    @field_validator("duration")
    @classmethod
    def _bounded(cls, v: str) -> str:
        if not 0 < promql.seconds(v) <= MAX_SILENCE_SECONDS:
            raise ValueError(f"silence duration {v!r} must be positive and at most 24h")
        return v


class LogQuery(_Model):
    level: str  # a regex of levels for the stream selector; "" = every level
    pipeline: str = Field(min_length=1)

    @field_validator("pipeline")
    @classmethod
    def _known_placeholders(cls, v: str) -> str:
        return _placeholders(v)


class Checks(_Model):
    """Where to look first: a dashboard panel, a log query, a trace search."""

    panel: str = Field(min_length=1)
    dashboard: DashboardKey | None = None  # default: the alert's own dashboard
    target: int = Field(default=0, ge=0)
    logs: LogQuery
    traces: str = Field(min_length=1)

    @field_validator("traces")
    @classmethod
    def _known_placeholders(cls, v: str) -> str:
        return _placeholders(v)


class CategoryText(_Model):
    """What every alert of one category shares."""

    causes: tuple[str, ...] = Field(min_length=1)
    steps: tuple[str, ...] = Field(min_length=1)
    silence: Silence
    escalate: str = Field(min_length=1)
    fallback: Checks


class AlertText(Checks):
    """The runbook content of one alert family."""

    means: str = Field(min_length=1)
    causes: tuple[str, ...] = ()

    @field_validator("means")
    @classmethod
    def _one_sentence(cls, v: str) -> str:
        if not v.endswith(".") or re.search(r"\.\s+[A-Z]", v):
            raise ValueError(f"means must be one sentence ending with a full stop: {v!r}")
        return v


def _placeholders(text: str) -> str:
    bad = sorted(set(_PLACEHOLDER.findall(text)) - PLACEHOLDERS)
    if bad:
        raise ValueError(f"unknown placeholder {', '.join(bad)} in {text!r}")
    return text


class Content(_Model):
    categories: dict[Category, CategoryText]
    alerts: dict[str, AlertText]


def load(text: str) -> Content:
    """Parse and validate a content file; every category must be described."""
    content = Content.model_validate(yaml.safe_load(text))
    missing = sorted(set(get_args(Category)) - set(content.categories))
    if missing:
        raise ValueError(f"runbook content has no category {', '.join(missing)}")
    return content


CONTENT: Content = load(resources.files("lightkeeper.stack").joinpath(DATA_FILE).read_text(encoding="utf-8"))


def category(alert: AlertDef) -> CategoryText:
    return CONTENT.categories[alert.category]


def alert_text(alert: AlertDef) -> AlertText:
    """The family's own entry, else one built from its category (see the module docstring)."""
    found = CONTENT.alerts.get(alert.family)
    if found is not None:
        return found
    first = re.split(r"(?<=\.)\s", alert.description.strip(), maxsplit=1)[0]
    means = first if first.endswith(".") else f"{first}."
    return AlertText(means=means, **category(alert).fallback.model_dump())
