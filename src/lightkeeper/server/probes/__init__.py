"""Probe executors: one module per probe type, run through `run_probe`.

`run_probe` is the only entry point the scheduler, the admin API's "run now" and
`lightkeeper probe run` need: it enforces the probe's timeout, applies the
connectivity check and always returns a `ProbeResult` (it never raises).
"""

from lightkeeper.server.probes.connectivity import ConnectivityChecker
from lightkeeper.server.probes.heartbeat import HeartbeatHistory, HeartbeatVerdict, Ping, evaluate_heartbeat
from lightkeeper.server.probes.result import ProbeResult
from lightkeeper.server.probes.run import run_probe
from lightkeeper.server.probes.state import ProbeState, advance

__all__ = [
    "ConnectivityChecker",
    "HeartbeatHistory",
    "HeartbeatVerdict",
    "Ping",
    "ProbeResult",
    "ProbeState",
    "advance",
    "evaluate_heartbeat",
    "run_probe",
]
