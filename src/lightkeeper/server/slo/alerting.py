"""Burn-rate alerts without Prometheus: the generated rules' names and labels, via the outbox.

Each SLO tier runs the same state machine as Prometheus's rule evaluation (`for`),
stepped at every scrape; only a change between firing and not firing writes an
outbox row, whose dedupe key (SLO, tier, state, time of the change) makes a retry or
a second evaluation of the same moment a no-op. The newest row per SLO and tier is
also what `/sla/status` reports as `firing` (Prometheus's `ALERTS` in Prometheus mode),
and what a restarted server resumes from. Probe SLIs alert the same way, their ratios
time-weighted from the probe's results over the same windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from lightkeeper import slo_math
from lightkeeper.server.engine.notify.message import SLO_ALERT_KIND, SloAlert
from lightkeeper.server.engine.sql import insert_ignore
from lightkeeper.server.slo import deploy_source, evaluate, index, probe_source
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.models import SLO, DeploymentSLI, ProbeSLI, Spec

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


@dataclass(frozen=True)
class _Ratios:
    """One SLO at one evaluation: its time, the error ratio per window, the events per window."""

    at: float
    ratio: Callable[[float], float | None]
    events: Callable[[float], float] | None  # None: not events (a probe's seconds), no min_requests guard


def _longest(slo: SLO) -> float:
    return float(max((slo_math.duration_seconds(t.long_window) for t in evaluate.tiers(slo)), default=0))


def _metric_ratios(engine: Engine, slo: SLO, moment: datetime) -> _Ratios | None:
    """At the newest stored sample, counted as `/sla/status` and the generated rules count each
    window (`index.counts`: grid records for the long ones); None before any sample."""
    span = max(3 * 86400.0, _longest(slo))
    series = index.load(engine, slo.name, moment - timedelta(seconds=span), moment)
    end = max((t for s in series if (t := s.newest(moment.timestamp())) is not None), default=None)
    if end is None:
        return None
    cache: dict[float, index.Counts] = {}

    def counted(window: float) -> index.Counts:
        if window not in cache:
            cache[window] = index.counts(series, end, window)
        return cache[window]

    return _Ratios(end, lambda w: counted(w).error_ratio(w), lambda w: counted(w).total or 0.0)


def _deploy_ratios(engine: Engine, slo: SLO, env: str, moment: datetime) -> _Ratios:
    """Failed ÷ finished deployments per window ending now, from the deployment store."""
    done = deploy_source.finished(engine, slo, env, moment, max(3 * 86400.0, _longest(slo)))

    def ratio(window: float) -> float | None:
        good, total = deploy_source.window_counts(done, moment, window)
        return slo_math.error_ratio(total - good, total)

    return _Ratios(moment.timestamp(), ratio, lambda w: deploy_source.window_counts(done, moment, w)[1])


def _probe_ratios(engine: Engine, slo: SLO, moment: datetime) -> _Ratios:
    """Down ÷ measured seconds per window ending now; each window read once however many tiers use it."""
    cache: dict[float, float | None] = {}

    def ratio(window: float) -> float | None:
        if window not in cache:
            cache[window] = probe_source.window_ratio(engine, slo, moment, window)
        return cache[window]

    return _Ratios(moment.timestamp(), ratio, None)


class Alerter:
    """Steps every tier of the SLOs the server alerts on.

    With `server.prometheus_url` set, Prometheus evaluates the generated rules and
    Alertmanager notifies, so the metric SLOs are left to them (two senders would
    page twice); probe SLIs have no rules, so they are still alerted on here. A metric
    tier that was firing when the server last ran without Prometheus is resolved once,
    else the dispatcher would keep re-posting it to Alertmanager forever.
    """

    def __init__(self, engine: Engine, spec: Spec, environment: str):
        self.engine = engine
        self.spec = spec
        self.environment = environment
        remote = spec.server.prometheus_url is not None
        self.slos = [s for s in spec.slos if isinstance(s.sli, ProbeSLI) or not remote]
        self.trackers: dict[tuple[str, str], slo_math.AlertTracker] = {}
        # when each firing tier started: a resolve carries it, as Alertmanager's startsAt
        self.started: dict[tuple[str, str], datetime] = {}
        self.handed_over: list[tuple[SLO, slo_math.TierSpec]] = []
        kept = {s.name for s in self.slos}
        resumed = _latest(engine)
        for slo in spec.slos:
            for tier in evaluate.tiers(slo):
                last = resumed.get((slo.name, tier.name))
                if last is not None and last.firing:
                    self.started[(slo.name, tier.name)] = last.started_at
                if slo.name not in kept:
                    if last is not None and last.firing:
                        self.handed_over.append((slo, tier))
                    continue
                tracker = slo_math.AlertTracker(for_s=slo_math.duration_seconds(tier.for_))
                if last is not None and last.firing:
                    tracker.state = "firing"
                self.trackers[(slo.name, tier.name)] = tracker

    def step(self, now: datetime | None = None) -> int:
        """Evaluate every tier once (metric SLOs at their newest sample); returns the outbox rows written."""
        moment = now or datetime.now(UTC)
        written = 0
        for slo, spec_tier in self.handed_over:
            gone = slo_math.resolve_tier(spec_tier, slo.objective, slo_math.period_seconds(slo.period))
            written += self._write(slo, gone, False, moment.timestamp(), moment)
        self.handed_over = []
        for slo in self.slos:
            period = slo_math.period_seconds(slo.period)
            if isinstance(slo.sli, ProbeSLI):
                found: _Ratios | None = _probe_ratios(self.engine, slo, moment)
            elif isinstance(slo.sli, DeploymentSLI):
                found = _deploy_ratios(self.engine, slo, self.environment, moment)
            else:
                found = _metric_ratios(self.engine, slo, moment)
            if found is None:
                continue
            for tier in evaluate.tiers(slo):
                resolved = slo_math.resolve_tier(tier, slo.objective, period)
                condition = slo_math.tier_condition(
                    found.ratio(resolved.long_s), found.ratio(resolved.short_s), float(resolved.threshold)
                )
                if condition and slo.alerting.min_requests and found.events is not None:
                    condition = found.events(resolved.long_s) >= slo.alerting.min_requests
                tracker = self.trackers[(slo.name, tier.name)]
                before = tracker.state == "firing"
                after = tracker.step(found.at, condition) == "firing"
                if before != after:
                    written += self._write(slo, resolved, after, found.at, moment)
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
