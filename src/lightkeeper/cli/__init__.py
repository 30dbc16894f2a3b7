"""The `lightkeeper` command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from lightkeeper._version import __version__

app = typer.Typer(
    name="lightkeeper",
    help="Production observability for Python SaaS backends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lightkeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Production observability for Python SaaS backends."""


def _register() -> None:
    # Imported here so `lightkeeper --version` stays fast and each group owns its module.
    from lightkeeper.cli import budget, demo, deploy, stack
    from lightkeeper.server import cli as server_cli

    budget.register(app)
    demo.register(app)
    deploy.register(app)
    stack.register(app)
    server_cli.register(app)
    from lightkeeper.server.cost import report as cost_report

    cost_report.register(app)


def main() -> None:
    _register()
    app()
