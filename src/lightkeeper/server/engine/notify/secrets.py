"""Receiver secrets (`*_env` / `*_file`) resolved at send time, so rotation needs no restart."""

from __future__ import annotations

import os
from pathlib import Path

from lightkeeper.server.engine.notify.message import DeliveryError


def resolve(env: str | None, file: str | None, what: str) -> str:
    """The secret's value; a missing one is a `DeliveryError` naming the reference, not the value."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise DeliveryError(f"environment variable {env} (the {what}) is not set")
        return value
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise DeliveryError(
                f"cannot read {file} (the {what}): {exc.strerror or type(exc).__name__}"
            ) from None
    raise DeliveryError(f"no {what} configured")


def optional(env: str | None, file: str | None, what: str) -> str | None:
    return resolve(env, file, what) if env or file else None
