"""Values files for the official Helm charts: grafana/loki, grafana/tempo, kube-prometheus-stack.

They carry what the compose target's loki.yml, tempo.yml and Prometheus command line
decide (retention, schema, OTLP receiver, remote write), in each chart's own keys, plus
what kube-prometheus-stack needs to render lightkeeper's notifications and link the
three signals: the Alertmanager notification templates and the Loki/Tempo datasources
with the uids the dashboards use.
"""

from __future__ import annotations

from typing import Any

from lightkeeper.spec.models import RemoteWrite, Spec
from lightkeeper.stack import alertmanager, loki, names, tempo
from lightkeeper.stack.kubernetes import placement
from lightkeeper.stack.kubernetes.secrets import secret_key

LOKI_PATH = "helm/loki-values.yaml"
TEMPO_PATH = "helm/tempo-values.yaml"
STACK_PATH = "helm/kube-prometheus-stack-values.yaml"
TEMPLATE_FILE = "lightkeeper.tmpl"


def loki_values(spec: Spec) -> dict[str, Any]:
    source = loki.config(spec)
    return {
        "deploymentMode": "SingleBinary",
        "loki": {
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 1},
            "storage": {"type": "filesystem"},
            "schemaConfig": source["schema_config"],
            "limits_config": source["limits_config"],
            "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"},
            "analytics": source["analytics"],
        },
        "singleBinary": {"replicas": 1},
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
    }


def tempo_values(spec: Spec) -> dict[str, Any]:
    source = tempo.config(spec)
    return {
        "tempo": {
            "retention": source["compactor"]["compaction"]["block_retention"],
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{tempo.OTLP_GRPC_PORT}"}}}},
            "reportingEnabled": False,
        },
        "serviceMonitor": {"enabled": True},
    }


def stack_values(spec: Spec) -> dict[str, Any]:
    k8s = placement.section(spec)
    namespace = k8s.namespace
    release = k8s.resource_labels.get("release", "kube-prometheus-stack")
    uids = names.DATASOURCE_UIDS
    prometheus: dict[str, Any] = {"retention": spec.prometheus.retention}
    if spec.prometheus.remote_write:
        prometheus["remoteWrite"] = [
            remote_write(k8s.secret_name, target, f"prometheus.remote_write[{i}]")
            for i, target in enumerate(spec.prometheus.remote_write)
        ]
    return {
        "prometheus": {"prometheusSpec": prometheus},
        "alertmanager": {"templateFiles": {TEMPLATE_FILE: alertmanager.template_text()}},
        "grafana": {
            "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1"}},
            # The chart's own Prometheus datasource has uid `prometheus`; the dashboards use ours.
            "additionalDataSources": [
                {
                    "name": "Prometheus (lightkeeper)",
                    "type": "prometheus",
                    "uid": uids["prometheus"],
                    "url": f"http://{release}-prometheus.{namespace}.svc:9090",
                },
                {
                    "name": "Loki",
                    "type": "loki",
                    "uid": uids["loki"],
                    "url": f"http://loki.{namespace}.svc:{loki.HTTP_PORT}",
                },
                {
                    "name": "Tempo",
                    "type": "tempo",
                    "uid": uids["tempo"],
                    "url": f"http://tempo.{namespace}.svc:{tempo.HTTP_PORT}",
                },
            ],
        },
    }


def remote_write(secret_name: str, target: RemoteWrite, field: str) -> dict[str, Any]:
    """One `remoteWrite` entry of the Prometheus resource (the Operator's field names).

    The Operator reads credentials from Secrets, never from files in the pod: the token
    or password file becomes a key of the spec's one Secret, named after the file (as for
    receivers), and a basic-auth user name, which the Operator also takes from a Secret,
    the key `<that name>-username`.
    """
    out: dict[str, Any] = {"url": target.url}
    if target.basic_auth:
        key = secret_key(target.basic_auth.password_file, f"{field}.basic_auth.password_file")
        out["basicAuth"] = {
            "username": {"name": secret_name, "key": f"{key}-username"},
            "password": {"name": secret_name, "key": key},
        }
    if target.bearer_token_file:
        key = secret_key(target.bearer_token_file, f"{field}.bearer_token_file")
        out["authorization"] = {"type": "Bearer", "credentials": {"name": secret_name, "key": key}}
    if target.queue_config:
        camel = {
            "capacity": "capacity",
            "max_shards": "maxShards",
            "max_samples_per_send": "maxSamplesPerSend",
        }
        queue = target.queue_config.model_dump(exclude_none=True)
        if queue:
            out["queueConfig"] = {camel[k]: v for k, v in sorted(queue.items())}
    return out
