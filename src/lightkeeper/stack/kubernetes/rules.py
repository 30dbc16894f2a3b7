"""`PrometheusRule`: the rule groups prometheus/rules/*.yml holds, as one operator resource.

The groups come from `stack.prometheus.group_dict`, unchanged but for one label on each
alert: `namespace`, the AlertmanagerConfig's namespace, without which the operator's
routing would never see them (see `alertmanager_config`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lightkeeper.spec.models import Spec
from lightkeeper.stack import prometheus
from lightkeeper.stack.kubernetes import placement
from lightkeeper.stack.profile import Profile
from lightkeeper.stack.rule_defs import AlertDef, RuleGroup
from lightkeeper.stack.rules import rule_groups

NAMESPACE_LABEL = "namespace"
# Host alerts read the compose overlay's node-exporter job. A cluster's nodes belong to no
# one service: kube-prometheus-stack runs node-exporter and its own node alerts
# (NodeFilesystemAlmostOutOfSpace, NodeMemoryHighUtilization, ...), so they are left out.
HOST_FAMILIES = frozenset({"host_cpu_utilization", "host_memory_utilization", "host_disk_utilization"})


def _without_hosts(group: RuleGroup) -> RuleGroup:
    kept = tuple(r for r in group.rules if not (isinstance(r, AlertDef) and r.family in HOST_FAMILIES))
    return replace(group, rules=kept)


def groups(spec: Spec, profile: Profile) -> list[dict[str, Any]]:
    namespace = placement.section(spec).namespace
    out: list[dict[str, Any]] = []
    for group in map(_without_hosts, rule_groups(spec, profile)):
        if not group.rules:
            continue
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
