"""The demo's summary maths: PromQL-compatible quantiles and reading /metrics back."""

from __future__ import annotations

import math
import random
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from lightkeeper import catalogue
from lightkeeper.demo.quantiles import histogram_quantile
from lightkeeper.demo.summary import Difference, parse_http_metrics, reconcile, summarize_http

INF = math.inf


# --- histogram_quantile: worked by hand ------------------------------------------------


def test_interpolates_linearly_inside_the_bucket_holding_the_rank() -> None:
    buckets = [(0.1, 50.0), (0.2, 70.0), (INF, 100.0)]
    # rank 60 lies 10 of 20 observations into (0.1, 0.2]
    assert histogram_quantile(0.6, buckets) == pytest.approx(0.15)
    # rank 25 lies halfway into the first bucket, whose lower bound is 0
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    # a rank exactly on a bucket's cumulative count answers that bucket's upper bound
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)


def test_rank_in_the_inf_bucket_answers_the_largest_finite_bound() -> None:
    assert histogram_quantile(0.99, [(0.1, 50.0), (0.2, 70.0), (INF, 100.0)]) == 0.2


def test_bucket_order_does_not_matter() -> None:
    ordered = [(0.05, 3.0), (0.1, 9.0), (0.5, 10.0), (INF, 12.0)]
    shuffled = [ordered[2], ordered[3], ordered[0], ordered[1]]
    assert histogram_quantile(0.5, shuffled) == histogram_quantile(0.5, ordered)


def test_buckets_of_several_series_with_the_same_bound_add_up() -> None:
    one_route = [(0.1, 10.0), (1.0, 10.0), (INF, 10.0)]
    other_route = [(0.1, 0.0), (1.0, 10.0), (INF, 10.0)]
    # 20 observations, 10 under 0.1 and 10 in (0.1, 1]: the median is the 0.1 boundary
    assert histogram_quantile(0.5, one_route + other_route) == pytest.approx(0.1)
    assert histogram_quantile(0.75, one_route + other_route) == pytest.approx(0.55)


def test_dips_in_cumulative_counts_are_flattened() -> None:
    # a scrape taken mid-update can show a later bucket lower than an earlier one
    dipped = [(0.1, 10.0), (0.2, 8.0), (0.4, 20.0), (INF, 20.0)]
    flattened = [(0.1, 10.0), (0.2, 10.0), (0.4, 20.0), (INF, 20.0)]
    assert histogram_quantile(0.75, dipped) == histogram_quantile(0.75, flattened) == pytest.approx(0.3)


def test_first_bucket_with_non_positive_bound_answers_the_bound() -> None:
    assert histogram_quantile(0.1, [(-1.0, 5.0), (1.0, 10.0), (INF, 10.0)]) == -1.0


@pytest.mark.parametrize(
    "buckets",
    [
        [],
        [(INF, 10.0)],  # fewer than two buckets
        [(0.1, 5.0), (0.2, 10.0)],  # no +Inf bucket
        [(0.1, 0.0), (INF, 0.0)],  # no observations
    ],
)
def test_no_answer_where_promql_answers_nan(buckets: list[tuple[float, float]]) -> None:
    assert histogram_quantile(0.5, buckets) is None


def test_zero_quantile_over_an_empty_first_bucket_is_no_answer() -> None:
    assert histogram_quantile(0.0, [(0.1, 0.0), (0.2, 4.0), (INF, 4.0)]) is None
    assert histogram_quantile(0.0, [(0.1, 2.0), (0.2, 4.0), (INF, 4.0)]) == 0.0


@pytest.mark.parametrize("q", [-0.1, 1.5, math.nan])
def test_quantile_outside_zero_to_one_is_rejected(q: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        histogram_quantile(q, [(0.1, 1.0), (INF, 1.0)])


# --- histogram_quantile: the same answers as Prometheus' own engine ---------------------


def _random_histograms(count: int) -> list[list[tuple[float, float]]]:
    rng = random.Random(20240611)
    bounds = [*catalogue.HTTP_DURATION_BUCKETS, INF]
    cases = []
    for _ in range(count):
        running = 0.0
        buckets = []
        for bound in bounds:
            running += rng.choice([0, 0, 1, 3, 17, 250])
            buckets.append((bound, running))
        cases.append(buckets)
    # and one with a dip, which both must flatten the same way
    cases.append([(0.1, 10.0), (0.2, 7.0), (0.5, 30.0), (1.0, 31.0), (INF, 40.0)])
    return cases


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def test_agrees_exactly_with_promtool(tmp_path: Path) -> None:
    """promtool evaluates PromQL's histogram_quantile over the same buckets; the values
    must be identical floats, not merely close."""
    series = []
    exprs = []
    for case, buckets in enumerate(_random_histograms(12)):
        for bound, count in buckets:
            series.append({"series": f'h_bucket{{case="{case}",le="{_le(bound)}"}}', "values": repr(count)})
        for q in (0.5, 0.9, 0.95, 0.99):
            expected = histogram_quantile(q, buckets)
            assert expected is not None
            exprs.append(
                {
                    "expr": f'histogram_quantile({q}, h_bucket{{case="{case}"}})',
                    "eval_time": "0m",
                    "exp_samples": [{"labels": f'{{case="{case}"}}', "value": expected}],
                }
            )
    spec = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": exprs}],
    }
    path = tmp_path / "quantiles_test.yml"
    path.write_text(yaml.safe_dump(spec))
    command = ["promtool", "test", "rules", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- reading /metrics back ---------------------------------------------------------------


def _exposition() -> str:
    """A real prometheus-client exposition with the catalogue's HTTP families."""
    registry = CollectorRegistry()
    requests = Counter(
        catalogue.HTTP_REQUESTS.base_name, "requests", catalogue.HTTP_REQUESTS.labels, registry=registry
    )
    duration = Histogram(
        catalogue.HTTP_REQUEST_DURATION.name,
        "duration",
        catalogue.HTTP_REQUEST_DURATION.labels,
        buckets=catalogue.HTTP_DURATION_BUCKETS,
        registry=registry,
    )
    traffic = [
        ("GET", "/items/{item_id}", "200", 0.004, 60),
        ("GET", "/items/{item_id}", "404", 0.004, 5),
        ("POST", "/login", "401", 0.08, 10),
        ("POST", "/login", "200", 0.08, 20),
        ("GET", "/flaky", "500", 0.6, 5),
    ]
    for method, route, code, seconds, times in traffic:
        for _ in range(times):
            requests.labels(method, route, code).inc()
            duration.labels(method, route).observe(seconds)
    return generate_latest(registry).decode()


def test_parse_reads_every_request_series_and_bucket() -> None:
    metrics = parse_http_metrics(_exposition())
    assert metrics.requests == {
        ("GET", "/items/{item_id}", "200"): 60,
        ("GET", "/items/{item_id}", "404"): 5,
        ("POST", "/login", "401"): 10,
        ("POST", "/login", "200"): 20,
        ("GET", "/flaky", "500"): 5,
    }
    login = dict(metrics.duration_buckets[("POST", "/login")])
    assert login[0.075] == 0 and login[0.1] == 30 and login[INF] == 30


def test_summary_totals_status_mix_and_quantiles() -> None:
    summary = summarize_http(parse_http_metrics(_exposition()), top=2)
    assert summary.total_requests == 100
    assert summary.by_status_class == {"2xx": 80, "4xx": 15, "5xx": 5}
    assert summary.by_status_code == {"200": 80, "401": 10, "404": 5, "500": 5}
    assert summary.error_rate == pytest.approx(0.05)
    # 65 requests at 4 ms (first bucket, 0..0.005], 30 at 80 ms (0.075..0.1], 5 at 600 ms (0.5..0.75]
    assert summary.latency_ms["p50"] == pytest.approx(5.0 * 50 / 65, abs=0.01)
    assert summary.latency_ms["p95"] == pytest.approx(100.0)
    assert summary.latency_ms["p99"] == pytest.approx(500.0 + 250.0 * 4 / 5)
    assert [(r.method, r.route, r.requests) for r in summary.top_routes] == [
        ("GET", "/items/{item_id}", 65),
        ("POST", "/login", 30),
    ]
    assert summary.top_routes[0].server_errors == 0


def test_summary_of_an_empty_exposition_has_no_latency() -> None:
    summary = summarize_http(parse_http_metrics(""))
    assert summary.total_requests == 0
    assert summary.error_rate == 0.0
    assert summary.latency_ms == {"p50": None, "p95": None, "p99": None}


def test_parse_rejects_text_that_is_not_an_exposition() -> None:
    with pytest.raises(ValueError):
        parse_http_metrics('http_requests_total{method="GET" 3\n')


def test_reconcile_lists_every_series_that_differs() -> None:
    sent = {("GET", "/a", "200"): 3, ("GET", "/b", "500"): 1}
    seen = {("GET", "/a", "200"): 3, ("GET", "/b", "500"): 2, ("GET", "/c", "200"): 1}
    result = reconcile(sent, seen)
    assert not result.matches
    assert (result.sent, result.seen) == (4, 6)
    assert result.differences == [
        Difference("GET", "/b", "500", sent=1, seen=2),
        Difference("GET", "/c", "200", sent=0, seen=1),
    ]
    assert reconcile(sent, dict(sent)).matches


# --- the demo's monitor: probes written for the server, /api/probes read back ----------


def test_demo_probes_watch_the_app_and_keep_the_database_password_out_of_the_spec(tmp_path: Path) -> None:
    from lightkeeper.demo.monitor import PASSWORD_ENV, demo_probes, write_spec
    from lightkeeper.spec.loader import load_spec

    url = "postgresql+psycopg://saas:pa55-Wd@db.internal:6543/saas"
    probes = demo_probes("http://127.0.0.1:8123", url, {"SAAS_REDIS_URL": "redis://:hush@cache:6380/0"})
    spec_file = tmp_path / "lightkeeper.yaml"
    write_spec(spec_file, "http://127.0.0.1:8123", probes)
    written = spec_file.read_text()
    assert "pa55-Wd" not in written and "hush" not in written
    by_name = {p.name: p for p in load_spec(spec_file).probes}  # the server's own loader accepts it
    assert sorted(by_name) == ["app-health", "app-ready", "postgres", "redis"]
    assert by_name["app-ready"].target == "http://127.0.0.1:8123/health/ready"
    assert by_name["postgres"].target == "postgresql://saas@db.internal:6543/saas"
    assert by_name["postgres"].password_env == PASSWORD_ENV
    assert by_name["redis"].target == "cache:6380"


def test_sqlite_demo_has_only_the_app_probes() -> None:
    from lightkeeper.demo.monitor import demo_probes

    probes = demo_probes("http://127.0.0.1:1", "sqlite:///saas.db", {})
    assert [p["name"] for p in probes] == ["app-ready", "app-health"]


def test_api_probes_are_read_defensively() -> None:
    from lightkeeper.demo.monitor import ProbeStatus, parse_probes

    assert parse_probes({"detail": "private"}) == []
    assert parse_probes(
        [{"name": "a", "type": "http", "state": "down", "last_error": "got 503"}, "junk"]
    ) == [ProbeStatus("a", "http", "down", None, "got 503")]


# --- product signals and SLO budgets ---------------------------------------------------

PRODUCT_TEXT = """\
# TYPE lightkeeper_llm_cost_usd counter
lightkeeper_llm_cost_usd_total{provider="openai",model="gpt-4o-mini",operation="summarise"} 0.0000144
lightkeeper_llm_cost_usd_total{provider="openai",model="gpt-4o-mini",operation="chat"} 0.0000048
# TYPE lightkeeper_llm_requests counter
lightkeeper_llm_requests_total{provider="openai",model="gpt-4o-mini",operation="summarise",status="ok"} 3
lightkeeper_llm_requests_total{provider="openai",model="gpt-4o-mini",operation="chat",status="error"} 1
# TYPE usage_events counter
usage_events_total{event="content_item_created",plan="free"} 2
usage_events_total{event="content_item_created",plan="team"} 5
usage_events_total{event="login_succeeded",plan=""} 7
# TYPE workflow_entities gauge
workflow_entities{entity="content_item",status="draft"} 4
workflow_entities{entity="content_item",status="other"} 0
# TYPE workflow_stuck_entities gauge
workflow_stuck_entities{entity="content_item",status="processing",threshold="30m"} 2
workflow_stuck_entities{entity="content_item",status="publishing",threshold="30m"} 1
"""


def test_product_metrics_sum_label_values_per_event_and_model() -> None:
    from lightkeeper.demo.product import parse_product_metrics

    product = parse_product_metrics(PRODUCT_TEXT)
    [model] = product.llm
    assert (model.model, model.requests) == ("gpt-4o-mini", {"error": 1, "ok": 3})
    assert model.cost_usd == pytest.approx(0.0000192) == product.llm_cost_usd
    assert product.llm_requests == 4
    assert product.usage == {"content_item_created": 7, "login_succeeded": 7}
    assert product.workflow == {"content_item": {"draft": 4, "other": 0}}
    assert product.stuck == {"content_item": {"30m": 3}}  # over every processing status
    assert product.auth_attempts == {} and product.dependencies == {}


def test_product_metrics_reject_invalid_text() -> None:
    from lightkeeper.demo.product import parse_product_metrics

    with pytest.raises(ValueError):
        parse_product_metrics('usage_events_total{event="x" 1\n')


def test_slos_parse_and_budget_text() -> None:
    from lightkeeper.demo.monitor import parse_slos
    from lightkeeper.demo.report import budget_text, usd

    document = {
        "slos": [
            {"name": "a", "objective_percent": 99.5, "sli_percent": 99.8, "error_budget_minutes": 216.0,
             "error_budget_remaining_minutes": 129.6, "error_budget_remaining_ratio": 0.6, "firing": [],
             "no_data": False},
            {"name": "b", "error_budget_minutes": 216.0, "error_budget_remaining_minutes": -643.7,
             "error_budget_remaining_ratio": -2.98, "firing": ["page-fast"], "no_data": False},
            {"name": "c", "error_budget_remaining_ratio": None, "no_data": True},
            "not an object",
        ]
    }  # fmt: skip
    a, b, c = parse_slos(document)
    assert budget_text(a).plain == "60.0% (130 of 216 min)" and budget_text(a).style == "green"
    assert budget_text(b).plain == "-298.0% (-644 of 216 min)" and budget_text(b).style == "red"
    assert b.firing == ["page-fast"]
    assert budget_text(c).plain == "no data"
    assert parse_slos({"slos": "nope"}) == [] == parse_slos(None)
    assert usd(0.0000192) == "$0.000019" and usd(12.5) == "$12.50"
