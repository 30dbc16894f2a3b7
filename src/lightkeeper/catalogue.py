"""The one list of every signal Lightkeeper emits or relies on.

Emitters build their prometheus-client objects from these entries; rule generators,
dashboards, checks and tests import the same entries. A metric name written anywhere
else in the code base is a bug: generated PromQL could then drift from what a service
actually exposes.

This module is plain data with no third-party imports, so `lightkeeper.spec` and
`lightkeeper.stack` can depend on it without pulling in the SDK's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
Emitter = Literal["sdk", "prometheus_client", "prometheus", "server", "node_exporter"]

# Request latency: the Prometheus defaults plus 0.2 s and 0.3 s, which are common SLO
# thresholds. A latency SLO threshold must be one of these boundaries (checked by the
# stack generator), otherwise the "share of requests under X" would be interpolated.
HTTP_DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
SIZE_BUCKETS: tuple[float, ...] = (100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)
DB_DURATION_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
TASK_DURATION_BUCKETS: tuple[float, ...] = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
LLM_DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
TOKEN_BUCKETS: tuple[float, ...] = (
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
)

# The value every unmatched request shares, so scanners cannot mint new series.
UNMATCHED_ROUTE = "<unmatched>"
# Label values longer than this are cut; a last line of defence, not a design tool.
MAX_LABEL_VALUE_LENGTH = 120


@dataclass(frozen=True)
class Signal:
    """One metric family as exposed on `/metrics` (full exposition name).

    `name` is what PromQL sees: counters carry their `_total` suffix here, histograms
    their base name (rules add `_bucket`, `_sum`, `_count`). `emitter` says which part
    produces it: "sdk" entries are checked against a real instrumented process by
    tests/integration/test_catalogue_emitted.py. `bounded` documents, for every label,
    why its cardinality cannot grow with traffic.
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    # Required and keyword-only, so no entry can leave out who produces it.
    emitter: Emitter = field(kw_only=True)
    # Set while no code produces the signal yet: names the work that will. Generators
    # skip every panel and alert that reads a planned signal, so no dashboard shows
    # "No data" and no alert watches a series that cannot exist.
    planned: str | None = field(default=None, kw_only=True)
    group: str = "http"
    bounded: dict[str, str] = field(default_factory=dict)

    @property
    def emitted(self) -> bool:
        """False while the signal is only planned (see `planned`)."""
        return self.planned is None

    @property
    def base_name(self) -> str:
        """Name prometheus-client wants at construction (it appends `_total` itself)."""
        if self.kind == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name

    @property
    def series_names(self) -> tuple[str, ...]:
        """Every sample name this family produces in the text exposition."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        if self.kind == "counter":
            return (self.name, self.name.removesuffix("_total") + "_created")
        return (self.name,)


_ROUTE = "route template from the router, or one shared value for unmatched paths"
_METHOD = "HTTP method; unknown methods collapse to 'OTHER'"
_STATUS = "numeric status code (at most ~60 values)"
_EXC = "exception class name (bounded by the code base)"
_TASK = "Celery task name (bounded by the code base)"
_HOST = "outbound host; capped per process, overflow shares 'other'"

# --- HTTP server (lightkeeper.sdk.middleware) ----------------------------------------
HTTP_REQUESTS = Signal(
    "http_requests_total",
    "counter",
    "HTTP requests served, by route template and status code.",
    ("method", "route", "status_code"),
    emitter="sdk",
    bounded={"method": _METHOD, "route": _ROUTE, "status_code": _STATUS},
)
HTTP_REQUEST_DURATION = Signal(
    "http_request_duration_seconds",
    "histogram",
    "Time from request start to the last response byte (background tasks excluded).",
    ("method", "route"),
    HTTP_DURATION_BUCKETS,
    emitter="sdk",
    bounded={"method": _METHOD, "route": _ROUTE},
)
HTTP_REQUESTS_IN_PROGRESS = Signal(
    "http_requests_in_progress",
    "gauge",
    "HTTP requests currently being served.",
    ("method", "route"),
    emitter="sdk",
    bounded={"method": _METHOD, "route": _ROUTE},
)
HTTP_REQUEST_SIZE = Signal(
    "http_request_size_bytes",
    "histogram",
    "Request body size (Content-Length, or bytes read).",
    ("route",),
    SIZE_BUCKETS,
    emitter="sdk",
    bounded={"route": _ROUTE},
)
HTTP_RESPONSE_SIZE = Signal(
    "http_response_size_bytes",
    "histogram",
    "Response body size in bytes.",
    ("route",),
    SIZE_BUCKETS,
    emitter="sdk",
    bounded={"route": _ROUTE},
)
HTTP_EXCEPTIONS = Signal(
    "http_exceptions_total",
    "counter",
    "Unhandled exceptions raised while serving a request.",
    ("route", "exception_type"),
    emitter="sdk",
    bounded={"route": _ROUTE, "exception_type": _EXC},
)
HTTP_TIME_TO_FIRST_BYTE = Signal(
    "http_time_to_first_byte_seconds",
    "histogram",
    "Streaming responses only: time from request start to the first body chunk.",
    ("method", "route"),
    HTTP_DURATION_BUCKETS,
    emitter="sdk",
    bounded={"method": _METHOD, "route": _ROUTE},
)
BUILD_INFO = Signal(
    "lightkeeper_build_info",
    "gauge",
    "Always 1; labels identify the running build.",
    ("service", "environment", "version"),
    emitter="sdk",
    group="process",
    bounded={"service": "set at start", "environment": "set at start", "version": "set at start"},
)

# --- Health (lightkeeper.sdk.health) -------------------------------------------------
HEALTH_CHECK_UP = Signal(
    "lightkeeper_health_check_up",
    "gauge",
    "1 when the last run of a readiness check passed, else 0.",
    ("check",),
    emitter="sdk",
    group="health",
    bounded={"check": "registered check names"},
)
HEALTH_CHECK_DURATION = Signal(
    "lightkeeper_health_check_duration_seconds",
    "histogram",
    "Time taken by readiness checks.",
    ("check",),
    DB_DURATION_BUCKETS,
    emitter="sdk",
    group="health",
    bounded={"check": "registered check names"},
)

# --- Process (emitted by prometheus-client's default collectors) ---------------------
PROCESS_CPU = Signal(
    "process_cpu_seconds_total",
    "counter",
    "CPU time used by the process.",
    emitter="prometheus_client",
    group="process",
)
PROCESS_RESIDENT_MEMORY = Signal(
    "process_resident_memory_bytes",
    "gauge",
    "Resident memory of the process.",
    emitter="prometheus_client",
    group="process",
)
PROCESS_OPEN_FDS = Signal(
    "process_open_fds",
    "gauge",
    "Open file descriptors.",
    emitter="prometheus_client",
    group="process",
)
PROCESS_MAX_FDS = Signal(
    "process_max_fds",
    "gauge",
    "File descriptor limit.",
    emitter="prometheus_client",
    group="process",
)
PROCESS_START_TIME = Signal(
    "process_start_time_seconds",
    "gauge",
    "Process start time (unix seconds).",
    emitter="prometheus_client",
    group="process",
)

# --- Prometheus' own synthetic series ------------------------------------------------
UP = Signal(
    "up",
    "gauge",
    "1 if Prometheus' last scrape of the target succeeded.",
    ("job", "instance"),
    emitter="prometheus",
    group="scrape",
    bounded={"job": "scrape config", "instance": "scrape targets"},
)
SCRAPE_DURATION = Signal(
    "scrape_duration_seconds",
    "gauge",
    "Duration of Prometheus' last scrape.",
    ("job", "instance"),
    emitter="prometheus",
    group="scrape",
    bounded={"job": "scrape config", "instance": "scrape targets"},
)

# --- Hosts (node-exporter, scraped by the generated `<service>-<env>-node` job) -----------
# Only these families are kept from node-exporter's exposition (metric relabelling), so
# the host alerts read exactly what the catalogue lists.
_CPU = "logical CPU index (bounded by the host)"
_FS = "filesystems mounted on the host (bounded by the host)"
NODE_CPU_SECONDS = Signal(
    "node_cpu_seconds_total",
    "counter",
    "Seconds each CPU spent in each mode.",
    ("cpu", "mode"),
    emitter="node_exporter",
    group="host",
    bounded={"cpu": _CPU, "mode": "the kernel's CPU modes (about ten)"},
)
NODE_MEMORY_AVAILABLE = Signal(
    "node_memory_MemAvailable_bytes",
    "gauge",
    "Memory available to new processes without swapping (the kernel's estimate).",
    emitter="node_exporter",
    group="host",
)
NODE_MEMORY_TOTAL = Signal(
    "node_memory_MemTotal_bytes",
    "gauge",
    "Usable physical memory.",
    emitter="node_exporter",
    group="host",
)
NODE_FILESYSTEM_AVAIL = Signal(
    "node_filesystem_avail_bytes",
    "gauge",
    "Filesystem space available to unprivileged users.",
    ("device", "fstype", "mountpoint"),
    emitter="node_exporter",
    group="host",
    bounded={"device": _FS, "fstype": _FS, "mountpoint": _FS},
)
NODE_FILESYSTEM_SIZE = Signal(
    "node_filesystem_size_bytes",
    "gauge",
    "Filesystem size.",
    ("device", "fstype", "mountpoint"),
    emitter="node_exporter",
    group="host",
    bounded={"device": _FS, "fstype": _FS, "mountpoint": _FS},
)

# --- Celery (lightkeeper.sdk.integrations.celery) ------------------------------------
CELERY_TASKS = Signal(
    "celery_tasks_total",
    "counter",
    "Task state transitions: received, started, succeeded, failed, retried, rejected.",
    ("task", "state"),
    emitter="sdk",
    group="celery",
    bounded={"task": _TASK, "state": "six fixed states"},
)
CELERY_TASK_DURATION = Signal(
    "celery_task_duration_seconds",
    "histogram",
    "Task run time on the worker.",
    ("task",),
    TASK_DURATION_BUCKETS,
    emitter="sdk",
    group="celery",
    bounded={"task": _TASK},
)
CELERY_TASK_QUEUE_WAIT = Signal(
    "celery_task_queue_wait_seconds",
    "histogram",
    "Time from publish to the start of execution.",
    ("task",),
    TASK_DURATION_BUCKETS,
    emitter="sdk",
    group="celery",
    bounded={"task": _TASK},
)
CELERY_TASK_FAILURES = Signal(
    "celery_task_failures_total",
    "counter",
    "Tasks that raised, by exception type.",
    ("task", "exception_type"),
    emitter="sdk",
    group="celery",
    bounded={"task": _TASK, "exception_type": _EXC},
)
CELERY_TASK_TIME_LIMITS = Signal(
    "celery_task_time_limit_hits_total",
    "counter",
    "Soft and hard time-limit hits.",
    ("task", "limit"),
    emitter="sdk",
    group="celery",
    bounded={"task": _TASK, "limit": "soft | hard"},
)
CELERY_QUEUE_LENGTH = Signal(
    "celery_queue_length",
    "gauge",
    "Messages waiting in a broker queue (sampled).",
    ("queue",),
    emitter="sdk",
    group="celery",
    bounded={"queue": "configured queue names"},
)
CELERY_WORKERS_UP = Signal(
    "celery_workers_up",
    "gauge",
    "Workers that answered the last ping.",
    emitter="sdk",
    group="celery",
)

# --- Database (lightkeeper.sdk.integrations.sqlalchemy) ------------------------------
_OP = "SQL verb (SELECT, INSERT, ...), fixed set"
_TABLE = "first table of the statement, capped per process; overflow shares 'other'"
DB_QUERY_DURATION = Signal(
    "db_query_duration_seconds",
    "histogram",
    "Statement execution time.",
    ("operation", "table"),
    DB_DURATION_BUCKETS,
    emitter="sdk",
    group="database",
    bounded={"operation": _OP, "table": _TABLE},
)
DB_SLOW_QUERIES = Signal(
    "db_slow_queries_total",
    "counter",
    "Statements slower than the slow-query threshold.",
    ("operation", "table"),
    emitter="sdk",
    group="database",
    bounded={"operation": _OP, "table": _TABLE},
)
DB_ERRORS = Signal(
    "db_errors_total",
    "counter",
    "Database errors by DBAPI exception class.",
    ("error_type",),
    emitter="sdk",
    group="database",
    bounded={"error_type": _EXC},
)
DB_CONNECTIONS_ACTIVE = Signal(
    "db_connections_active",
    "gauge",
    "Pool connections checked out.",
    ("pool",),
    emitter="sdk",
    group="database",
    bounded={"pool": "instrumented engines"},
)
DB_CONNECTIONS_IDLE = Signal(
    "db_connections_idle",
    "gauge",
    "Pool connections idle in the pool.",
    ("pool",),
    emitter="sdk",
    group="database",
    bounded={"pool": "instrumented engines"},
)
DB_CONNECTIONS_MAX = Signal(
    "db_connections_max",
    "gauge",
    "Pool size plus allowed overflow.",
    ("pool",),
    emitter="sdk",
    group="database",
    bounded={"pool": "instrumented engines"},
)
DB_CONNECTION_WAIT = Signal(
    "db_connection_wait_seconds",
    "histogram",
    "Time spent waiting for a pool connection.",
    ("pool",),
    DB_DURATION_BUCKETS,
    emitter="sdk",
    group="database",
    bounded={"pool": "instrumented engines"},
)

# --- Outbound HTTP (lightkeeper.sdk.integrations.httpx / requests) --------------------
HTTP_CLIENT_REQUESTS = Signal(
    "http_client_requests_total",
    "counter",
    "Outbound HTTP requests by host and status.",
    ("host", "method", "status_code"),
    emitter="sdk",
    group="outbound",
    bounded={"host": _HOST, "method": _METHOD, "status_code": _STATUS},
)
HTTP_CLIENT_DURATION = Signal(
    "http_client_request_duration_seconds",
    "histogram",
    "Outbound HTTP request duration.",
    ("host",),
    HTTP_DURATION_BUCKETS,
    emitter="sdk",
    group="outbound",
    bounded={"host": _HOST},
)
HTTP_CLIENT_FAILURES = Signal(
    "http_client_failures_total",
    "counter",
    "Outbound requests that got no response (timeout, connect, ...).",
    ("host", "error_type"),
    emitter="sdk",
    group="outbound",
    bounded={"host": _HOST, "error_type": "timeout | connect | read | write | protocol | other"},
)

# --- Redis and caches ----------------------------------------------------------------
REDIS_COMMAND_DURATION = Signal(
    "redis_command_duration_seconds",
    "histogram",
    "Redis command duration.",
    ("command",),
    DB_DURATION_BUCKETS,
    emitter="sdk",
    group="redis",
    bounded={"command": "Redis command names"},
)
REDIS_COMMAND_ERRORS = Signal(
    "redis_command_errors_total",
    "counter",
    "Redis commands that raised.",
    ("command", "error_type"),
    emitter="sdk",
    group="redis",
    bounded={"command": "Redis command names", "error_type": _EXC},
)
CACHE_HITS = Signal(
    "cache_hits_total",
    "counter",
    "Application cache hits.",
    ("cache",),
    emitter="sdk",
    group="redis",
    bounded={"cache": "cache names chosen in code"},
)
CACHE_MISSES = Signal(
    "cache_misses_total",
    "counter",
    "Application cache misses.",
    ("cache",),
    emitter="sdk",
    group="redis",
    bounded={"cache": "cache names chosen in code"},
)

# --- Business signals ----------------------------------------------------------------
# Usage events are declared (in lightkeeper.yaml for the generator, in settings or code
# for the service); both sides check declarations against these rules. Each label an
# event declares joins `usage_events_total` after `event` (empty for events without it).
USAGE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
USAGE_LABEL_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
# Label names that would collide with target labels or hold per-user data.
USAGE_RESERVED_LABELS = frozenset({"event", "amount", "service", "environment", "job", "instance", "le"})
USAGE_IDENTIFIER_LABEL = r"(^|_)(id|ids|uuid|email|user|username|ip)$"
USAGE_MAX_LABELS_PER_EVENT = 4
USAGE_MAX_VALUES_PER_LABEL = 50
USAGE_MAX_SERIES = 2000
USAGE_EVENTS = Signal(
    "usage_events_total",
    "counter",
    "Business events counted by `lightkeeper.usage()`, with the label values each event declares.",
    ("event",),
    emitter="sdk",
    group="usage",
    bounded={"event": "declared event names (undeclared: capped per process)"},
)
USAGE_EVENTS_DROPPED = Signal(
    "lightkeeper_usage_events_dropped_total",
    "counter",
    "usage() and auth_attempt() calls not counted because the declaration does not allow them.",
    ("reason",),
    emitter="sdk",
    group="usage",
    bounded={
        "reason": "invalid_name | unknown_event | unknown_label | missing_label | unknown_value | "
        "invalid_amount | too_many_events | invalid_auth"
    },
)
AUTH_ATTEMPTS = Signal(
    "auth_attempts_total",
    "counter",
    "Authentication attempts by outcome.",
    ("method", "outcome"),
    emitter="sdk",
    group="usage",
    bounded={"method": "password | oauth | token", "outcome": "success | failure | locked"},
)

# --- Dependencies (lightkeeper.track_dependency, instrument_smtp, instrument_boto3) ----
DEPENDENCY_OUTCOMES = (
    "success",
    "timeout",
    "connection",
    "auth",
    "throttled",
    "client_error",
    "server_error",
    "other",
)
_DEPENDENCY = "names chosen in code; instrument_smtp: email, instrument_boto3: s3"
_OPERATION = "names chosen in code, or the API's operation names (S3: PutObject, ...); capped per process"
DEPENDENCY_CALLS = Signal(
    "dependency_calls_total",
    "counter",
    "Calls to external dependencies (email, blob storage, APIs) by outcome: success or the error class.",
    ("dependency", "operation", "outcome"),
    emitter="sdk",
    group="outbound",
    bounded={"dependency": _DEPENDENCY, "operation": _OPERATION, "outcome": " | ".join(DEPENDENCY_OUTCOMES)},
)
DEPENDENCY_DURATION = Signal(
    "dependency_call_duration_seconds",
    "histogram",
    "Duration of calls to external dependencies, whatever their outcome.",
    ("dependency", "operation"),
    HTTP_DURATION_BUCKETS,
    emitter="sdk",
    group="outbound",
    bounded={"dependency": _DEPENDENCY, "operation": _OPERATION},
)
# --- Workflow health (lightkeeper.instrument_workflow), sampled from the database ----
# Stuck thresholds a declaration may use: shorter ones would race the sampling
# interval, longer ones belong to a report, not a gauge.
WORKFLOW_MIN_STUCK_SECONDS = 30 * 60
WORKFLOW_MAX_STUCK_SECONDS = 24 * 3600
WORKFLOW_MAX_STUCK_THRESHOLDS = 5
# Statuses found in the data but not declared share this label value.
WORKFLOW_OTHER_STATUS = "other"
WORKFLOW_SAMPLE_ERROR_REASONS = ("timeout", "connection", "query", "other")
_WF_ENTITY = "entity kinds declared in code or lightkeeper.yaml"
_WF_SAMPLE = "declared entity kinds and aggregate names (unique together)"
WORKFLOW_ENTITIES = Signal(
    "workflow_entities",
    "gauge",
    "Entities by status, sampled from the database.",
    ("entity", "status"),
    emitter="sdk",
    group="workflow",
    bounded={"entity": _WF_ENTITY, "status": "declared statuses; undeclared ones fold into 'other'"},
)
WORKFLOW_STUCK_ENTITIES = Signal(
    "workflow_stuck_entities",
    "gauge",
    "Entities in a processing status for longer than a threshold, sampled from the database.",
    ("entity", "status", "threshold"),
    emitter="sdk",
    group="workflow",
    bounded={
        "entity": _WF_ENTITY,
        "status": "declared processing statuses",
        "threshold": "declared durations as written (30m ... 24h, at most 5 per entity)",
    },
)
WORKFLOW_OLDEST_PROCESSING_AGE = Signal(
    "workflow_oldest_processing_age_seconds",
    "gauge",
    "Age of the oldest entity in a processing status (0 when none is processing), at the last sample.",
    ("entity",),
    emitter="sdk",
    group="workflow",
    bounded={"entity": _WF_ENTITY},
)
WORKFLOW_AGGREGATE = Signal(
    "workflow_aggregate",
    "gauge",
    "Value of a named aggregate query (pending invites, active workspaces, ...), at the last sample.",
    ("name",),
    emitter="sdk",
    group="workflow",
    bounded={"name": "aggregate names declared in code or lightkeeper.yaml"},
)
WORKFLOW_SAMPLE_AGE = Signal(
    "workflow_sample_age_seconds",
    "gauge",
    "Seconds since the entity or aggregate was last sampled successfully (since start-up before that); "
    "its other workflow gauges are this old.",
    ("entity",),
    emitter="sdk",
    group="workflow",
    bounded={"entity": _WF_SAMPLE},
)
WORKFLOW_SAMPLE_ERRORS = Signal(
    "workflow_sample_errors_total",
    "counter",
    "Workflow samples that failed or hit their statement timeout; the last good values stay in place.",
    ("entity", "reason"),
    emitter="sdk",
    group="workflow",
    bounded={"entity": _WF_SAMPLE, "reason": " | ".join(WORKFLOW_SAMPLE_ERROR_REASONS)},
)

# --- Browser (RUM: lightkeeper.sdk.rum, beacons from the served rum.js) ---------------
# Each layout holds the published Core Web Vitals boundaries (good / needs improvement
# / poor), so "share of page views rated good" is an exact bucket ratio.
WEB_VITALS_LCP_BUCKETS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0)
WEB_VITALS_INP_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
WEB_VITALS_CLS_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0)
WEB_VITALS_FCP_BUCKETS: tuple[float, ...] = (0.5, 1.0, 1.8, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0)
WEB_VITALS_TTFB_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.4, 0.8, 1.2, 1.8, 3.0, 5.0, 10.0)
# (good up to, poor above), per vital, from web.dev's definitions.
WEB_VITALS_THRESHOLDS: dict[str, tuple[float, float]] = {
    "lcp": (2.5, 4.0),
    "inp": (0.2, 0.5),
    "cls": (0.1, 0.25),
    "fcp": (1.8, 3.0),
    "ttfb": (0.8, 1.8),
}
RUM_DEVICES = ("mobile", "tablet", "desktop")
# A page name that is no route template of the app, so free text adds no series.
RUM_OTHER_PAGE = "other"
# JavaScript's built-in error classes; any other name is counted as "other".
RUM_ERROR_TYPES = (
    "Error",
    "TypeError",
    "ReferenceError",
    "SyntaxError",
    "RangeError",
    "EvalError",
    "URIError",
    "AggregateError",
    "SecurityError",
    "unhandled_rejection",
    "other",
)
RUM_REJECT_REASONS = ("too_large", "invalid", "bot", "rate_limited", "method", "content_type")
_PAGE = "route templates of the app; anything else is 'other'"
_DEVICE = " | ".join(RUM_DEVICES)
_VITAL_LABELS = {"page": _PAGE, "device": _DEVICE}
WEB_VITALS_LCP = Signal(
    "web_vitals_lcp_seconds",
    "histogram",
    "Largest Contentful Paint per page view, from browsers (good <= 2.5 s, poor > 4 s).",
    ("page", "device"),
    WEB_VITALS_LCP_BUCKETS,
    emitter="sdk",
    group="rum",
    bounded=_VITAL_LABELS,
)
WEB_VITALS_INP = Signal(
    "web_vitals_inp_seconds",
    "histogram",
    "Interaction to Next Paint per page view with an interaction (good <= 200 ms, poor > 500 ms).",
    ("page", "device"),
    WEB_VITALS_INP_BUCKETS,
    emitter="sdk",
    group="rum",
    bounded=_VITAL_LABELS,
)
WEB_VITALS_CLS = Signal(
    "web_vitals_cls",
    "histogram",
    "Cumulative Layout Shift per page view, largest session window (good <= 0.1, poor > 0.25).",
    ("page", "device"),
    WEB_VITALS_CLS_BUCKETS,
    emitter="sdk",
    group="rum",
    bounded=_VITAL_LABELS,
)
WEB_VITALS_FCP = Signal(
    "web_vitals_fcp_seconds",
    "histogram",
    "First Contentful Paint per page view (good <= 1.8 s, poor > 3 s).",
    ("page", "device"),
    WEB_VITALS_FCP_BUCKETS,
    emitter="sdk",
    group="rum",
    bounded=_VITAL_LABELS,
)
WEB_VITALS_TTFB = Signal(
    "web_vitals_ttfb_seconds",
    "histogram",
    "Time to first byte of the page's navigation, as the browser saw it (good <= 0.8 s, poor > 1.8 s).",
    ("page", "device"),
    WEB_VITALS_TTFB_BUCKETS,
    emitter="sdk",
    group="rum",
    bounded=_VITAL_LABELS,
)
FRONTEND_ERRORS = Signal(
    "frontend_errors_total",
    "counter",
    "Uncaught errors and unhandled promise rejections in browsers; messages and stacks go to the log.",
    ("page", "error_type"),
    emitter="sdk",
    group="rum",
    bounded={"page": _PAGE, "error_type": " | ".join(RUM_ERROR_TYPES)},
)
RUM_BEACONS_REJECTED = Signal(
    "lightkeeper_rum_beacons_rejected_total",
    "counter",
    "Browser beacons refused by the RUM endpoint, by reason; none of their content is recorded.",
    ("reason",),
    emitter="sdk",
    group="rum",
    bounded={"reason": " | ".join(RUM_REJECT_REASONS)},
)

# --- LLM (lightkeeper.sdk.llm; names after the OpenTelemetry GenAI conventions) -----
_MODEL = "request model, date suffix stripped; capped per process (llm_max_models), overflow shares 'other'"
_GEN_AI_OP = "chat | embeddings | text_completion (the GenAI convention's operation names)"
_PROVIDER = "openai | anthropic"
_GEN_AI_CALL = {
    "gen_ai_provider_name": _PROVIDER,
    "gen_ai_operation_name": _GEN_AI_OP,
    "gen_ai_request_model": _MODEL,
}
_LLM_OP = "names declared in llm_operations or given to llm_operation(), capped; default: the GenAI operation"
GEN_AI_TOKEN_USAGE = Signal(
    "gen_ai_client_token_usage",
    "histogram",
    "Tokens per LLM call, by direction; input includes cached input, output includes reasoning.",
    ("gen_ai_provider_name", "gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"),
    TOKEN_BUCKETS,
    emitter="sdk",
    group="llm",
    bounded={
        "gen_ai_provider_name": _PROVIDER,
        "gen_ai_operation_name": _GEN_AI_OP,
        "gen_ai_request_model": _MODEL,
        "gen_ai_token_type": "input | output",
    },
)
GEN_AI_OPERATION_DURATION = Signal(
    "gen_ai_client_operation_duration_seconds",
    "histogram",
    "LLM call latency, to the last streamed chunk for streams.",
    ("gen_ai_provider_name", "gen_ai_operation_name", "gen_ai_request_model"),
    LLM_DURATION_BUCKETS,
    emitter="sdk",
    group="llm",
    bounded=_GEN_AI_CALL,
)
GEN_AI_TIME_TO_FIRST_CHUNK = Signal(
    "gen_ai_client_operation_time_to_first_chunk_seconds",
    "histogram",
    "Time from an LLM call to its first streamed chunk (streams only).",
    ("gen_ai_provider_name", "gen_ai_operation_name", "gen_ai_request_model"),
    LLM_DURATION_BUCKETS,
    emitter="sdk",
    group="llm",
    bounded=_GEN_AI_CALL,
)
GEN_AI_ERRORS = Signal(
    "gen_ai_client_errors_total",
    "counter",
    "LLM calls that failed.",
    ("gen_ai_request_model", "error_type"),
    emitter="sdk",
    group="llm",
    bounded={"gen_ai_request_model": _MODEL, "error_type": _EXC},
)
LLM_COST = Signal(
    "lightkeeper_llm_cost_usd_total",
    "counter",
    "Estimated LLM spend in US dollars, priced offline from genai-prices (or llm_prices overrides).",
    ("provider", "model", "operation"),
    emitter="sdk",
    group="llm",
    bounded={"provider": _PROVIDER, "model": _MODEL, "operation": _LLM_OP},
)
LLM_REQUESTS = Signal(
    "lightkeeper_llm_requests_total",
    "counter",
    "LLM calls by outcome: ok, error, or abandoned (a stream closed or collected before its end).",
    ("provider", "model", "operation", "status"),
    emitter="sdk",
    group="llm",
    bounded={"provider": _PROVIDER, "model": _MODEL, "operation": _LLM_OP, "status": "ok|error|abandoned"},
)
LLM_UNPRICED_CALLS = Signal(
    "lightkeeper_llm_unpriced_calls_total",
    "counter",
    "LLM calls whose cost is unknown (model not in the price table, or no usage reported); never $0.",
    ("provider", "model"),
    emitter="sdk",
    group="llm",
    bounded={"provider": _PROVIDER, "model": _MODEL},
)
LLM_EVENTS_DROPPED = Signal(
    "lightkeeper_llm_events_dropped_total",
    "counter",
    "LLM cost events never delivered to the server: buffer full while it was unreachable, or refused.",
    ("reason",),
    emitter="sdk",
    group="llm",
    bounded={"reason": "buffer_full | rejected"},
)

# --- Lightkeeper's own plumbing ------------------------------------------------------
MAINTENANCE = Signal(
    "lightkeeper_maintenance",
    "gauge",
    "1 while a maintenance window is open for a service and environment (set by the server).",
    ("service", "environment"),
    emitter="server",
    group="server",
    bounded={"service": "services the server monitors", "environment": "their environments"},
    # The server keeps maintenance windows per probe but does not expose them per
    # service yet; until it does, MaintenanceWindow and its inhibition stay out.
    planned="issue 11: the server's maintenance windows as a per-service gauge",
)
TELEMETRY_EXPORT_FAILURES = Signal(
    "lightkeeper_telemetry_export_failures_total",
    "counter",
    "Spans or error events that could not be delivered to their backend.",
    ("exporter",),
    emitter="sdk",
    group="process",
    bounded={"exporter": "otlp | sentry"},
)
ERROR_EVENTS_SUPPRESSED = Signal(
    "lightkeeper_error_events_suppressed_total",
    "counter",
    "Errors not sent to Sentry because their fingerprint exceeded its per-minute budget "
    "(still logged and counted in http_exceptions_total).",
    ("exception_type",),
    emitter="sdk",
    group="process",
    bounded={"exception_type": _EXC},
)
LOG_EVENTS_SAMPLED_OUT = Signal(
    "lightkeeper_log_events_sampled_out_total",
    "counter",
    "Log events dropped by INFO sampling.",
    ("level",),
    emitter="sdk",
    group="process",
    bounded={"level": "log levels"},
)

# --- lightkeeper server: probes, incidents, outbox (emitted by `lightkeeper server`) -------
_PROBE = {"probe": "probes configured in the spec or through the admin API"}
PROBE_SUCCESS = Signal(
    "probe_success",
    "gauge",
    "1 when the probe's current state is up, 0 when down (absent before a first result or in maintenance).",
    ("probe",),
    emitter="server",
    group="server",
    bounded=_PROBE,
)
PROBE_DURATION_SECONDS = Signal(
    "probe_duration_seconds",
    "gauge",
    "Duration of the probe's latest execution.",
    ("probe",),
    emitter="server",
    group="server",
    bounded=_PROBE,
)
PROBE_TLS_EXPIRY_SECONDS = Signal(
    "probe_tls_expiry_seconds",
    "gauge",
    "Seconds until the certificate seen by the probe's latest execution expires.",
    ("probe",),
    emitter="server",
    group="server",
    bounded=_PROBE,
)
SERVER_INCIDENTS_OPEN = Signal(
    "lightkeeper_incidents_open",
    "gauge",
    "Incidents open now (one per probe that is down).",
    emitter="server",
    group="server",
)
SERVER_SCHEDULER_LAG_SECONDS = Signal(
    "lightkeeper_scheduler_lag_seconds",
    "gauge",
    "How late the probe scheduler started its most recent runs (recent p99).",
    emitter="server",
    group="server",
)
SERVER_OUTBOX_DEPTH = Signal(
    "lightkeeper_outbox_depth",
    "gauge",
    "Notifications queued in the outbox and not yet delivered.",
    emitter="server",
    group="server",
)

# --- deployments reported to the server by CI (issue 14; emitted by `lightkeeper server`) ---
# Deploys take seconds to an hour; lead times from commit, minutes to weeks.
DEPLOYMENT_DURATION_BUCKETS: tuple[float, ...] = (
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
)
DEPLOYMENT_LEAD_TIME_BUCKETS: tuple[float, ...] = (
    600.0,
    1800.0,
    3600.0,
    3 * 3600.0,
    6 * 3600.0,
    12 * 3600.0,
    86400.0,
    2 * 86400.0,
    7 * 86400.0,
    30 * 86400.0,
)
_DEPLOY = {
    "env": "environments CI reports deployments for (names validated by the server)",
    "component": "deployable components of the service (names validated by the server)",
}
DEPLOYMENTS = Signal(
    "deployments_total",
    "counter",
    "Finished deployments by outcome, as reported by CI to the server.",
    ("env", "component", "status"),
    emitter="server",
    group="server",
    bounded={**_DEPLOY, "status": "success | failure | rolled_back"},
)
DEPLOYMENT_DURATION_SECONDS = Signal(
    "deployment_duration_seconds",
    "histogram",
    "Time from a deployment's start to its finish (deployments with both reported).",
    ("env", "component"),
    DEPLOYMENT_DURATION_BUCKETS,
    emitter="server",
    group="server",
    bounded=_DEPLOY,
)
DEPLOYMENT_LEAD_TIME_SECONDS = Signal(
    "deployment_lead_time_seconds",
    "histogram",
    "Time from the deployed commit to the successful finish of its deployment (DORA lead time).",
    ("env", "component"),
    DEPLOYMENT_LEAD_TIME_BUCKETS,
    emitter="server",
    group="server",
    bounded=_DEPLOY,
)
DEPLOYMENTS_IN_PROGRESS = Signal(
    "deployments_in_progress",
    "gauge",
    "1 while a deployment of the component has started and not finished, else 0.",
    ("env", "component"),
    emitter="server",
    group="server",
    bounded=_DEPLOY,
)
# DORA's rates over the trailing DORA_WINDOW_DAYS, computed by the server from its stored
# deployments, so a dashboard or alert needs no long-range PromQL over a sparse counter.
DORA_WINDOW_DAYS = 30
DEPLOYMENTS_PER_DAY = Signal(
    "deployments_per_day",
    "gauge",
    "Successful deployments per day over the trailing 30 days (DORA deployment frequency).",
    ("env", "component"),
    emitter="server",
    group="server",
    bounded=_DEPLOY,
)
DEPLOYMENT_CHANGE_FAILURE_RATIO = Signal(
    "deployment_change_failure_ratio",
    "gauge",
    "Share of the deployments finished in the trailing 30 days that failed or were rolled back "
    "(DORA change failure rate).",
    ("env", "component"),
    emitter="server",
    group="server",
    bounded=_DEPLOY,
)
DEPLOYMENT_ROLLBACK_RATIO = Signal(
    "deployment_rollback_ratio",
    "gauge",
    "Share of the deployments finished in the trailing 30 days that were rolled back.",
    ("env", "component"),
    emitter="server",
    group="server",
    bounded=_DEPLOY,
)

ALL: tuple[Signal, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, Signal))
BY_NAME: dict[str, Signal] = {s.name: s for s in ALL}


def all_emitted(*signals: Signal) -> bool:
    """True when something produces every one of `signals` today."""
    return all(s.emitted for s in signals)


def lookup_series(sample_name: str) -> Signal | None:
    """The family a sample name (e.g. `http_request_duration_seconds_bucket`) belongs to."""
    if sample_name in BY_NAME:
        return BY_NAME[sample_name]
    for suffix in ("_bucket", "_sum", "_count", "_created"):
        if sample_name.endswith(suffix):
            base = sample_name[: -len(suffix)]
            found = BY_NAME.get(base) or BY_NAME.get(base + "_total")
            if found is not None and sample_name in found.series_names:
                return found
    return None
