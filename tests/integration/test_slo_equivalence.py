"""The Python SLO engine and the generated Prometheus rules compute the same numbers.

For each synthetic series the engine (`lightkeeper.slo_math`) computes, at every
evaluation step, the error-budget remaining and each burn-rate tier's alert state:
windows of a day and more (scaled) as the rules build them, from 5-minute counts
(`slo_math.grid_error_ratio`), shorter ones from raw `rate()`s. Those values become
`promql_expr_test` expectations in a promtool test file over the
rules `lightkeeper generate --profile test` writes; the real `promtool test rules`
then fails on any step where the rules disagree. The engine's tiers come from its own
`DEFAULT_TIERS` (factor and threshold), never from the generated YAML, so a change on
either side alone fails the test. Only `for:` and `keep_firing_for:` (alert plumbing,
not SLO math) are read from the generated rules.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper import slo_math
from tests.support import promtool

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")

SCALE = 60  # the test profile divides every window and duration by 60
COUNT_STEP = slo_math.COUNT_STEP_SECONDS / SCALE  # the rules' count records: 5s
LONG_MIN = slo_math.LONG_WINDOW_MIN_SECONDS / SCALE  # from here up, windows add the counts
STEPS = 240  # one sample and one evaluation per second
SPEC = textwrap.dedent(
    """
    service: eqsvc
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
BASE = {"service": "eqsvc", "environment": "prod"}

# Per step: (good, bad) events added; None = missed scrape; "reset" = app restarted.
Step = tuple[int, int] | None | str


def _plan(*parts: tuple[int, Step]) -> list[Step]:
    out: list[Step] = []
    for count, step in parts:
        out.extend([step] * count)
    return out[:STEPS]


SCENARIOS: dict[str, list[Step]] = {
    "steady": _plan((STEPS, (999, 1))),
    "spike": _plan((60, (999, 1)), (60, (800, 200)), (STEPS, (999, 1))),
    "slow-burn": _plan((STEPS, (980, 20))),
    "counter-reset": _plan((80, (900, 100)), (1, "reset"), (STEPS, (900, 100))),
    "scrape-gap": _plan((70, (850, 150)), (30, None), (STEPS, (999, 1))),
    "no-traffic": _plan((STEPS, (0, 0))),
}


def _counters(plan: list[Step]) -> tuple[list[float | None], list[float | None]]:
    """Cumulative (good, bad) counter values per step; None where the scrape is missing."""
    good, bad = [0.0], [0.0]
    g = b = 0.0
    for step in plan:
        if step == "reset":
            g = b = 0.0
        elif isinstance(step, tuple):
            g, b = g + step[0], b + step[1]
        if step is None:
            good.append(None)
            bad.append(None)
        else:
            good.append(g)
            bad.append(b)
    return good, bad


def _samples(values: list[float | None]) -> list[slo_math.Sample]:
    return [(float(t), v) for t, v in enumerate(values) if v is not None]


def _labels(extra: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in {**BASE, **extra}.items()) + "}"


def _engine(
    objective: float, ratio_at: Callable[[float, float], float | None], keep: dict[str, tuple[float, float]]
) -> tuple[list[float | None], list[dict[str, str]]]:
    """Per step: budget remaining over the period, and each tier's alert state by long window."""
    period_s = slo_math.period_seconds("30d") / SCALE
    tiers = [
        slo_math.resolve_tier(t, objective, slo_math.period_seconds("30d")) for t in slo_math.DEFAULT_TIERS
    ]
    trackers = {}
    for tier in tiers:
        name = f"{tier.long_s // SCALE // 60}m"
        for_s, keep_s = keep[name]
        trackers[name] = (tier, slo_math.AlertTracker(for_s=for_s, keep_s=keep_s))
    remaining: list[float | None] = []
    states: list[dict[str, str]] = []
    for t in range(STEPS + 1):
        remaining.append(slo_math.budget_remaining_ratio(ratio_at(float(t), period_s), objective))
        now: dict[str, str] = {}
        for name, (tier, tracker) in trackers.items():
            cond = slo_math.tier_condition(
                ratio_at(float(t), tier.long_s / SCALE),
                ratio_at(float(t), tier.short_s / SCALE),
                float(tier.threshold),
            )
            now[name] = tracker.step(float(t), cond)
        states.append(now)
    return remaining, states


def _plumbing(rule_file: Path, alert: str) -> dict[str, tuple[float, float]]:
    """long_window -> (for, keep_firing_for) in seconds, from the generated alert rules."""
    out = {}
    for group in yaml.safe_load(rule_file.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                out[rule["labels"]["long_window"]] = (
                    float(slo_math.duration_seconds(rule.get("for", "0s"))),
                    float(slo_math.duration_seconds(rule.get("keep_firing_for", "0s"))),
                )
    return out


def _expr_tests(
    slo: str, alert: str, remaining: list[float | None], states: list[dict[str, str]]
) -> list[Any]:
    tests: list[Any] = []
    rec = f'slo:error_budget:remaining_ratio{{slo="{slo}"}}'
    for t in range(STEPS + 1):
        value = remaining[t]
        if value is None:  # no data: the rule has no finite value (absent, or NaN from 0/0)
            tests.append(
                {
                    "expr": f"count({rec} == {rec}) or vector(0)",
                    "eval_time": f"{t}s",
                    "exp_samples": [{"labels": "{}", "value": 0}],
                }
            )
        else:
            tests.append(
                {
                    "expr": f"abs({rec} - {value!r}) < bool 1e-6",
                    "eval_time": f"{t}s",
                    "exp_samples": [{"labels": _labels({"slo": slo}), "value": 1}],
                }
            )
        active = sorted((w, s) for w, s in states[t].items() if s != "inactive")
        tests.append(
            {
                "expr": f'count by (long_window, alertstate) (ALERTS{{alertname="{alert}"}})',
                "eval_time": f"{t}s",
                "exp_samples": [
                    {"labels": f'{{alertstate="{s}",long_window="{w}"}}', "value": 1} for w, s in active
                ],
            }
        )
    return tests


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return promtool.generate(tmp_path_factory.mktemp("slo-eq"), SPEC) / "prometheus" / "rules"


def _suite(rules: Path, scenario: str) -> tuple[dict[str, Any], list[list[dict[str, str]]]]:
    good, bad = _counters(SCENARIOS[scenario])
    total = [None if g is None or b is None else g + b for g, b in zip(good, bad, strict=True)]
    s_good, s_bad, s_total = _samples(good), _samples(bad), _samples(total)
    series = [
        {
            "series": f"http_requests_total{_labels({'status_code': '200'})}",
            "values": promtool.series_text(good),
        },
        {
            "series": f"http_requests_total{_labels({'status_code': '500'})}",
            "values": promtool.series_text(bad),
        },
        {
            "series": f"http_request_duration_seconds_count{_labels({})}",
            "values": promtool.series_text(total),
        },
        {
            "series": f"http_request_duration_seconds_bucket{_labels({'le': '0.3'})}",
            "values": promtool.series_text(good),
        },
    ]

    def counted(w: float) -> bool:
        return slo_math.uses_count_records(w, COUNT_STEP, LONG_MIN)

    def avail(t: float, w: float) -> float | None:
        if counted(w):
            return slo_math.grid_error_ratio([s_good, s_bad], t, w, COUNT_STEP, bad=[s_bad])
        return slo_math.window_error_ratio([s_bad], [s_good, s_bad], t, w)

    def latency(t: float, w: float) -> float | None:
        if counted(w):
            return slo_math.grid_error_ratio([s_total], t, w, COUNT_STEP, good=[s_good])
        return slo_math.latency_error_ratio([s_good], [s_total], t, w)

    tests: list[Any] = []
    all_states = []
    for slo, alert, objective, ratio in (
        ("avail", "AvailErrorBudgetBurn", 99.5, avail),
        ("fast", "FastErrorBudgetBurn", 99.0, latency),
    ):
        remaining, states = _engine(objective, ratio, _plumbing(rules / f"slo-{slo}.yml", alert))
        tests += _expr_tests(slo, alert, remaining, states)
        all_states.append(states)
    suite = {
        "rule_files": [str(rules / "slo-avail.yml"), str(rules / "slo-fast.yml")],
        "evaluation_interval": "1s",
        "tests": [{"name": scenario, "interval": "1s", "input_series": series, "promql_expr_test": tests}],
    }
    return suite, all_states


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_engine_and_generated_rules_agree(rules_dir: Path, tmp_path: Path, scenario: str) -> None:
    suite, states = _suite(rules_dir, scenario)
    result = promtool.run(tmp_path / "eq.yml", suite)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    fired = {s for per_slo in states for step in per_slo for s in step.values()}
    if scenario in ("spike", "slow-burn", "counter-reset", "scrape-gap"):
        assert "firing" in fired, "the scenario must exercise a firing alert"
    if scenario in ("steady", "no-traffic"):
        assert fired == {"inactive"}


def test_a_changed_factor_on_one_side_fails(
    rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Perturb the engine's page-fast budget share only: promtool must now disagree."""
    tiers = list(slo_math.DEFAULT_TIERS)
    tiers[0] = slo_math.TierSpec("page-fast", "1h", "5m", "0.03", "critical", "2m")
    monkeypatch.setattr(slo_math, "DEFAULT_TIERS", tuple(tiers))
    suite, _ = _suite(rules_dir, "spike")
    result = promtool.run(tmp_path / "eq.yml", suite)
    assert result.returncode != 0
