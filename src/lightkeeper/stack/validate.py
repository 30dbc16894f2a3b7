"""`lightkeeper check`: prove a generated folder works before it is deployed.

Two layers. The real tools, when installed: `promtool check config`, `promtool check
rules --lint=all`, `promtool test rules`, `amtool check-config`, `amtool template
render` for every notification template and `amtool config routes test` for the
routing of every severity in every environment (only production pages by default).
And our own checks, which always run: every PromQL expression parses (promql-parser,
a binding of the Rust port of the Prometheus parser), every metric it reads exists in
the signal catalogue or is recorded by a rule, every label it groups or filters by has
bounded cardinality, every alert carries the shared labels and annotations and has a
runbook, and every alert rule has a promtool case where it fires and one where it
stays silent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import promql_parser
import yaml

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack import names
from lightkeeper.stack.prometheus import CONFIG_PATH, RULES_DIR
from lightkeeper.stack.rule_tests import TEST_DIR

Status = Literal["ok", "failed", "skipped"]
TOOL_TIMEOUT = 300.0
AM_CONFIG = "alertmanager/alertmanager.yml"

# Labels Prometheus, the scrape config or the rules themselves attach: always bounded.
INFRA_LABELS = frozenset(
    {
        "service",
        "environment",
        "instance",
        "job",
        "le",
        "slo",
        "severity",
        "category",
        "version",
        "quantile",
        "component",
    }
)


@dataclass
class CheckResult:
    name: str
    status: Status
    detail: str = ""
    problems: list[str] = field(default_factory=list)


Progress = Callable[[str], None]


# --- reading the folder ------------------------------------------------------------------
def _rule_files(out: Path) -> list[Path]:
    return sorted((out / RULES_DIR).glob("*.yml"))


def _test_files(out: Path) -> list[Path]:
    return sorted((out / TEST_DIR).glob("*.test.yml"))


def _load_rules(out: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, rule) for every rule in every rule file."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in _rule_files(out):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in data.get("groups", []):
            for rule in group.get("rules", []):
                found.append((path.name, rule))
    return found


def _rule_name(rule: dict[str, Any]) -> str:
    return str(rule.get("alert") or rule.get("record"))


# --- own checks ------------------------------------------------------------------------------
def _walk(expr: Any) -> Iterator[Any]:
    found: list[Any] = []
    promql_parser.walk(expr, pre_visit=lambda node: found.append(node))
    return iter(found)


def allowed_labels(extra: frozenset[str] = frozenset()) -> frozenset[str]:
    """Every label a rule may filter or group by: catalogue labels plus infrastructure ones."""
    labels = {label for signal in cat.ALL for label in signal.labels}
    return frozenset(labels | INFRA_LABELS | extra)


def check_promql(rules: list[tuple[str, dict[str, Any]]], extra_labels: frozenset[str]) -> list[CheckResult]:
    """Parse every expression; then metric names and label cardinality from the syntax tree."""
    recorded = {str(r["record"]) for _, r in rules if "record" in r}
    allowed = allowed_labels(extra_labels)
    parse_errors: list[str] = []
    unknown_metrics: list[str] = []
    unbounded: list[str] = []
    for file, rule in rules:
        where = f"{file}: {_rule_name(rule)}"
        try:
            expr = promql_parser.parse(str(rule.get("expr", "")))
        except ValueError as exc:
            parse_errors.append(f"{where}: {exc}")
            continue
        for node in _walk(expr):
            if isinstance(node, promql_parser.VectorSelector):
                name = node.name or ""
                if name and name not in recorded and cat.lookup_series(name) is None:
                    unknown_metrics.append(
                        f"{where}: {name} is neither in the catalogue nor recorded by a rule"
                    )
                for matcher in node.matchers.matchers:
                    if matcher.name != "__name__" and matcher.name not in allowed:
                        unbounded.append(f"{where}: filters on label {matcher.name!r}, not a bounded label")
            elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
                labels = list(node.modifier.labels)
                if node.modifier.type == promql_parser.AggModifierType.Without:
                    unbounded.append(f"{where}: aggregates `without (...)`, keeping labels it cannot bound")
                for label in labels:
                    if label not in allowed:
                        unbounded.append(f"{where}: groups by {label!r}, not a bounded label")
    return [
        _result("PromQL expressions parse", parse_errors, f"{len(rules)} expressions"),
        _result("metrics exist in the catalogue", unknown_metrics, "every selector names a known series"),
        _result("bounded label cardinality", unbounded, "grouping and filters use bounded labels only"),
    ]


def check_alert_shape(
    rules: list[tuple[str, dict[str, Any]]], out: Path, spec: Spec | None
) -> list[CheckResult]:
    """Shared labels and annotations on every alert; a runbook behind every runbook_url."""
    shape: list[str] = []
    runbooks: list[str] = []
    for file, rule in rules:
        if "alert" not in rule:
            continue
        name = str(rule["alert"])
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        for label in ("severity", "category", "service"):
            if label not in labels:
                shape.append(f"{file}: {name} has no {label!r} label")
        if labels.get("severity") not in ("critical", "high", "medium", "low"):
            shape.append(f"{file}: {name} has severity {labels.get('severity')!r}")
        for key in names.ALERT_ANNOTATIONS:
            if not annotations.get(key):
                shape.append(f"{file}: {name} has no {key!r} annotation")
        url = str(annotations.get("runbook_url", ""))
        generated = url.endswith(f"/{name}.md") or url == f"runbooks/{name}.md"
        if spec is not None:
            entry = spec.runbooks.alerts.get(name)
            generated = entry is None or not entry.url
        if generated and not (out / "runbooks" / f"{name}.md").is_file():
            runbooks.append(f"{name}: runbooks/{name}.md is missing")
    return [
        _result(
            "alert labels and annotations", shape, "severity, category, service, summary, description, links"
        ),
        _result("every alert has a runbook", sorted(set(runbooks)), "runbooks/<alert>.md for every alert"),
    ]


def check_test_coverage(rules: list[tuple[str, dict[str, Any]]], out: Path) -> CheckResult:
    """Every alert rule (name + static labels) has a case where it fires and one where it is silent."""
    fired: dict[str, list[dict[str, str]]] = {}
    silent_checks: dict[str, list[list[dict[str, str]]]] = {}
    for path in _test_files(out):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for test in data.get("tests", []):
            for check in test.get("alert_rule_test", []):
                name = str(check.get("alertname"))
                got = [dict(a.get("exp_labels") or {}) for a in check.get("exp_alerts") or []]
                fired.setdefault(name, []).extend(got)
                silent_checks.setdefault(name, []).append(got)
    problems: list[str] = []
    count = 0
    for file, rule in rules:
        if "alert" not in rule:
            continue
        count += 1
        name = str(rule["alert"])
        static = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
        ident = f"{file}: {name} {static.get('severity', '')} {static.get('environment', '')}".rstrip()

        def matches(labels: dict[str, str], static: dict[str, str] = static) -> bool:
            return all(labels.get(k) == v for k, v in static.items())

        if not any(matches(a) for a in fired.get(name, [])):
            problems.append(f"{ident}: no test case where it fires")
        if name == names.WATCHDOG_ALERT:
            continue  # always firing by design: no silent case can exist
        if not any(not any(matches(a) for a in got) for got in silent_checks.get(name, [])):
            problems.append(f"{ident}: no test case where it stays silent")
    return _result("every alert has a firing and a silent test", problems, f"{count} alert rules covered")


def check_dead_mans_switch(spec: Spec | None) -> CheckResult:
    """The Watchdog proves the pipeline works only if something notices when it stops."""
    from lightkeeper.stack import alertmanager

    name = "Watchdog reaches a dead man's switch"
    if spec is None:
        return CheckResult(name, "skipped", "no spec given (--spec): routing unknown")
    if alertmanager.dead_mans_switch_unrouted(spec):
        return CheckResult(
            name,
            "skipped",
            "the Watchdog is unrouted, so a dead Prometheus or Alertmanager goes unnoticed; name a "
            "receiver under `dead_mans_switch` (e.g. a webhook to a healthchecks.io ping URL)",
        )
    return CheckResult(name, "ok", f"Watchdog -> {alertmanager.watchdog_receiver(spec)}")


def _result(name: str, problems: list[str], ok_detail: str) -> CheckResult:
    if problems:
        return CheckResult(name, "failed", f"{len(problems)} problem(s)", problems)
    return CheckResult(name, "ok", ok_detail)


# --- real tools ------------------------------------------------------------------------------
def _run(cmd: list[str], cwd: Path, timeout: float = TOOL_TIMEOUT) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, f"{cmd[0]} did not finish within {timeout:.0f}s"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _tool_result(name: str, code: int, output: str, ok_detail: str) -> CheckResult:
    if code == 0:
        return CheckResult(name, "ok", ok_detail)
    lines = [line for line in output.splitlines() if line.strip()]
    return CheckResult(name, "failed", f"exit code {code}", lines[-40:])


def _missing(tool: str, package: str) -> CheckResult:
    return CheckResult(
        f"{tool} checks",
        "skipped",
        f"{tool} is not installed; install the Debian package `{package}` (or the upstream binary) "
        "to run these checks. Lightkeeper's own checks still ran.",
    )


def _test_rules(promtool: str, tests: list[Path], cwd: Path) -> tuple[int, str]:
    """`promtool test rules` with one process per file, as many at once as there are CPUs.

    promtool evaluates a file's rules step by step on one core, and a week-long test (a
    week-over-week rule needs eight days of samples) takes seconds on its own; separate
    processes use every core. The largest files start first, and the failures are
    reported in file order, so the result does not depend on which process ends first.
    """
    workers = min(len(tests), os.cpu_count() or 1)
    ordered = sorted(tests, key=lambda p: p.stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(lambda path: _run([promtool, "test", "rules", path.name], cwd), ordered)
        done = dict(zip(ordered, outcomes, strict=True))
    failed = [(path, code, output) for path, (code, output) in sorted(done.items()) if code != 0]
    if not failed:
        return 0, ""
    report = [f"{path.name}: exit code {code}\n{output}" for path, code, output in failed]
    return failed[0][1], "\n".join(report)


def promtool_checks(out: Path, progress: Progress) -> list[CheckResult]:
    promtool = shutil.which("promtool")
    if promtool is None:
        return [_missing("promtool", "prometheus")]
    results: list[CheckResult] = []
    progress("promtool check config")
    # --syntax-only: secret files such as bearer tokens exist on the server, not here.
    code, output = _run([promtool, "check", "config", "--syntax-only", CONFIG_PATH], out)
    results.append(_tool_result("promtool check config", code, output, CONFIG_PATH))
    progress("promtool check rules --lint=all")
    rule_files = [str(p.relative_to(out)) for p in _rule_files(out)]
    code, output = _run([promtool, "check", "rules", "--lint=all", "--lint-fatal", *rule_files], out)
    results.append(
        _tool_result("promtool check rules --lint=all", code, output, f"{len(rule_files)} rule files")
    )
    tests = _test_files(out)
    if tests:
        progress(f"promtool test rules ({len(tests)} files)")
        code, output = _test_rules(promtool, tests, out / TEST_DIR)
        results.append(_tool_result("promtool test rules", code, output, f"{len(tests)} test files pass"))
    else:
        results.append(CheckResult("promtool test rules", "failed", f"no {TEST_DIR}/*.test.yml to run"))
    return results


def amtool_checks(out: Path, spec: Spec | None, progress: Progress) -> list[CheckResult]:
    amtool = shutil.which("amtool")
    if amtool is None:
        return [_missing("amtool", "prometheus-alertmanager")]
    from lightkeeper.stack import alertmanager

    results: list[CheckResult] = []
    progress("amtool check-config")
    code, output = _run([amtool, "check-config", AM_CONFIG], out)
    results.append(_tool_result("amtool check-config", code, output, AM_CONFIG))
    if spec is None:
        results.append(
            CheckResult(
                "amtool templates and routes", "skipped", "no spec given (--spec): expectations unknown"
            )
        )
        return results
    progress("amtool template render")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lk-amtool-") as tmp:
        data = Path(tmp) / "data.json"
        data.write_text(alertmanager.example_template_data(spec), encoding="utf-8")
        glob = str((out / alertmanager.TEMPLATE_PATH).resolve())
        for template in alertmanager.TEMPLATES:
            code, output = _run(
                [
                    amtool,
                    "template",
                    "render",
                    f"--template.glob={glob}",
                    f"--template.text={{{{ template {json.dumps(template)} . }}}}",
                    f"--template.data={data}",
                ],
                out,
            )
            if code != 0 or not output:
                problems.append(f"{template}: {output or 'rendered nothing'}")
    results.append(
        _result("amtool template render", problems, f"{len(alertmanager.TEMPLATES)} templates render")
    )
    progress("amtool config routes test")
    problems = []
    cases = alertmanager.routing_expectations(spec)
    for labels, receivers in cases:
        code, output = _run(
            [
                amtool,
                "config",
                "routes",
                "test",
                f"--config.file={AM_CONFIG}",
                f"--verify.receivers={','.join(receivers)}",
                *(f"{k}={v}" for k, v in sorted(labels.items())),
            ],
            out,
        )
        if code != 0:
            where = " ".join(f"{k}={labels[k]}" for k in ("environment", "severity") if k in labels)
            problems.append(f"{labels.get('alertname')} {where} should reach {receivers}: {output}")
    results.append(_result("amtool config routes test", problems, f"{len(cases)} routing cases"))
    return results


def run_checks(out: Path, spec: Spec | None = None, progress: Progress | None = None) -> list[CheckResult]:
    """Every check over a generated folder; never raises for a failing check."""
    note = progress or (lambda _msg: None)
    if not (out / CONFIG_PATH).is_file():
        return [
            CheckResult(
                "generated folder",
                "failed",
                f"{out / CONFIG_PATH} not found; run `lightkeeper generate --out {out}` first",
            )
        ]
    note("own checks")
    rules = _load_rules(out)
    extra: frozenset[str] = frozenset()
    if spec is not None:
        extra = frozenset({k for env in spec.environments.values() for k in env.labels})
    results = [
        *check_promql(rules, extra),
        *check_alert_shape(rules, out, spec),
        check_test_coverage(rules, out),
        check_dead_mans_switch(spec),
    ]
    results.extend(promtool_checks(out, note))
    results.extend(amtool_checks(out, spec, note))
    return results


def passed(results: list[CheckResult]) -> bool:
    return all(r.status != "failed" for r in results)
