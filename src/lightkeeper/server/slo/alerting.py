"""Burn-rate alerts without Prometheus: the generated rules' names and labels, via the outbox.

Each SLO tier runs the same state machine as Prometheus's rule evaluation (`for`),
stepped at every scrape; only a change between firing and not firing writes an
outbox row, whose dedupe key (SLO, tier, state, time of the change) makes a retry or
a second evaluation of the same moment a no-op. The newest row per SLO and tier is
also what `/sla/status` reports as `firing`, and what a restarted server resumes from.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from lightkeeper import slo_math
from lightkeeper.server.engine.notify.message import SLO_ALERT_KIND, SloAlert
from lightkeeper.server.engine.sql import insert_ignore
from lightkeeper.server.slo import evaluate
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.models import SLO, Spec

KIND = SLO_ALERT_KIND


def alert_name(slo: SLO) -> str:
    """`<CamelName>ErrorBudgetBurn`, as the generated rules name it."""
    camel = "".join(p[:1].upper() + p[1:] for p in slo.name.replace("_", "-").split("-") if p)
    return f"{camel}ErrorBudgetBurn"


def firing(engine: Engine) -> dict[str, list[str]]:
    """SLO name -> its firing tiers, from the newest outbox row of each SLO and tier."""
    out: dict[str, list[str]] = {}
    for (slo, tier), alert in sorted(_latest(engine).items()):
        if alert.firing:
            out.setdefault(slo, []).append(tier)
    return out


def _latest(engine: Engine) -> dict[tuple[str, str], SloAlert]:
    latest: dict[tuple[str, str], SloAlert] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.kind == KIND).order_by(outbox.c.id))
        for (payload,) in rows:
            alert = SloAlert.from_payload(payload)
            latest[(alert.slo, alert.tier)] = alert
    return latest


class Alerter:
    def __init__(self, engine: Engine, spec: Spec, environment: str):
        self.engine = engine
        self.spec = spec
        self.environment = environment
        self.trackers: dict[tuple[str, str], slo_math.AlertTracker] = {}
        # when each firing tier started: a resolve carries it, as Alertmanager's startsAt
        self.started: dict[tuple[str, str], datetime] = {}
        resumed = _latest(engine)
        for slo in spec.slos:
            for tier in evaluate.tiers(slo):
                tracker = slo_math.AlertTracker(for_s=slo_math.duration_seconds(tier.for_))
                last = resumed.get((slo.name, tier.name))
                if last is not None and last.firing:
                    tracker.state = "firing"
                    self.started[(slo.name, tier.name)] = last.started_at
                self.trackers[(slo.name, tier.name)] = tracker

    def step(self, now: datetime | None = None) -> int:
        """Evaluate every tier once at each SLO's newest sample; returns the outbox rows written."""
        moment = now or datetime.now(UTC)
        written = 0
        for slo in self.spec.slos:
            period = slo_math.period_seconds(slo.period)
            loaded = evaluate.load(self.engine, slo, moment, 3 * 86400)
            if loaded.end is None:
                continue
            for tier in evaluate.tiers(slo):
                resolved = slo_math.resolve_tier(tier, slo.objective, period)
                condition = slo_math.tier_condition(
                    evaluate.ratio(loaded, resolved.long_s),
                    evaluate.ratio(loaded, resolved.short_s),
                    float(resolved.threshold),
                )
                if condition and slo.alerting.min_requests:
                    total = [
                        v
                        for s in loaded.total
                        if (v := slo_math.increase(s, loaded.end - resolved.long_s, loaded.end)) is not None
                    ]
                    condition = sum(total) >= slo.alerting.min_requests
                tracker = self.trackers[(slo.name, tier.name)]
                before = tracker.state == "firing"
                after = tracker.step(loaded.end, condition) == "firing"
                if before != after:
                    written += self._write(slo, resolved, after, loaded.end, moment)
        return written

    def _write(self, slo: SLO, tier: slo_math.ResolvedTier, is_firing: bool, at: float, now: datetime) -> int:
        name = alert_name(slo)
        moment = datetime.fromtimestamp(at, UTC)
        started = moment if is_firing else self.started.pop((slo.name, tier.spec.name), moment)
        if is_firing:
            self.started[(slo.name, tier.spec.name)] = moment
        alert = SloAlert(
            status="firing" if is_firing else "resolved",
            slo=slo.name,
            tier=tier.spec.name,
            # exactly the generated rule's labels: Alertmanager identifies an alert by them
            labels={
                "alertname": name,
                "category": "slo",
                "severity": tier.spec.severity,
                "service": self.spec.service,
                "environment": self.environment,
                "slo": slo.name,
                "long_window": tier.spec.long_window,
                "short_window": tier.spec.short_window,
            },
            annotations={
                "summary": (
                    f"{slo.name} SLO ({slo.objective:g} %) of {self.spec.service} ({self.environment}) "
                    f"burns its error budget {tier.factor:g}x too fast"
                ),
                "description": (
                    f"Over both {tier.spec.long_window} and {tier.spec.short_window} more than "
                    f"{float(tier.threshold) * 100:g} % of events were bad (burn rate {tier.factor:g} = "
                    f"{float(tier.spec.budget_share) * 100:g} % of the {slo.period} budget in "
                    f"{tier.spec.long_window})."
                ),
                "runbook_url": _runbook(self.spec, name),
                "dashboard_url": f"{self.spec.dashboards.grafana_url.rstrip('/')}/d/"
                f"{f'lk-{self.spec.service}-slos'[:40]}",
            },
            started_at=started,
            resolved_at=None if is_firing else moment,
        )
        key = f"slo:{slo.name}:{tier.spec.name}:{alert.status}:{int(at)}"
        row = {"dedupe_key": key, "kind": KIND, "payload": alert.to_payload(), "created_at": now}
        with self.engine.begin() as conn:
            insert_ignore(conn, outbox, [{**row, "next_attempt_at": now}], ["dedupe_key"])
        return 1


def _runbook(spec: Spec, alert: str) -> str:
    entry = spec.runbooks.alerts.get(alert)
    if entry is not None and entry.url:
        return entry.url
    base = spec.runbooks.base_url.rstrip("/")
    return f"{base}/{alert}.md" if base else f"runbooks/{alert}.md"
