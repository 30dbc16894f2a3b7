"""Generated promtool cases: every alert fires and stays silent, run with the real promtool."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack import gotemplate, prometheus, rule_tests
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
        baseline, burning, recovered = test["alert_rule_test"]
        assert baseline["exp_alerts"] == [] and recovered["exp_alerts"] == []
        (alert,) = burning["exp_alerts"]
        assert alert["exp_labels"]["slo"] == "availability"
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
