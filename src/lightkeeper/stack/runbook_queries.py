"""The copy-paste queries of a runbook: PromQL, LogQL, TraceQL and the amtool silence.

Each query names only what the generated stack really has: the panel's own PromQL with
Grafana's variables filled in, the Loki labels Alloy keeps (`alloy.LOG_LABELS`) and the
structured metadata it attaches (`alloy.LOG_METADATA`), the resource attributes the
SDK's tracer provider sets, and the alert's own labels for the silence. An environment
that is not fixed by the alert stays a visible `<environment>` placeholder rather than a
guess: a query against the wrong environment looks healthy.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from lightkeeper.spec.models import Spec
from lightkeeper.stack import alloy, promql
from lightkeeper.stack import slo as slo_math
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.panel_links import Panel, label_environments, slo_row
from lightkeeper.stack.rule_defs import AlertDef
from lightkeeper.stack.rule_exprs import RATE_WINDOW
from lightkeeper.stack.runbook_content import AlertText, CategoryText

ENVIRONMENT = "<environment>"
# The SDK's tracer resource (sdk/trace_provider.py); the stack may not import the SDK.
TRACE_SERVICE = "resource.service.name"
TRACE_ENVIRONMENT = "resource.deployment.environment"
RANGE = "1h"  # for panels over the dashboard's time range ($__range)
_VARIABLE = re.compile(r"\$(\w+)")


@dataclass(frozen=True)
class Queries:
    promql: str
    logql: str
    traceql: str
    request_logs: str  # every line of one request, from the structured metadata
    trace_logs: str  # every line of one trace


def environment(spec: Spec, group: Sequence[AlertDef]) -> str | None:
    """The environment the queries select: fixed by the rules, a placeholder, or None (no label)."""
    found: set[str] = set()
    for alert in group:
        envs = label_environments(spec, alert)
        if envs is None:
            return None
        found.update(envs if alert.environments else [ENVIRONMENT])
    return found.pop() if len(found) == 1 else ENVIRONMENT


def _fastest_window(spec: Spec, group: Sequence[AlertDef]) -> str:
    windows = [a.long_window for a in group if a.long_window]
    if windows:
        return min(windows, key=promql.seconds)
    name = slo_row(spec, group[0])
    slo = next(s for s in spec.slos if s.name == name)
    return min((t.long_window for t in slo_math.resolve_tiers(slo)), key=promql.seconds)


def _slo_period(spec: Spec, alert: AlertDef) -> str:
    name = slo_row(spec, alert)
    slo = next(s for s in spec.slos if s.name == name)
    return slo_math.period_window(slo.period)


def dashboard_variables(spec: Spec, group: Sequence[AlertDef], text: str) -> dict[str, str]:
    """Values for the SLO dashboard's own variables that `text` (a query or a title) uses."""
    found: dict[str, str] = {}
    for name in _VARIABLE.findall(text):
        if name == "burn_window":
            found[name] = _fastest_window(spec, group)
        elif name == "slo_period":
            found[name] = _slo_period(spec, group[0])
    return found


def fill(spec: Spec, group: Sequence[AlertDef], text: str, env: str | None) -> str:
    """`text` with Grafana's variables replaced by the values Prometheus needs."""
    values = {
        "service": spec.service,
        "environment": env or ".*",
        "__rate_interval": RATE_WINDOW,
        "__range": RANGE,
        **dashboard_variables(spec, group, text),
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise GenerationError(f"no runbook value for the dashboard variable ${name} in {text!r}")
        return values[name]

    return _VARIABLE.sub(value, text)


def panel_promql(
    spec: Spec, group: Sequence[AlertDef], panel: Panel, text: AlertText, env: str | None
) -> str:
    """The panel's query as Prometheus reads it; the alert's own rule when there is no panel."""
    if not panel.exprs:
        return group[0].expr.strip()
    return fill(spec, group, panel.exprs[min(text.target, len(panel.exprs) - 1)], env)


def _threshold_ms(group: Sequence[AlertDef]) -> str:
    """The lowest threshold of the alert (the first tier to fire), in milliseconds."""
    values = [a.threshold for a in group if a.threshold is not None]
    return str(round(min(values) * 1000)) if values else "1000"


def _stream(spec: Spec, env: str | None, level: str = "") -> str:
    matchers = [f"service={promql.quote(spec.service)}"]
    if env is not None:
        matchers.append(f"environment={promql.quote(env)}")
    if level:
        matchers.append(f"level=~{promql.quote(level)}")
    return "{" + ", ".join(matchers) + "}"


def queries(spec: Spec, group: Sequence[AlertDef], panel: Panel, text: AlertText) -> Queries:
    env = environment(spec, group)
    threshold = _threshold_ms(group)
    pipeline = text.logs.pipeline.replace("{threshold_ms}", threshold)
    scope = [f"{TRACE_SERVICE} = {promql.quote(spec.service)}"]
    if env is not None:
        scope.append(f"{TRACE_ENVIRONMENT} = {promql.quote(env)}")
    condition = text.traces.replace("{threshold_ms}", threshold)
    request_id, trace_id = (f for f in ("request_id", "trace_id") if f in alloy.LOG_METADATA)
    return Queries(
        promql=panel_promql(spec, group, panel, text, env),
        logql=f"{_stream(spec, env, text.logs.level)} {pipeline}",
        traceql="{ " + " && ".join([*scope, condition]) + " }",
        request_logs=f'{_stream(spec, env)} | {request_id} = "<{request_id}>"',
        trace_logs=f'{_stream(spec, env)} | {trace_id} = "<{trace_id}>"',
    )


def silence_command(spec: Spec, group: Sequence[AlertDef], category: CategoryText) -> str:
    """`amtool silence add` for exactly this alert, bounded in time, with a comment to fill.

    SLO alerts match the slowest tier's window only: copying the command can never
    silence the fast-burn page.
    """
    first = group[0]
    matchers = [f"alertname={first.name}", f"service={first.service}"]
    env = environment(spec, group)
    if env is not None:
        matchers.append(f"environment={env}")
    windows = [a.long_window for a in group if a.long_window]
    if first.category == "slo" and windows:
        matchers.append(f"long_window={max(windows, key=promql.seconds)}")
    args = ["amtool", "silence", "add"]
    if spec.prometheus.alertmanagers:
        args.append(f"--alertmanager.url=http://{spec.prometheus.alertmanagers[0]}")
    args += [f"--duration={category.silence.duration}", "--comment=<ticket>: <why it is safe>", *matchers]
    return shlex.join(args)
