"""The generated "LLM cost" dashboard: what it shows, that its PromQL reads only the
LLM signals of the catalogue, parses with the real promtool, and computes the right
numbers when the real promtool evaluates it over recorded series.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper import catalogue
from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack.dashboards import BUILDERS, llm_cost, usage

SPEC = """\
service: api
environments:
  prod: {targets: ["api:8000"]}
budgets: {llm_monthly_usd: 300}
alerts:
  llm_cost_usd_per_hour: {high: 5}
"""
VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$service": "api", "$environment": ".*"}
LLM_SIGNALS = {s.name for s in catalogue.ALL if s.group == "llm"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return BUILDERS["llm-cost"](parse_spec(SPEC))


def targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def concrete(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def series_read(expr: str) -> set[str]:
    found = set()
    for word in re.findall(r"[a-zA-Z_:][\w:]*(?=\{)", expr):
        signal = catalogue.lookup_series(word)
        assert signal is not None, word
        found.add(signal.name)
    return found


def test_it_is_a_dashboard_of_its_own_with_every_section(dashboard: dict[str, Any]) -> None:
    titles = {p["title"] for p in dashboard["panels"]}
    assert dashboard["title"] == "LLM Cost (api)" and dashboard["uid"] == "lk-api-llm-cost"
    assert {
        "LLM spend by model (USD/h)",
        "LLM spend by operation (USD/h)",
        "Tokens by type",
        "LLM requests by status",
        "Share of calls by status",
        "LLM latency by model",
        "Time to first chunk by model",
        "Unpriced calls by model",
    } <= titles
    assert not {p["title"] for p in usage.build(parse_spec(SPEC))["panels"]} & titles - {"Spend"}


def test_every_query_reads_only_llm_signals_and_all_of_them(dashboard: dict[str, Any]) -> None:
    read: set[str] = set()
    for title, expr in targets(dashboard):
        names = series_read(expr)
        assert names and names <= LLM_SIGNALS, (title, names)
        read |= names
    assert read == LLM_SIGNALS  # nothing the SDK writes about LLM calls is left off


def test_quantiles_and_spend_use_the_right_samples(dashboard: dict[str, Any]) -> None:
    exprs = dict(targets(dashboard))
    assert (
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket" in exprs["Time to first chunk by model"]
    )
    assert exprs["LLM spend by model (USD/h)"].endswith("* 3600")
    assert "gen_ai_client_token_usage_sum" in exprs["Tokens by type"]


def test_every_query_parses_with_the_real_promtool(dashboard: dict[str, Any], tmp_path: Path) -> None:
    rules = [
        {"record": f"check:llm_cost:{i}", "expr": concrete(e)} for i, (_, e) in enumerate(targets(dashboard))
    ]
    path = tmp_path / "llm_cost.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "llm", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_status_shares_and_unpriced_calls_compute_as_promtool_evaluates_them(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    """3 ok and 1 error call per minute: shares 0.75 and 0.25; no unpriced series yet reads 0, not nothing."""
    exprs = dict(targets(dashboard))
    scope = 'service="api",environment="prod"'
    requests = "lightkeeper_llm_requests_total"
    labels = 'provider="openai",model="gpt-4o",operation="chat"'
    rules = tmp_path / "rules.yml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "llm",
                        "rules": [
                            {"record": "share", "expr": concrete(exprs["Share of calls by status"])},
                            {"record": "unpriced_hour", "expr": concrete(exprs["Unpriced calls, last hour"])},
                        ],
                    }
                ]
            }
        )
    )
    tests = tmp_path / "tests.yml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(rules)],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {"series": f'{requests}{{{scope},{labels},status="ok"}}', "values": "0+3x70"},
                            {"series": f'{requests}{{{scope},{labels},status="error"}}', "values": "0+1x70"},
                        ],
                        "promql_expr_test": [
                            {
                                "expr": "share",
                                "eval_time": "60m",
                                "exp_samples": [
                                    {"labels": 'share{environment="prod",status="ok"}', "value": 0.75},
                                    {"labels": 'share{environment="prod",status="error"}', "value": 0.25},
                                ],
                            },
                            {
                                "expr": "unpriced_hour",
                                "eval_time": "60m",
                                "exp_samples": [{"labels": 'unpriced_hour{environment="prod"}', "value": 0}],
                            },
                        ],
                    }
                ],
            }
        )
    )
    result = subprocess.run(
        ["promtool", "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_budget_stat_is_coloured_by_the_monthly_budget(dashboard: dict[str, Any]) -> None:
    (budget,) = [p for p in dashboard["panels"] if p["title"] == "LLM spend, last 30 days"]
    steps = budget["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 150.0, 225.0, 300.0]
    assert llm_cost.KEY == "llm-cost"
