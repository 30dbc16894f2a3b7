"""Retries: a probe is down only after `retries + 1` consecutive failed executions.

Kept pure (state in, state out) so the scheduler can persist the state with each
result and a restart resumes the count instead of re-opening or losing an outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lightkeeper.server.probes.result import ProbeResult

State = Literal["unknown", "up", "down"]


@dataclass(frozen=True, slots=True)
class ProbeState:
    state: State = "unknown"
    consecutive_failures: int = 0


def advance(current: ProbeState, result: ProbeResult, retries: int) -> ProbeState:
    """The state after `result`; "no data" (the server was offline) is no evidence either way."""
    if result.status == "no_data":
        return current
    if result.ok:
        return ProbeState("up", 0)
    failures = current.consecutive_failures + 1
    return ProbeState("down" if failures > retries else current.state, failures)
