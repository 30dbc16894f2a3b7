"""Commands for the server: `lightkeeper server`, `lightkeeper probe run`, `lightkeeper report sla`.

Only typer is imported at module level; the store, the probes and uvicorn load inside
each command so `lightkeeper --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from lightkeeper.server.config import ServerConfig
    from lightkeeper.server.probes.heartbeat import HeartbeatHistory
    from lightkeeper.spec.probes import Probe

probe_app = typer.Typer(help="Run probes by hand.", no_args_is_help=True)
report_app = typer.Typer(help="Reports from the server's store.", no_args_is_help=True)

_SPEC = typer.Option(None, "--spec", help="lightkeeper.yaml (default: ./lightkeeper.yaml when present)")
_HTML = typer.Option(None, "--html", help="Also write the report as an HTML page here")
_DB = typer.Option(None, "--db", help="Database URL (default: LIGHTKEEPER_DB_URL, else ./lightkeeper.db)")


def _config(spec: Path | None, db: str | None, **extra: Any) -> ServerConfig:
    from lightkeeper.server.config import load_config
    from lightkeeper.spec.loader import SpecError

    try:
        return load_config(spec_path=spec, db_url=db, **extra)
    except SpecError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except FileNotFoundError as exc:
        typer.echo(f"spec not found: {exc.filename or spec}", err=True)
        raise typer.Exit(2) from None


def server(
    spec: Path | None = _SPEC,
    db: str | None = _DB,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on"),
    port: int = typer.Option(8787, "--port", help="Port to listen on (0: any free port)"),
    environment: str | None = typer.Option(None, "--environment", help="Spec environment to scrape for SLOs"),
) -> None:
    """Run probes, keep uptime, send notifications and serve the status page."""
    import asyncio

    from lightkeeper.server.main import serve
    from lightkeeper.server.store.single_replica import StoreInUse
    from lightkeeper.server.workflow import WorkflowConfigError

    config = _config(spec, db, host=host, port=port).model_copy(update={"slo_environment": environment})
    known = sorted(config.spec.environments) if config.spec is not None else []
    if environment is not None and environment not in known:
        # caught here, not in the SLO loop, so a typo fails the start instead of silently scraping nothing
        typer.echo(
            f"unknown environment {environment!r} (the spec defines: {', '.join(known) or 'none'})", err=True
        )
        raise typer.Exit(2)
    try:
        asyncio.run(serve(config, announce=typer.echo))
    except (StoreInUse, WorkflowConfigError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


def _find_probe(config: ServerConfig, name: str) -> tuple[Probe | None, HeartbeatHistory | None]:
    """The probe (spec first, then the store) and, for a heartbeat, its stored pings."""
    from sqlalchemy.exc import SQLAlchemyError

    from lightkeeper.server.http import reads
    from lightkeeper.server.store.db import make_engine

    found: Probe | None = next((p for p in config.probes if p.name == name), None)
    engine = make_engine(config.db_url)
    try:
        if found is None:
            views = reads.probes(engine, name)
            found = views[0].probe if views else None
        if found is not None and found.type == "heartbeat":
            return found, reads.heartbeat_history(engine, name)
    except SQLAlchemyError:
        pass  # no store yet (or not reachable): only the spec's probes, no ping history
    finally:
        engine.dispose()
    return found, None


def probe_run(
    name: str = typer.Argument(..., help="Probe name from the spec or the admin API"),
    spec: Path | None = _SPEC,
    db: str | None = _DB,
) -> None:
    """Run one probe once and print the result; exit 1 when it fails, 2 when it is unknown."""
    import asyncio

    from lightkeeper.server.probes.connectivity import ConnectivityChecker
    from lightkeeper.server.probes.run import run_probe

    config = _config(spec, db)
    probe, history = _find_probe(config, name)
    if probe is None:
        known = ", ".join(p.name for p in config.probes) or "none in the spec"
        typer.echo(f"no probe named {name!r} (known: {known})", err=True)
        raise typer.Exit(2)
    connectivity = ConnectivityChecker(config.connectivity_check) if config.connectivity_check else None
    result = asyncio.run(run_probe(probe, connectivity=connectivity, heartbeat=history))
    latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
    line = f"{probe.name} ({probe.type}): {result.status}{latency}"
    if result.error:
        line += f": {result.error}"
    typer.echo(line)
    if not result.ok:
        raise typer.Exit(1)


def report_sla(
    month: str | None = typer.Option(
        None, "--month", help="Calendar month, e.g. 2026-11 (default: this one)"
    ),
    html: Path | None = _HTML,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
    spec: Path | None = _SPEC,
    db: str | None = _DB,
) -> None:
    """The monthly SLA report per component, with the service credit owed."""
    from datetime import UTC, datetime

    from lightkeeper.server.http import sla, status_page, windows
    from lightkeeper.server.store.db import make_engine, upgrade

    config = _config(spec, db)
    engine = make_engine(config.db_url)
    now = datetime.now(UTC)
    try:
        upgrade(engine)
        chosen = month or windows.current_month(config.server.timezone, now)
        document = sla.report(engine, config.server, chosen, now)
    except windows.WindowError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if html is not None:
        page = status_page.render("report.html.j2", {"report": document, "title": "SLA report"})
        html.write_text(page, encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    _print_table(document)
    if html is not None:
        typer.echo(f"HTML report written to {html}")


def _print_table(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"SLA report {document['month']} ({document['timezone']})")
    for column in ("component", "availability", "downtime", "incidents", "met", "credit"):
        table.add_column(column)
    for c in document["components"]:
        value = c["availability_percent"]
        table.add_row(
            c["component"],
            "no data" if value is None else f"{value:.3f} %",
            f"{c['downtime_seconds']:.0f} s",
            str(c["incidents"]),
            "yes" if c["met"] else "NO",
            f"{c['credit_percent']:g} %",
        )
    Console().print(table)
    if not document["complete"]:
        typer.echo("The month is not over: numbers are for the month so far.")


def register(app: typer.Typer) -> None:
    """Add the server commands to the root `lightkeeper` command."""
    app.command("server")(server)
    probe_app.command("run")(probe_run)
    app.add_typer(probe_app, name="probe")
    report_app.command("sla")(report_sla)
    app.add_typer(report_app, name="report")
