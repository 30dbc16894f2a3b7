"""`GET /api/cost/summary`: totals, one breakdown, daily trend, forecast, anomalies, advice.

Everything but the per-user breakdown, the active-user count and the recommendations is
read from the daily roll-up, so a year of history stays cheap; those three need the raw
events and so cover only the raw-event retention.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, func, select

from lightkeeper.server.cost import anomaly, forecast, recommend
from lightkeeper.server.cost.ingest import SUMMED
from lightkeeper.server.store.tables import llm_daily, llm_events

GroupBy = Literal["model", "operation", "user", "workspace", "day"]
_COLUMN = {"model": "model", "operation": "operation", "workspace": "workspace_id", "day": "day"}


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def daily_rows(engine: Engine, start: date, end: date) -> list[Any]:
    """Roll-up rows for UTC days start ≤ day ≤ end."""
    query = select(llm_daily).where(llm_daily.c.day >= start.isoformat(), llm_daily.c.day <= end.isoformat())
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def _breakdown(
    engine: Engine, rows: list[Any], group_by: GroupBy, start: date, end: date
) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMMED, 0))
    if group_by == "user":
        query = (
            select(
                func.coalesce(llm_events.c.user_hash, "").label("key"),
                func.count().label("calls"),
                func.coalesce(func.sum(llm_events.c.cost_usd), 0.0).label("cost_usd"),
            )
            .where(llm_events.c.at >= _start(start), llm_events.c.at < _start(end + timedelta(days=1)))
            .group_by("key")
        )
        with engine.connect() as conn:
            for row in conn.execute(query):
                groups[row.key]["calls"] = row.calls
                groups[row.key]["cost_usd"] = float(row.cost_usd)
    else:
        for row in rows:
            acc = groups[getattr(row, _COLUMN[group_by])]
            for name in SUMMED:
                acc[name] += getattr(row, name)
    ordered = sorted(
        groups.items(), key=lambda kv: kv[0] if group_by == "day" else (-kv[1]["cost_usd"], kv[0])
    )
    return [{"key": key or None, **{k: round(v, 6) for k, v in acc.items()}} for key, acc in ordered]


def active_users(engine: Engine, start: date, end: date) -> int:
    query = select(func.count(func.distinct(llm_events.c.user_hash))).where(
        llm_events.c.at >= _start(start), llm_events.c.at < _start(end + timedelta(days=1))
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def per_day(rows: list[Any]) -> dict[date, float]:
    out: dict[date, float] = defaultdict(float)
    for row in rows:
        out[date.fromisoformat(row.day)] += row.cost_usd
    return dict(out)


def build(engine: Engine, start: date, end: date, group_by: GroupBy, today: date) -> dict[str, Any]:
    rows = daily_rows(engine, start, end)
    totals: dict[str, float] = dict.fromkeys(SUMMED, 0)
    for row in rows:
        for name in SUMMED:
            totals[name] += getattr(row, name)
    users = active_users(engine, start, end)
    trend = per_day(rows)
    # the forecast and the anomaly baseline need history before `start`
    history = daily_rows(engine, min(start, today.replace(day=1)) - timedelta(days=28), max(end, today))
    by_group: dict[tuple[str, str], dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for row in history:
        by_group[(row.model, row.operation)][date.fromisoformat(row.day)] += row.cost_usd
    judged = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    month = forecast.month_end(per_day(history), today)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "group_by": group_by,
        "totals": {k: round(v, 6) for k, v in totals.items()},
        "active_users": users,
        "cost_per_active_user_usd": round(totals["cost_usd"] / users, 6) if users else None,
        "breakdown": _breakdown(engine, rows, group_by, start, end),
        "daily": [{"day": d.isoformat(), "cost_usd": round(trend.get(d, 0.0), 6)} for d in judged],
        "forecast": _plain(month),
        "anomalies": [
            {**_plain(a), "day": a.day.isoformat(), "explanation": a.explanation}
            for a in anomaly.detect(by_group, judged)
        ],
        "recommendations": [
            _plain(r) for r in recommend.all_for(engine, _start(start), _start(end + timedelta(days=1)))
        ],
    }


def _plain(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
