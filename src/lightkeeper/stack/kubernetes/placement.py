"""Where each generated resource lives and which pods it selects, defaults filled in.

Every other module of this package asks here, so the defaults (`app.kubernetes.io/name:
<service>` in a namespace named after the environment) are decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lightkeeper.spec.kubernetes import KubernetesEnvironment, KubernetesSection, Workload
from lightkeeper.spec.models import Spec
from lightkeeper.stack import names
from lightkeeper.stack.errors import GenerationError

API_GROUP = "monitoring.coreos.com"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "lightkeeper"}
SERVER_NAME = "lightkeeper-server"
CELERY_PORT = "metrics"


@dataclass(frozen=True)
class Scrape:
    """One scrape target group as the operator sees it."""

    kind: Literal["ServiceMonitor", "PodMonitor"]
    name: str
    namespace: str
    selector: dict[str, str]
    port: str
    job: str
    labels: dict[str, str]  # set on every scraped series by relabelling


def section(spec: Spec) -> KubernetesSection:
    """The spec's `kubernetes:` section, or its defaults when the spec has none."""
    k8s = spec.kubernetes or KubernetesSection()
    unknown = sorted(set(k8s.environments) - set(spec.environments))
    if unknown:
        raise GenerationError(
            f"kubernetes.environments.{unknown[0]}: no environment {unknown[0]!r} under `environments:`"
            f" (declared: {', '.join(sorted(spec.environments))})",
            loc=("kubernetes", "environments", unknown[0]),
        )
    return k8s


def metadata(spec: Spec, name: str, namespace: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {**section(spec).resource_labels, **MANAGED_BY, NAME_LABEL: spec.service, **(extra or {})}
    return {"name": name, "namespace": namespace, "labels": dict(sorted(labels.items()))}


def environment(spec: Spec, env: str) -> KubernetesEnvironment:
    return section(spec).environments.get(env) or KubernetesEnvironment()


def service_scrape(spec: Spec, env: str) -> Scrape:
    k8s_env = environment(spec, env)
    settings = spec.environments[env]
    return Scrape(
        kind="ServiceMonitor" if k8s_env.monitor == "service" else "PodMonitor",
        name=names.scrape_job(spec, env),
        namespace=k8s_env.namespace or env,
        selector=dict(sorted((k8s_env.selector or {NAME_LABEL: spec.service}).items())),
        port=k8s_env.port,
        job=names.scrape_job(spec, env),
        labels=_target_labels(spec, env, settings.labels),
    )


def celery_scrape(spec: Spec, env: str) -> Scrape | None:
    """The workers' PodMonitor: when the spec scrapes workers (celery_targets) or selects them."""
    k8s_env = environment(spec, env)
    settings = spec.environments[env]
    if not settings.celery_targets and k8s_env.celery is None:
        return None
    workers = k8s_env.celery or Workload(port=CELERY_PORT)
    base = service_scrape(spec, env)
    selector = workers.selector or {**base.selector, names.COMPONENT_LABEL: names.CELERY_COMPONENT}
    return Scrape(
        kind="PodMonitor",
        name=names.celery_job(spec, env),
        namespace=base.namespace,
        selector=dict(sorted(selector.items())),
        port=workers.port,
        job=names.celery_job(spec, env),
        labels={**base.labels, names.COMPONENT_LABEL: names.CELERY_COMPONENT},
    )


def server_scrape(spec: Spec) -> Scrape | None:
    """The lightkeeper server: scraped only when the spec says one runs (prometheus.server_targets)."""
    if not spec.prometheus.server_targets:
        return None
    k8s = section(spec)
    server = k8s.server or Workload()
    return Scrape(
        kind="ServiceMonitor",
        name=SERVER_NAME,
        namespace=k8s.namespace,
        selector=dict(sorted((server.selector or {NAME_LABEL: SERVER_NAME}).items())),
        port=server.port,
        job=names.SERVER_JOB,
        labels={},  # the server's series carry their own service/environment (honor_labels)
    )


def _target_labels(spec: Spec, env: str, extra: dict[str, str]) -> dict[str, str]:
    # Same precedence as prometheus.yml: the spec's own labels, then service/environment.
    return {**dict(sorted(extra.items())), "service": spec.service, "environment": env}
