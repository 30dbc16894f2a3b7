"""Prometheus mode: the `/sla/status` SLO numbers from the recording rules `lightkeeper generate` writes.

One instant query per status request fetches every `slo:sli_error:ratio_rate<window>`
series of the service and environment, a second its firing burn-rate alerts (`ALERTS`:
in this mode Prometheus alerts, not the server). A window is read back from the
record's name or the alert's `long_window`/`short_window` labels (times the profile's
scale: `--profile test` records `ratio_rate5s` for 5m), so the server needs no copy
of the generator's window list. The ratios then go through the
same shared math as the embedded samples, which is what makes the two modes agree.

Prometheus being down, slow or answering nonsense must not break the status page:
the wait is bounded, and every SLO is then reported as `no_data` with the reason in
`source_error` (the exception's class only: the URL may carry credentials).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
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
        return f"{{__name__=~{name},{self._where()}}}"

    def alerts_query(self) -> str:
        """The firing burn-rate alerts of the generated rules (the only SLO alerts with a long_window)."""
        return f'ALERTS{{alertstate="firing",category="slo",long_window!="",{self._where()}}}'

    def _where(self) -> str:
        return f"service={_label(self.service)},environment={_label(self.environment)}"

    def _result(self, expr: str, now: datetime) -> list[Any]:
        """The instant query's result list; raises PrometheusError."""
        try:
            response = httpx.get(
                f"{self.url}/api/v1/query",
                params={"query": expr, "time": f"{now.timestamp():.3f}"},
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
        return result

    def _seconds(self, window: Any) -> int:
        """A scaled window read back as the unscaled seconds the spec names; ValueError otherwise."""
        if not isinstance(window, str):
            raise ValueError(window)
        return slo_math.duration_seconds(window) * self.scale

    def ratios(self, now: datetime) -> dict[str, dict[int, float | None]]:
        """SLO name -> {window in (unscaled) seconds: recorded error ratio}; raises PrometheusError."""
        found: dict[str, dict[int, float | None]] = {}
        prefix = slo_math.ERROR_RATIO_RECORD_PREFIX
        for series in self._result(self.query(), now):
            try:
                metric, (_, raw) = series["metric"], series["value"]
                slo, name = metric["slo"], metric["__name__"]
                window = self._seconds(name.removeprefix(prefix))
            except (KeyError, TypeError, ValueError):
                continue  # not one of the generated records: ignore rather than guess
            found.setdefault(slo, {})[window] = _finite(raw)
        return found

    def firing(self, tiers: Mapping[str, Sequence[slo_math.TierSpec]], now: datetime) -> dict[str, list[str]]:
        """SLO name -> its tiers Prometheus has firing (known by both windows); raises PrometheusError."""
        windows = {
            (slo, slo_math.duration_seconds(t.long_window), slo_math.duration_seconds(t.short_window)): t.name
            for slo, chosen in tiers.items()
            for t in chosen
        }
        out: dict[str, set[str]] = {slo: set() for slo in tiers}
        for series in self._result(self.alerts_query(), now):
            try:
                metric = series["metric"]
                key = (
                    metric["slo"],
                    self._seconds(metric["long_window"]),
                    self._seconds(metric["short_window"]),
                )
            except (KeyError, TypeError, ValueError):
                continue
            if key in windows:
                out[key[0]].add(windows[key])
        return {slo: sorted(names) for slo, names in out.items()}

    def fetch(
        self, slos: Iterable[SLO], tiers: Mapping[str, Sequence[slo_math.TierSpec]], now: datetime
    ) -> tuple[dict[str, Reading], dict[str, list[str]]]:
        """Each SLO's reading and firing tiers; when Prometheus cannot answer, `no_data` with the
        reason and nothing firing (the embedded alerts stand down in this mode, so none is known)."""
        chosen = list(slos)
        at = now.timestamp()
        try:
            ratios = self.ratios(now)
            firing = self.firing({s.name: tiers.get(s.name, ()) for s in chosen}, now)
        except PrometheusError as exc:
            log.warning("SLO read from Prometheus failed: %s", exc)
            failed = {
                s.name: Reading(at, None, dict.fromkeys(slo_math.BURN_WINDOWS), source=SOURCE, error=str(exc))
                for s in chosen
            }
            return failed, {s.name: [] for s in chosen}
        out: dict[str, Reading] = {}
        for slo in chosen:
            mine = ratios.get(slo.name, {})
            windows = {w: mine.get(slo_math.duration_seconds(w)) for w in slo_math.BURN_WINDOWS}
            period = mine.get(slo_math.period_seconds(slo.period))
            out[slo.name] = Reading(at if mine else None, period, windows, source=SOURCE)
        return out, firing
