"""The public status page's content: components, day bars, incidents, maintenance.

Built from the store's daily bars (day roll-ups, today from raw history) whatever the
history length, then
rendered server-side with jinja2 (no JavaScript): the page must load for a customer
on a phone during an outage, when nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

import jinja2
from sqlalchemy import Engine

from lightkeeper.server.engine.maintenance import Window
from lightkeeper.server.http import reads
from lightkeeper.server.store import queries
from lightkeeper.server.store.uptime import TimeInStates
from lightkeeper.spec.server import ServerSection

RECENT_DAYS = 14
# State -> (words shown, CSS class); colours always come with these words.
_STATES = {
    "up": ("Operational", "up"),
    "down": ("Outage", "down"),
    "maintenance": ("Under maintenance", "maintenance"),
    "unknown": ("No data yet", "unknown"),
}


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    availability_percent: float | None
    incidents: int
    level: str  # up | degraded | down | none

    @property
    def label(self) -> str:
        when = self.day.isoformat()
        if self.availability_percent is None:
            return f"{when}: no data"
        text = f"{when}: {self.availability_percent:.2f}% available"
        return text + (
            f", {self.incidents} incident{'s' if self.incidents != 1 else ''}" if self.incidents else ""
        )


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    anchor: str
    state: str
    state_text: str
    probes: list[str]
    days: list[Day]
    availability_percent: float | None


def _level(value: float | None, incidents: int) -> str:
    if value is None:
        return "none"
    if value >= 99.95 and not incidents:
        return "up"
    return "degraded" if value >= 99.0 else "down"


def _worst(states: list[str]) -> str:
    for state in ("down", "maintenance", "up"):
        if state in states:
            return state
    return "unknown"


def build(engine: Engine, section: ServerSection, now: datetime) -> dict[str, object]:
    """Everything the template shows; day bars are the store's UTC days, today so far last."""
    days = section.status_page_days
    views = reads.probes(engine)
    bars_by_probe = queries.daily_bars(engine, days, now=now)
    recent = reads.incidents(engine, since=now - timedelta(days=max(days, RECENT_DAYS)), limit=500)
    grouped: dict[str, list[reads.ProbeView]] = {}
    for view in views:
        grouped.setdefault(view.probe.component or view.name, []).append(view)
    components = []
    for index, (component, members) in enumerate(sorted(grouped.items())):
        rows = [bars_by_probe[m.name] for m in members if m.name in bars_by_probe]
        bars = []
        total_up = total_down = 0.0
        for position in range(days):
            same_day = [r[position] for r in rows if position < len(r)]
            # plain sums: this loop runs days x probes times per page view
            up = sum(b.times.up for b in same_day)
            down = sum(b.times.down for b in same_day)
            total_up, total_down = total_up + up, total_down + down
            count = sum(b.incidents for b in same_day)
            value = 100.0 * up / (up + down) if up + down > 0 else None
            day = same_day[0].day if same_day else (now - timedelta(days=days - 1 - position)).date()
            bars.append(Day(day, value, count, _level(value, count)))
        state = _worst([m.state for m in members])
        components.append(
            Component(
                name=component,
                anchor=f"component-{index}",
                state=_STATES[state][1],
                state_text=_STATES[state][0],
                probes=[m.name for m in members],
                days=bars,
                availability_percent=TimeInStates(total_up, total_down).availability_percent,
            )
        )
    overall_state = _worst([c.state for c in components]) if components else "unknown"
    open_incidents = [i for i in recent if i.resolved_at is None]
    windows = [
        (w, occurrence)
        for w in reads.maintenance_windows(engine)
        if (occurrence := _next_occurrence(w, now)) is not None
    ]
    return {
        "title": "Status",
        "now": now,
        "timezone": section.timezone,
        "days": days,
        "overall": overall_state,
        "overall_text": {
            "up": "All systems operational",
            "down": "Some systems are down",
            "maintenance": "Maintenance in progress",
            "unknown": "No data yet",
        }[overall_state],
        "components": components,
        "open_incidents": open_incidents,
        "past_incidents": [i for i in recent if i.resolved_at is not None][:20],
        "maintenance": windows,
        "component_of": {v.name: (v.probe.component or v.name) for v in views},
    }


def _next_occurrence(window: Window, now: datetime) -> tuple[datetime, datetime] | None:
    """The current or next occurrence of a maintenance window within a week, if any."""
    current = window.occurrence_at(now)
    if current is not None:
        return current
    if window.cron is None:
        if window.starts_at > now and window.ends_at is not None:
            return window.starts_at, window.ends_at
        return None
    probe_at = now
    for _ in range(7 * 24):
        probe_at += timedelta(hours=1)
        found = window.occurrence_at(probe_at)
        if found is not None:
            return found
    return None


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("lightkeeper.server.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render(template: str, context: dict[str, object]) -> str:
    return _environment().get_template(template).render(**context)
