"""The generated "SLOs & Error Budget" dashboard shows the numbers the server reports.

One constructed series (steady 0.1 % bad, then 20 % bad for the last 20 seconds, so
every window sees a different share) feeds both sides. The server side is
`evaluate.fields()` over the error ratios `slo_math` computes at the test profile's
windows (as Prometheus mode reads them back from the recorded rules). The dashboard
side is every SLO panel query of the generated `slos.json`, its variables filled in
and its windows scaled like the rules, evaluated by the real `promtool test rules`
with the generated rules loaded.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper import slo_math
from lightkeeper.server.slo.evaluate import fields
from lightkeeper.server.slo.reading import Reading
from lightkeeper.spec.models import Spec
from lightkeeper.stack.profile import get_profile
from tests.support import promtool

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")

SPEC = textwrap.dedent(
    """
    service: dashsvc
    environments:
      prod:
        targets: ["app:8000"]
    slos:
      - name: avail
        objective: 99.5
        period: 30d
        sli: {kind: availability}
      - name: fast
        objective: 99
        period: 30d
        sli: {kind: latency, threshold_seconds: 0.3}
    """
)
LABELS = 'service="dashsvc",environment="prod"'
END = 400  # seconds of one-second samples; shorter than the scaled 1d window, so long windows see it all
SPIKE = 20  # the last seconds are 20 % bad

_WINDOW = re.compile(r"\[([0-9a-z]+)\]")


def _counters() -> tuple[list[float], list[float]]:
    good, bad = [0.0], [0.0]
    for t in range(1, END + 1):
        g, b = (800, 200) if t > END - SPIKE else (999, 1)
        good.append(good[-1] + g)
        bad.append(bad[-1] + b)
    return good, bad


def _server_states(spec: Spec) -> dict[str, dict[str, Any]]:
    """`fields()` per SLO over the ratios of the same series at the scaled windows."""
    good, bad = _counters()
    total = [g + b for g, b in zip(good, bad, strict=True)]
    s_good, s_bad, s_total = ([(float(t), v) for t, v in enumerate(c)] for c in (good, bad, total))

    def ratio(kind: str, seconds: float) -> float | None:
        w = seconds / promtool.SCALE
        if kind == "availability":
            return slo_math.window_error_ratio([s_bad], [s_good, s_bad], END, w)
        return slo_math.latency_error_ratio([s_good], [s_total], END, w)

    out = {}
    for slo in spec.slos:
        kind = slo.sli.kind
        windows = {w: ratio(kind, slo_math.duration_seconds(w)) for w in slo_math.BURN_WINDOWS}
        reading = Reading(
            float(END), ratio(kind, slo_math.period_seconds(slo.period)), windows, source="prometheus"
        )
        out[slo.name] = fields(slo, reading)
    return out


def _fill(expr: str, variables: dict[str, str]) -> str:
    """Grafana's variable substitution, then the test profile's window scaling (as the rules get)."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${name}", variables[name])
    scale = get_profile("test").window
    return _WINDOW.sub(lambda m: f"[{scale(m[1])}]", expr)


def _options(dashboard: dict[str, Any], name: str) -> list[str]:
    (found,) = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    return [o["value"] for o in found["options"]]


def _panels(dashboard: dict[str, Any], slo: str) -> dict[str, list[dict[str, Any]]]:
    """Title -> targets of the panels in the SLO's row."""
    out: dict[str, list[dict[str, Any]]] = {}
    mine = False
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            mine = panel["title"].startswith(f"{slo}:")
        elif mine:
            out[panel["title"]] = panel["targets"]
    return out


def _expectations(
    dashboard: dict[str, Any], spec: Spec, states: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """(dashboard query, server number) for every SLO panel, for every window the dashboard offers."""
    base = {"service": "dashsvc", "environment": ".*"}
    checks: list[dict[str, Any]] = []
    for slo in spec.slos:
        state = states[slo.name]
        budget = float(slo_math.error_budget(slo.objective))
        panels = _panels(dashboard, slo.name)
        period = {**base, "slo_period": slo.period}
        (sli,) = panels["SLI over $slo_period"]
        checks.append(promtool.close_to(_fill(sli["expr"], period), state["sli_percent"] / 100))
        (left,) = panels["Error budget remaining"]
        checks.append(promtool.close_to(_fill(left["expr"], period), state["error_budget_remaining_ratio"]))
        (minutes,) = panels[f"Budget left over {slo.period} (minutes)"]
        checks.append(
            promtool.close_to(_fill(minutes["expr"], base), state["error_budget_remaining_minutes"])
        )
        for window in _options(dashboard, "burn_window"):
            chosen = {**base, "burn_window": window}
            rate = state["burn_rates"][window]
            (burn,) = panels["Burn rate over $burn_window"]
            checks.append(promtool.close_to(_fill(burn["expr"], chosen), rate))
            (share,) = panels["Error ratio over $burn_window"]
            checks.append(promtool.close_to(_fill(share["expr"], chosen), rate * budget))
        per_window = panels["Burn rate per alert window"]
        assert len(per_window) == len(_options(dashboard, "burn_window"))
        for target in per_window:
            window = target["legendFormat"].rsplit(" ", 1)[1]
            checks.append(promtool.close_to(_fill(target["expr"], base), state["burn_rates"][window]))
    return checks


def _suite(out: Path | None, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The promtool suite; without `out`, no rule files (raw-counter panels only, much faster)."""
    good, bad = _counters()
    total = [g + b for g, b in zip(good, bad, strict=True)]
    series = [
        {
            "series": f'http_requests_total{{{LABELS},status_code="200"}}',
            "values": promtool.series_text(list(good)),
        },
        {
            "series": f'http_requests_total{{{LABELS},status_code="500"}}',
            "values": promtool.series_text(list(bad)),
        },
        {
            "series": f"http_request_duration_seconds_count{{{LABELS}}}",
            "values": promtool.series_text(list(total)),
        },
        {
            "series": f'http_request_duration_seconds_bucket{{{LABELS},le="0.3"}}',
            "values": promtool.series_text(list(good)),
        },
    ]
    tests = [
        {"expr": c["expr"], "eval_time": f"{END}s", "exp_samples": [{"labels": "{}", "value": c["value"]}]}
        for c in checks
    ]
    rules = [] if out is None else [out / "prometheus" / "rules" / f"slo-{n}.yml" for n in ("avail", "fast")]
    return {
        "rule_files": [str(r) for r in rules],
        "evaluation_interval": "1s",
        "tests": [{"name": "dashboard", "interval": "1s", "input_series": series, "promql_expr_test": tests}],
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Spec]:
    out = promtool.generate(tmp_path_factory.mktemp("slo-dash"), SPEC)
    dashboard = json.loads((out / "grafana" / "dashboards" / "slos.json").read_text())
    return out, dashboard, Spec.model_validate(yaml.safe_load(SPEC))


def test_every_slo_panel_equals_the_servers_number(
    generated: tuple[Path, dict[str, Any], Spec], tmp_path: Path
) -> None:
    out, dashboard, spec = generated
    states = _server_states(spec)
    burn = states["avail"]["burn_rates"]
    # the series must tell the windows apart, or a wrong window substitution would pass
    assert len({round(burn[w], 6) for w in ("5m", "30m", "1h", "2h", "6h", "1d")}) == 6, burn
    assert (
        states["avail"]["error_budget_remaining_ratio"] < states["fast"]["error_budget_remaining_ratio"] < 1
    )
    checks = _expectations(dashboard, spec, states)
    assert len(checks) == 2 * (3 + 3 * 7)
    result = promtool.run(tmp_path / "dash.yml", _suite(out, checks))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_a_panel_on_the_wrong_window_is_caught(
    generated: tuple[Path, dict[str, Any], Spec], tmp_path: Path
) -> None:
    """Expect the 1h burn rate where the dashboard shows 5m: promtool must disagree, on that panel."""
    _, dashboard, spec = generated
    states = _server_states(spec)
    rates = states["avail"]["burn_rates"]
    rates["5m"], rates["1h"] = rates["1h"], rates["5m"]
    checks = [c for c in _expectations(dashboard, spec, states) if "slo:" not in c["expr"]]
    wrong = [c for c in checks if "[5s]" in c["expr"] and "status_code" in c["expr"]]
    assert wrong, "the avail 5m panels use the scaled 5s window"
    result = promtool.run(tmp_path / "dash.yml", _suite(None, wrong))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout + result.stderr and "[5s]" in result.stdout + result.stderr
