"""`lightkeeper init | generate | check | test-rules | slo`: observability as code."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the stack commands land."""
