"""Grafana provisioning and dashboards: structure, catalogue-only PromQL, real promtool parsing.

Grafana itself cannot run here (no binary, no Docker); the dashboards are checked
structurally against the schema fields Grafana reads, and every PromQL expression
is parsed by the real promtool with the dashboard variables substituted.
"""

from __future__ import annotations

import json
import re
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper import catalogue
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import generate, grafana, names
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.dashboards import BUILDERS, panels, queries
from tests.unit.stack._specs import plan_signals

SPEC = """
service: api
environments:
  prod: {targets: ["api:8000"]}
  beta: {targets: ["api-beta:8000"], thresholds: {latency_p95_seconds: 0.3}}
route_groups: {chat: ["/api/chat", "/api/chat/{id}"]}
slos:
  - {name: availability, objective: 99.9, period: 30d, sli: {kind: availability}}
  - name: chat-latency
    objective: 99
    period: 28d
    sli: {kind: latency, threshold_seconds: 0.5, route_group: chat}
alerts:
  error_rate: {high: 0.05, critical: 0.5}
  latency_p95_seconds: {medium: 0.5, high: 2.0}
  celery_workers_min: {high: 2, critical: 1}
budgets: {llm_monthly_usd: 300}
dashboards: {grafana_url: "https://grafana.example.com", refresh: 1m, time_from: now-12h}
"""

PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "logs", "row"}
FUNCTIONS = {
    "abs",
    "absent",
    "ceil",
    "changes",
    "clamp_max",
    "clamp_min",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "ln",
    "max_over_time",
    "min_over_time",
    "rate",
    "round",
    "scalar",
    "sort_desc",
    "sqrt",
    "time",
    "timestamp",
    "vector",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "topk",
    "bottomk",
    "quantile",
    "group",
    "label_values",
}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}
VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "1h",
    "$slo_period": "30d",
    "$burn_window": "1h",
    "$service": "api",
    "$environment": ".*",
}


def spec(text: str = SPEC) -> Spec:
    return parse_spec(text)


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return grafana.render(spec())


@pytest.fixture(scope="module")
def dashboards(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        path.rsplit("/", 1)[-1].removesuffix(".json"): json.loads(text)
        for path, text in files.items()
        if path.endswith(".json")
    }


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def promql_exprs(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) for every Prometheus target and variable query."""
    found = []
    for key, dash in dashboards.items():
        for panel in all_panels(dash):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "prometheus":
                    found.append((key, panel["title"], target["expr"]))
        for variable in dash["templating"]["list"]:
            if variable["type"] == "query":
                found.append((key, f"${variable['name']}", variable["definition"]))
    return found


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def test_one_file_per_dashboard_and_provisioning(files: dict[str, str]) -> None:
    expected = {f"grafana/dashboards/{key}.json" for key in names.DASHBOARD_TITLES}
    expected |= {grafana.DATASOURCES_PATH, grafana.PROVIDERS_PATH}
    assert set(files) == expected
    assert set(BUILDERS) == set(names.DASHBOARD_TITLES)


def _datasource_variables(dash: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The dashboard's datasource variables by the datasource type they choose from."""
    return {v["query"]: v for v in dash["templating"]["list"] if v["type"] == "datasource"}


def test_dashboards_provision_unattended(dashboards: dict[str, dict[str, Any]]) -> None:
    s = spec()
    for key, dash in dashboards.items():
        assert "__inputs" not in dash and "__requires" not in dash
        assert dash["uid"] == names.dashboard_uid(s, key)  # type: ignore[arg-type]
        assert len(dash["uid"]) <= 40
        assert dash["schemaVersion"] >= 39
        assert dash["title"].startswith(names.DASHBOARD_TITLES[key])  # type: ignore[index]
        assert dash["refresh"] == "1m" and dash["time"] == {"from": "now-12h", "to": "now"}
        # The only placeholders are the datasource variables, which default to the provisioned uids.
        variables = {f"${{{v['name']}}}" for v in _datasource_variables(dash).values()}
        assert set(re.findall(r"\$\{[^}]*\}", json.dumps(dash))) <= variables, key
        for panel in all_panels(dash):
            assert panel["type"] in PANEL_TYPES, panel["title"]
            if panel["type"] == "row":
                continue
            assert panel["targets"], panel["title"]
            if panel["type"] != "logs":
                steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
                assert steps[0]["value"] is None, "Grafana's base step has value null"


def test_every_panel_and_query_takes_its_datasource_from_a_variable(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    seen_types: set[str] = set()
    for key, dash in dashboards.items():
        variables = _datasource_variables(dash)
        assert "prometheus" in variables, key
        refs = {kind: f"${{{v['name']}}}" for kind, v in variables.items()}
        for panel in all_panels(dash):
            if panel["type"] == "row":
                continue
            kind = panel["datasource"]["type"]
            seen_types.add(kind)
            assert panel["datasource"] == {"type": kind, "uid": refs[kind]}, (key, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"], (key, panel["title"])
        for variable in dash["templating"]["list"]:
            if variable["type"] == "query":  # service and environment look their values up in Prometheus
                assert variable["datasource"] == {"type": "prometheus", "uid": refs["prometheus"]}, key
        # no variable for a datasource no panel reads: it would only clutter the header
        used = {p["datasource"]["type"] for p in all_panels(dash) if p["type"] != "row"}
        assert set(variables) == used | {"prometheus"}, key
        # datasource variables come first: the query variables resolve through them
        kinds = [v["type"] for v in dash["templating"]["list"]]
        assert kinds[: len(variables)] == ["datasource"] * len(variables), key
    assert seen_types == {"prometheus", "loki"}


def test_datasource_variables_default_to_the_provisioned_uids(
    files: dict[str, str], dashboards: dict[str, dict[str, Any]]
) -> None:
    provisioned = {d["type"]: d for d in yaml.safe_load(files[grafana.DATASOURCES_PATH])["datasources"]}
    for key, dash in dashboards.items():
        for kind, variable in _datasource_variables(dash).items():
            assert variable["current"]["value"] == provisioned[kind]["uid"] == names.DATASOURCE_UIDS[kind]
            assert variable["current"]["text"] == provisioned[kind]["name"], key
            assert variable["multi"] is False and variable["includeAll"] is False


def test_panel_ids_unique_and_grid_does_not_overlap(dashboards: dict[str, dict[str, Any]]) -> None:
    for key, dash in dashboards.items():
        ps = all_panels(dash)
        ids = [p["id"] for p in ps]
        assert len(ids) == len(set(ids)), key
        boxes = []
        for p in ps:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, (key, p["title"])
            boxes.append((g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"], p["title"]))
        for a, b in combinations(boxes, 2):
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (key, a[4], b[4])


def test_layout_wraps_rows_and_never_overlaps() -> None:
    placed = panels.layout(
        [
            panels.row("r"),
            *[{"type": "stat", "gridPos": {"w": 10, "h": h}} for h in (4, 8, 3)],
            panels.row("s"),
        ]
    )
    assert [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in placed] == [
        (0, 0),
        (0, 1),
        (10, 1),
        (0, 9),
        (0, 12),
    ]
    assert [p["id"] for p in placed] == [1, 2, 3, 4, 5]


def _selectors(expr: str) -> list[tuple[str, list[str]]]:
    return [
        (m.group(1), re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(2)))
        for m in re.finditer(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr)
    ]


@pytest.fixture(scope="module")
def recorded() -> set[str]:
    """Series the generated rules record: a panel may read them as well as catalogue metrics."""
    out: set[str] = set()
    for path, text in generate.render_all(spec()).items():
        if path.startswith("prometheus/rules/") and path.endswith(".yml") and ".test." not in path:
            for group in (yaml.safe_load(text) or {}).get("groups", []):
                out |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return out


def _known(metric: str, recorded: set[str]) -> bool:
    return catalogue.lookup_series(metric) is not None or metric in recorded


def test_every_promql_uses_only_catalogue_metrics_and_their_labels(
    dashboards: dict[str, dict[str, Any]], recorded: set[str]
) -> None:
    exprs = promql_exprs(dashboards)
    assert len(exprs) > 80
    for key, title, raw in exprs:
        expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', raw)
        expr = re.sub(r"(label_values\([^,]*),\s*\w+\)", r"\1)", expr)  # its 2nd argument is a label
        allowed_labels: set[str] = set(queries.TARGET_LABELS)
        for metric, labels in _selectors(expr):
            if metric in recorded:  # labels: service, environment, slo
                assert set(labels) <= {*queries.TARGET_LABELS, "slo"}, (key, title, metric, labels)
                allowed_labels |= {*queries.TARGET_LABELS, "slo"}
                continue
            signal = catalogue.lookup_series(metric)
            assert signal is not None, (key, title, metric)
            allowed = {
                *signal.labels,
                *queries.TARGET_LABELS,
                *(("le",) if metric.endswith("_bucket") else ()),
            }
            assert set(labels) <= allowed, (key, title, metric, labels)
            allowed_labels |= allowed
        for clause in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            grouped = {label.strip() for label in clause.group(1).split(",") if label.strip()}
            assert grouped <= allowed_labels, (key, title, grouped)
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
        for m in re.finditer(r"[a-zA-Z_:][\w:]*", bare):
            word = m.group(0)
            if bare[m.end() :].lstrip().startswith("("):
                assert word in FUNCTIONS, (key, title, word)
            elif word not in KEYWORDS and not re.fullmatch(r"\d+[a-z]*", word):
                assert _known(word, recorded), (key, title, word)
        # a label may also appear as label_values' second argument
        for m in re.finditer(r"label_values\((?:[^,]*),\s*(\w+)\)", raw):
            assert m.group(1) in queries.TARGET_LABELS


def test_every_selector_is_scoped_to_the_dashboard_variables(dashboards: dict[str, dict[str, Any]]) -> None:
    for key, title, expr in promql_exprs(dashboards):
        if title.startswith("$"):
            continue
        for m in re.finditer(r"[a-zA-Z_:][\w:]*\{([^}]*)\}", expr):
            assert 'service="$service"' in m.group(1), (key, title)
            assert 'environment=~"$environment"' in m.group(1), (key, title)


def test_rate_is_taken_before_sum(dashboards: dict[str, dict[str, Any]]) -> None:
    for key, title, expr in promql_exprs(dashboards):
        for m in re.finditer(r"\b(rate|increase|irate)\(", expr):
            argument = expr[m.end() :]
            assert re.match(r'[a-zA-Z_:][\w:]*\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\}\[[^\]]+\]\)', argument), (
                key,
                title,
                argument[:80],
            )
            counter = catalogue.lookup_series(argument.split("{", 1)[0])
            assert counter is not None and (counter.kind != "gauge"), (key, title)


def test_every_promql_parses_with_the_real_promtool(
    dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    exprs = [(k, t, e) for k, t, e in promql_exprs(dashboards) if not t.startswith("$")]
    rules = []
    for i, (_key, _title, expr) in enumerate(exprs):
        text = substitute(expr)
        assert "$" not in text, text
        rules.append({"record": f"lightkeeper:dashboard_check:{i}", "expr": text})
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_promtool_catches_a_broken_expression(tmp_path: Path) -> None:
    # The parse check above is only worth something if a bad expression fails it.
    path = tmp_path / "bad.yml"
    bad = {"record": "x:y", "expr": "sum by (le (rate(http_requests_total[5m]))"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [bad]}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_query_helpers_refuse_labels_and_samples_a_signal_lacks() -> None:
    with pytest.raises(ValueError, match="has no label"):
        queries.sum_rate(catalogue.HTTP_REQUESTS, ("environment", "request_id"))
    with pytest.raises(ValueError, match="not a sample"):
        queries.series(catalogue.HTTP_REQUESTS, "_bucket")
    with pytest.raises(ValueError, match="has no label"):
        queries.series(catalogue.HTTP_REQUESTS, "", ("le", "=", "0.5"))


def _panel(dash: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in all_panels(dash) if p["title"] == title)


def _steps(panel: dict[str, Any]) -> list[tuple[str, float | None]]:
    return [(s["color"], s["value"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_alert_thresholds_become_panel_thresholds(dashboards: dict[str, dict[str, Any]]) -> None:
    api = dashboards["api-performance"]
    error = _panel(api, "Error ratio (5xx)")
    assert _steps(error) == [("green", None), ("orange", 0.05), ("red", 0.5)]
    assert error["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    assert "HTTPErrorRateHigh" in error["description"]
    latency = _panel(api, "Latency p95 by route")
    assert _steps(latency) == [("green", None), ("yellow", 0.5), ("orange", 2.0)]
    # beta's own p95 threshold replaces its least severe tier, through an override on its legend.
    (override,) = latency["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byRegexp", "options": "^beta( .*)?$"}
    beta_steps = override["properties"][0]["value"]["steps"]
    assert [(s["color"], s["value"]) for s in beta_steps] == [
        ("green", None),
        ("yellow", 0.3),
        ("orange", 2.0),
    ]
    assert re.match(override["matcher"]["options"], "beta /api/chat")
    assert not re.match(override["matcher"]["options"], "betamax /api/chat")
    assert all(t["legendFormat"].startswith("{{environment}}") for t in latency["targets"])


def test_lower_is_worse_thresholds_are_inverted(dashboards: dict[str, dict[str, Any]]) -> None:
    workers = _panel(dashboards["database-queue"], "Live workers")
    assert _steps(workers) == [("red", None), ("orange", 1.0), ("green", 2.0)]


def _usage_titles(dashboard: dict[str, Any]) -> set[str]:
    return {p["title"] for p in all_panels(dashboard)}


def _planned_reads(dash: dict[str, Any]) -> list[tuple[str, set[str]]]:
    planned = {s.name for s in catalogue.ALL if not s.emitted}
    found: list[tuple[str, set[str]]] = []
    for panel in all_panels(dash):
        for target in panel.get("targets", []):
            words = set(re.findall(r"[a-z_:]+", target["expr"]))
            read = {s.name for w in words if (s := catalogue.lookup_series(w)) is not None}
            if read & planned:
                found.append((panel["title"], read & planned))
    return found


def test_no_panel_reads_a_signal_nothing_emits(dashboards: dict[str, dict[str, Any]]) -> None:
    for key, dash in dashboards.items():
        assert _planned_reads(dash) == [], key


def test_panels_over_planned_signals_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with_workflow = spec(SPEC + "workflow:\n  item: {processing_statuses: [publishing]}\n")
    before = _usage_titles(BUILDERS["usage"](with_workflow))
    assert {"Authentication attempts by outcome", "Stuck entities"} <= before
    assert "LLM spend rate" in _usage_titles(BUILDERS["llm-cost"](with_workflow))
    plan_signals(monkeypatch, catalogue.AUTH_ATTEMPTS, catalogue.WORKFLOW_STUCK_ENTITIES, catalogue.LLM_COST)
    for key, build in BUILDERS.items():
        assert _planned_reads(build(with_workflow)) == [], key
    after = _usage_titles(BUILDERS["usage"](with_workflow))
    assert {"Authentication attempts by outcome", "Stuck entities"}.isdisjoint(after)
    assert "Usage events by name" in after  # only the sections over planned signals go
    llm_after = _usage_titles(BUILDERS["llm-cost"](with_workflow))
    assert "LLM spend rate" not in llm_after and "LLM latency by model" in llm_after


def test_usage_sections_appear_once_their_signals_are_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "all_emitted", lambda *signals: True)
    with_workflow = spec(SPEC + "workflow:\n  item: {processing_statuses: [publishing]}\n")
    titles = _usage_titles(BUILDERS["usage"](with_workflow))
    assert {"Authentication attempts by outcome", "Stuck entities"} <= titles
    # workflow health also needs workflow entities in the spec
    assert "Stuck entities" not in _usage_titles(BUILDERS["usage"](spec()))


def test_llm_budget_colours_at_50_75_100_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "all_emitted", lambda *signals: True)
    budget = _panel(BUILDERS["llm-cost"](spec()), "LLM spend, last 30 days")
    assert _steps(budget) == [("green", None), ("yellow", 150.0), ("orange", 225.0), ("red", 300.0)]


def test_latency_panels_offer_exemplars(dashboards: dict[str, dict[str, Any]]) -> None:
    latency = _panel(dashboards["api-performance"], "Latency p50 / p95 / p99")
    assert [t["exemplar"] for t in latency["targets"]] == [True, True, True]
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]


def test_slo_dashboard_has_period_and_window_variables(dashboards: dict[str, dict[str, Any]]) -> None:
    s = spec()
    dash = dashboards["slos"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert {"service", "environment", "slo_period", "burn_window"} <= set(variables)
    period = variables["slo_period"]
    assert period["type"] == "custom"
    assert {"28d", "30d"} <= {o["value"] for o in period["options"]}
    windows = {o["value"] for o in variables["burn_window"]["options"]}
    assert windows == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert variables["burn_window"]["current"]["value"] == "1h"
    exprs = [t["expr"] for p in all_panels(dash) for t in p.get("targets", [])]
    assert any("[$slo_period]" in e for e in exprs) and any("[$burn_window]" in e for e in exprs)
    rows = [p["title"] for p in all_panels(dash) if p["type"] == "row"]
    assert rows == ["availability: 99.9 % over 30d", "chat-latency: 99 % over 28d"]
    # latency SLI: the bucket at the threshold, the route group's routes, regex-escaped
    chat = [e for e in exprs if "http_request_duration_seconds_bucket" in e]
    assert chat and all('le="0.5"' in e for e in chat)
    assert all(r'route=~"/api/chat|/api/chat/\\{id\\}"' in e for e in chat)
    # burn-rate thresholds are the tier factors computed for each SLO's own period
    burn = [p for p in all_panels(dash) if p["title"] == "Burn rate per alert window"]
    factors_28d = [float(t.factor) for t in slo_math.resolve_tiers(s.slos[1])]
    assert sorted(v for _c, v in _steps(burn[1])[1:]) == sorted(factors_28d)
    assert 14.4 in [v for _c, v in _steps(burn[0])]


def test_error_budget_expression_uses_the_exact_budget(dashboards: dict[str, dict[str, Any]]) -> None:
    budget = _panel(dashboards["slos"], "Error budget remaining")
    expr = budget["targets"][0]["expr"]
    assert expr.endswith(") / 0.001)")
    assert "0.0009999" not in json.dumps(dashboards["slos"])


def test_system_health_shows_error_logs_from_loki(dashboards: dict[str, dict[str, Any]]) -> None:
    logs = _panel(dashboards["system-health"], "Error logs")
    assert logs["datasource"] == {"type": "loki", "uid": "${logs}"}
    assert _datasource_variables(dashboards["system-health"])["loki"]["current"]["value"] == "lk-loki"
    expr = logs["targets"][0]["expr"]
    assert set(re.findall(r"(\w+)\s*=~?", expr)) == {"service", "environment", "level"}


def test_variables_default_to_the_spec_service(dashboards: dict[str, dict[str, Any]]) -> None:
    for dash in dashboards.values():
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert variables["service"]["current"]["value"] == "api"
        assert variables["environment"]["includeAll"] is True
        assert variables["environment"]["allValue"] == ".*"


def test_a_spec_without_slos_still_renders_every_dashboard() -> None:
    out = grafana.render(spec("service: worker\nenvironments: {prod: {targets: ['worker:9000']}}\n"))
    slos = json.loads(out["grafana/dashboards/slos.json"])
    assert [p["type"] for p in slos["panels"]] == ["row"]
    assert slos["uid"] == "lk-worker-slos"


# --- datasources and provider ---------------------------------------------------------
def test_datasources_have_fixed_uids_and_trace_log_links(files: dict[str, str]) -> None:
    data = yaml.safe_load(files[grafana.DATASOURCES_PATH])
    by_type = {d["type"]: d for d in data["datasources"]}
    assert {t: d["uid"] for t, d in by_type.items()} == names.DATASOURCE_UIDS
    tempo_uid, loki_uid = names.DATASOURCE_UIDS["tempo"], names.DATASOURCE_UIDS["loki"]
    assert by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": tempo_uid}
    ]
    (derived,) = by_type["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == tempo_uid
    match = re.search(
        derived["matcherRegex"], '{"event":"request","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}'
    )
    assert match and match.group(1) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert not re.search(derived["matcherRegex"], '{"event":"request","trace_id":null}')
    traces_to_logs = by_type["tempo"]["jsonData"]["tracesToLogsV2"]
    assert traces_to_logs["datasourceUid"] == loki_uid and traces_to_logs["filterByTraceID"] is True
    assert sum(d.get("isDefault", False) for d in data["datasources"]) == 1


def test_grafana_link_variables_survive_provisioning_env_expansion(files: dict[str, str]) -> None:
    # Grafana expands $VAR / ${VAR} in provisioning files; its own ${__value.raw} must be written $${...}.
    text = files[grafana.DATASOURCES_PATH]
    assert "$${__value.raw}" in text
    assert not re.search(r"(?<!\$)\$\{", text.replace("$${", ""))


def test_dashboard_provider_points_at_the_mounted_folder(files: dict[str, str]) -> None:
    data = yaml.safe_load(files[grafana.PROVIDERS_PATH])
    (provider,) = data["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == grafana.CONTAINER_DASHBOARDS_DIR
    assert provider["allowUiUpdates"] is False


def test_output_is_deterministic_and_sorted(files: dict[str, str]) -> None:
    again = grafana.render(spec())
    assert again == files
    for path, text in files.items():
        if path.endswith(".json"):
            assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
