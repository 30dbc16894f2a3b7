"""Retries turn consecutive failures into "down"; a flapping target with retries stays up."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter

from lightkeeper.server.probes import ProbeResult, ProbeState, advance, run_probe
from lightkeeper.spec.probes import Probe
from tests.server import targets

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def result(status: str) -> ProbeResult:
    return ProbeResult("p", status == "up", status, NOW, None, None if status == "up" else "boom")  # type: ignore[arg-type]


def replay(statuses: str, retries: int) -> list[str]:
    state, out = ProbeState(), []
    for s in statuses.split():
        state = advance(state, result(s), retries)
        out.append(state.state)
    return out


def test_first_failure_is_down_without_retries() -> None:
    assert replay("up down up", 0) == ["up", "down", "up"]


def test_retries_need_that_many_further_failures() -> None:
    assert replay("up down down down up", 2) == ["up", "up", "up", "down", "up"]
    assert replay("down down", 1) == ["unknown", "down"]


def test_no_data_neither_counts_nor_resets() -> None:
    assert replay("up down no_data down", 1) == ["up", "up", "up", "down"]


async def test_flapping_target_with_one_retry_never_goes_down(http_target: targets.TargetServer) -> None:
    probe = TypeAdapter(Probe).validate_python(
        {"name": "flap", "type": "http", "target": f"http://127.0.0.1:{http_target.port}/flap", "retries": 1}
    )
    state = ProbeState()
    seen = []
    for _ in range(6):
        state = advance(state, await run_probe(probe), probe.retries)
        seen.append(state.state)
    assert seen == ["up"] * 6
