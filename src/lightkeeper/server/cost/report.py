"""`lightkeeper cost report --month 2026-11`: the month's spend as a terminal table.

With `--server` the summary comes from a running server's API (admin token from
`LIGHTKEEPER_ADMIN_TOKEN`); without it, from the local store (`--db` or
`LIGHTKEEPER_DB_URL`), so the report works on the machine the server runs on.
"""

from __future__ import annotations

import calendar
import os
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer

app = typer.Typer(help="LLM cost analytics from the server's store.", no_args_is_help=True)


def _month(text: str) -> tuple[date, date]:
    try:
        first = datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise typer.BadParameter("use YYYY-MM, e.g. 2026-11") from None
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def fetch(month: str, server: str | None, db: str | None) -> dict[str, Any]:
    first, last = _month(month)
    today = min(datetime.now(UTC).date(), last)
    if server:
        import httpx

        token = os.environ.get("LIGHTKEEPER_ADMIN_TOKEN", "")
        try:
            response = httpx.get(
                server.rstrip("/") + "/api/cost/summary",
                params={"from": first.isoformat(), "to": last.isoformat(), "group_by": "model"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise _fail(f"could not reach {server}: {type(exc).__name__}; is the server running?") from None
        if response.status_code in (401, 403):
            raise _fail(
                f"{server} refused the admin token (HTTP {response.status_code}): "
                "set LIGHTKEEPER_ADMIN_TOKEN to the server's admin token"
            )
        if response.status_code != 200:
            raise _fail(f"{server} answered HTTP {response.status_code} to /api/cost/summary")
        data: dict[str, Any] = response.json()
        return data
    from lightkeeper.server.cost import summary
    from lightkeeper.server.store.db import make_engine, upgrade

    engine = make_engine(db)
    upgrade(engine)
    return summary.build(engine, first, last, "model", today)


@app.command()
def report(
    month: Annotated[str, typer.Option(help="Calendar month, UTC, e.g. 2026-11")],
    server: Annotated[
        str | None, typer.Option(help="A running server's URL, e.g. http://127.0.0.1:8787")
    ] = None,
    db: Annotated[str | None, typer.Option(help="Store URL when reading locally")] = None,
) -> None:
    """Spend by model, the forecast, anomalies and recommendations for one month."""
    from rich.console import Console
    from rich.table import Table

    data = fetch(month, server, db)
    console = Console()
    if not data["totals"]["calls"]:
        console.print(f"No LLM cost events stored for {month}.")
        return
    table = Table(title=f"LLM cost {month}")
    for column in ("model", "calls", "failed", "input tokens", "output tokens", "cost USD"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in data["breakdown"]:
        table.add_row(
            str(row["key"]),
            str(int(row["calls"])),
            str(int(row["errors"])),
            str(int(row["input_tokens"])),
            str(int(row["output_tokens"])),
            f"{row['cost_usd']:.2f}",
        )
    table.add_row(
        "total",
        str(int(data["totals"]["calls"])),
        str(int(data["totals"]["errors"])),
        "",
        "",
        f"{data['totals']['cost_usd']:.2f}",
    )
    console.print(table)
    console.print(_forecast_line(month, data))
    for a in data["anomalies"]:
        console.print(f"Anomaly: {a['explanation']}")
    for r in data["recommendations"]:
        console.print(f"Advice: {r['message']}")


def _forecast_line(month: str, data: dict[str, Any]) -> str:
    """The forecast of the month asked for: a closed month's is its total, whatever the
    summary forecast (a server forecasts its own current month)."""
    _, last = _month(month)
    total = float(data["totals"]["cost_usd"])
    if last < datetime.now(UTC).date():
        return f"Forecast {month}: ${total:.2f} (${total:.2f} to ${total:.2f}; the month is over: its total)"
    f = data["forecast"]
    if f["month"] != month:
        return f"Forecast {month}: not before the month starts"
    return (
        f"Forecast {f['month']}: ${f['forecast_usd']:.2f} "
        f"(${f['low_usd']:.2f} to ${f['high_usd']:.2f}; {f['method']})"
    )


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="cost")
