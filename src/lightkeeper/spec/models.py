"""The `lightkeeper.yaml` data model.

Every generator reads this and nothing else, so a field added here is a field the
whole stack understands. Unknown keys are errors (`extra="forbid"`): a misspelt
`repeat_intervall` must fail loudly, not be ignored until the night it matters.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from lightkeeper import catalogue
from lightkeeper.spec.kubernetes import KubernetesSection, Workload
from lightkeeper.spec.probes import PROBES_EXAMPLE, ConnectivityCheck, Probe, unique_probe_names
from lightkeeper.spec.server import SERVER_EXAMPLE, ServerSection

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Target labels the generated scrape config sets, which rules and routing rely on.
_RESERVED_TARGET_LABELS = frozenset({"service", "environment", "job", "instance", "component"})
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# A component name as the server accepts it in a deployment report (a metric label value).
_COMPONENT = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
# The `instance` rule tests give an environment whose targets are all discovered.
DISCOVERED_SAMPLE_TARGET = "discovered-1:8000"


class LocatedValueError(ValueError):
    """A cross-field check's error with the path of the value at fault; model validators
    otherwise report at the spec's root, and the loader needs the path for file:line."""

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as `5m`, `1h`, `30d` (single unit)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit, e.g. 30s, 5m, 1h, 30d")
    return int(match.group(1)) * _DURATION_SECONDS[match.group(2)]


def _check_duration(value: str) -> str:
    duration_seconds(value)
    return value


Duration = Annotated[
    str, AfterValidator(_check_duration), Field(description="Prometheus duration: 30s, 5m, 1h, 30d")
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- environments ------------------------------------------------------------------
class FileSD(StrictModel):
    """Targets listed in JSON/YAML files that something else (Ansible, Consul-template) keeps current."""

    files: list[str] = Field(min_length=1, description="Paths or globs, relative to prometheus.yml")
    refresh_interval: Duration | None = None


class DnsSD(StrictModel):
    """Targets from DNS: SRV records carry their port; A/AAAA records need `port`."""

    names: list[str] = Field(min_length=1, description="DNS names, e.g. _metrics._tcp.api.example.com")
    type: Literal["SRV", "A", "AAAA"] = "SRV"
    port: int | None = Field(default=None, ge=1, le=65535, description="Required for A and AAAA")
    refresh_interval: Duration | None = None

    @model_validator(mode="after")
    def _port(self) -> DnsSD:
        if self.type == "SRV" and self.port is not None:
            raise LocatedValueError("SRV records carry their own port; remove `port`", ("port",))
        if self.type != "SRV" and self.port is None:
            raise LocatedValueError(f"{self.type} records carry no port; add e.g. `port: 8000`", ("type",))
        return self


class KubernetesSD(Workload):
    """Pods (or a Service's endpoints) found through the Kubernetes API, selected by their labels."""

    role: Literal["pod", "endpoints"] = Field(
        default="pod", description="pod: every pod; endpoints: the pods behind a Service (its labels)"
    )
    namespace: str | None = Field(
        default=None, pattern=_DNS_LABEL, description="Namespace to watch; omitted: every namespace"
    )
    selector: dict[str, str] = Field(description="Labels of the pods (role pod) or the Service (endpoints)")

    @field_validator("selector")
    @classmethod
    def _some_labels(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("give the labels that select the service, e.g. {app.kubernetes.io/name: api}")
        return v


class Environment(StrictModel):
    """A deployment of the service that Prometheus scrapes: static targets and/or discovered ones."""

    targets: list[str] = Field(default_factory=list, description="host:port of each instance")
    file_sd: FileSD | None = None
    dns_sd: DnsSD | None = None
    kubernetes_sd: KubernetesSD | None = None
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    scrape_interval: Duration | None = None
    bearer_token_file: str | None = Field(None, description="File holding the /metrics token")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra target labels")
    thresholds: dict[str, float | dict[Severity, float]] = Field(
        default_factory=dict,
        description="Per-environment alert thresholds; a number replaces the least severe tier",
    )
    celery_targets: list[str] = Field(
        default_factory=list,
        description="host:port of each Celery worker's metrics server (instrument_celery(metrics_port=...))",
    )
    node_targets: list[str] | None = Field(
        default=None,
        description=(
            "host:port of node-exporter on the hosts this environment runs on (host CPU, memory, disk "
            "alerts); default: the compose overlay's node-exporter for environments with static "
            "targets, none for discovered ones; [] turns host alerts off"
        ),
    )
    production: bool | None = Field(
        default=None,
        description="Pages through the top-level `routing`; default: named prod/production, or the only one",
    )
    routing: dict[Severity, list[str] | SeverityRoute] | None = Field(
        default=None,
        description="This environment's own severity routing; omitted severities notify nobody",
    )

    @field_validator("targets", "celery_targets", "node_targets")
    @classmethod
    def _targets(cls, v: list[str] | None) -> list[str] | None:
        for t in v or ():
            if ":" not in t or "/" in t:
                raise ValueError(f"target {t!r} must be host:port, e.g. api:8000")
        return v

    @model_validator(mode="after")
    def _some_targets(self) -> Environment:
        if not (self.targets or self.file_sd or self.dns_sd or self.kubernetes_sd):
            raise ValueError(
                "an environment needs targets (host:port list) or a discovery: file_sd, dns_sd, kubernetes_sd"
            )
        return self

    def discovers(self) -> bool:
        return bool(self.file_sd or self.dns_sd or self.kubernetes_sd)

    def sample_targets(self) -> list[str]:
        """The static targets, or one stand-in when all are discovered: the `instance` of the
        synthetic series in the generated rule tests, which need some instance to label."""
        return sorted(self.targets) or [DISCOVERED_SAMPLE_TARGET]


# Environment names that page through the top-level `routing` unless `production: false`.
PRODUCTION_NAMES = frozenset({"prod", "production"})


# --- SLOs --------------------------------------------------------------------------
class AvailabilitySLI(StrictModel):
    """Good events are responses whose status code does not match `bad_status`."""

    kind: Literal["availability"]
    routes: list[str] | None = Field(None, description="Route templates; omitted = whole service")
    route_group: str | None = Field(None, description="Name of an entry in route_groups")
    bad_status: str = Field("5..", description="Regex over status_code that counts as bad")


class LatencySLI(StrictModel):
    """Good events are requests faster than `threshold_seconds` (a histogram bucket bound)."""

    kind: Literal["latency"]
    threshold_seconds: float = Field(gt=0)
    routes: list[str] | None = None
    route_group: str | None = None


class ProbeSLI(StrictModel):
    """Good time is the time `probe` (one of `probes`) was up; down time is bad, time-weighted.

    Computed by the lightkeeper server from its own probe results (as `/sla/uptime`);
    it has no Prometheus series, so `lightkeeper generate` writes no rules for it.
    """

    kind: Literal["probe"]
    probe: str = Field(min_length=1, description="Name of an entry in probes")
    # not fields: a probe SLI counts no routes, and code reading any SLI's routes sees None
    routes: ClassVar[None] = None
    route_group: ClassVar[None] = None


class DatabaseSLI(StrictModel):
    """Good events are SQL statements that completed; bad ones raised a database error.

    From the SDK's SQLAlchemy metrics. A completed statement is observed in
    `db_query_duration_seconds` and a failed one only in `db_errors_total` (SQLAlchemy
    runs `handle_error` instead of `after_cursor_execute`), so the total is both and no
    statement counts twice. The error counter has no operation or table label, so a
    filter on either could not be applied to the bad events: this SLI takes none.
    """

    kind: Literal["database"]
    routes: ClassVar[None] = None
    route_group: ClassVar[None] = None


class DeploymentSLI(StrictModel):
    """Good events are deployments that finished `success`; `failure` and `rolled_back` are bad.

    From the deployments CI reports to the lightkeeper server: its `env` names the
    environment. The server reads its own store; the generated rules read the
    `deployments_total` it exposes, so they need `prometheus.server_targets`.
    """

    kind: Literal["deployment"]
    components: list[Annotated[str, Field(pattern=_COMPONENT)]] | None = Field(
        None, min_length=1, description="Components counted, as CI reports them; omitted = every component"
    )
    routes: ClassVar[None] = None
    route_group: ClassVar[None] = None


SLI = Annotated[
    AvailabilitySLI | LatencySLI | ProbeSLI | DatabaseSLI | DeploymentSLI, Field(discriminator="kind")
]


class BurnRateTier(StrictModel):
    """One multi-window burn-rate alert: fire when both windows burn faster than allowed."""

    name: str
    long_window: Duration
    short_window: Duration
    budget_share: float = Field(gt=0, le=1, description="Share of the period's budget this tier spends")
    severity: Severity
    for_: Duration | None = Field(None, alias="for", description="How long both windows must burn")


class SLOAlerting(StrictModel):
    page: bool = True
    ticket: bool = True
    min_requests: int = Field(
        default=0, ge=0, description="Low-traffic guard: requests needed in the long window"
    )
    no_data_for: Duration = "15m"
    tiers: list[BurnRateTier] | None = Field(default=None, description="Override the SRE-workbook tiers")


class SLO(StrictModel):
    name: str
    objective: float = Field(gt=0, lt=100, description="Percentage, e.g. 99.9")
    period: str = Field("30d", description="28d, 30d, 90d, ... or calendar_month")
    description: str = ""
    sli: SLI
    alerting: SLOAlerting = Field(default_factory=lambda: SLOAlerting())

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("SLO names are lowercase letters, digits, '-' and '_', e.g. chat-latency")
        return v

    @field_validator("period")
    @classmethod
    def _period(cls, v: str) -> str:
        return v if v == "calendar_month" else _check_duration(v)


# --- alerts ------------------------------------------------------------------------
class AlertThresholds(StrictModel):
    """Thresholds per severity for one alert family; omitted severities do not alert."""

    critical: float | None = None
    high: float | None = None
    medium: float | None = None
    low: float | None = None
    for_: Duration | None = Field(None, alias="for", description="How long the condition must hold")
    enabled: bool = True
    min_requests: int | None = Field(
        default=None,
        ge=0,
        description="Ratio and quantile alerts: requests (task runs) the rate window needs to fire; 0 = off",
    )

    def tiers(self) -> list[tuple[Severity, float]]:
        return [(s, v) for s in SEVERITIES if (v := getattr(self, s)) is not None]


# Alert families the generator knows; the key set is closed so typos are caught.
ALERT_FAMILIES: dict[str, str] = {
    "error_rate": "share of requests answered 5xx (0..1)",
    "latency_p95_seconds": "95th percentile request latency",
    "latency_p99_seconds": "99th percentile request latency",
    "exceptions_per_second": "unhandled exceptions per second",
    "requests_in_progress": "concurrent requests per instance (saturation)",
    "cpu_utilization": "process CPU seconds per second (1.0 = one core)",
    "memory_bytes": "process resident memory",
    "db_pool_utilization": "checked-out / max pool connections (0..1)",
    "db_error_rate": "database errors per second",
    "db_slow_queries_per_second": "slow queries per second",
    "celery_queue_length": "messages waiting in a queue",
    "celery_failure_rate": "share of tasks failing (0..1)",
    "celery_workers_min": "fewer live workers than this",
    "celery_workers_down": "no Celery worker answers Prometheus' scrape (any value enables it)",
    "workflow_stuck": "entities stuck in a processing status",
    "workflow_sample_stale_seconds": "age of the last good workflow sample",
    "llm_cost_usd_per_hour": "LLM spend rate",
    "llm_unpriced_calls_per_second": "LLM calls that cannot be priced, per second (any: 0)",
    "health_check_failing": "a readiness dependency failing (any value enables it)",
    "telemetry_missing": "no metrics from a target (any value enables it)",
    "service_down": "every scrape target of an environment down (any value enables it)",
    "instance_down": "one scrape target down (any value enables it)",
    "probe_down": "a lightkeeper server probe is down (any value enables it)",
    "tls_expiry_days": "days left on a probed TLS certificate (alerts below this)",
    "server_scheduler_lag_seconds": "how late the lightkeeper server starts its probes",
    "server_outbox_depth": "notifications waiting in the lightkeeper server's outbox",
    "usage_quiet_ratio": "a core usage event's rate over its rate a week before (alerts below this)",
    "usage_failure_ratio": "share of a usage event's occurrences with a failed outcome (0..1)",
    "feedback_reports": "feedback_report_submitted events per second (any report: 0)",
    "usage_events_dropped": "usage() calls dropped per second",
    "auth_failure_ratio": "share of authentication attempts failing or locked (0..1)",
    "email_failure_ratio": "share of email sends failing (0..1)",
    "blob_storage_failure_ratio": "share of blob storage (S3) calls failing (0..1)",
    "http_client_failure_ratio": "share of outbound HTTP requests to a host answered 5xx (0..1)",
    "web_vitals_lcp_p75_seconds": "75th percentile Largest Contentful Paint per page",
    "web_vitals_inp_p75_seconds": "75th percentile Interaction to Next Paint per page",
    "web_vitals_cls_p75": "75th percentile Cumulative Layout Shift per page",
    "frontend_errors_per_second": "uncaught browser errors per second per page",
    "host_cpu_utilization": "share of a host's CPU time not idle (0..1; node-exporter)",
    "host_memory_utilization": "share of a host's memory not available (0..1; node-exporter)",
    "host_disk_utilization": "share of a host filesystem used, tmpfs and overlay left out (0..1)",
    "new_exception_types": "an exception type seen now that no request raised the week before",
    "latency_regression_ratio": "p95 latency over the same hour last week, per route group (1.2 = +20 %)",
}


class Receiver(StrictModel):
    """Exactly one channel per receiver; secrets by file or environment variable only."""

    slack: SlackReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    email: EmailReceiver | None = None
    webhook: WebhookReceiver | None = None
    opsgenie: OpsgenieReceiver | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Receiver:
        given = [k for k in ("slack", "pagerduty", "email", "webhook", "opsgenie") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a receiver has exactly one of slack, pagerduty, email, webhook, opsgenie")
        return self


class _SecretRef(StrictModel):
    @staticmethod
    def _one_of(model: BaseModel, file_field: str, env_field: str, what: str, required: bool = True) -> None:
        f, e = getattr(model, file_field), getattr(model, env_field)
        if f and e:
            raise ValueError(f"give either {file_field} or {env_field} for the {what}, not both")
        if required and not f and not e:
            raise ValueError(
                f"the {what} is a secret: give {file_field} (a path) or {env_field} (a variable name)"
            )
        if e and not _ENV_VAR.match(e):
            raise ValueError(f"{env_field} must be an environment variable name such as SLACK_WEBHOOK_URL")


class SlackReceiver(_SecretRef):
    webhook_url_file: str | None = None
    webhook_url_env: str | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _secret(self) -> SlackReceiver:
        self._one_of(self, "webhook_url_file", "webhook_url_env", "Slack webhook URL")
        return self


class PagerDutyReceiver(_SecretRef):
    routing_key_file: str | None = None
    routing_key_env: str | None = None

    @model_validator(mode="after")
    def _secret(self) -> PagerDutyReceiver:
        self._one_of(self, "routing_key_file", "routing_key_env", "PagerDuty routing key")
        return self


class EmailReceiver(_SecretRef):
    to: str
    from_: str = Field(alias="from")
    smarthost: str
    auth_username: str | None = None
    auth_password_file: str | None = None
    auth_password_env: str | None = None
    require_tls: bool = True

    @model_validator(mode="after")
    def _secret(self) -> EmailReceiver:
        self._one_of(self, "auth_password_file", "auth_password_env", "SMTP password", required=False)
        return self


class WebhookReceiver(_SecretRef):
    url: str | None = Field(None, description="Only for URLs that carry no secret")
    url_file: str | None = None
    url_env: str | None = None
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one(self) -> WebhookReceiver:
        given = [x for x in (self.url, self.url_file, self.url_env) if x]
        if len(given) != 1:
            raise ValueError("a webhook needs exactly one of url, url_file, url_env")
        if self.url and re.search(r"//[^/@]+:[^/@]+@|[?&](token|key|secret|sig)=", self.url, re.I):
            raise ValueError("this webhook URL carries a secret: move it to url_file or url_env")
        if self.url_env and not _ENV_VAR.match(self.url_env):
            raise ValueError("url_env must be an environment variable name")
        return self


class OpsgenieReceiver(_SecretRef):
    api_key_file: str | None = None
    api_key_env: str | None = None
    api_url: str | None = None

    @model_validator(mode="after")
    def _secret(self) -> OpsgenieReceiver:
        self._one_of(self, "api_key_file", "api_key_env", "Opsgenie API key")
        return self


class SeverityRoute(StrictModel):
    receivers: list[str] = Field(default_factory=list)
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None


class Notification(StrictModel):
    """Defaults for every severity route; a severity's long form overrides them."""

    group_by: list[str] = Field(default_factory=lambda: ["alertname", "service", "environment"])
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"


class Inhibition(StrictModel):
    """What silences what. Deploys silence nothing by default: a bad deploy is the most
    common cause of incidents, so its errors are exactly the alerts that must get through."""

    critical_silences_lower: bool = True
    maintenance_silences_symptoms: bool = True
    faster_burn_silences_slower: bool = Field(
        default=True, description="An SLO's slower page tiers stay quiet while its fastest one fires"
    )
    deploy_grace: Duration | None = Field(
        default=None,
        description=(
            "Opt-in: for this long after a new version appears (at most 1h), non-critical error, "
            "latency and SLO alerts are silenced; critical ones and the fast-burn SLO page never are"
        ),
    )

    @field_validator("deploy_grace")
    @classmethod
    def _bounded(cls, v: str | None) -> str | None:
        if v is not None and not 0 < duration_seconds(v) <= 3600:
            raise ValueError(
                f"deploy_grace {v} must be between 1s and 1h: a deploy may mute alerts only briefly"
            )
        return v


class RunbookEntry(StrictModel):
    url: str | None = None
    steps: list[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> RunbookEntry:
        if bool(self.url) == bool(self.steps):
            raise ValueError("a runbook entry has either url or steps")
        return self


class Runbooks(StrictModel):
    base_url: str = Field(default="", description="Where the generated runbooks/<alert>.md are served")
    alerts: dict[str, RunbookEntry] = Field(default_factory=dict)


class Dashboards(StrictModel):
    grafana_url: str = "http://localhost:3000"
    refresh: Duration = "30s"
    time_from: str = "now-6h"


class RemoteWriteBasicAuth(StrictModel):
    username: str = Field(min_length=1)
    password_file: str = Field(min_length=1, description="File holding the password (never inline)")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_password(cls, data: Any) -> Any:
        _refuse_inline(data, "password", "password_file")
        return data


class RemoteWriteQueue(StrictModel):
    """The queue settings worth tuning for Mimir or Thanos Receive; Prometheus' defaults for the rest."""

    capacity: int | None = Field(default=None, gt=0, description="Samples buffered per shard")
    max_shards: int | None = Field(default=None, gt=0)
    max_samples_per_send: int | None = Field(default=None, gt=0)


class RemoteWrite(StrictModel):
    """A long-term store (Mimir, Thanos Receive, ...) that Prometheus sends every sample to."""

    url: str = Field(description="The push endpoint, e.g. https://mimir.example.com/api/v1/push")
    basic_auth: RemoteWriteBasicAuth | None = None
    bearer_token_file: str | None = Field(default=None, min_length=1, description="File holding the token")
    queue_config: RemoteWriteQueue | None = None
    retention: Duration | None = Field(
        default=None, description="How long the store keeps samples; SLO periods are checked against it"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", v):
            raise ValueError("write the push endpoint's URL, e.g. https://mimir.example.com/api/v1/push")
        if "@" in v.split("/", 3)[2]:
            raise ValueError(
                "credentials never go in the URL: use basic_auth.password_file or bearer_token_file"
            )
        return v

    @model_validator(mode="before")
    @classmethod
    def _no_inline_token(cls, data: Any) -> Any:
        _refuse_inline(data, "bearer_token", "bearer_token_file")
        _refuse_inline(data, "authorization", "bearer_token_file")
        return data

    @model_validator(mode="after")
    def _one_auth(self) -> RemoteWrite:
        if self.basic_auth and self.bearer_token_file:
            raise LocatedValueError("give basic_auth or bearer_token_file, not both", ("bearer_token_file",))
        return self


def _refuse_inline(data: Any, key: str, instead: str) -> None:
    """Secrets live in files: an inline one would sit in the spec and in prometheus.yml."""
    if isinstance(data, dict) and key in data:
        raise LocatedValueError(
            f"{key} is a secret and is never written inline; put it in a file and give `{instead}: <path>`",
            (key,),
        )


class PrometheusOptions(StrictModel):
    retention: Duration = Field(
        default="30d", description="--storage.tsdb.retention.time; SLO windows must fit"
    )
    remote_write: list[RemoteWrite] = Field(
        default_factory=list, description="Long-term stores (Mimir, Thanos Receive) Prometheus writes to"
    )
    scrape_interval: Duration = "15s"
    evaluation_interval: Duration = "15s"
    alertmanagers: list[str] = Field(default_factory=lambda: ["alertmanager:9093"])
    external_labels: dict[str, str] = Field(default_factory=dict)
    server_targets: list[str] = Field(
        default_factory=list,
        description="host:port of lightkeeper server instances (maintenance windows, probe results)",
    )


# Workflow entity and aggregate names become label values; statuses too.
WorkflowName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
_WORKFLOW_STATUS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")
_SQL_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class WorkflowEntity(StrictModel):
    """A table whose rows move through statuses, sampled by the service (`lightkeeper.instrument_workflow`).

    Rows in a processing status are expected to leave it and count as stuck past each
    threshold; waiting ones (drafts, reviews) wait for a person; terminal and failed
    ones are done. Statuses found in the data but declared nowhere are counted as `other`.
    """

    table: str | None = Field(
        None, description="Table name, optionally schema.table; default: the entity name"
    )
    status_column: str = Field("status", pattern=_SQL_IDENTIFIER)
    age_column: str = Field(
        "updated_at", pattern=_SQL_IDENTIFIER, description="Timestamp the time in a status is measured from"
    )
    processing_statuses: list[str] = Field(min_length=1)
    waiting_statuses: list[str] = Field(default_factory=list)
    terminal_statuses: list[str] = Field(default_factory=list)
    failed_statuses: list[str] = Field(default_factory=list)
    stuck_thresholds: list[Duration] = Field(
        default_factory=lambda: ["30m", "24h"],
        min_length=1,
        max_length=catalogue.WORKFLOW_MAX_STUCK_THRESHOLDS,
        description="Alert thresholds from 30m to 24h; each is a `threshold` label value as written",
    )

    @model_validator(mode="after")
    def _statuses_and_thresholds(self) -> WorkflowEntity:
        seen: dict[str, str] = {}
        for group in ("processing", "waiting", "terminal", "failed"):
            for status in getattr(self, f"{group}_statuses"):
                if not _WORKFLOW_STATUS.match(status) or status == catalogue.WORKFLOW_OTHER_STATUS:
                    raise ValueError(f"status {status!r} must be a plain word other than 'other'")
                if status in seen:
                    raise ValueError(f"status {status!r} is both {seen[status]} and {group}")
                seen[status] = group
        seconds = [duration_seconds(t) for t in self.stuck_thresholds]
        low, high = catalogue.WORKFLOW_MIN_STUCK_SECONDS, catalogue.WORKFLOW_MAX_STUCK_SECONDS
        outside = [t for t, v in zip(self.stuck_thresholds, seconds, strict=True) if not low <= v <= high]
        if outside:
            raise ValueError(f"stuck thresholds {outside} are outside 30m ... 24h")
        if len(set(seconds)) != len(seconds):
            raise ValueError(f"stuck thresholds {self.stuck_thresholds} repeat a duration")
        return self


class WorkflowAggregate(StrictModel):
    """A named query whose one number the service exposes as `workflow_aggregate{name=...}`."""

    sql: str = Field(min_length=1, description="Read-only SQL returning one row with one number")
    description: str | None = None


class UsageSection(StrictModel):
    """Usage events the service counts with `lightkeeper.usage()`. The SDK never parses this
    file itself: the service passes this section to its `usage_events` setting through
    `lightkeeper.usage_events_from_spec()`, so the service and the generated alerts read one list."""

    events: list[str | dict[str, dict[str, list[str]]]] = Field(
        default_factory=list,
        description="Event names; an entry `{name: {label: [values]}}` also declares its label values",
        examples=[["login_succeeded", {"content_item_created": {"plan": ["free", "pro", "team"]}}]],
    )
    core: list[str] = Field(
        default_factory=list, description="Declared events whose unusual quiet is alerted on"
    )

    def declared(self) -> dict[str, dict[str, list[str]]]:
        """event -> label -> allowed values, in the shape of the SDK's `usage_events`."""
        found: dict[str, dict[str, list[str]]] = {}
        for entry in self.events:
            found.update({entry: {}} if isinstance(entry, str) else entry)
        return found

    @model_validator(mode="after")
    def _check(self) -> UsageSection:
        names = [n for e in self.events for n in ([e] if isinstance(e, str) else e)]
        if len(set(names)) != len(names):
            raise ValueError("usage.events: an event is declared twice")
        for name, labels in self.declared().items():
            if not re.match(catalogue.USAGE_NAME_PATTERN, name):
                raise ValueError(
                    f"usage event {name!r}: use a lowercase identifier such as content_item_created"
                )
            if len(labels) > catalogue.USAGE_MAX_LABELS_PER_EVENT:
                raise ValueError(
                    f"usage event {name!r}: at most {catalogue.USAGE_MAX_LABELS_PER_EVENT} labels"
                )
            for label, values in labels.items():
                if (
                    not re.match(catalogue.USAGE_LABEL_PATTERN, label)
                    or label in catalogue.USAGE_RESERVED_LABELS
                    or re.search(catalogue.USAGE_IDENTIFIER_LABEL, label)
                ):
                    raise ValueError(
                        f"usage event {name!r}: {label!r} cannot be a label (reserved, malformed, or an "
                        "identifier, which belongs in log lines)"
                    )
                if not values or len(values) > catalogue.USAGE_MAX_VALUES_PER_LABEL:
                    raise ValueError(
                        f"usage event {name!r}, label {label!r}: list 1 to "
                        f"{catalogue.USAGE_MAX_VALUES_PER_LABEL} allowed values"
                    )
        unknown = sorted(set(self.core) - set(names))
        if unknown:
            raise ValueError(f"usage.core names undeclared event(s) {', '.join(unknown)}")
        return self


class LlmPrice(StrictModel):
    """A negotiated rate in USD per million tokens (the SDK's `llm_prices` setting)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class Budgets(StrictModel):
    llm_monthly_usd: float | None = Field(default=None, gt=0)
    # LLM cost budgets checked by the server (issue 13): per operation and per workspace, UTC months
    llm_operations_usd: dict[str, float] = Field(
        default_factory=dict, description="Monthly USD budget per LLM operation"
    )
    llm_workspaces_usd: dict[str, float] = Field(
        default_factory=dict, description="Monthly USD quota of named workspaces (their own plan)"
    )
    llm_workspace_default_usd: float | None = Field(
        default=None, gt=0, description="Monthly USD quota of every workspace not named above"
    )
    llm_alert_percents: list[int] = Field(
        default_factory=lambda: [50, 75, 90, 100],
        min_length=1,
        description="Each sent once per month when month-to-date spend reaches it",
    )

    @model_validator(mode="after")
    def _positive_llm_budgets(self) -> Budgets:
        for value in [*self.llm_operations_usd.values(), *self.llm_workspaces_usd.values()]:
            if value <= 0:
                raise ValueError("LLM budgets must be positive amounts of USD")
        if any(not 1 <= p <= 1000 for p in self.llm_alert_percents):
            raise ValueError("llm_alert_percents must be between 1 and 1000")
        return self


class Spec(StrictModel):
    """The whole `lightkeeper.yaml`."""

    service: str
    environments: dict[str, Environment] = Field(min_length=1)
    slos: list[SLO] = Field(default_factory=list)
    route_groups: dict[str, list[str]] = Field(default_factory=dict)
    alerts: dict[str, AlertThresholds] = Field(default_factory=dict)
    routing: dict[Severity, list[str] | SeverityRoute] = Field(default_factory=dict)
    notification: Notification = Field(default_factory=lambda: Notification())
    inhibition: Inhibition = Field(default_factory=lambda: Inhibition())
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    dead_mans_switch: str | None = Field(
        default=None,
        description=(
            "Receiver of the always-firing Watchdog: a dead man's switch such as a healthchecks.io "
            "ping URL (webhook). A receiver named `watchdog` is used when this is not given"
        ),
    )
    runbooks: Runbooks = Field(default_factory=lambda: Runbooks())
    dashboards: Dashboards = Field(default_factory=lambda: Dashboards())
    prometheus: PrometheusOptions = Field(default_factory=lambda: PrometheusOptions())
    workflow: dict[WorkflowName, WorkflowEntity] = Field(default_factory=dict)
    workflow_aggregates: dict[WorkflowName, WorkflowAggregate] = Field(default_factory=dict)
    budgets: Budgets = Field(default_factory=lambda: Budgets())
    llm_prices: dict[str, LlmPrice] = Field(
        default_factory=dict,
        description="Negotiated LLM rates by model, USD per million tokens; read by "
        "lightkeeper.llm_prices_from_spec()",
        examples=[{"gpt-4o": {"input": 2.0, "output": 8.0, "cached_input": 1.0}}],
    )
    usage: UsageSection = Field(default_factory=lambda: UsageSection())
    probes: list[Probe] = Field(default_factory=list, examples=[PROBES_EXAMPLE])
    connectivity_check: ConnectivityCheck | None = None
    server: ServerSection = Field(default_factory=lambda: ServerSection(), examples=[SERVER_EXAMPLE])
    kubernetes: KubernetesSection | None = Field(
        default=None, description="Where the service runs in Kubernetes (`generate --target kubernetes`)"
    )

    @field_validator("probes")
    @classmethod
    def _unique_probes(cls, v: list[Probe]) -> list[Probe]:
        unique_probe_names(v)
        return v

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("service is a lowercase name such as 'api' (letters, digits, '-', '_')")
        return v

    @field_validator("alerts")
    @classmethod
    def _known_alerts(cls, v: dict[str, AlertThresholds]) -> dict[str, AlertThresholds]:
        unknown = sorted(set(v) - set(ALERT_FAMILIES))
        if unknown:
            raise ValueError(f"unknown alert {', '.join(unknown)}; known alerts: {', '.join(ALERT_FAMILIES)}")
        return v

    @model_validator(mode="after")
    def _references(self) -> Spec:
        routings: list[tuple[tuple[str, ...], dict[Severity, list[str] | SeverityRoute]]] = [
            (("routing",), self.routing)
        ]
        routings += [
            (("environments", n, "routing"), e.routing) for n, e in self.environments.items() if e.routing
        ]
        for path, routing in routings:
            for severity, route in routing.items():
                at = (*path, severity) if isinstance(route, list) else (*path, severity, "receivers")
                names = route if isinstance(route, list) else route.receivers
                for i, name in enumerate(names):
                    if name not in self.receivers:
                        raise LocatedValueError(
                            f"{'.'.join(path)}.{severity} names receiver {name!r}, "
                            "which is not defined under receivers",
                            (*at, i),
                        )
        if self.dead_mans_switch is not None and self.dead_mans_switch not in self.receivers:
            raise LocatedValueError(
                f"dead_mans_switch names receiver {self.dead_mans_switch!r}, which is not defined under "
                "receivers; add e.g. heartbeat: {webhook: {url: https://hc-ping.com/<uuid>}}",
                ("dead_mans_switch",),
            )
        sampled = self.server.workflow_environment
        if sampled is not None and sampled not in self.environments:
            raise LocatedValueError(
                f"server.workflow_environment names {sampled!r}, which is not one of the environments "
                f"({', '.join(self.environments)})",
                ("server", "workflow_environment"),
            )
        if not self.production_environments():
            raise ValueError(
                f"none of the environments {', '.join(sorted(self.environments))} is production, so no alert"
                " would page; mark the one that pages with `production: true`"
            )
        probe_names = {p.name for p in self.probes}
        for i, slo in enumerate(self.slos):
            if isinstance(slo.sli, ProbeSLI):
                if slo.sli.probe not in probe_names:
                    raise LocatedValueError(
                        f"SLO {slo.name!r} uses probe {slo.sli.probe!r}; define it under probes",
                        ("slos", i, "sli", "probe"),
                    )
                continue
            group = slo.sli.route_group
            if group is not None and group not in self.route_groups:
                raise LocatedValueError(
                    f"SLO {slo.name!r} uses route_group {group!r}; define it under route_groups",
                    ("slos", i, "sli", "route_group"),
                )
        names = [s.name for s in self.slos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"SLO names must be unique; repeated: {', '.join(dupes)}")
        for env_name, env in self.environments.items():
            if not _NAME.match(env_name):
                raise ValueError(f"environment {env_name!r}: use a lowercase name such as prod or beta")
            for label in env.labels:
                if label in _RESERVED_TARGET_LABELS or not _LABEL_NAME.match(label):
                    raise ValueError(
                        f"environments.{env_name}.labels.{label}: "
                        + (
                            f"{label} is set by lightkeeper itself; choose another label name"
                            if label in _RESERVED_TARGET_LABELS
                            else "not a valid Prometheus label name (letters, digits, _)"
                        )
                    )
            for key in env.thresholds:
                if key not in ALERT_FAMILIES:
                    raise ValueError(f"unknown threshold {key!r}; known: {', '.join(ALERT_FAMILIES)}")
        for label in self.prometheus.external_labels:
            if not _LABEL_NAME.match(label):
                raise ValueError(f"external label {label!r} is not a valid Prometheus label name")
        return self

    def is_production(self, environment: str) -> bool:
        """Explicit `production:` first; else by name; a spec's only environment is production."""
        env = self.environments[environment]
        if env.production is not None:
            return env.production
        return environment in PRODUCTION_NAMES or len(self.environments) == 1

    def workflow_sampled_environment(self) -> str | None:
        """The environment whose workflow the server samples, when it samples one."""
        if self.server.workflow_database_url_env is None or not (self.workflow or self.workflow_aggregates):
            return None
        return self.server.workflow_environment or next(iter(self.environments))

    def production_environments(self) -> list[str]:
        return [name for name in sorted(self.environments) if self.is_production(name)]

    def route_for(self, severity: Severity, environment: str | None = None) -> SeverityRoute:
        """The long form of a severity's route (the list shorthand expanded).

        Without `environment`, or for a production environment without its own routing, the
        top-level `routing`. Any other environment never pages by default: critical and high
        go where `high` goes (chat), medium and low to nobody, unless it gives its own `routing`.
        """
        routing = self.routing
        if environment is not None:
            env = self.environments[environment]
            if env.routing is not None:
                routing = env.routing
            elif not self.is_production(environment):
                if severity not in ("critical", "high"):
                    return SeverityRoute()
                return self.route_for("high")
        route = routing.get(severity, [])
        return SeverityRoute(receivers=route) if isinstance(route, list) else route


def model_json_schema() -> dict[str, Any]:
    """JSON Schema for editors (yaml-language-server)."""
    return Spec.model_json_schema(by_alias=True)
