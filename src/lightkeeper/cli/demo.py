"""`lightkeeper demo`: the example app, traffic, and a summary read from /metrics."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the demo lands."""
