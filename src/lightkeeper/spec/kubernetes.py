"""The `kubernetes:` section of `lightkeeper.yaml`: where the service runs in a cluster.

`lightkeeper generate --target kubernetes` turns the spec into Prometheus Operator
resources instead of a compose stack. The operator finds scrape targets by label, not
by `host:port`, so each environment says which namespace its pods live in, which labels
select them and which named container port serves `/metrics`. Environments left out
get the labels a Helm chart gives by default (`app.kubernetes.io/name: <service>` in a
namespace named after the environment), so a small spec stays small.

The monitoring resources themselves (rules, Alertmanager routing, dashboards) live in
one namespace, labelled so the Prometheus and Alertmanager of kube-prometheus-stack
select them: its chart selects by `release: <helm release name>`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# RFC 1123 label: what Kubernetes accepts for namespace and port names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Label keys: optional DNS-subdomain prefix, then a name of up to 63 characters.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a Kubernetes label key (e.g. app.kubernetes.io/name)")
        if not _LABEL_VALUE.match(value):
            raise ValueError(f"{value!r} (label {key}) is not a Kubernetes label value")
    return labels


def _check_dns_label(value: str, what: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid {what}: lowercase letters, digits and '-'")
    return value


def _check_port(value: str) -> str:
    if not _PORT_NAME.match(value):
        raise ValueError(f"port {value!r} must be a port NAME (at most 15 characters, e.g. http or metrics)")
    return value


class Workload(_Model):
    """Pods to scrape: selected by labels, their metrics on a named container/service port."""

    selector: dict[str, str] = Field(
        default_factory=dict, description="matchLabels of the pods (or Service); empty = the default"
    )
    port: str = Field(default="http", description="Name of the port that serves /metrics")

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_labels(v)

    @field_validator("port")
    @classmethod
    def _port(cls, v: str) -> str:
        return _check_port(v)


class KubernetesEnvironment(_Model):
    """One environment's place in the cluster."""

    namespace: str | None = Field(
        default=None, description="Namespace of the service's pods; default: the env name"
    )
    selector: dict[str, str] = Field(
        default_factory=dict,
        description="matchLabels selecting the service; default app.kubernetes.io/name: <service>",
    )
    port: str = Field(default="http", description="Name of the port that serves /metrics")
    monitor: Literal["service", "pod"] = Field(
        default="service",
        description="ServiceMonitor (through a Service's endpoints) or PodMonitor (pods directly)",
    )
    celery: Workload | None = Field(
        default=None,
        description="The Celery workers' pods; default (when celery_targets is set): the service's selector "
        "plus component: celery-worker, port `metrics`",
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str | None) -> str | None:
        return None if v is None else _check_dns_label(v, "namespace")

    @field_validator("selector")
    @classmethod
    def _selector(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_labels(v)

    @field_validator("port")
    @classmethod
    def _port(cls, v: str) -> str:
        return _check_port(v)


class KubernetesSection(_Model):
    """Where the generated operator resources go and how the operator finds them."""

    namespace: str = Field(default="monitoring", description="Namespace of the rules, routing and dashboards")
    resource_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels on every generated resource; the Prometheus/Alertmanager CRs select by them",
    )
    secret_name: str = Field(
        default="lightkeeper-alertmanager",
        description="Secret (in `namespace`) holding the receivers' credentials, one key per secret",
    )
    environments: dict[str, KubernetesEnvironment] = Field(
        default_factory=dict, description="Per environment of `environments:`; omitted ones get the defaults"
    )
    server: Workload | None = Field(
        default=None,
        description="The lightkeeper server's pods (scraped when prometheus.server_targets is set); "
        "default selector app.kubernetes.io/name: lightkeeper-server in `namespace`",
    )

    @field_validator("namespace", "secret_name")
    @classmethod
    def _names(cls, v: str) -> str:
        return _check_dns_label(v, "Kubernetes name")

    @field_validator("resource_labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_labels(v)
