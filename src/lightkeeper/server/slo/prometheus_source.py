"""Prometheus mode: the `/sla/status` SLO numbers from the recording rules `lightkeeper generate` writes.

One instant query per status request fetches every `slo:sli_error:ratio_rate<window>`
series of the service and environment; the window is read back from the record's name
(times the profile's scale: `--profile test` records `ratio_rate5s` for 5m), so the
server needs no copy of the generator's window list. The ratios then go through the
same shared math as the embedded samples, which is what makes the two modes agree.

Prometheus being down, slow or answering nonsense must not break the status page:
the wait is bounded, and every SLO is then reported as `no_data` with the reason in
`source_error` (the exception's class only: the URL may carry credentials).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import httpx

from lightkeeper import slo_math
from lightkeeper.server.slo.reading import Reading
from lightkeeper.spec.models import SLO

log = logging.getLogger(__name__)

SOURCE = "prometheus"


class PrometheusError(Exception):
    """Prometheus gave no usable answer; the message is safe to show."""


def _label(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _finite(raw: Any) -> float | None:
    """A sample value; NaN (0 ÷ 0: no traffic) and ±Inf are no data."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class PrometheusSource:
    def __init__(self, url: str, service: str, environment: str, scale: int = 1, timeout: float = 2.0):
        self.url = url.rstrip("/")
        self.service = service
        self.environment = environment
        self.scale = scale
        self.timeout = timeout

    def query(self) -> str:
        name = _label(f"{slo_math.ERROR_RATIO_RECORD_PREFIX}.+")
        return f"{{__name__=~{name},service={_label(self.service)},environment={_label(self.environment)}}}"

    def ratios(self, now: datetime) -> dict[str, dict[int, float | None]]:
        """SLO name -> {window in (unscaled) seconds: recorded error ratio}; raises PrometheusError."""
        try:
            response = httpx.get(
                f"{self.url}/api/v1/query",
                params={"query": self.query(), "time": f"{now.timestamp():.3f}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise PrometheusError(f"Prometheus unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise PrometheusError(f"Prometheus answered HTTP {response.status_code}")
        try:
            body = response.json()
            result = body["data"]["result"] if body.get("status") == "success" else None
        except (ValueError, KeyError, TypeError, AttributeError):
            result = None
        if not isinstance(result, list):
            raise PrometheusError("Prometheus answered something other than a query result")
        found: dict[str, dict[int, float | None]] = {}
        prefix = slo_math.ERROR_RATIO_RECORD_PREFIX
        for series in result:
            try:
                metric, (_, raw) = series["metric"], series["value"]
                slo, name = metric["slo"], metric["__name__"]
                window = slo_math.duration_seconds(name.removeprefix(prefix)) * self.scale
            except (KeyError, TypeError, ValueError):
                continue  # not one of the generated records: ignore rather than guess
            found.setdefault(slo, {})[window] = _finite(raw)
        return found

    def readings(self, slos: Iterable[SLO], now: datetime) -> dict[str, Reading]:
        """SLO name -> its reading; all `no_data` (with the reason) when Prometheus cannot answer."""
        chosen = list(slos)
        at = now.timestamp()
        try:
            ratios = self.ratios(now)
        except PrometheusError as exc:
            log.warning("SLO read from Prometheus failed: %s", exc)
            return {
                s.name: Reading(at, None, dict.fromkeys(slo_math.BURN_WINDOWS), source=SOURCE, error=str(exc))
                for s in chosen
            }
        out: dict[str, Reading] = {}
        for slo in chosen:
            mine = ratios.get(slo.name, {})
            windows = {w: mine.get(slo_math.duration_seconds(w)) for w in slo_math.BURN_WINDOWS}
            period = mine.get(slo_math.period_seconds(slo.period))
            out[slo.name] = Reading(at if mine else None, period, windows, source=SOURCE)
        return out
