"""Small builders shared by the engine tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from lightkeeper.server.probes.result import ProbeResult
from lightkeeper.spec.probes import Probe

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def make_probe(name: str = "api", **fields: Any) -> Probe:
    data: dict[str, Any] = {"name": name, "type": "tcp", "target": "127.0.0.1:9", **fields}
    if data["type"] == "heartbeat":
        data.pop("target")
    return TypeAdapter(Probe).validate_python(data)


def result(probe: str, status: str, minute: float, error: str | None = None) -> ProbeResult:
    at = T0 + timedelta(minutes=minute)
    if status == "up":
        return ProbeResult(probe, True, "up", at, 12.5, None)
    text = error or ("server offline" if status == "no_data" else "expected status 200, got 503")
    return ProbeResult(probe, False, status, at, None, text)  # type: ignore[arg-type]
