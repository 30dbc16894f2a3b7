"""`lightkeeper demo`: the example app, traffic, and a summary read from /metrics.

The demo's modules (httpx, the example app's runner, rich's progress and report) are
imported inside the command, so `lightkeeper --help` and the other commands do not load
them.
"""

from __future__ import annotations

import json
import signal
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from types import FrameType

    from lightkeeper.demo.runner import DemoSummary
    from lightkeeper.demo.traffic import TrafficLog


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every `finally` runs and the app is stopped."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise _Terminated


def demo(
    duration: Annotated[float, typer.Option(min=1.0, max=3600.0, help="Seconds of traffic to send.")] = 20.0,
    rps: Annotated[float, typer.Option(min=1.0, max=2000.0, help="Target requests per second.")] = 50.0,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL for the example app (default: SQLite in a temporary directory)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    server: Annotated[
        bool,
        typer.Option("--server/--no-server", help="Also run `lightkeeper server` with probes of the app."),
    ] = True,
    server_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of the server's status page; 0 picks a free one.")
    ] = 0,
    keep_running: Annotated[
        bool,
        typer.Option("--keep-running", help="After the summary, keep the app and server up until Ctrl-C."),
    ] = False,
) -> None:
    """Run the example SaaS app and lightkeeper server, send traffic, summarise /metrics and probes."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from lightkeeper.demo.app_process import DemoError
    from lightkeeper.demo.report import render
    from lightkeeper.demo.runner import DemoOptions, run_demo

    err = Console(stderr=True)
    options = DemoOptions(
        duration=duration,
        rps=rps,
        port=port,
        database_url=database_url,
        server=server,
        server_port=server_port,
        keep_running=keep_running,
    )
    progress = Progress(
        TextColumn("[bold]traffic"),
        BarColumn(),
        TextColumn("{task.fields[sent]:>6} requests"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = progress.add_task("traffic", total=duration, sent=0)

    def on_progress(log: TrafficLog) -> None:
        if not progress.live.is_started:  # shown only once traffic flows, not during start-up
            progress.start()
        progress.update(task, completed=min(log.elapsed, duration), sent=log.total)

    shown: list[DemoSummary] = []

    def show(summary: DemoSummary) -> None:
        progress.stop()
        if json_output:
            typer.echo(json.dumps(summary.to_dict(), indent=2))
        else:
            out = Console()
            # Piped or redirected, there is no terminal width to respect: keep route templates whole.
            render(summary, out if out.is_terminal else Console(width=120))
        shown.append(summary)

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        try:
            run_demo(
                options,
                on_status=lambda message: err.print(message),
                on_progress=on_progress,
                on_summary=show,
            )
        finally:
            progress.stop()
            signal.signal(signal.SIGTERM, previous)
    except DemoError as exc:
        err.print("[red]error:[/]", end=" ")
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt as exc:
        if keep_running and shown:  # Ctrl-C is how --keep-running is meant to end
            err.print("stopped the example app and the server")
            return
        err.print("interrupted; the example app was stopped")
        raise typer.Exit(143 if isinstance(exc, _Terminated) else 130) from None
