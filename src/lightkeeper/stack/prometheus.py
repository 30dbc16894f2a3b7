"""`prometheus/prometheus.yml` and `prometheus/rules/*.yml`.

One scrape job per environment, each target labelled `service` and `environment`:
those two labels are what every rule groups by, so they come from Prometheus (the
scrape config), not from the application, and cannot be mistyped in code. Celery
workers serve their metrics on a port of their own; an environment that lists
`celery_targets` gets a second job for them, labelled `component="celery-worker"`.

Discovered targets (`file_sd`, `dns_sd`, `kubernetes_sd`) join the environment's one job,
so `job` stays `<service>-<env>`. Relabelling then sets `service`, `environment` and the
spec's extra labels on every target, over whatever a file or a pod says, and leaves
`instance` (the scraped address) alone: rules never depend on a label the user adds.
Kubernetes pods are selected by the API server (`selectors`), and only their named
metrics port and only running pods are kept, so a finished job pod never counts as down.
`remote_write` sends every sample to a long-term store; its secrets are read from files.
Hosts (node-exporter, `environments.<env>.node_targets`) get a job per environment,
`<service>-<env>-node`, labelled `component="node-exporter"`.
"""

from __future__ import annotations

from typing import Any

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Environment, RemoteWrite, Spec
from lightkeeper.stack import names, panel_links, yamltext
from lightkeeper.stack.profile import Profile, get_profile
from lightkeeper.stack.rule_defs import AlertDef, RecordingRule, RuleGroup
from lightkeeper.stack.rules import rule_groups

CONFIG_PATH = "prometheus/prometheus.yml"
RULES_DIR = "prometheus/rules"
SERVER_JOB = names.SERVER_JOB


def job_name(spec: Spec, environment: str) -> str:
    return names.scrape_job(spec, environment)


def config(spec: Spec, profile: Profile, rule_files: list[str]) -> dict[str, Any]:
    opts = spec.prometheus
    global_: dict[str, Any] = {
        "scrape_interval": profile.scrape_interval or opts.scrape_interval,
        "evaluation_interval": profile.evaluation_interval or opts.evaluation_interval,
    }
    if opts.external_labels:
        global_["external_labels"] = dict(sorted(opts.external_labels.items()))
    jobs: list[dict[str, Any]] = []
    for env_name in sorted(spec.environments):
        env = spec.environments[env_name]
        job: dict[str, Any] = {"job_name": job_name(spec, env_name)}
        if env.scrape_interval and not profile.scrape_interval:
            job["scrape_interval"] = env.scrape_interval
        job["metrics_path"] = env.metrics_path
        job["scheme"] = env.scheme
        if env.bearer_token_file:
            job["authorization"] = {"type": "Bearer", "credentials_file": env.bearer_token_file}
        labels = {**dict(sorted(env.labels.items())), "service": spec.service, "environment": env_name}
        if env.targets:
            job["static_configs"] = [{"targets": sorted(env.targets), "labels": labels}]
        job.update(discovery_configs(env))
        if env.discovers():
            job["relabel_configs"] = discovery_relabelling(env, labels)
        jobs.append(job)
        if env.celery_targets:
            worker_labels = {**labels, names.COMPONENT_LABEL: names.CELERY_COMPONENT}
            worker: dict[str, Any] = {"job_name": names.celery_job(spec, env_name)}
            if env.scrape_interval and not profile.scrape_interval:
                worker["scrape_interval"] = env.scrape_interval
            worker["static_configs"] = [
                {"targets": sorted(env.celery_targets), "labels": dict(sorted(worker_labels.items()))}
            ]
            jobs.append(worker)
        nodes = names.node_targets(spec, env_name)
        if nodes:
            jobs.append(node_job(spec, env_name, nodes, labels, profile))
    if opts.server_targets:
        # The server reports maintenance windows and probes for many services: keep its labels.
        server_job: dict[str, Any] = {
            "job_name": SERVER_JOB,
            "honor_labels": True,
            "static_configs": [{"targets": sorted(opts.server_targets)}],
        }
        sampled = spec.workflow_sampled_environment()
        if sampled is not None:
            # It samples the service's workflow too (server.workflow_database_url_env): its
            # workflow gauges get the labels a service's own scrape would give them.
            server_job["metric_relabel_configs"] = [
                {
                    "source_labels": ["__name__"],
                    "regex": "workflow_.*",
                    "target_label": label,
                    "replacement": value,
                    "action": "replace",
                }
                for label, value in (("service", spec.service), ("environment", sampled))
            ]
        jobs.append(server_job)
    out: dict[str, Any] = {
        "global": global_,
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": list(opts.alertmanagers)}]}]},
        "scrape_configs": jobs,
    }
    if opts.remote_write:
        out["remote_write"] = [remote_write(target) for target in opts.remote_write]
    return out


# node-exporter exposes about a thousand series per host; the host alerts read a handful.
NODE_KEEP = "|".join(
    s.name
    for s in (
        cat.NODE_CPU_SECONDS,
        cat.NODE_MEMORY_AVAILABLE,
        cat.NODE_MEMORY_TOTAL,
        cat.NODE_FILESYSTEM_AVAIL,
        cat.NODE_FILESYSTEM_SIZE,
    )
)


def node_job(
    spec: Spec, env_name: str, targets: list[str], labels: dict[str, str], profile: Profile
) -> dict[str, Any]:
    """The environment's hosts: labelled like its service, told apart by `component`.

    Only the catalogue's host families are kept, so node-exporter's own `process_*`
    series can never join the service's CPU and memory alerts.
    """
    env = spec.environments[env_name]
    job: dict[str, Any] = {"job_name": names.node_job(spec, env_name)}
    if env.scrape_interval and not profile.scrape_interval:
        job["scrape_interval"] = env.scrape_interval
    node_labels = {**labels, names.COMPONENT_LABEL: names.NODE_COMPONENT}
    job["static_configs"] = [{"targets": targets, "labels": dict(sorted(node_labels.items()))}]
    job["metric_relabel_configs"] = [{"source_labels": ["__name__"], "regex": NODE_KEEP, "action": "keep"}]
    return job


# Pod phases whose pods serve no metrics: scraping them would only report them down.
_INACTIVE_POD_PHASES = "Pending|Succeeded|Failed"
# Where each Kubernetes role exposes the name of the discovered port.
_PORT_NAME_LABEL = {
    "pod": "__meta_kubernetes_pod_container_port_name",
    "endpoints": "__meta_kubernetes_endpoint_port_name",
}


def discovery_configs(env: Environment) -> dict[str, Any]:
    """The `*_sd_configs` of one environment's job, in Prometheus' own field names."""
    out: dict[str, Any] = {}
    if env.file_sd:
        file_sd: dict[str, Any] = {"files": list(env.file_sd.files)}
        if env.file_sd.refresh_interval:
            file_sd["refresh_interval"] = env.file_sd.refresh_interval
        out["file_sd_configs"] = [file_sd]
    if env.dns_sd:
        dns: dict[str, Any] = {"names": list(env.dns_sd.names), "type": env.dns_sd.type}
        if env.dns_sd.port is not None:
            dns["port"] = env.dns_sd.port
        if env.dns_sd.refresh_interval:
            dns["refresh_interval"] = env.dns_sd.refresh_interval
        out["dns_sd_configs"] = [dns]
    if env.kubernetes_sd:
        k8s = env.kubernetes_sd
        selector = ",".join(f"{key}={value}" for key, value in sorted(k8s.selector.items()))
        kube: dict[str, Any] = {"role": k8s.role, "selectors": [{"role": k8s.role, "label": selector}]}
        if k8s.namespace:
            kube["namespaces"] = {"names": [k8s.namespace]}
        out["kubernetes_sd_configs"] = [kube]
    return out


def discovery_relabelling(env: Environment, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Keep only the service's metrics port of running pods, then stamp the target labels.

    Static, file and DNS targets in the same job carry no Kubernetes meta labels: the
    keep rule lets an empty namespace through, and the drop rule never matches an empty phase.
    """
    rules: list[dict[str, Any]] = []
    if env.kubernetes_sd:
        port_label = _PORT_NAME_LABEL[env.kubernetes_sd.role]
        rules.append(
            {
                "source_labels": ["__meta_kubernetes_namespace", port_label],
                "regex": f";.*|.+;{env.kubernetes_sd.port}",
                "action": "keep",
            }
        )
        rules.append(
            {
                "source_labels": ["__meta_kubernetes_pod_phase"],
                "regex": _INACTIVE_POD_PHASES,
                "action": "drop",
            }
        )
    rules.extend(
        {"target_label": name, "replacement": value, "action": "replace"} for name, value in labels.items()
    )
    return rules


def remote_write(target: RemoteWrite) -> dict[str, Any]:
    out: dict[str, Any] = {"url": target.url}
    if target.basic_auth:
        out["basic_auth"] = {
            "username": target.basic_auth.username,
            "password_file": target.basic_auth.password_file,
        }
    if target.bearer_token_file:
        out["authorization"] = {"type": "Bearer", "credentials_file": target.bearer_token_file}
    if target.queue_config:
        queue = target.queue_config.model_dump(exclude_none=True)
        if queue:
            out["queue_config"] = dict(sorted(queue.items()))
    return out


def alert_rule(spec: Spec, alert: AlertDef) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
    if alert.for_ != "0s":
        rule["for"] = alert.for_
    if alert.keep_firing_for != "0s":
        rule["keep_firing_for"] = alert.keep_firing_for
    rule["labels"] = dict(sorted(alert.rule_labels().items()))
    rule["annotations"] = alert_annotations(spec, alert)
    return rule


def alert_annotations(spec: Spec, alert: AlertDef) -> dict[str, str]:
    """The four annotations every alert carries (names.ALERT_ANNOTATIONS), sorted."""
    found = {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": names.runbook_url(spec, alert.name),
        "dashboard_url": panel_links.annotation_url(spec, alert),  # the panel, environment selected
    }
    return dict(sorted(found.items()))


def record_rule(rule: RecordingRule) -> dict[str, Any]:
    out: dict[str, Any] = {"record": rule.record, "expr": rule.expr}
    if rule.labels:
        out["labels"] = dict(sorted(rule.labels.items()))
    return out


def group_dict(spec: Spec, group: RuleGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"name": group.name}
    if group.interval:
        out["interval"] = group.interval
    out["rules"] = [alert_rule(spec, r) if isinstance(r, AlertDef) else record_rule(r) for r in group.rules]
    return out


def render(spec: Spec, profile: str | Profile | None = None) -> dict[str, str]:
    """prometheus.yml and one rule file per concern; paths relative to the output folder."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    groups = rule_groups(spec, prof)
    files: dict[str, list[RuleGroup]] = {}
    for group in groups:
        files.setdefault(group.file, []).append(group)
    out: dict[str, str] = {}
    for file in sorted(files):
        out[f"{RULES_DIR}/{file}"] = yamltext.dump({"groups": [group_dict(spec, g) for g in files[file]]})
    rule_paths = [f"rules/{file}" for file in sorted(files)]
    out[CONFIG_PATH] = yamltext.dump(config(spec, prof, rule_paths))
    return out
