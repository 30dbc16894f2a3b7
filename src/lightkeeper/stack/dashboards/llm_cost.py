"""LLM cost: spend, tokens, outcomes, latency and pricing coverage of LLM calls.

Read from the Prometheus metrics the SDK's LLM wrappers write, so the dashboard works
without the Lightkeeper server (whose cost reports break spend down by user and
workspace, which a metric label must never carry). Spend is shown per hour, the unit
the LLMCostRateHigh threshold is written in; unpriced calls sit next to it because
spend without them is a lower bound, not the bill.
"""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack import promql
from lightkeeper.stack.dashboards import panels as p
from lightkeeper.stack.dashboards import queries as q
from lightkeeper.stack.dashboards.panels import Json, Query
from lightkeeper.stack.names import DashboardKey

KEY: DashboardKey = "llm-cost"
COST_FAMILY = "llm_cost_usd_per_hour"
UNPRICED_FAMILY = "llm_unpriced_calls_per_second"

_MODEL = ("environment", "gen_ai_request_model")
_MODEL_LEGEND = "{{environment}} {{gen_ai_request_model}}"
_QUANTILES = (("p50", "0.5"), ("p95", "0.95"))


def build(spec: Spec) -> Json:
    panels: list[Json] = []
    if cat.all_emitted(cat.LLM_COST, cat.LLM_UNPRICED_CALLS):
        panels += _spend(spec)
    if cat.all_emitted(cat.GEN_AI_TOKEN_USAGE, cat.LLM_REQUESTS, cat.GEN_AI_ERRORS):
        panels += _volume()
    if cat.all_emitted(cat.GEN_AI_OPERATION_DURATION, cat.GEN_AI_TIME_TO_FIRST_CHUNK):
        panels += _latency()
    if cat.all_emitted(cat.LLM_UNPRICED_CALLS, cat.LLM_EVENTS_DROPPED):
        panels += _coverage(spec)
    return p.dashboard(
        spec,
        KEY,
        panels,
        description=f"What {spec.service}'s LLM calls cost, use, return and how long they take.",
    )


def _per_hour(by: tuple[str, ...]) -> str:
    return f"{q.sum_rate(cat.LLM_COST, by)} * 3600"


def _spend(spec: Spec) -> list[Json]:
    unpriced = q.sum_rate(cat.LLM_UNPRICED_CALLS, window="1h", fn="increase")
    return [
        p.row("Spend"),
        p.stat(
            "LLM spend rate",
            [Query(_per_hour(q.BY_ENV), "{{environment}}")],
            unit="currencyUSD",
            description="US dollars per hour at the current rate. " + p.threshold_note(spec, COST_FAMILY),
            thresholds=p.alert_thresholds(spec, COST_FAMILY),
            decimals=2,
            w=8,
        ),
        _budget_panel(spec),
        p.stat(
            "Unpriced calls, last hour",
            [
                Query(
                    f"{unpriced} or {q.sum_rate(cat.LLM_REQUESTS, window='1h', fn='increase')} * 0",
                    "{{environment}}",
                )
            ],
            unit="short",
            decimals=0,
            description="Calls whose cost is unknown (never counted as $0): "
            "while this is above zero, the spend shown is a lower bound.",
            thresholds=p.fixed_thresholds(("green", None), ("orange", 1.0)),
            w=8,
        ),
        p.timeseries(
            "LLM spend by model (USD/h)",
            [
                Query(
                    _per_hour(("environment", "provider", "model")), "{{environment}} {{provider}} {{model}}"
                )
            ],
            unit="currencyUSD",
        ),
        p.timeseries(
            "LLM spend by operation (USD/h)",
            [Query(_per_hour(("environment", "operation")), "{{environment}} {{operation}}")],
            unit="currencyUSD",
            stack=True,
            description="Operations are the names given to llm_operation() or declared in llm_operations.",
        ),
    ]


def _budget_panel(spec: Spec) -> Json:
    """Spend over the last 30 days against the monthly budget, coloured at 50/75/100 %."""
    spend = [Query(q.sum_rate(cat.LLM_COST, window="30d", fn="increase"), "{{environment}}")]
    budget = spec.budgets.llm_monthly_usd
    if budget is None:
        return p.stat(
            "LLM spend, last 30 days",
            spend,
            unit="currencyUSD",
            decimals=2,
            w=8,
            description="Set budgets.llm_monthly_usd to colour this by budget.",
        )
    value = promql.decimal(budget)
    steps = p.fixed_thresholds(
        ("green", None),
        ("yellow", float(value * promql.decimal("0.5"))),
        ("orange", float(value * promql.decimal("0.75"))),
        ("red", float(value)),
    )
    return p.stat(
        "LLM spend, last 30 days",
        spend,
        unit="currencyUSD",
        decimals=2,
        thresholds=steps,
        description=f"Against the monthly budget of {promql.number(budget)} USD (50 %, 75 %, 100 %).",
        w=8,
    )


def _status_share() -> str:
    """Each outcome's share of calls; `ignoring(status)` divides by the environment's total."""
    by_status = q.sum_rate(cat.LLM_REQUESTS, ("environment", "status"))
    total = q.sum_rate(cat.LLM_REQUESTS)
    return f"{by_status}\n/ ignoring (status) group_left\n{total}"


def _volume() -> list[Json]:
    return [
        p.row("Tokens and outcomes"),
        p.timeseries(
            "Tokens by type",
            [
                Query(
                    q.sum_rate(cat.GEN_AI_TOKEN_USAGE, (*_MODEL, "gen_ai_token_type"), suffix="_sum"),
                    "{{environment}} {{gen_ai_request_model}} {{gen_ai_token_type}}",
                )
            ],
            unit="short",
            description="Tokens per second; input includes cached input, output includes reasoning.",
            w=8,
        ),
        p.timeseries(
            "LLM requests by status",
            [
                Query(
                    q.sum_rate(cat.LLM_REQUESTS, ("environment", "provider", "status")),
                    "{{environment}} {{provider}} {{status}}",
                )
            ],
            unit="ops",
            stack=True,
            w=8,
        ),
        p.timeseries(
            "Share of calls by status",
            [Query(_status_share(), "{{environment}} {{status}}")],
            unit="percentunit",
            description="error: the provider answered with an error (not billed); "
            "abandoned: a stream closed or dropped before its end (billed for what was generated).",
            w=8,
        ),
        p.timeseries(
            "LLM errors by model and type",
            [
                Query(
                    q.sum_rate(cat.GEN_AI_ERRORS, (*_MODEL, "error_type")),
                    "{{environment}} {{gen_ai_request_model}} {{error_type}}",
                )
            ],
            unit="ops",
            w=24,
        ),
    ]


def _latency() -> list[Json]:
    return [
        p.row("Latency"),
        p.timeseries(
            "LLM latency by model",
            [
                Query(
                    q.quantile(value, cat.GEN_AI_OPERATION_DURATION, _MODEL),
                    f"{name} {_MODEL_LEGEND}",
                    exemplar=True,
                )
                for name, value in _QUANTILES
            ],
            unit="s",
            description="Whole call, to the last streamed chunk for streams.",
        ),
        p.timeseries(
            "Time to first chunk by model",
            [
                Query(q.quantile(value, cat.GEN_AI_TIME_TO_FIRST_CHUNK, _MODEL), f"{name} {_MODEL_LEGEND}")
                for name, value in _QUANTILES
            ],
            unit="s",
            description="Streams only: how long a user waits before the first words appear.",
        ),
    ]


def _coverage(spec: Spec) -> list[Json]:
    return [
        p.row("Pricing coverage"),
        p.timeseries(
            "Unpriced calls by model",
            [
                Query(
                    q.sum_rate(cat.LLM_UNPRICED_CALLS, ("environment", "provider", "model")),
                    "{{environment}} {{provider}} {{model}}",
                )
            ],
            unit="ops",
            description="A model missing from the price table (add it to llm_prices) or a call that "
            "reported no usage (a stream without stream_options.include_usage). "
            + p.threshold_note(spec, UNPRICED_FAMILY),
        ),
        p.timeseries(
            "Cost events not delivered",
            [
                Query(
                    q.sum_rate(cat.LLM_EVENTS_DROPPED, ("environment", "reason")),
                    "{{environment}} {{reason}}",
                )
            ],
            unit="ops",
            description="Cost events the SDK dropped on the way to the Lightkeeper server (buffer full "
            "while it was away, or refused): the server's cost reports miss them; these metrics do not.",
        ),
    ]
