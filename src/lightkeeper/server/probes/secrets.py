"""Resolve `*_env` / `*_file` references at run time, so a rotated secret is picked up without a restart."""

from __future__ import annotations

import os
from pathlib import Path

from lightkeeper.server.probes.result import ProbeFailure


def from_env(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if value is None:
        raise ProbeFailure(f"environment variable {variable} (the {what}) is not set")
    return value


def from_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ProbeFailure(
            f"cannot read {path} (the {what}): {exc.strerror or exc.__class__.__name__}"
        ) from None


def password(env: str | None, file: str | None) -> str | None:
    if env:
        return from_env(env, "password")
    if file:
        return from_file(file, "password")
    return None
