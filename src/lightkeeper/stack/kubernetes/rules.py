"""`PrometheusRule`: the rule groups prometheus/rules/*.yml holds, as one operator resource.

The groups come from `stack.prometheus.group_dict`, unchanged but for one label on each
alert: `namespace`, the AlertmanagerConfig's namespace, without which the operator's
routing would never see them (see `alertmanager_config`).
"""

from __future__ import annotations

from typing import Any

from lightkeeper.spec.models import Spec
from lightkeeper.stack import prometheus
from lightkeeper.stack.kubernetes import placement
from lightkeeper.stack.profile import Profile
from lightkeeper.stack.rules import rule_groups

NAMESPACE_LABEL = "namespace"


def groups(spec: Spec, profile: Profile) -> list[dict[str, Any]]:
    namespace = placement.section(spec).namespace
    out: list[dict[str, Any]] = []
    for group in rule_groups(spec, profile):
        data = prometheus.group_dict(spec, group)
        for rule in data["rules"]:
            if "alert" in rule:
                rule["labels"] = dict(sorted({**rule["labels"], NAMESPACE_LABEL: namespace}.items()))
        out.append(data)
    return out


def resource(spec: Spec, profile: Profile) -> dict[str, Any]:
    k8s = placement.section(spec)
    return {
        "apiVersion": f"{placement.API_GROUP}/v1",
        "kind": "PrometheusRule",
        "metadata": placement.metadata(spec, f"{spec.service}-rules", k8s.namespace),
        "spec": {"groups": groups(spec, profile)},
    }
