"""The database and deployment SLI kinds in generated rules: selectors, and exact ratios in promtool.

A database SLO's bad events are `db_errors_total` and its total is those plus the
completed statements (`db_query_duration_seconds_count`), since the SDK observes a
failed statement only as an error. A deployment SLO reads the lightkeeper server's
`deployments_total`, whose `env` label must be relabelled to `environment` before the
ratio can group by service and environment like every other SLO.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lightkeeper.spec import sli_events
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import SLO, Spec
from lightkeeper.stack import sli_queries
from lightkeeper.stack.errors import GenerationError

SPEC = """\
service: shop
environments: {prod: {targets: ['api:8000']}, beta: {targets: ['beta:8000']}}
prometheus: {server_targets: ['lightkeeper:8080']}
slos:
  - {name: queries, objective: 99.9, period: 30d, sli: {kind: database}}
  - name: deploys
    objective: 99
    period: 28d
    sli: {kind: deployment, components: [api, web]}
    alerting: {min_requests: 10}
"""


def _spec(text: str = SPEC) -> Spec:
    return parse_spec(text, "lightkeeper.yaml")


def _slo(spec: Spec, name: str) -> SLO:
    return next(s for s in spec.slos if s.name == name)


def test_a_database_slo_counts_errors_against_completed_and_failed_statements() -> None:
    spec = _spec()
    expr = sli_queries.error_ratio(spec, _slo(spec, "queries"), "5m")
    bad = 'sum by (service, environment) (rate(db_errors_total{service="shop"}[5m]))'
    total = (
        "sum by (service, environment) (rate("
        '{__name__=~"db_errors_total|db_query_duration_seconds_count",service="shop"}[5m]))'
    )
    assert expr == f"({bad}\nor\n{total} * 0)\n/\n{total}"


def test_a_deployment_slo_reads_the_server_job_relabelled_to_service_and_environment() -> None:
    spec = _spec()
    slo = _slo(spec, "deploys")
    expr = sli_queries.error_ratio(spec, slo, "1h")
    selector = (
        'deployments_total{job="lightkeeper-server",env=~"beta|prod",component=~"api|web",status!="success"}'
    )
    assert (
        f'label_replace(label_replace(rate({selector}[1h]), "environment", "$1", "env", "(.*)"), '
        '"service", "shop", "", "")'
    ) in expr
    assert sli_queries.total_selector(spec, slo, ("prod",)) == (
        'deployments_total{job="lightkeeper-server",env="prod",component=~"api|web"}'
    )
    assert sli_queries.no_data_labels(spec, slo, "prod") == {
        "job": "lightkeeper-server",
        "env": "prod",
        "service": "shop",
        "environment": "prod",
    }


def test_every_component_is_counted_when_the_slo_names_none() -> None:
    spec = _spec(SPEC.replace("components: [api, web]", "components: [api]"))
    assert 'component="api"' in sli_queries.error_ratio(spec, _slo(spec, "deploys"), "5m")
    spec = _spec(SPEC.replace(", components: [api, web]", ""))
    assert "component" not in sli_queries.error_ratio(spec, _slo(spec, "deploys"), "5m")


def test_a_deployment_slo_without_a_scraped_server_is_refused_at_generation() -> None:
    spec = _spec(SPEC.replace("prometheus: {server_targets: ['lightkeeper:8080']}\n", ""))
    with pytest.raises(GenerationError, match=r"prometheus\.server_targets") as caught:
        sli_queries.error_ratio(spec, _slo(spec, "deploys"), "5m")
    assert caught.value.loc == ("slos", "deploys", "sli", "kind")
    sli_queries.error_ratio(spec, _slo(spec, "queries"), "5m")  # a service-scope kind needs no server


@pytest.mark.parametrize(
    ("sli", "message"),
    [
        ("{kind: database, routes: [/api]}", "unknown key .routes."),
        ("{kind: deployment, components: []}", "at least 1 item"),
        ("{kind: deployment, components: [API Server]}", "should match pattern"),
        ("{kind: dns}", "does not match any of the expected tags"),
    ],
)
def test_malformed_new_kinds_are_spec_errors(sli: str, message: str) -> None:
    text = SPEC.split("slos:")[0] + f"slos:\n  - {{name: x, objective: 99, sli: {sli}}}\n"
    with pytest.raises(Exception, match=message):
        _spec(text)


def test_probe_slis_have_no_metric_events() -> None:
    spec = _spec(
        SPEC.split("slos:")[0]
        + "probes: [{name: home, type: http, target: 'https://example.com'}]\n"
        + "slos: [{name: up, objective: 99, sli: {kind: probe, probe: home}}]\n"
    )
    assert not sli_events.is_metric(spec.slos[0].sli)
    with pytest.raises(ValueError, match="not counted from metric series"):
        sli_events.events(spec.slos[0].sli)


def test_a_kind_counts_either_bad_or_good_events() -> None:
    part = sli_events.Part(("x_total",))
    with pytest.raises(ValueError, match="either its bad or its good"):
        sli_events.Events("service", total=part)
    with pytest.raises(ValueError, match="either its bad or its good"):
        sli_events.Events("service", total=part, bad=part, good=part)
    with pytest.raises(ValueError, match="exactly one"):
        sli_events.Match("status", "=", ("a", "b"))


# --- promtool ------------------------------------------------------------------------------
SERVICE = 'service="shop",environment="{env}",job="shop-{env}",instance="{env}:8000"'
SERVER = 'job="lightkeeper-server",instance="lightkeeper:8080"'
INPUT = [
    # prod: 45 completed and 5 failed statements a minute; beta: none failed ever
    (f'db_query_duration_seconds_count{{{SERVICE.format(env="prod")},operation="SELECT",table="a"}}', 30),
    (f'db_query_duration_seconds_count{{{SERVICE.format(env="prod")},operation="INSERT",table="a"}}', 15),
    (f'db_errors_total{{{SERVICE.format(env="prod")},error_type="OperationalError"}}', 5),
    (f'db_query_duration_seconds_count{{{SERVICE.format(env="beta")},operation="SELECT",table="a"}}', 10),
    ('db_errors_total{service="other",environment="prod",error_type="OperationalError"}', 50),
    # prod: 3 successes, 1 failure, 1 rollback a minute in the SLO's components; beta: successes only
    (f'deployments_total{{{SERVER},env="prod",component="api",status="success"}}', 3),
    (f'deployments_total{{{SERVER},env="prod",component="api",status="failure"}}', 1),
    (f'deployments_total{{{SERVER},env="prod",component="web",status="rolled_back"}}', 1),
    (f'deployments_total{{{SERVER},env="prod",component="batch",status="failure"}}', 7),
    (f'deployments_total{{{SERVER},env="staging",component="api",status="failure"}}', 7),
    (f'deployments_total{{{SERVER},env="beta",component="web",status="success"}}', 2),
]
EXPECTED = [
    ("queries", "prod", 0.1),  # 5 / (45 + 5)
    ("queries", "beta", 0.0),  # no error series at all is a ratio of 0, not no data
    ("deploys", "prod", 0.4),  # (1 + 1) / 5; batch and staging are not the SLO's
    ("deploys", "beta", 0.0),
]


def _write(tmp_path: Path, spec: Spec) -> dict[str, str]:
    from lightkeeper.stack import prometheus, rule_tests

    files = {**prometheus.render(spec, None), **rule_tests.render(spec, None)}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return files


def _promtool(cwd: Path, *tests: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool must be installed (Debian package prometheus)"
    return subprocess.run(
        [promtool, "test", "rules", *tests], cwd=cwd, capture_output=True, text=True, timeout=240, check=False
    )


def _ratio_test(expected: list[tuple[str, str, float]]) -> str:
    record = "slo:sli_error:ratio_rate5m"
    return yaml.safe_dump(
        {
            "rule_files": ["../prometheus/rules/slo-queries.yml", "../prometheus/rules/slo-deploys.yml"],
            "evaluation_interval": "1m",
            "tests": [
                {
                    "interval": "1m",
                    "input_series": [
                        {"series": s, "values": f"0+{per_minute}x20"} for s, per_minute in INPUT
                    ],
                    "promql_expr_test": [
                        {
                            # rounded: Prometheus sums series in map order, so the last bit varies
                            "expr": f'round({record}{{slo="{slo}",environment="{env}"}}, 1e-9)',
                            "eval_time": "10m",
                            "exp_samples": [
                                {
                                    "labels": f'{{environment="{env}",service="shop",slo="{slo}"}}',
                                    "value": value,
                                }
                            ],
                        }
                        for slo, env, value in expected
                    ],
                }
            ],
        },
        sort_keys=False,
    )


def test_generated_rules_give_the_exact_ratio_of_each_new_kind_in_promtool(tmp_path: Path) -> None:
    files = _write(tmp_path, _spec())
    (tmp_path / "tests" / "ratios.test.yml").write_text(_ratio_test(EXPECTED), encoding="utf-8")
    assert "tests/slo-queries.test.yml" in files
    # The generated burn-rate, low-traffic and no-data cases of the relabelled server series
    # (the database kind's differ from the HTTP kinds' only in the selector checked above).
    result = _promtool(tmp_path / "tests", "ratios.test.yml", "slo-deploys.test.yml")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count("SUCCESS") == 2
    # the same check fails on a wrong number, so it is not passing vacuously
    wrong = [(slo, env, value + 0.05) for slo, env, value in EXPECTED[:1]]
    (tmp_path / "tests" / "wrong.test.yml").write_text(_ratio_test(wrong), encoding="utf-8")
    assert _promtool(tmp_path / "tests", "wrong.test.yml").returncode != 0


def test_the_slo_dashboard_queries_of_the_new_kinds_parse_in_promtool(tmp_path: Path) -> None:
    from lightkeeper.stack.dashboards import slos
    from tests.unit.stack.test_grafana import promql_exprs, substitute

    exprs = [e for _k, t, e in promql_exprs({"slos": slos.build(_spec())}) if not t.startswith("$")]
    assert any("db_errors_total" in e for e in exprs) and any("label_replace" in e for e in exprs)
    rules = [{"record": f"check:{i}", "expr": substitute(e)} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "slos", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
