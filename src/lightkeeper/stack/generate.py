"""`lightkeeper generate`: every generator's files, merged and written atomically.

Each generator is a pure function from the spec to `{relative path: text}`. Rendering
happens entirely in memory first, so an impossible spec (an SLO tier that can never
fire, a latency threshold between buckets) fails before a single file is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lightkeeper.spec.models import Spec
from lightkeeper.stack import (
    alertmanager,
    alloy,
    compose,
    grafana,
    kubernetes,
    loki,
    prometheus,
    rule_tests,
    runbooks,
    tempo,
)
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.profile import get_profile
from lightkeeper.stack.rules import all_alerts
from lightkeeper.stack.writer import write_atomic


def metric_slos_only(spec: Spec) -> Spec:
    """The spec without probe SLOs: the server computes those from its own probe results,
    and Prometheus has no series for them, so no rule, alert or panel is generated."""
    kept = [s for s in spec.slos if s.sli.kind != "probe"]
    return spec if len(kept) == len(spec.slos) else spec.model_copy(update={"slos": kept})


def render_all(spec: Spec, profile: str | None = None) -> dict[str, str]:
    """Every generated file, path-sorted; raises GenerationError before anything is written."""
    spec = metric_slos_only(spec)
    prof = get_profile(profile)
    alerts = all_alerts(spec, prof.name)
    parts: list[tuple[str, Callable[[], dict[str, str]]]] = [
        ("prometheus", lambda: prometheus.render(spec, prof)),
        ("rule tests", lambda: rule_tests.render(spec, prof)),
        ("alertmanager", lambda: alertmanager.render(spec, prof)),
        ("grafana", lambda: grafana.render(spec)),
        ("loki", lambda: loki.render(spec)),
        ("tempo", lambda: tempo.render(spec)),
        ("alloy", lambda: alloy.render(spec)),
        ("compose", lambda: compose.render(spec)),
        ("runbooks", lambda: runbooks.render(spec, alerts)),
    ]
    files: dict[str, str] = {}
    for label, render in parts:
        for path, text in render().items():
            if path in files:
                raise GenerationError(f"two generators write {path} (the second is {label}); this is a bug")
            files[path] = text
    return dict(sorted(files.items()))


def generate(spec: Spec, out: Path, profile: str | None = None, target: str = "compose") -> dict[str, str]:
    """Render everything for `target`, then replace `out` with it atomically; returns the files written."""
    spec = metric_slos_only(spec)
    files = kubernetes.render(spec, profile) if target == "kubernetes" else render_all(spec, profile)
    write_atomic(files, out)
    return files
