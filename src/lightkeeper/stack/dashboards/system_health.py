"""System Health: is the service up, which version runs, is the process saturated."""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack.dashboards import panels as p
from lightkeeper.stack.dashboards import queries as q
from lightkeeper.stack.dashboards.panels import Json, Query
from lightkeeper.stack.names import DashboardKey

KEY: DashboardKey = "system-health"
ERROR_LEVELS = "error|critical"


def build(spec: Spec) -> Json:
    env = "{{environment}}"
    inst = "{{environment}} {{instance}}"
    error_ratio = q.share_of(cat.HTTP_REQUESTS, [("status_code", "=~", "5..")])
    p95 = q.quantile("0.95", cat.HTTP_REQUEST_DURATION)
    uptime = f"time() - {q.aggregate('max', cat.PROCESS_START_TIME, ('environment', 'instance'))}"
    panels: list[Json] = [
        p.row("Service"),
        p.stat(
            "Targets up",
            [Query(q.aggregate("sum", cat.UP), env)],
            description="Scrape targets answering Prometheus. " + p.threshold_note(spec, "service_down"),
            w=4,
        ),
        p.stat(
            "Request rate",
            [Query(q.sum_rate(cat.HTTP_REQUESTS), env)],
            unit="reqps",
            w=5,
        ),
        p.stat(
            "Error ratio (5xx)",
            [Query(error_ratio, env)],
            unit="percentunit",
            description=p.threshold_note(spec, "error_rate"),
            thresholds=p.alert_thresholds(spec, "error_rate"),
            decimals=2,
            w=5,
        ),
        p.stat(
            "Latency p95",
            [Query(p95, env)],
            unit="s",
            description=p.threshold_note(spec, "latency_p95_seconds"),
            thresholds=p.alert_thresholds(spec, "latency_p95_seconds"),
            w=5,
        ),
        p.stat("Uptime (youngest instance)", [Query(f"min by (environment) ({uptime})", env)], unit="s", w=5),
        p.table(
            "Running versions",
            [
                Query(
                    q.aggregate("count", cat.BUILD_INFO, ("environment", "version")), instant=True, table=True
                )
            ],
            description="Instances per version; more than one version means a rollout is in progress.",
            w=12,
            h=6,
        ),
        p.stat(
            "Readiness checks",
            [
                Query(
                    q.aggregate("min", cat.HEALTH_CHECK_UP, ("environment", "check")),
                    "{{environment}} {{check}}",
                )
            ],
            description="UP when the check passes on every instance. "
            + p.threshold_note(spec, "health_check_failing"),
            thresholds=p.fixed_thresholds(("red", None), ("green", 1.0)),
            mappings=p.up_down_mappings(),
            w=12,
            h=6,
        ),
        p.row("Process"),
        p.timeseries(
            "CPU (cores)",
            [Query(q.sum_rate(cat.PROCESS_CPU, ("environment", "instance")), inst)],
            description="CPU seconds per second per instance. " + p.threshold_note(spec, "cpu_utilization"),
            thresholds=p.alert_thresholds(spec, "cpu_utilization"),
        ),
        p.timeseries(
            "Resident memory",
            [Query(q.aggregate("max", cat.PROCESS_RESIDENT_MEMORY, ("environment", "instance")), inst)],
            unit="bytes",
            description=p.threshold_note(spec, "memory_bytes"),
            thresholds=p.alert_thresholds(spec, "memory_bytes"),
        ),
        p.timeseries(
            "Open file descriptors (share of limit)",
            [
                Query(
                    q.ratio(
                        q.aggregate("max", cat.PROCESS_OPEN_FDS, ("environment", "instance")),
                        q.aggregate("max", cat.PROCESS_MAX_FDS, ("environment", "instance")),
                    ),
                    inst,
                )
            ],
            unit="percentunit",
        ),
        p.timeseries(
            "Requests in progress",
            [Query(q.aggregate("sum", cat.HTTP_REQUESTS_IN_PROGRESS, ("environment", "instance")), inst)],
            description=p.threshold_note(spec, "requests_in_progress"),
            thresholds=p.alert_thresholds(spec, "requests_in_progress"),
        ),
        p.row("Health and telemetry"),
        # Only a lightkeeper server that reports maintenance windows feeds this panel.
        *(
            [
                p.stat(
                    "Maintenance window",
                    [Query(q.aggregate("max", cat.MAINTENANCE), env)],
                    description="1 while the lightkeeper server reports an open maintenance window: "
                    "error and latency alerts are inhibited meanwhile.",
                    mappings=[
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "none", "color": "green", "index": 0},
                                "1": {"text": "OPEN", "color": "blue", "index": 1},
                            },
                        }
                    ],
                    w=6,
                    h=8,
                ),
            ]
            if cat.MAINTENANCE.emitted and spec.prometheus.server_targets
            else []
        ),
        p.timeseries(
            "Readiness check duration p95",
            [
                Query(
                    q.quantile("0.95", cat.HEALTH_CHECK_DURATION, ("environment", "check")),
                    "{{environment}} {{check}}",
                )
            ],
            unit="s",
            w=6,
        ),
        p.timeseries(
            "Scrape duration",
            [Query(q.aggregate("max", cat.SCRAPE_DURATION, ("environment", "instance")), inst)],
            unit="s",
            w=6,
        ),
        p.timeseries(
            "Telemetry export failures",
            [
                Query(
                    q.sum_rate(cat.TELEMETRY_EXPORT_FAILURES, ("environment", "exporter")),
                    "{{environment}} {{exporter}}",
                ),
                Query(
                    q.sum_rate(cat.LOG_EVENTS_SAMPLED_OUT, ("environment", "level")),
                    "{{environment}} sampled out {{level}}",
                ),
            ],
            unit="ops",
            description="Spans or error events that never reached their backend,"
            " and log events dropped by sampling.",
            w=6,
        ),
        *_probe_panels(spec),
        p.row("Logs"),
        p.logs(
            "Error logs",
            f'{{service="$service", environment=~"$environment", level=~"{ERROR_LEVELS}"}}',
            description="Error and critical log lines from Loki; open one to jump to its trace in Tempo.",
        ),
    ]
    return p.dashboard(
        spec,
        KEY,
        panels,
        description=f"Is {spec.service} up and healthy: targets, versions, readiness, saturation.",
    )


def _probe_panels(spec: Spec) -> list[Json]:
    """The lightkeeper server's probes, where the spec scrapes a server."""
    reads = (cat.PROBE_SUCCESS, cat.PROBE_DURATION_SECONDS, cat.PROBE_TLS_EXPIRY_SECONDS)
    if not spec.prometheus.server_targets or not cat.all_emitted(*reads, cat.SERVER_OUTBOX_DEPTH):
        return []
    by_probe = ("probe",)
    return [
        p.row("Probes (lightkeeper server)"),
        p.table(
            "Probe state",
            [Query(q.server("min", cat.PROBE_SUCCESS, by_probe), instant=True, table=True)],
            description="1 up, 0 down, as the server decided after each probe's retries. "
            + p.threshold_note(spec, "probe_down"),
            w=8,
        ),
        p.timeseries(
            "Probe duration",
            [Query(q.server("max", cat.PROBE_DURATION_SECONDS, by_probe), "{{probe}}")],
            unit="s",
            w=8,
        ),
        p.table(
            "TLS certificate days left",
            [
                Query(
                    f"{q.server('min', cat.PROBE_TLS_EXPIRY_SECONDS, by_probe)} / 86400",
                    instant=True,
                    table=True,
                )
            ],
            description=p.threshold_note(spec, "tls_expiry_days"),
            w=4,
        ),
        p.stat(
            "Notification outbox",
            [Query(q.server("max", cat.SERVER_OUTBOX_DEPTH), "outbox")],
            description=p.threshold_note(spec, "server_outbox_depth"),
            thresholds=p.alert_thresholds(spec, "server_outbox_depth"),
            w=4,
        ),
    ]
