"""The database and deployment SLI kinds in the server: counted from a real `/metrics`
page, and from the deployment store.

The database page is what the SDK really exposes after real statements (SQLAlchemy on
SQLite), so a statement that fails must show up once, as an error, and never also as a
completed one. The deployment SLI is computed from constructed deployments, whose exact
SLI is known.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import Engine

from lightkeeper.sdk.integrations.sqlalchemy import instrument_sqlalchemy, uninstrument_sqlalchemy
from lightkeeper.server.deploys import store
from lightkeeper.server.slo import alerting, deploy_source, evaluate, report, series
from lightkeeper.server.store.tables import outbox
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec

BASE = "service: shop\nenvironments: {prod: {targets: ['api:8000']}, beta: {targets: ['beta:8000']}}\n"


def _spec(slos: str) -> Spec:
    return parse_spec(BASE + slos, "lightkeeper.yaml")


def _counts(spec: Spec) -> series.Counts:
    found = series.count(generate_latest(REGISTRY).decode(), [series.selection(spec, spec.slos[0])])
    return found.get(spec.slos[0].name, series.Counts(0.0, 0.0))


def test_a_failed_statement_counts_once_as_bad_on_the_sdks_real_metrics_page() -> None:
    spec = _spec("slos: [{name: queries, objective: 99.9, sli: {kind: database}}]\n")
    engine = sa.create_engine("sqlite://")
    instrument_sqlalchemy(engine, pool="sli_kinds", slow_query_seconds=60)
    try:
        before = _counts(spec)  # the registry is the process's: other tests' statements count too
        with engine.connect() as conn:
            for _ in range(4):
                conn.execute(sa.text("SELECT 1"))
            for _ in range(2):
                with pytest.raises(sa.exc.OperationalError):
                    conn.execute(sa.text("SELECT * FROM no_such_table"))
        after = _counts(spec)
    finally:
        uninstrument_sqlalchemy(engine)
        engine.dispose()
    assert after.total - before.total == 6
    assert after.good - before.good == 4


def test_counts_of_each_metric_kind_from_one_page() -> None:
    page = """\
# TYPE db_query_duration_seconds histogram
db_query_duration_seconds_bucket{operation="SELECT",table="a",le="+Inf"} 90.0
db_query_duration_seconds_count{operation="SELECT",table="a"} 90.0
db_query_duration_seconds_sum{operation="SELECT",table="a"} 1.5
db_query_duration_seconds_count{operation="INSERT",table="b"} 5.0
# TYPE db_errors_total counter
db_errors_total{error_type="OperationalError"} 3.0
db_errors_total{error_type="IntegrityError"} 2.0
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/a",status_code="200"} 7.0
http_requests_total{method="GET",route="/a",status_code="503"} 3.0
http_requests_total{method="GET",route="/b",status_code="500"} 11.0
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/a",status_code="200",le="0.5"} 6.0
http_request_duration_seconds_bucket{method="GET",route="/a",status_code="200",le="+Inf"} 10.0
http_request_duration_seconds_count{method="GET",route="/a",status_code="200"} 10.0
"""
    spec = _spec(
        "slos:\n"
        "  - {name: db, objective: 99, sli: {kind: database}}\n"
        "  - {name: avail, objective: 99, sli: {kind: availability, routes: [/a]}}\n"
        "  - {name: fast, objective: 99, sli: {kind: latency, threshold_seconds: 0.5}}\n"
        "  - {name: none, objective: 99, sli: {kind: availability, routes: [/c]}}\n"
    )
    found = series.count(page, [series.selection(spec, s) for s in spec.slos])
    assert found == {
        "db": series.Counts(95.0, 100.0),  # 95 completed + 5 errors; the bucket and sum are not events
        "avail": series.Counts(7.0, 10.0),
        "fast": series.Counts(6.0, 10.0),
    }


def test_deployment_slos_are_not_scraped_from_the_service() -> None:
    spec = _spec("slos: [{name: deploys, objective: 99, sli: {kind: deployment}}]\n")
    assert not series.scraped(spec.slos[0])
    with pytest.raises(ValueError, match="not on the service's /metrics"):
        series.selection(spec, spec.slos[0])


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _deploy(engine: Engine, env: str, component: str, version: str, status: str, ago: timedelta) -> None:
    at = NOW - ago
    store.start(engine, env, component, version, at - timedelta(minutes=3), None)
    if status != store.IN_PROGRESS:
        store.finish(engine, env, component, version, status, at, None)  # type: ignore[arg-type]


@pytest.fixture
def deployed(engine: Engine) -> Engine:
    minute, day = timedelta(minutes=1), timedelta(days=1)
    _deploy(engine, "prod", "api", "1", "success", 2 * minute)  # inside 5m
    _deploy(engine, "prod", "api", "2", "failure", 20 * minute)  # inside 30m
    _deploy(engine, "prod", "web", "3", "success", 50 * minute)  # inside 1h
    _deploy(engine, "prod", "api", "4", "rolled_back", 2 * day)  # inside 3d
    _deploy(engine, "prod", "api", "5", "success", 10 * day)  # inside the 28d period only
    _deploy(engine, "prod", "api", "6", "success", 40 * day)  # before the period
    _deploy(engine, "prod", "api", "7", store.IN_PROGRESS, minute)  # not finished: counts nowhere
    _deploy(engine, "prod", "batch", "8", "failure", 3 * minute)  # another component
    _deploy(engine, "beta", "api", "9", "failure", 3 * minute)  # another environment
    return engine


def test_a_deployment_sli_is_the_exact_share_of_finished_deployments_that_succeeded(deployed: Engine) -> None:
    spec = _spec("slos: [{name: deploys, objective: 90, period: 28d, sli: {kind: deployment}}]\n")
    found = deploy_source.reading(deployed, spec.slos[0], "prod", NOW)
    assert (found.good, found.total) == (3.0, 6.0)  # api 1, web 3, api 5 of 1, 2, 3, 4, 5 and batch 8
    assert found.period_ratio == pytest.approx(3 / 6)
    assert found.window_ratios["5m"] == pytest.approx(1 / 2)  # api 1 succeeded, batch 8 failed
    assert found.window_ratios["30m"] == pytest.approx(2 / 3)  # 1 success, 2 and 8 failed
    assert found.window_ratios["1h"] == pytest.approx(2 / 4)
    assert found.window_ratios["3d"] == pytest.approx(3 / 5)
    assert found.end == NOW.timestamp() and found.source == "deployments"


def test_components_filter_the_deployments_counted(deployed: Engine) -> None:
    spec = _spec("slos: [{name: deploys, objective: 90, sli: {kind: deployment, components: [api]}}]\n")
    found = deploy_source.reading(deployed, spec.slos[0], "prod", NOW)
    assert (found.good, found.total) == (2.0, 4.0)  # api 1, 2, 4, 5
    assert found.window_ratios["30m"] == pytest.approx(1 / 2)
    beta = deploy_source.reading(deployed, spec.slos[0], "beta", NOW)
    assert (beta.good, beta.total, beta.period_ratio) == (0.0, 1.0, 1.0)


def test_no_finished_deployment_is_no_data(deployed: Engine) -> None:
    spec = _spec("slos: [{name: deploys, objective: 90, sli: {kind: deployment, components: [cron]}}]\n")
    found = deploy_source.reading(deployed, spec.slos[0], "prod", NOW)
    assert found.end is None and found.period_ratio is None and found.total == 0.0
    assert set(found.window_ratios.values()) == {None}
    database = _spec("slos: [{name: q, objective: 99, sli: {kind: database}}]\n").slos[0]
    with pytest.raises(TypeError, match="not a deployment SLI"):
        deploy_source.reading(deployed, database, "prod", NOW)


def test_sla_status_reads_a_deployment_slo_from_the_store(deployed: Engine) -> None:
    spec = _spec("slos: [{name: deploys, objective: 90, period: 28d, sli: {kind: deployment}}]\n")
    (prod,) = evaluate.states(deployed, spec, NOW, {}, None)  # the spec's first environment: prod
    assert prod["kind"] == "deployment" and prod["source"] == "deployments"
    assert (prod["good_events"], prod["total_events"], prod["sli_percent"]) == (3.0, 6.0, 50.0)
    assert prod["error_budget_remaining_ratio"] == pytest.approx(1 - 0.5 / 0.1)
    (beta,) = evaluate.states(deployed, spec, NOW, {}, "beta")
    assert (beta["good_events"], beta["total_events"], beta["sli_percent"]) == (0.0, 1.0, 0.0)


def test_failed_deployments_fire_the_embedded_burn_alert_once_with_generated_labels(engine: Engine) -> None:
    """Two of three deployments in the last hour fail (objective 90 %: the page tiers' thresholds
    are 1.44 and 0.6, so 2/3 crosses only 6x over 6h and 30m). The same alerter steps a
    deployment SLO from the store as it steps a probe SLO from the probe results."""
    spec = _spec(
        "slos: [{name: deploys, objective: 90, sli: {kind: deployment}, alerting: {ticket: false}}]\n"
    )
    minute = timedelta(minutes=1)
    _deploy(engine, "prod", "api", "1", "success", 50 * minute)
    _deploy(engine, "prod", "api", "2", "failure", 20 * minute)
    _deploy(engine, "prod", "api", "3", "rolled_back", 10 * minute)
    alerter = alerting.Alerter(engine, spec, "prod")
    written = [alerter.step(NOW + k * minute) for k in range(0, 40, 1)]
    with engine.connect() as conn:
        rows = [dict(p) for (p,) in conn.execute(sa.select(outbox.c.payload).order_by(outbox.c.id))]
    firing = [r for r in rows if r["status"] == "firing"]
    assert [r["tier"] for r in firing] == ["page-slow"], rows
    assert firing[0]["labels"]["alertname"] == "DeploysErrorBudgetBurn"
    assert firing[0]["labels"]["environment"] == "prod" and firing[0]["labels"]["slo"] == "deploys"
    # 30m after the newest failure the short window is clean again: resolved, once
    assert [r["status"] for r in rows] == ["firing", "resolved"]
    assert sum(written) == 2
    quiet = alerting.Alerter(engine, spec, "beta")  # no deployments there: nothing to alert on
    assert quiet.step(NOW) == 0


def test_deployment_history_and_monthly_report_count_the_stores_deployments(deployed: Engine) -> None:
    """The fixture's prod deployments over a 28d period ending NOW: 6 finished, 3 succeeded
    (budget 10 %: remaining 1 - 0.5/0.1 = -4). At the end of 11-29 the period holds only the
    rollback of 11-29 12:00 and the success of 11-21: half failed."""
    spec = _spec("slos: [{name: deploys, objective: 90, period: 28d, sli: {kind: deployment}}]\n")
    slo = spec.slos[0]
    days = evaluate.history(deployed, slo, NOW, 3, "prod")
    assert [d["day"] for d in days] == ["2026-11-29", "2026-11-30", "2026-12-01"]
    assert days[-1]["error_budget_remaining_ratio"] == pytest.approx(1 - (3 / 6) / 0.1)
    assert days[0]["error_budget_remaining_ratio"] == pytest.approx(1 - (1 / 2) / 0.1)
    assert not any(d["no_data"] for d in days)
    beta = evaluate.history(deployed, slo, NOW, 1, "beta")
    assert beta[0]["error_budget_remaining_ratio"] == pytest.approx(1 - 1.0 / 0.1)

    month = report.report(deployed, slo, "2026-11", NOW, "prod")
    # November holds api 5 (11-21, success) and the 11-29 rollback: 1 of 2 failed
    assert month["sli_percent"] == pytest.approx(50.0)
    assert sum(w["total_events"] for w in month["weeks"]) == 2.0
    assert all(w["incidents"] == [] for w in month["weeks"])
    assert month["verdict"].startswith("budget exhausted on 2026-11-29")
