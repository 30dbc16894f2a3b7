"""Generated promtool cases: every alert fires and stays silent, run with the real promtool."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack import gotemplate, prometheus, rule_tests, rules
from lightkeeper.stack.validate import _load_rules, check_test_coverage
from tests.unit.stack._specs import issue_spec

PROMTOOL = shutil.which("promtool")

ONE_SLO = """\
service: shop
environments:
  prod: {targets: ["shop:8000"]}
slos:
  - name: availability
    objective: 99.5
    period: 28d
    sli: {kind: availability}
    alerting: {min_requests: 20}
alerts:
  error_rate: {high: 0.1}
"""


def _write(files: dict[str, str], root: Path) -> Path:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def _promtool_test(root: Path, *names: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, "promtool must be installed (Debian package prometheus)"
    files = names or tuple(sorted(p.name for p in (root / "tests").glob("*.test.yml")))
    return subprocess.run(
        [PROMTOOL, "test", "rules", *files], cwd=root / "tests", capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def issue_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = issue_spec()
    return _write({**prometheus.render(spec), **rule_tests.render(spec)}, tmp_path_factory.mktemp("issue"))


def test_generated_cases_pass_with_real_promtool(issue_output: Path) -> None:
    result = _promtool_test(issue_output)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count("SUCCESS") == len(list((issue_output / "tests").glob("*.test.yml")))


def test_every_alert_rule_has_a_firing_and_a_silent_case(issue_output: Path) -> None:
    result = check_test_coverage(_load_rules(issue_output), issue_output)
    assert result.status == "ok", result.problems


def test_slo_cases_walk_baseline_each_tier_alone_and_recovery(issue_output: Path) -> None:
    import yaml

    data = yaml.safe_load((issue_output / "tests" / "slo-availability.test.yml").read_text())
    tier_tests = [t for t in data["tests"] if "tier fires" in t["name"]]
    assert len(tier_tests) == 4
    for test in tier_tests:
        assert "on its own" in test["name"]
        baseline, burning, *last, recovered = test["alert_rule_test"]
        assert baseline["exp_alerts"] == [] and recovered["exp_alerts"] == []
        (alert,) = burning["exp_alerts"]
        assert alert["exp_labels"]["slo"] == "availability"
        # The step before recovery pins when the tier resolves (kept firing for the fast page).
        assert [c["exp_alerts"] for c in last] in ([], [[]], [burning["exp_alerts"]])
        if alert["exp_labels"]["long_window"] == "1h":  # keep_firing_for 30m: still firing
            assert [c["exp_alerts"] for c in last] == [burning["exp_alerts"]]
        assert "promql_expr_test" in test  # error budget remaining, rounded


def _break(root: Path, file: str, old: str, new: str) -> None:
    path = root / "prometheus" / "rules" / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("file", "old", "new", "test_file"),
    [
        ("golden-signals.yml", "> 0.05", "> 0.5", "golden-signals.test.yml"),
        ("slo-availability.yml", "> 0.0144", "> 0.144", "slo-availability.test.yml"),
        ("telemetry.yml", "for: 5m", "for: 30m", "telemetry.test.yml"),
    ],
)
def test_a_broken_rule_fails_its_generated_tests(
    tmp_path: Path, file: str, old: str, new: str, test_file: str
) -> None:
    spec = issue_spec()
    root = _write({**prometheus.render(spec), **rule_tests.render(spec)}, tmp_path)
    _break(root, file, old, new)
    result = _promtool_test(root, test_file)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_test_profile_cases_pass_too(tmp_path: Path) -> None:
    spec = parse_spec(ONE_SLO)
    root = _write({**prometheus.render(spec, "test"), **rule_tests.render(spec, "test")}, tmp_path)
    result = _promtool_test(root)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "interval: 1s" in (root / "tests" / "golden-signals.test.yml").read_text()


def test_low_traffic_guard_has_its_own_case() -> None:
    text = rule_tests.render(parse_spec(ONE_SLO))["tests/slo-availability.test.yml"]
    assert "stay below min_requests=20" in text


def test_values_text_compresses_runs() -> None:
    values: list[Decimal | None] = [Decimal(0), Decimal(5), Decimal(10), Decimal(10), None, None, Decimal(1)]
    assert rule_tests.values_text(values) == "0+5x2 10+0x0 _x2 1+0x0"
    assert rule_tests.values_text(rule_tests.counter(Decimal("0.25"), 4)) == "0+0.25x4"


@pytest.mark.parametrize(
    ("fn", "value", "text"),
    [
        (gotemplate.humanize, 1234567.0, "1.235M"),
        (gotemplate.humanize, 0.0125, "12.5m"),
        (gotemplate.humanize, 0.0, "0"),
        (gotemplate.humanize1024, 3221225472.0, "3Gi"),
        (gotemplate.humanize1024, 1.0, "1"),
        (gotemplate.humanize_percentage, 0.625, "62.5%"),
        (gotemplate.humanize_duration, 3661.0, "1h 1m 1s"),
        (gotemplate.humanize_duration, 90061.0, "1d 1h 1m 1s"),
        (gotemplate.humanize_duration, 0.7375, "737.5ms"),
        (gotemplate.humanize_duration, 2.5, "2.5s"),
    ],
)
def test_template_functions_print_like_prometheus(fn: object, value: float, text: str) -> None:
    assert fn(value) == text  # type: ignore[operator]


def test_template_expansion_refuses_what_it_cannot_predict() -> None:
    assert gotemplate.expand("{{ $labels.a }} {{ $value | humanize }}", {"a": "x"}, 2.0) == "x 2"
    with pytest.raises(ValueError, match="does not carry"):
        gotemplate.expand("{{ $labels.route }}", {}, None)
    with pytest.raises(ValueError, match="unsupported"):
        gotemplate.expand("{{ $value | printf }}", {}, 1.0)


# --- traffic floors ------------------------------------------------------------------------
FLOORED = """\
service: shop
environments:
  prod: {targets: ["shop:8000"]}
alerts:
  error_rate: {high: 0.1%s}
  latency_p95_seconds: {high: 1.0}
"""


def test_ratio_and_quantile_alerts_get_a_low_traffic_case_that_bites(tmp_path: Path) -> None:
    floored = parse_spec(FLOORED % "")
    files = {**prometheus.render(floored), **rule_tests.render(floored)}
    cases = [t["name"] for t in yaml.safe_load(files["tests/golden-signals.test.yml"])["tests"]]
    low = [c for c in cases if "below min_requests=50" in c]
    assert sorted(c.split(" (")[0] for c in low) == [
        "HTTPErrorRateHigh high",
        "HTTPLatencyP95High high",
        "HTTPLatencyP99High medium",
    ]
    assert _promtool_test(_write(files, tmp_path / "floored"), "golden-signals.test.yml").returncode == 0
    # The same cases against rules without the floor: the quiet night now pages, so they fail.
    unguarded = parse_spec(FLOORED % ", min_requests: 0")
    bare = _write({**files, **prometheus.render(unguarded)}, tmp_path / "bare")
    result = _promtool_test(bare, "golden-signals.test.yml")
    assert result.returncode != 0
    assert "stays silent on 12.5 events per window, below min_requests=50" in result.stdout + result.stderr


def test_a_raised_floor_still_gets_a_firing_case(tmp_path: Path) -> None:
    spec = parse_spec(FLOORED % ", min_requests: 100000")
    files = {**prometheus.render(spec), **rule_tests.render(spec)}
    assert ">= 100000" in files["prometheus/rules/golden-signals.yml"]
    result = _promtool_test(_write(files, tmp_path), "golden-signals.test.yml")
    assert result.returncode == 0, result.stdout[-3000:]


def test_deploy_grace_is_bounded_even_when_a_rollout_sticks(tmp_path: Path) -> None:
    spec = parse_spec(ONE_SLO + "inhibition: {deploy_grace: 10m}\n")
    files = {**prometheus.render(spec), **rule_tests.render(spec)}
    cases = [t["name"] for t in yaml.safe_load(files["tests/meta.test.yml"])["tests"]]
    assert any(
        "DeploymentGracePeriod fires when a new version appears, and stops after 10m" in c for c in cases
    )
    root = _write(files, tmp_path / "ok")
    assert _promtool_test(root, "meta.test.yml").returncode == 0
    # Without the offset window bounding it, a stuck rollout would mute alerts forever: the case fails.
    _break(root, "meta.yml", "offset 10m", "offset 1h")
    assert _promtool_test(root, "meta.test.yml").returncode != 0


def test_celery_workers_down_fires_when_every_worker_is_gone(tmp_path: Path) -> None:
    spec = parse_spec(
        ONE_SLO.replace('targets: ["shop:8000"]', 'targets: ["shop:8000"], celery_targets: ["w:9808"]')
    )
    files = {**prometheus.render(spec), **rule_tests.render(spec)}
    root = _write(files, tmp_path)
    assert _promtool_test(root, "celery.test.yml", "telemetry.test.yml").returncode == 0
    # No worker series at all (the target vanished from discovery): absent() still fires.
    down = next(a for a in rules.all_alerts(spec) if a.name == "CeleryWorkersDown")
    out = {"service": "shop", "environment": "prod", "job": "shop-prod-celery"}
    api = 'up{service="shop",environment="prod",job="shop-prod",instance="shop:8000"}'
    gone = {
        "rule_files": ["../prometheus/rules/celery.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": api,
                        "values": "1x10",
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "6m",
                        "alertname": "CeleryWorkersDown",
                        "exp_alerts": [rule_tests.expected_alert(spec, down, out, None)],
                    }
                ],
            }
        ],
    }
    (root / "tests" / "gone.test.yml").write_text(yaml.safe_dump(gone))
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", "gone.test.yml"],
        cwd=root / "tests",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # ServiceDown's generated firing case keeps a live worker beside the dead API: without the
    # component matcher the worker would hide the outage and the case fails.
    _break(root, "telemetry.yml", ',component=""', "")
    assert _promtool_test(root, "telemetry.test.yml").returncode != 0


def test_slo_cases_pin_when_the_kept_fast_page_resolves(issue_output: Path, tmp_path: Path) -> None:
    root = tmp_path / "o"
    shutil.copytree(issue_output, root)
    _break(root, "slo-availability.yml", "keep_firing_for: 30m", "keep_firing_for: 10m")
    result = _promtool_test(root, "slo-availability.test.yml")
    assert result.returncode != 0
    assert "1h/5m critical tier fires on its own" in result.stdout + result.stderr


def test_counter_increments_are_whole_so_promtool_adds_them_exactly() -> None:
    assert rule_tests.whole_counts(Decimal(1000), Decimal("0.0188")) == 10000
    assert rule_tests.whole_counts(Decimal(1000), Decimal("0.5")) == 1000
    assert rule_tests.whole_counts(Decimal(1000), Decimal("0.00188")) == 100000
