"""lightkeeper check: own checks always, real tools when installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lightkeeper.stack import generate as gen
from lightkeeper.stack.validate import (
    CheckResult,
    _test_rules,
    amtool_checks,
    check_dead_mans_switch,
    passed,
    run_checks,
)
from tests.unit.stack._specs import issue_spec


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "observability"
    gen.generate(issue_spec(), out)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_own_checks_flag_unknown_metrics_and_unbounded_labels(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _copy(generated, tmp_path / "o")
    rules = out / "prometheus" / "rules" / "saturation.yml"
    text = rules.read_text()
    text = text.replace("rate(process_cpu_seconds_total{", "rate(process_cpu_secs_total{", 1)
    text = text.replace("by (service, environment, instance)", "by (service, environment, user_id)", 1)
    rules.write_text(text)
    (out / "runbooks" / "MemoryUsageHigh.md").unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no promtool or amtool: own checks only
    results = _by_name(run_checks(out, issue_spec()))
    assert "process_cpu_secs_total is neither in the catalogue" in "\n".join(
        results["metrics exist in the catalogue"].problems
    )
    assert "groups by 'user_id'" in "\n".join(results["bounded label cardinality"].problems)
    assert results["every alert has a runbook"].problems == [
        "MemoryUsageHigh: runbooks/MemoryUsageHigh.md is missing"
    ]
    skipped = [r for r in results.values() if r.status == "skipped" and "Watchdog" not in r.name]
    assert {r.name for r in skipped} == {"promtool checks", "amtool checks"}
    assert all("is not installed" in r.detail for r in skipped)
    assert not passed(list(results.values()))


def test_unparsable_promql_and_missing_tests_are_reported(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _copy(generated, tmp_path / "o")
    rules = out / "prometheus" / "rules" / "database.yml"
    rules.write_text(rules.read_text().replace("rate(db_errors_total{", "rate(db_errors_total{{", 1))
    (out / "tests" / "celery.test.yml").unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    results = _by_name(run_checks(out, issue_spec()))
    assert results["PromQL expressions parse"].status == "failed"
    coverage = "\n".join(results["every alert has a firing and a silent test"].problems)
    assert "CeleryQueueBacklog" in coverage and "no test case where it fires" in coverage


def test_missing_folder_says_to_generate(tmp_path: Path) -> None:
    (result,) = run_checks(tmp_path / "nothing")
    assert result.status == "failed" and "run `lightkeeper generate" in result.detail


def test_real_tools_pass_on_generated_output(generated: Path) -> None:
    results = run_checks(generated, issue_spec())
    failed = [(r.name, r.problems[:5]) for r in results if r.status != "ok"]
    assert failed == [("Watchdog reaches a dead man's switch", [])]
    assert passed(results)  # an unrouted Watchdog is reported, not fatal
    assert "the Watchdog is unrouted" in _by_name(results)["Watchdog reaches a dead man's switch"].detail
    names = {r.name for r in results}
    assert {
        "promtool check config",
        "promtool check rules --lint=all",
        "promtool test rules",
        "amtool check-config",
        "amtool template render",
        "amtool config routes test",
    } <= names


def test_real_tools_catch_a_broken_routing_tree(generated: Path, tmp_path: Path) -> None:
    out = _copy(generated, tmp_path / "o")
    am = out / "alertmanager" / "alertmanager.yml"
    am.write_text(am.read_text().replace("receiver: pager", "receiver: chat"))
    results = _by_name(amtool_checks(out, issue_spec(), lambda _: None))
    assert results["amtool check-config"].status == "ok"
    routes = results["amtool config routes test"]
    assert (
        routes.status == "failed" and "severity=critical should reach ['pager', 'chat']" in routes.problems[0]
    )


def test_real_tools_catch_a_non_production_environment_that_pages(generated: Path, tmp_path: Path) -> None:
    out = _copy(generated, tmp_path / "o")
    am = out / "alertmanager" / "alertmanager.yml"
    am.write_text(am.read_text().replace('environment="beta"', 'environment="nowhere"'))
    routes = _by_name(amtool_checks(out, issue_spec(), lambda _: None))["amtool config routes test"]
    assert routes.status == "failed"
    assert any("environment=beta severity=critical should reach ['chat']" in p for p in routes.problems)


def test_a_named_dead_mans_switch_receives_the_watchdog(tmp_path: Path) -> None:
    from lightkeeper.spec.loader import parse_spec
    from tests.unit.stack._specs import ISSUE_EXAMPLE

    text = ISSUE_EXAMPLE + "dead_mans_switch: heartbeat\n"
    text = text.replace(
        "receivers:\n", 'receivers:\n  heartbeat: {webhook: {url: "https://hc-ping.example.com/0f1e2d"}}\n'
    )
    spec = parse_spec(text)
    out = tmp_path / "o"
    gen.generate(spec, out)
    switch = check_dead_mans_switch(spec)
    assert (switch.status, switch.detail) == ("ok", "Watchdog -> heartbeat")
    # amtool's routing tests include Watchdog -> heartbeat (the rules need no promtool run here)
    assert _by_name(amtool_checks(out, spec, lambda _: None))["amtool config routes test"].status == "ok"
    assert "name: watchdog\n" not in (out / "alertmanager" / "alertmanager.yml").read_text()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="scripts/setup installs promtool")
def test_rule_tests_run_one_process_per_file_and_report_every_failure_in_file_order(
    generated: Path, tmp_path: Path
) -> None:
    out = _copy(generated, tmp_path / "o")
    for name, before, after in (
        ("golden-signals.yml", "> 0.05", "> 0.5"),
        ("celery.yml", "for: ", "for: 9"),
    ):
        path = out / "prometheus" / "rules" / name
        assert before in path.read_text()
        path.write_text(path.read_text().replace(before, after, 1))
    tests = sorted((out / "tests").glob("*.test.yml"))
    chosen = [t for t in tests if t.name in {"golden-signals.test.yml", "celery.test.yml", "meta.test.yml"}]
    promtool = shutil.which("promtool")
    assert promtool is not None
    code, output = _test_rules(promtool, chosen, out / "tests")
    assert code == 1
    named = [line.split(":")[0] for line in output.splitlines() if line.endswith(": exit code 1")]
    assert named == ["celery.test.yml", "golden-signals.test.yml"]  # meta passes; order is the files'
    assert "HTTPErrorRateHigh" in output
    assert _test_rules(promtool, [t for t in tests if t.name == "meta.test.yml"], out / "tests") == (0, "")
