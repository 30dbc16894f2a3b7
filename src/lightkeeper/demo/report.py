"""The demo summary as a person reads it in a terminal."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lightkeeper.demo.monitor import MonitorSummary, SloStatus
from lightkeeper.demo.product import ProductSummary
from lightkeeper.demo.runner import DemoSummary


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _requests_table(summary: DemoSummary) -> Table:
    http = summary.http
    table = Table(
        title="Requests (read back from /metrics)",
        title_justify="left",
        show_header=False,
        box=box.SIMPLE,
        pad_edge=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("total", f"{http.total_requests:,}")
    for status_class, count in http.by_status_class.items():
        table.add_row(status_class, f"{count:,}")
    table.add_row("error rate (5xx)", f"{http.error_rate:.1%}")
    for name, value in http.latency_ms.items():
        table.add_row(f"latency {name}", _ms(value))
    check = summary.reconciliation
    verdict = (
        "[green]exact match[/]" if check.matches else f"[yellow]{len(check.differences)} series differ[/]"
    )
    table.add_row("sent by the generator", f"{check.sent:,}  ({verdict})")
    return table


def _routes_table(summary: DemoSummary) -> Table:
    table = Table(title="Top routes by traffic", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("method")
    table.add_column("route", overflow="fold")
    for column in ("requests", "5xx", "p50", "p95"):
        table.add_column(column, justify="right")
    for route in summary.http.top_routes:
        table.add_row(
            route.method, route.route, f"{route.requests:,}", str(route.server_errors),
            _ms(route.p50_ms), _ms(route.p95_ms),
        )  # fmt: skip
    return table


def _checks(body: Any) -> list[tuple[str, str, str]]:
    """(name, status, latency) rows from a /health body, whatever its exact nesting."""
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    items = checks.items() if isinstance(checks, dict) else ((c.get("name", "?"), c) for c in checks)
    rows = []
    for name, result in items:
        result = result if isinstance(result, dict) else {"status": result}
        latency = result.get("latency_ms", result.get("duration_ms"))
        rows.append((str(name), str(result.get("status", "?")), "-" if latency is None else f"{latency} ms"))
    return rows


def _health_table(summary: DemoSummary) -> Table:
    health = summary.health
    status = health.body.get("status", "?") if isinstance(health.body, dict) else "?"
    table = Table(
        title=f"Health: {status} (HTTP {health.status_code})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("check")
    table.add_column("status")
    table.add_column("latency", justify="right")
    for row in _checks(health.body):
        table.add_row(*row)
    return table


_STATE_STYLE = {"up": "green", "down": "red", "maintenance": "yellow"}


def _monitor_table(monitor: MonitorSummary) -> Table:
    table = Table(
        title="Probes (lightkeeper server)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in ("probe", "type", "state", "latency", "error"):
        table.add_column(column, justify="right" if column == "latency" else "left")
    for probe in monitor.probes:
        style = _STATE_STYLE.get(probe.state, "")
        state = Text(probe.state, style=style)
        table.add_row(probe.name, probe.type, state, _ms(probe.last_latency_ms), probe.last_error or "")
    return table


def _table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def budget_text(slo: SloStatus) -> Text:
    """Remaining budget as a share and in minutes; red once overspent, yellow below a quarter."""
    ratio, minutes = slo.error_budget_remaining_ratio, slo.error_budget_remaining_minutes
    if slo.no_data or ratio is None or minutes is None:
        return Text("no data", style="dim")
    style = "red" if ratio < 0 else "yellow" if ratio < 0.25 else "green"
    return Text(f"{ratio:.1%} ({minutes:,.0f} of {slo.error_budget_minutes or 0:,.0f} min)", style=style)


def slo_table(slos: list[SloStatus]) -> Table:
    table = _table("SLOs (lightkeeper server)", "slo", "objective", "SLI", "budget remaining", "firing",
                   right=("objective", "SLI", "budget remaining"))  # fmt: skip
    for slo in slos:
        objective = "-" if slo.objective_percent is None else f"{slo.objective_percent:g} %"
        sli = "-" if slo.sli_percent is None else f"{slo.sli_percent:.2f} %"
        table.add_row(slo.name, objective, sli, budget_text(slo), ", ".join(slo.firing) or "-")
    return table


def usd(value: float) -> str:
    """Dollars with enough digits to show a fraction of a cent (one small call costs ~$0.00001)."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}"


def llm_table(product: ProductSummary) -> Table:
    table = _table("LLM calls (priced offline)", "provider", "model", "calls", "errors", "cost",
                   right=("calls", "errors", "cost"))  # fmt: skip
    for model in product.llm:
        errors = sum(n for status, n in model.requests.items() if status != "ok")
        table.add_row(
            model.provider, model.model, f"{sum(model.requests.values()):,}", str(errors), usd(model.cost_usd)
        )
    if len(product.llm) > 1:
        table.add_row("total", "", f"{product.llm_requests:,}", "", usd(product.llm_cost_usd))
    return table


def workflow_table(product: ProductSummary) -> Table:
    table = _table("Workflow (sampled from the database)", "entity", "by status", "stuck")
    for entity, statuses in product.workflow.items():
        counts = ", ".join(f"{status} {n}" for status, n in statuses.items() if n) or "none"
        stuck = ", ".join(f"> {t}: {n}" for t, n in product.stuck.get(entity, {}).items()) or "-"
        table.add_row(entity, counts, stuck)
    return table


def usage_table(product: ProductSummary) -> Table:
    table = _table("Usage events and sign-ins", "event", "count", right=("count",))
    for event, count in product.usage.items():
        table.add_row(event, f"{count:,}")
    for key, count in product.auth_attempts.items():
        table.add_row(f"sign-in {key}", f"{count:,}")
    for dependency, outcomes in product.dependencies.items():
        table.add_row(f"dependency {dependency}", ", ".join(f"{o} {n}" for o, n in outcomes.items()))
    return table


def render(summary: DemoSummary, console: Console) -> None:
    service = summary.service
    name = f"{service.get('service', '?')} {service.get('version', '')} ({service.get('environment', '')})"
    rate = f"{summary.achieved_rps:g} req/s (target {summary.target_rps:g})"
    title = f"{name} - {summary.duration_seconds:.0f} s at {rate}"
    console.rule(Text(title))
    console.print(f"app: {summary.base_url}   database: {summary.database}", highlight=False)
    console.print(_requests_table(summary), _routes_table(summary), _health_table(summary))
    if not summary.reconciliation.matches:
        console.print("[yellow]The service's counters and the generator's tally differ:[/]")
        for diff in summary.reconciliation.differences:
            series = f"{diff.method} {diff.route} {diff.status_code}"
            console.print(f"  {series}: sent {diff.sent}, seen {diff.seen}", highlight=False)
    if summary.traffic.transport_errors:
        errors = ", ".join(f"{name} x{count}" for name, count in summary.traffic.transport_errors.items())
        console.print(f"[yellow]Requests that got no response:[/] {errors}")
    product = summary.product
    if product.llm:
        console.print(llm_table(product))
    if product.workflow:
        console.print(workflow_table(product))
    if product.usage or product.auth_attempts or product.dependencies:
        console.print(usage_table(product))
    if summary.monitor is not None:
        console.print(_monitor_table(summary.monitor))
        if summary.monitor.slos:
            console.print(slo_table(summary.monitor.slos))
        console.print(f"Status page: {summary.monitor.status_page_url}", highlight=False)
