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
Emitter = Literal["sdk", "prometheus_client", "prometheus", "server"]

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
    their base name (rules add `_bucket`, `_sum`, `_count`). `bounded` documents, for
    every label, why its cardinality cannot grow with traffic.
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    emitter: Emitter = "sdk"
    group: str = "http"
    bounded: dict[str, str] = field(default_factory=dict)

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
    bounded={"method": _METHOD, "route": _ROUTE, "status_code": _STATUS},
)
HTTP_REQUEST_DURATION = Signal(
    "http_request_duration_seconds",
    "histogram",
    "Time from request start to the last response byte (background tasks excluded).",
    ("method", "route"),
    HTTP_DURATION_BUCKETS,
    bounded={"method": _METHOD, "route": _ROUTE},
)
HTTP_REQUESTS_IN_PROGRESS = Signal(
    "http_requests_in_progress",
    "gauge",
    "HTTP requests currently being served.",
    ("method", "route"),
    bounded={"method": _METHOD, "route": _ROUTE},
)
HTTP_REQUEST_SIZE = Signal(
    "http_request_size_bytes",
    "histogram",
    "Request body size (Content-Length, or bytes read).",
    ("route",),
    SIZE_BUCKETS,
    bounded={"route": _ROUTE},
)
HTTP_RESPONSE_SIZE = Signal(
    "http_response_size_bytes",
    "histogram",
    "Response body size in bytes.",
    ("route",),
    SIZE_BUCKETS,
    bounded={"route": _ROUTE},
)
HTTP_EXCEPTIONS = Signal(
    "http_exceptions_total",
    "counter",
    "Unhandled exceptions raised while serving a request.",
    ("route", "exception_type"),
    bounded={"route": _ROUTE, "exception_type": _EXC},
)
HTTP_TIME_TO_FIRST_BYTE = Signal(
    "http_time_to_first_byte_seconds",
    "histogram",
    "Streaming responses only: time from request start to the first body chunk.",
    ("method", "route"),
    HTTP_DURATION_BUCKETS,
    bounded={"method": _METHOD, "route": _ROUTE},
)
BUILD_INFO = Signal(
    "lightkeeper_build_info",
    "gauge",
    "Always 1; labels identify the running build.",
    ("service", "environment", "version"),
    group="process",
    bounded={"service": "set at start", "environment": "set at start", "version": "set at start"},
)

# --- Health (lightkeeper.sdk.health) -------------------------------------------------
HEALTH_CHECK_UP = Signal(
    "lightkeeper_health_check_up",
    "gauge",
    "1 when the last run of a readiness check passed, else 0.",
    ("check",),
    group="health",
    bounded={"check": "registered check names"},
)
HEALTH_CHECK_DURATION = Signal(
    "lightkeeper_health_check_duration_seconds",
    "histogram",
    "Time taken by readiness checks.",
    ("check",),
    DB_DURATION_BUCKETS,
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

# --- Celery (lightkeeper.sdk.integrations.celery) ------------------------------------
CELERY_TASKS = Signal(
    "celery_tasks_total",
    "counter",
    "Task state transitions: received, started, succeeded, failed, retried, rejected.",
    ("task", "state"),
    group="celery",
    bounded={"task": _TASK, "state": "six fixed states"},
)
CELERY_TASK_DURATION = Signal(
    "celery_task_duration_seconds",
    "histogram",
    "Task run time on the worker.",
    ("task",),
    TASK_DURATION_BUCKETS,
    group="celery",
    bounded={"task": _TASK},
)
CELERY_TASK_QUEUE_WAIT = Signal(
    "celery_task_queue_wait_seconds",
    "histogram",
    "Time from publish to the start of execution.",
    ("task",),
    TASK_DURATION_BUCKETS,
    group="celery",
    bounded={"task": _TASK},
)
CELERY_TASK_FAILURES = Signal(
    "celery_task_failures_total",
    "counter",
    "Tasks that raised, by exception type.",
    ("task", "exception_type"),
    group="celery",
    bounded={"task": _TASK, "exception_type": _EXC},
)
CELERY_TASK_TIME_LIMITS = Signal(
    "celery_task_time_limit_hits_total",
    "counter",
    "Soft and hard time-limit hits.",
    ("task", "limit"),
    group="celery",
    bounded={"task": _TASK, "limit": "soft | hard"},
)
CELERY_QUEUE_LENGTH = Signal(
    "celery_queue_length",
    "gauge",
    "Messages waiting in a broker queue (sampled).",
    ("queue",),
    group="celery",
    bounded={"queue": "configured queue names"},
)
CELERY_WORKERS_UP = Signal(
    "celery_workers_up",
    "gauge",
    "Workers that answered the last ping.",
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
    group="database",
    bounded={"operation": _OP, "table": _TABLE},
)
DB_SLOW_QUERIES = Signal(
    "db_slow_queries_total",
    "counter",
    "Statements slower than the slow-query threshold.",
    ("operation", "table"),
    group="database",
    bounded={"operation": _OP, "table": _TABLE},
)
DB_ERRORS = Signal(
    "db_errors_total",
    "counter",
    "Database errors by DBAPI exception class.",
    ("error_type",),
    group="database",
    bounded={"error_type": _EXC},
)
DB_CONNECTIONS_ACTIVE = Signal(
    "db_connections_active",
    "gauge",
    "Pool connections checked out.",
    ("pool",),
    group="database",
    bounded={"pool": "instrumented engines"},
)
DB_CONNECTIONS_IDLE = Signal(
    "db_connections_idle",
    "gauge",
    "Pool connections idle in the pool.",
    ("pool",),
    group="database",
    bounded={"pool": "instrumented engines"},
)
DB_CONNECTIONS_MAX = Signal(
    "db_connections_max",
    "gauge",
    "Pool size plus allowed overflow.",
    ("pool",),
    group="database",
    bounded={"pool": "instrumented engines"},
)
DB_CONNECTION_WAIT = Signal(
    "db_connection_wait_seconds",
    "histogram",
    "Time spent waiting for a pool connection.",
    ("pool",),
    DB_DURATION_BUCKETS,
    group="database",
    bounded={"pool": "instrumented engines"},
)

# --- Outbound HTTP (lightkeeper.sdk.integrations.httpx / requests) --------------------
HTTP_CLIENT_REQUESTS = Signal(
    "http_client_requests_total",
    "counter",
    "Outbound HTTP requests by host and status.",
    ("host", "method", "status_code"),
    group="outbound",
    bounded={"host": _HOST, "method": _METHOD, "status_code": _STATUS},
)
HTTP_CLIENT_DURATION = Signal(
    "http_client_request_duration_seconds",
    "histogram",
    "Outbound HTTP request duration.",
    ("host",),
    HTTP_DURATION_BUCKETS,
    group="outbound",
    bounded={"host": _HOST},
)
HTTP_CLIENT_FAILURES = Signal(
    "http_client_failures_total",
    "counter",
    "Outbound requests that got no response (timeout, connect, ...).",
    ("host", "error_type"),
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
    group="redis",
    bounded={"command": "Redis command names"},
)
REDIS_COMMAND_ERRORS = Signal(
    "redis_command_errors_total",
    "counter",
    "Redis commands that raised.",
    ("command", "error_type"),
    group="redis",
    bounded={"command": "Redis command names", "error_type": _EXC},
)
CACHE_HITS = Signal(
    "cache_hits_total",
    "counter",
    "Application cache hits.",
    ("cache",),
    group="redis",
    bounded={"cache": "cache names chosen in code"},
)
CACHE_MISSES = Signal(
    "cache_misses_total",
    "counter",
    "Application cache misses.",
    ("cache",),
    group="redis",
    bounded={"cache": "cache names chosen in code"},
)

# --- Business signals ----------------------------------------------------------------
USAGE_EVENTS = Signal(
    "usage_events_total",
    "counter",
    "Business events counted by `lightkeeper.usage()`.",
    ("event",),
    group="usage",
    bounded={"event": "event names chosen in code"},
)
AUTH_ATTEMPTS = Signal(
    "auth_attempts_total",
    "counter",
    "Authentication attempts by outcome.",
    ("method", "outcome"),
    group="usage",
    bounded={"method": "auth methods in code", "outcome": "success | failure | locked"},
)
WORKFLOW_ENTITIES = Signal(
    "workflow_entities",
    "gauge",
    "Entities by status, sampled from the database.",
    ("entity", "status"),
    group="workflow",
    bounded={"entity": "configured entity kinds", "status": "configured status set"},
)
WORKFLOW_STUCK_ENTITIES = Signal(
    "workflow_stuck_entities",
    "gauge",
    "Entities in a processing status for longer than a threshold, sampled from the database.",
    ("entity", "status", "threshold"),
    group="workflow",
    bounded={"entity": "configured", "status": "configured", "threshold": "configured durations"},
)

# --- LLM (named after the OpenTelemetry GenAI conventions) ---------------------------
_MODEL = "model names from the price table; unknown models share 'other'"
GEN_AI_TOKEN_USAGE = Signal(
    "gen_ai_client_token_usage",
    "histogram",
    "Tokens per LLM call, by direction.",
    ("gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"),
    TOKEN_BUCKETS,
    group="llm",
    bounded={
        "gen_ai_operation_name": "chat | embeddings | ...",
        "gen_ai_request_model": _MODEL,
        "gen_ai_token_type": "input | output",
    },
)
GEN_AI_OPERATION_DURATION = Signal(
    "gen_ai_client_operation_duration_seconds",
    "histogram",
    "LLM call latency.",
    ("gen_ai_operation_name", "gen_ai_request_model"),
    LLM_DURATION_BUCKETS,
    group="llm",
    bounded={"gen_ai_operation_name": "chat | embeddings | ...", "gen_ai_request_model": _MODEL},
)
GEN_AI_ERRORS = Signal(
    "gen_ai_client_errors_total",
    "counter",
    "LLM calls that failed.",
    ("gen_ai_request_model", "error_type"),
    group="llm",
    bounded={"gen_ai_request_model": _MODEL, "error_type": _EXC},
)
LLM_COST = Signal(
    "llm_cost_usd_total",
    "counter",
    "Estimated LLM spend in US dollars from the price table.",
    ("gen_ai_request_model", "operation"),
    group="llm",
    bounded={"gen_ai_request_model": _MODEL, "operation": "operation names chosen in code"},
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
)
TELEMETRY_EXPORT_FAILURES = Signal(
    "lightkeeper_telemetry_export_failures_total",
    "counter",
    "Spans or error events that could not be delivered to their backend.",
    ("exporter",),
    group="process",
    bounded={"exporter": "otlp | sentry"},
)
ERROR_EVENTS_SUPPRESSED = Signal(
    "lightkeeper_error_events_suppressed_total",
    "counter",
    "Errors not sent to Sentry because their fingerprint exceeded its per-minute budget "
    "(still logged and counted in http_exceptions_total).",
    ("exception_type",),
    group="process",
    bounded={"exception_type": _EXC},
)
LOG_EVENTS_SAMPLED_OUT = Signal(
    "lightkeeper_log_events_sampled_out_total",
    "counter",
    "Log events dropped by INFO sampling.",
    ("level",),
    group="process",
    bounded={"level": "log levels"},
)

ALL: tuple[Signal, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, Signal))
BY_NAME: dict[str, Signal] = {s.name: s for s in ALL}


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
