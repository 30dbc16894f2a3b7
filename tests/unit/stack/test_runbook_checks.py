"""Every generated runbook is actionable: its checks run, its links open the right panel.

The queries are checked against the real tools where one exists (promtool parses each
PromQL query as a recording rule, amtool parses each silence command) and against what
the generated stack and the SDK actually emit where none does (LogQL labels and JSON
fields, TraceQL attributes).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import promql_parser
import pytest
import yaml

from lightkeeper import catalogue
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.spec.starter import render as starter_text
from lightkeeper.stack import alloy, dashboards, names, prometheus, runbook_content, runbooks
from lightkeeper.stack.alert_families import FAMILIES
from lightkeeper.stack.rules import all_alerts
from tests.unit.stack._specs import EXAMPLE, issue_spec

SDK = Path(__file__).resolve().parents[3] / "src" / "lightkeeper" / "sdk"
SECTIONS = (
    "## What it means",
    "## First three checks",
    "## Likely causes",
    "## Silence safely",
    "## When to escalate",
)
# The example spec with every optional family switched on: Celery worker targets, a usage
# event with an outcome, and the deploy grace period.
_FULL_EXTRA = {
    "  prod:\n    targets:": "  prod:\n    celery_targets: ['worker-1:9808']\n    targets:",
    "    - feedback_report_submitted\n": (
        "    - feedback_report_submitted\n    - payment: {outcome: [success, failed]}\n"
    ),
}


def _full_spec() -> Spec:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in _FULL_EXTRA.items():
        assert old in text, old
        text = text.replace(old, new)
    return parse_spec(text + "\ninhibition: {deploy_grace: 10m}\n", "full.yaml")


SPECS = {
    "full": _full_spec,
    "issue": issue_spec,
    "starter": lambda: parse_spec(starter_text("shop"), "starter.yaml"),
}


@pytest.fixture(scope="module")
def generated() -> dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]]:
    out = {}
    for key, make in SPECS.items():
        spec = make()
        boards = {k: build(spec) for k, build in dashboards.BUILDERS.items()}
        out[key] = (spec, runbooks.render(spec, all_alerts(spec)), boards)
    return out


def _blocks(page: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)\n```", page, re.S)


def _section(page: str, title: str) -> str:
    return page.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_full_spec_generates_every_family() -> None:
    generated = {a.family for a in all_alerts(_full_spec())}
    assert {f.key for f in FAMILIES} - generated <= {f.key for f in FAMILIES if f.requires == "node"}
    extra = set(runbook_content.EXTRA_FAMILIES) - (
        set() if catalogue.MAINTENANCE.emitted else {"maintenance"}
    )
    assert extra <= generated


def test_every_family_has_its_own_content() -> None:
    # Families without an entry fall back to their category; name them here so they get one.
    families = {f.key for f in FAMILIES} | set(runbook_content.EXTRA_FAMILIES)
    assert sorted(families - set(runbook_content.CONTENT.alerts)) == []
    assert sorted(set(runbook_content.CONTENT.alerts) - families) == []


def test_every_generated_alert_has_a_complete_runbook(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]],
) -> None:
    checked = 0
    for spec, pages, boards in generated.values():
        for name in {a.name for a in all_alerts(spec)}:
            page = pages[f"runbooks/{name}.md"]
            positions = [page.index(s) for s in SECTIONS]
            assert positions == sorted(positions), name
            checks = _section(page, "First three checks")
            assert re.findall(r"^### (\d)\. ", checks, re.M) == ["1", "2", "3"], name
            assert len(_blocks(checks, "promql")) == 1 and len(_blocks(checks, "traceql")) == 1, name
            assert len(_blocks(checks, "logql")) == 2, name  # the matching lines, then one request/trace
            assert _section(page, "Likely causes").count("\n- ") >= 1, name
            assert _section(page, "When to escalate").strip(), name
            (silence,) = _blocks(_section(page, "Silence safely"), "sh")
            assert silence.startswith("amtool silence add ") and f"alertname={name}" in shlex.split(silence)
            assert re.search(r"--duration=\d+[mh]\b", silence), name
            links = re.findall(r"\]\(([^)\s]*/d/[^)\s]+)\)", checks)
            assert links, name
            for link in links:
                _assert_panel_exists(spec, boards, link, name)
            checked += 1
    assert checked > 100


def _assert_panel_exists(spec: Spec, boards: dict[str, dict[str, object]], link: str, name: str) -> None:
    parts = urlsplit(link)
    uid = parts.path.split("/d/", 1)[1].split("/")[0]
    (board,) = [b for b in boards.values() if b["uid"] == uid]
    query = parse_qs(parts.query)
    assert query["var-service"] == [spec.service], link
    panel_ids = {p["id"] for p in board["panels"] if p["type"] != "row"}  # type: ignore[attr-defined]
    assert int(query["viewPanel"][0]) in panel_ids, f"{name}: {link}"
    assert parts.path.endswith(
        "/" + re.sub(r"[^a-z0-9]+", "-", str(board["title"]).lower().replace("&", "and")).strip("-")
    )


def test_the_promql_check_is_the_panels_own_query(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]],
) -> None:
    spec, pages, boards = generated["full"]
    page = pages["runbooks/DBPoolSaturated.md"]
    (promql,) = _blocks(_section(page, "First three checks"), "promql")
    board = boards["database-queue"]
    (panel,) = [p for p in board["panels"] if p["title"] == "Connection pool usage"]  # type: ignore[attr-defined]
    expected = panel["targets"][0]["expr"].replace("$service", spec.service)
    assert promql == expected.replace("$environment", "<environment>").replace("$__rate_interval", "5m")
    assert f"viewPanel={panel['id']}" in page


def test_promql_checks_parse_with_promtool(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]], tmp_path: Path
) -> None:
    queries = sorted(
        {q for _, pages, _ in generated.values() for page in pages.values() for q in _blocks(page, "promql")}
    )
    for query in queries:
        assert not re.search(r"\$[A-Za-z_]", query), query  # every Grafana variable was filled in
        promql_parser.parse(query)
    rules = [{"record": f"runbook:check_{i}:value", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "runbook-checks.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "runbook-checks", "rules": rules}]}), encoding="utf-8"
    )
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool must be installed (Debian package prometheus)"
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    # promtool fails on a broken query: the check above can fail.
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "a:b", "expr": "sum(("}]}]})
    )
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode != 0


# JSON fields of the SDK's log lines that the LogQL checks filter on (sdk/logs.py writes them).
LOG_FIELDS = {"status_code", "event", "duration_ms", "route", "method", "exception_type"}


def _balanced(text: str) -> bool:
    depth = 0
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0 and text.count('"') % 2 == 0


def test_logql_checks_use_the_labels_and_fields_the_stack_has(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]],
) -> None:
    source = "".join(p.read_text(encoding="utf-8") for p in SDK.rglob("*.py"))
    assert all(f'"{field}"' in source for field in LOG_FIELDS)
    for spec, pages, _ in generated.values():
        for page in pages.values():
            for block in _blocks(page, "logql"):
                for query in block.splitlines():
                    assert _balanced(query), query
                    selector, pipeline = re.fullmatch(r"(\{[^}]*\})(.*)", query).groups()  # type: ignore[union-attr]
                    labels = re.findall(r"(\w+)=~?\"", selector)
                    assert labels[0] == "service" and f'service="{spec.service}"' in selector
                    assert set(labels) <= set(alloy.LOG_LABELS), query
                    stages = [s.strip() for s in pipeline.split("|") if s.strip()]
                    for stage in stages:
                        if stage == "json" or stage.startswith(("~ ", "= ")):
                            continue
                        for field in re.findall(r"(?:^|\bor\s+)(\w+)\s*(?:>=|<=|!=|=~|=|>|<)", stage):
                            assert field in LOG_FIELDS | set(alloy.LOG_METADATA), query
                    if any(f in pipeline for f in LOG_FIELDS) and "| json" not in pipeline:
                        pytest.fail(f"{query}: filters on a JSON field without `| json`")


# Attributes the SDK's spans and tracer resource carry; each must appear in the SDK source.
SPAN_ATTRIBUTES = {
    "http.response.status_code",
    "error.type",
    "db.operation.name",
    "gen_ai.request.model",
}
RESOURCE_ATTRIBUTES = {"service.name", "deployment.environment"}


def test_traceql_checks_use_the_attributes_the_sdk_sets(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]],
) -> None:
    source = "".join(p.read_text(encoding="utf-8") for p in SDK.rglob("*.py"))
    assert all(f'"{a}"' in source for a in SPAN_ATTRIBUTES | RESOURCE_ATTRIBUTES)
    for spec, pages, _ in generated.values():
        for page in pages.values():
            for query in _blocks(page, "traceql"):
                assert _balanced(query) and query.startswith("{ ") and query.endswith(" }"), query
                assert query.startswith(f'{{ resource.service.name = "{spec.service}"'), query
                assert set(re.findall(r"\bspan\.([\w.]+)", query)) <= SPAN_ATTRIBUTES, query
                assert set(re.findall(r"\bresource\.([\w.]+)", query)) <= RESOURCE_ATTRIBUTES, query
                assert "{threshold_ms}" not in query


def test_silence_commands_parse_with_amtool(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]],
) -> None:
    amtool = shutil.which("amtool")
    assert amtool is not None, "amtool must be installed (Debian package prometheus-alertmanager)"
    _, pages, _ = generated["full"]
    for name in ("HTTPErrorRateHigh", "AvailabilityErrorBudgetBurn", "ProbeDown", "Watchdog"):
        (command,) = _blocks(pages[f"runbooks/{name}.md"], "sh")
        args = [a.replace("<environment>", "prod") for a in shlex.split(command)]
        assert "--alertmanager.url=http://alertmanager:9093" in args  # the spec's Alertmanager
        args = [amtool, *(a for a in args[1:] if not a.startswith("--alertmanager.url="))]
        args.append("--alertmanager.url=http://127.0.0.1:9")  # nothing listens there
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
        # amtool parses flags and matchers before it connects: only the connection may fail.
        assert done.returncode != 0 and "connect" in done.stderr, (name, done.stderr)
    bad = [
        amtool,
        "silence",
        "add",
        "--alertmanager.url=http://127.0.0.1:9",
        "--comment=x",
        "--duration=1x",
        "a=b",
    ]
    assert "not a valid duration" in subprocess.run(bad, capture_output=True, text=True, timeout=30).stderr


def test_the_fast_burn_page_cannot_be_silenced_by_the_runbook_command(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]],
) -> None:
    spec, pages, _ = generated["full"]
    (command,) = _blocks(pages["runbooks/AvailabilityErrorBudgetBurn.md"], "sh")
    burn = [a for a in all_alerts(spec) if a.name == "AvailabilityErrorBudgetBurn"]
    slowest = max((a.long_window or "" for a in burn), key=lambda w: (w.endswith("d"), w))
    assert f"long_window={slowest}" in shlex.split(command)
    assert "Never silence the fast-burn page" in pages["runbooks/AvailabilityErrorBudgetBurn.md"]


def test_alert_annotations_link_to_the_panel_with_the_environment_selected(
    generated: dict[str, tuple[Spec, dict[str, str], dict[str, dict[str, object]]]],
) -> None:
    spec, pages, _ = generated["full"]
    by_name = {a.name: a for a in all_alerts(spec)}
    error_rate = prometheus.alert_annotations(spec, by_name["HTTPErrorRateHigh"])["dashboard_url"]
    assert "var-environment={{ $labels.environment }}&viewPanel=" in error_rate
    panel = error_rate.rsplit("viewPanel=", 1)[1]
    assert f"viewPanel={panel})" in pages["runbooks/HTTPErrorRateHigh.md"]  # the runbook shows the same panel
    beta = [a for a in all_alerts(spec) if a.name == "HTTPLatencyP95High" and a.environments == ("beta",)]
    assert "var-environment=beta&" in prometheus.alert_annotations(spec, beta[0])["dashboard_url"]
    probe = prometheus.alert_annotations(spec, by_name["ProbeDown"])["dashboard_url"]
    assert "var-environment" not in probe and "viewPanel=" in probe  # probes belong to no environment
    assert probe.startswith(names.dashboard_url(spec, "system-health") + "/system-health-saas-api?")
