"""Grafana dashboards as ConfigMaps the kube-prometheus-stack dashboard sidecar loads.

The chart's Grafana runs a sidecar that watches ConfigMaps labelled
`grafana_dashboard: "1"` and loads every JSON file in them; the JSON is exactly what
the compose target writes to grafana/dashboards/.
"""

from __future__ import annotations

from typing import Any

from lightkeeper.spec.models import Spec
from lightkeeper.stack import dashboards
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.kubernetes import placement

SIDECAR_LABEL = {"grafana_dashboard": "1"}
FOLDER_ANNOTATION = "grafana_folder"
# A ConfigMap holds at most 1 MiB.
MAX_BYTES = 1024 * 1024


def resources(spec: Spec) -> list[dict[str, Any]]:
    namespace = placement.section(spec).namespace
    out: list[dict[str, Any]] = []
    for key, build in sorted(dashboards.BUILDERS.items()):
        text = dashboards.to_json(build(spec))
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise GenerationError(f"the {key} dashboard is larger than a ConfigMap can hold (1 MiB)")
        meta = placement.metadata(spec, f"{spec.service}-dashboard-{key}", namespace, SIDECAR_LABEL)
        meta["annotations"] = {FOLDER_ANNOTATION: "lightkeeper"}
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {f"{key}.json": text}})
    return out
