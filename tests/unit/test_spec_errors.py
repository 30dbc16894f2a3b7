"""Every spec error, found by validation or later by the generators, names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lightkeeper.cli import _register, app
from lightkeeper.spec.loader import SpecError, parse_spec, problem_at

_register()
runner = CliRunner()

BASE = """\
service: api
environments:
  prod: {targets: ["api:8000"]}
slos:
  - name: ok
    objective: 99.9
    sli: {kind: availability}
  - name: slow
    objective: 99
    sli: {kind: latency, threshold_seconds: 0.5}
alerts:
  error_rate: {high: 0.05}
routing:
  critical: [pager]
receivers:
  pager: {pagerduty: {routing_key_file: /run/secrets/pagerduty}}
"""


def _generate(tmp_path: Path, text: str) -> tuple[int, str]:
    spec = tmp_path / "lk.yaml"
    spec.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["generate", "--spec", str(spec), "--out", str(tmp_path / "out")])
    return result.exit_code, " ".join(result.output.split())


def _problem(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "lk.yaml")
    (problem,) = info.value.problems
    return str(problem)


def test_the_base_spec_generates(tmp_path: Path) -> None:
    code, out = _generate(tmp_path, BASE)
    assert code == 0, out


@pytest.mark.parametrize(
    ("routing", "where"),
    [
        ("routing:\n  critical: [pager, nobody]\n", "lk.yaml:14:21: routing.critical[1]:"),
        (
            "routing:\n  critical: {receivers: [nobody], repeat_interval: 1h}\n",
            "lk.yaml:14:26: routing.critical.receivers[0]:",
        ),
    ],
)
def test_unknown_receiver_is_reported_at_its_name(routing: str, where: str) -> None:
    problem = _problem(BASE.replace("routing:\n  critical: [pager]\n", routing))
    assert problem.startswith(where), problem
    assert "names receiver 'nobody'" in problem


def test_unknown_receiver_in_an_environment_routing() -> None:
    text = BASE.replace(
        '  prod: {targets: ["api:8000"]}\n',
        '  prod: {targets: ["api:8000"]}\n'
        '  staging:\n    targets: ["s:8000"]\n    routing: {high: [ghost]}\n',
    )
    problem = _problem(text)
    assert problem.startswith("lk.yaml:6:22: environments.staging.routing.high[0]:"), problem


def test_undefined_route_group_points_at_the_slo() -> None:
    problem = _problem(BASE.replace("threshold_seconds: 0.5}", "threshold_seconds: 0.5, route_group: chat}"))
    assert problem.startswith("lk.yaml:10:63: slos[1].sli.route_group:"), problem


def test_latency_threshold_not_a_bucket(tmp_path: Path) -> None:
    code, out = _generate(tmp_path, BASE.replace("threshold_seconds: 0.5", "threshold_seconds: 0.33"))
    assert code == 1
    assert "lk.yaml:10:45: slos[1].sli.threshold_seconds: latency threshold 0.33s is not a bucket" in out
    assert not (tmp_path / "out").exists()


def test_tier_that_can_never_fire_points_at_the_objective(tmp_path: Path) -> None:
    code, out = _generate(tmp_path, BASE.replace("objective: 99\n", "objective: 90\n"))
    assert code == 1
    assert "lk.yaml:9:16: slos[1].objective: SLO 'slow' (90 %) can never fire" in out


def test_own_tier_that_can_never_fire_points_at_that_tier(tmp_path: Path) -> None:
    tiers = (
        "    objective: 99\n    alerting:\n      tiers:\n"
        "        - {name: fast, long_window: 1h, short_window: 5m, budget_share: 0.02, severity: critical}\n"
        "        - {name: hot, long_window: 1h, short_window: 5m, budget_share: 0.5, severity: critical}\n"
    )
    code, out = _generate(tmp_path, BASE.replace("    objective: 99\n", tiers))
    assert code == 1, out
    assert "lk.yaml:13:72: slos[1].alerting.tiers[1].budget_share:" in out
    assert "can never fire its 'hot' tier" in out


def test_retention_too_short_points_at_the_slo_period(tmp_path: Path) -> None:
    text = BASE.replace("    objective: 99.9\n", "    objective: 99.9\n    period: 28d\n") + (
        "prometheus: {retention: 7d}\n"
    )
    code, out = _generate(tmp_path, text)
    assert code == 1
    assert "lk.yaml:7:13: slos[0].period: SLO 'ok' needs 28d of history" in out


def test_retention_too_short_for_a_default_period_points_at_the_slo(tmp_path: Path) -> None:
    code, out = _generate(tmp_path, BASE + "prometheus: {retention: 7d}\n")
    assert code == 1
    assert "lk.yaml:5:5: slos[0].period: SLO 'ok' needs 30d of history" in out


def test_bad_alert_threshold_points_at_its_value(tmp_path: Path) -> None:
    code, out = _generate(tmp_path, BASE.replace("error_rate: {high: 0.05}", "error_rate: {high: 5}"))
    assert code == 1
    assert "lk.yaml:12:22: alerts.error_rate.high:" in out and "write a number below 1" in out


def test_string_where_a_list_belongs_shows_the_example(tmp_path: Path) -> None:
    code, out = _generate(tmp_path, BASE.replace('{targets: ["api:8000"]}', "{targets: stack:8000}"))
    assert code == 2
    assert "environments.prod.targets: input should be a valid list; write a list, e.g. [a, b] or one" in out


def test_integer_field_asks_for_a_whole_number() -> None:
    problem = _problem(
        BASE.replace("error_rate: {high: 0.05}", 'error_rate: {high: 0.05, min_requests: "abc"}')
    )
    assert problem.startswith("lk.yaml:12:42: alerts.error_rate.min_requests:"), problem
    assert "write a whole number such as 50" in problem and "0.5 or 99.9" not in problem


def test_problem_at_names_list_items_by_name(tmp_path: Path) -> None:
    spec = tmp_path / "lk.yaml"
    spec.write_text(BASE, encoding="utf-8")
    problem = problem_at(spec, ("slos", "slow", "sli", "threshold_seconds"), "boom")
    assert str(problem) == f"{spec}:10:45: slos[1].sli.threshold_seconds: boom"
    unknown = problem_at(spec, ("slos", "missing", "objective"), "boom")
    assert (unknown.line, unknown.field) == (5, "slos.missing.objective")


def test_problem_at_survives_a_file_that_is_gone(tmp_path: Path) -> None:
    problem = problem_at(tmp_path / "gone.yaml", ("prometheus", "retention"), "boom")
    assert (problem.line, problem.field) == (0, "prometheus.retention")


def test_slo_import_of_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "slos.yaml"
    bad.write_text("apiVersion: openslo/v1\n kind: [SLO\n", encoding="utf-8")
    result = runner.invoke(app, ["slo", "import", str(bad)])
    out = " ".join(result.output.split())
    assert result.exit_code == 1
    assert f"{bad}:2:6: not valid YAML" in out
    assert "<unicode string>" not in out


@pytest.mark.parametrize("args", [["--help"], ["init", "--help"], ["generate", "--help"]])
def test_help_shows_no_value_for_flags(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "--help" in result.output
    assert "<bool>" not in result.output
