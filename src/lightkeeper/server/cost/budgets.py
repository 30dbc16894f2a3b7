"""Budget alerts: 50/75/90/100 % of a monthly LLM budget, each sent once per month through the outbox.

Scopes: `global`, `operation:<name>`, `workspace:<id>` (a workspace's own quota, or the
default quota every workspace gets). Spend is month-to-date from the daily roll-up (UTC
months). The outbox's UNIQUE `dedupe_key` = `budget:{scope}:{period}:{threshold}` makes
"once" hold across restarts and replicas: a check that runs again inserts nothing. The
alert travels as a labelled alert (`LLMBudgetThreshold`, with scope, workspace or
operation, period and threshold as labels, spend and budget as annotations) through the
severity routing to every channel, Alertmanager included; 100 % is `high`, the warnings
`medium`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from lightkeeper.server.engine.notify.message import BUDGET_ALERTNAME, SLO_ALERT_KIND, SloAlert
from lightkeeper.server.store.tables import llm_daily, outbox
from lightkeeper.spec.models import Budgets


@dataclass(frozen=True, slots=True)
class BudgetState:
    scope: str
    limit_usd: float
    spent_usd: float

    @property
    def percent(self) -> float:
        return 100 * self.spent_usd / self.limit_usd


def states(engine: Engine, budgets: Budgets, now: datetime) -> list[BudgetState]:
    period = now.astimezone(UTC).strftime("%Y-%m")
    query = (
        select(llm_daily.c.operation, llm_daily.c.workspace_id, func.sum(llm_daily.c.cost_usd).label("cost"))
        .where(llm_daily.c.day >= f"{period}-01", llm_daily.c.day <= f"{period}-31")
        .group_by(llm_daily.c.operation, llm_daily.c.workspace_id)
    )
    by_op: dict[str, float] = defaultdict(float)
    by_ws: dict[str, float] = defaultdict(float)
    with engine.connect() as conn:
        for row in conn.execute(query):
            by_op[row.operation] += row.cost
            if row.workspace_id:
                by_ws[row.workspace_id] += row.cost
    out = []
    if budgets.llm_monthly_usd:
        out.append(BudgetState("global", budgets.llm_monthly_usd, sum(by_op.values())))
    for operation, limit in sorted(budgets.llm_operations_usd.items()):
        out.append(BudgetState(f"operation:{operation}", limit, by_op.get(operation, 0.0)))
    for workspace in sorted(set(by_ws) | set(budgets.llm_workspaces_usd)):
        limit = budgets.llm_workspaces_usd.get(workspace, budgets.llm_workspace_default_usd or 0.0)
        if limit:
            out.append(BudgetState(f"workspace:{workspace}", limit, by_ws.get(workspace, 0.0)))
    return out


def check(engine: Engine, budgets: Budgets, now: datetime, service: str = "lightkeeper") -> list[str]:
    """Queue an alert for every threshold crossed this month and not queued yet; returns their keys."""
    period = now.astimezone(UTC).strftime("%Y-%m")
    queued = []
    with engine.begin() as conn:
        for state in states(engine, budgets, now):
            for threshold in sorted(budgets.llm_alert_percents):
                if state.percent < threshold:
                    break
                key = f"budget:{state.scope}:{period}:{threshold}"
                if _enqueue(conn, budget_alert(state, threshold, now, service), key, now):
                    queued.append(key)
    return queued


def budget_alert(state: BudgetState, threshold: int, now: datetime, service: str) -> SloAlert:
    """A labelled alert an app or Alertmanager can act on without parsing text.

    Each threshold of each scope and month is its own label set (Alertmanager would merge
    50, 75 and 90 % of one workspace otherwise), and it ends with its month (`endsAt`), so
    Alertmanager neither resolves it after `resolve_timeout` nor needs it re-posted.
    """
    moment = now.astimezone(UTC)
    period = moment.strftime("%Y-%m")
    kind, _, name = state.scope.partition(":")
    labels = {
        "alertname": BUDGET_ALERTNAME,
        "category": "cost",
        "service": service,
        "severity": "high" if threshold >= 100 else "medium",
        "scope": kind,
        "period": period,
        "threshold": str(threshold),
        **({kind: name} if name else {}),
    }
    summary = f"LLM spend {period} reached {threshold}% of the {state.scope} budget"
    annotations = {
        "summary": summary,
        "description": f"{summary}: ${state.spent_usd:.2f} of ${state.limit_usd:.2f}",
        "spent_usd": f"{state.spent_usd:.2f}",
        "budget_usd": f"{state.limit_usd:.2f}",
    }
    month_end = (moment.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    return SloAlert(
        status="firing",
        slo=f"budget:{state.scope}",
        tier=f"{period}:{threshold}",
        labels=dict(sorted(labels.items())),
        annotations=annotations,
        started_at=moment,
        ends_at=month_end,
    )


def _enqueue(conn: Connection, alert: SloAlert, key: str, now: datetime) -> bool:
    """Like `transitions.enqueue_alert`, but tells whether this call inserted the row by RETURNING
    (psycopg reports no row count for the executemany form that helper uses)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {
        "dedupe_key": key,
        "kind": SLO_ALERT_KIND,
        "payload": alert.to_payload(),
        "created_at": now,
        "next_attempt_at": now,
    }
    statement = dialect.insert(outbox).values(row).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return conn.execute(statement.returning(outbox.c.id)).first() is not None
