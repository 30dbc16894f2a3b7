"""`lightkeeper budget check`: the error-budget policy as a deploy gate; `budget report`: the month.

A pipeline runs it before a risky release: exit 0 lets the deploy go on, 1 stops it
because a budget is below the threshold, and 2 means the gate could not decide (an
unknown SLO, nothing reachable, a bad argument) — a pipeline must treat that as a
failure too, but a person reading the log sees it is not the budget. A budget without
data (no traffic in the period) is reported and does not block: nothing was spent.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

if TYPE_CHECKING:
    from lightkeeper.spec.models import Spec

budget_app = typer.Typer(help="Error budgets: gate deploys on what is left.", no_args_is_help=True)


@dataclass(frozen=True)
class Reading:
    """The budget left for one SLO (in one environment, when the source splits them)."""

    slo: str
    environment: str | None
    remaining_ratio: float | None  # None: no data


class GateError(Exception):
    """The gate cannot decide; the message says why and is shown without a traceback."""


def parse_threshold(text: str) -> float:
    """`25%` or `25` -> 0.25; percentages outside 0-100 are refused."""
    raw = text.strip().removesuffix("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise GateError(f"--min-remaining {text!r} is not a percentage; write e.g. 25%") from None
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise GateError(f"--min-remaining {text!r} must be between 0% and 100%")
    return value / 100


def _get_json(url: str, params: dict[str, str], timeout: float, token: str | None) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url, params=params, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise GateError(f"cannot reach {url} ({exc.__class__.__name__}) within {timeout:g}s") from None
    if response.status_code != 200:
        raise GateError(f"{url} answered HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise GateError(f"{url} did not answer JSON") from None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def from_server(server: str, timeout: float, token: str | None) -> list[Reading]:
    """Budgets as the server computes them: `GET /sla/status`, field `slos`."""
    body = _get_json(f"{server.rstrip('/')}/sla/status", {}, timeout, token)
    slos = body.get("slos") if isinstance(body, dict) else None
    if not isinstance(slos, list):
        raise GateError(f"{server}/sla/status has no `slos` list; is the server older than the SLO engine?")
    readings = []
    for item in slos:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise GateError(f"{server}/sla/status lists an SLO without a name")
        remaining = None if item.get("no_data") else _finite(item.get("error_budget_remaining_ratio"))
        readings.append(Reading(item["name"], item.get("environment"), remaining))
    return readings


def from_prometheus(prometheus: str, spec: Spec, timeout: float, profile: str = "default") -> list[Reading]:
    """Budgets from the whole-period error ratio the generated rules record, via the shared math.

    `profile` is the one the rules were generated with: it scales the period window, which
    names the recording rule (`--profile test` records `ratio_rate12h` for a 30d period).
    """
    from lightkeeper import slo_math
    from lightkeeper.stack.profile import get_profile
    from lightkeeper.stack.slo import period_window
    from lightkeeper.stack.slo_rules import slo_error_ratio_record

    try:
        scale = get_profile(profile)
    except ValueError as exc:
        raise GateError(str(exc)) from None
    readings = []
    url = f"{prometheus.rstrip('/')}/api/v1/query"
    for slo in spec.slos:
        record = slo_error_ratio_record(scale.window(period_window(slo.period)))
        query = f'{record}{{service="{spec.service}",slo="{slo.name}"}}'
        body = _get_json(url, {"query": query}, timeout, None)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise GateError(f"Prometheus refused the query {query}")
        result = body.get("data", {}).get("result", [])
        if not result:
            readings.append(Reading(slo.name, None, None))
        for series in result:
            ratio = _finite(series.get("value", [None, None])[1])
            remaining = slo_math.budget_remaining_ratio(ratio, slo.objective)
            readings.append(Reading(slo.name, series.get("metric", {}).get("environment"), remaining))
    return readings


def verdicts(readings: list[Reading], minimum: float) -> tuple[bool, list[str]]:
    """Whether every budget clears `minimum`, and one line per reading saying why."""
    ok, lines = True, []
    for r in readings:
        where = f"{r.slo} ({r.environment})" if r.environment else r.slo
        limit = f"{minimum * 100:g}%"
        if r.remaining_ratio is None:
            lines.append(f"ok    {where}: no data in the period (no traffic), nothing spent; not gating")
        elif r.remaining_ratio >= minimum:
            lines.append(
                f"ok    {where}: {r.remaining_ratio * 100:.1f}% of the error budget left (>= {limit})"
            )
        else:
            ok = False
            lines.append(
                f"FAIL  {where}: {r.remaining_ratio * 100:.1f}% of the error budget left, below {limit}; "
                "hold risky deploys until it recovers"
            )
    return ok, lines


def select(readings: list[Reading], names: list[str]) -> list[Reading]:
    """Only the named SLOs; an unknown name is an error, never a silent pass."""
    if not names:
        return readings
    known = {r.slo for r in readings}
    unknown = [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise GateError(f"unknown SLO {', '.join(map(repr, unknown))}; known: {listed}")
    return [r for r in readings if r.slo in names]


def check(
    slo: Annotated[list[str] | None, typer.Option("--slo", help="Only this SLO (repeatable).")] = None,
    min_remaining: Annotated[
        str, typer.Option("--min-remaining", help="Least budget left to pass, e.g. 25%.")
    ] = "25%",
    server: Annotated[str | None, typer.Option("--server", help="Lightkeeper server URL.")] = None,
    prometheus: Annotated[str | None, typer.Option("--prometheus", help="Prometheus URL.")] = None,
    spec_path: Annotated[Path, typer.Option("--spec", "-s", help="The spec (with --prometheus).")] = Path(
        "lightkeeper.yaml"
    ),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for an answer.")] = 10.0,
    token_env: Annotated[
        str, typer.Option("--token-env", help="Environment variable holding the server's reader token.")
    ] = "LIGHTKEEPER_TOKEN",  # noqa: S107 - the variable's name, not a secret
    profile: Annotated[
        str, typer.Option("--profile", help="With --prometheus: the profile the rules were generated with.")
    ] = "default",
) -> None:
    """Exit 0 if every selected error budget is above --min-remaining, 1 if not, 2 if unknown."""
    try:
        minimum = parse_threshold(min_remaining)
        if (server is None) == (prometheus is None):
            raise GateError("give exactly one of --server URL or --prometheus URL")
        if not 0 < timeout <= 300:
            raise GateError("--timeout must be between 0 and 300 seconds")
        if server is not None:
            readings = from_server(server, timeout, os.environ.get(token_env) or None)
        else:
            assert prometheus is not None
            readings = from_prometheus(prometheus, _spec(spec_path), timeout, profile)
        chosen = select(readings, slo or [])
        if not chosen:
            raise GateError("no SLO to check: the source reports none")
    except GateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ok, lines = verdicts(chosen, minimum)
    for line in lines:
        typer.echo(line)
    raise typer.Exit(0 if ok else 1)


def _spec(path: Path) -> Spec:
    from lightkeeper.spec.loader import SpecError, load_spec

    try:
        return load_spec(path)
    except SpecError as exc:
        raise GateError(f"{path}: " + "; ".join(str(p) for p in exc.problems)) from None


_MONTH_TEXT = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_FORMATS = ("table", "json", "md")


def fetch_reports(server: str, names: list[str], month: str, timeout: float, token: str | None) -> list[Any]:
    """The server's monthly report of each named SLO (all of `/sla/status`'s when none are named)."""
    base = server.rstrip("/")
    if not names:
        names = [r.slo for r in from_server(server, timeout, token)]
        if not names:
            raise GateError(f"{server} knows no SLO")
    out = []
    for name in dict.fromkeys(names):
        url = f"{base}/api/slo/{quote(name, safe='')}/report"
        try:
            out.append(_get_json(url, {"month": month}, timeout, token))
        except GateError as exc:
            if str(exc).endswith("HTTP 404"):
                raise GateError(f"unknown SLO {name!r} on {server}") from None
            if str(exc).endswith("HTTP 400"):
                raise GateError(f"the server refused month {month!r}") from None
            raise
        if not isinstance(out[-1], dict) or not isinstance(out[-1].get("weeks"), list):
            raise GateError(f"{url} did not answer a report")
    return out


def _incidents(week: dict[str, Any]) -> str:
    found = week.get("incidents") or []
    return (
        ", ".join(f"#{i.get('id')} {i.get('probe')} ({str(i.get('started_at'))[:10]})" for i in found) or "-"
    )


def render(reports: list[Any], fmt: str) -> str:
    """The seed's weekly tracking table, as plain text, Markdown or JSON."""
    if fmt == "json":
        return json.dumps(reports if len(reports) != 1 else reports[0], indent=2)
    blocks = []
    for rep in reports:
        head = (
            f"{rep['name']} — {rep['month']}: objective {rep['objective_percent']}%, "
            f"budget {rep['error_budget_minutes']:.1f} min, verdict: {rep['verdict']}"
        )
        cells = [
            [
                f"{w['week']} ({w['start']}..{w['end']})",
                f"{w['budget_used_minutes']:.1f}",
                f"{w['budget_remaining_minutes']:.1f}",
                _incidents(w),
            ]
            for w in rep["weeks"]
        ]
        header = ["Week", "Used (min)", "Remaining (min)", "Incidents"]
        if fmt == "md":
            lines = [f"### {head}", "", "| " + " | ".join(header) + " |", "|---|---:|---:|---|"]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        else:
            widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
            lines = [head, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
            lines += [
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
            ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def report(
    month: Annotated[str, typer.Option("--month", help="Calendar month, YYYY-MM (UTC).")],
    slo: Annotated[list[str] | None, typer.Option("--slo", help="Only this SLO (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or md.")] = "table",
    server: Annotated[
        str, typer.Option("--server", help="Lightkeeper server URL.")
    ] = "http://127.0.0.1:8080",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for an answer.")] = 10.0,
    token_env: Annotated[
        str, typer.Option("--token-env", help="Environment variable holding the server's reader token.")
    ] = "LIGHTKEEPER_TOKEN",  # noqa: S107 - the variable's name, not a secret
) -> None:
    """Print each SLO's weekly budget table for a month: used, remaining, incidents, verdict."""
    try:
        if not _MONTH_TEXT.fullmatch(month):
            raise GateError(f"--month {month!r} is not YYYY-MM (e.g. 2026-11)")
        if fmt not in _FORMATS:
            raise GateError(f"--format {fmt!r} is not one of {', '.join(_FORMATS)}")
        if not 0 < timeout <= 300:
            raise GateError("--timeout must be between 0 and 300 seconds")
        reports = fetch_reports(server, slo or [], month, timeout, os.environ.get(token_env) or None)
        text = render(reports, fmt)
    except (GateError, KeyError, TypeError, ValueError) as exc:
        message = str(exc) if isinstance(exc, GateError) else f"{server} answered a malformed report ({exc})"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(text)


def register(app: typer.Typer) -> None:
    """Add `lightkeeper budget` to the root command."""
    budget_app.command("check")(check)
    budget_app.command("report")(report)
    app.add_typer(budget_app, name="budget")
