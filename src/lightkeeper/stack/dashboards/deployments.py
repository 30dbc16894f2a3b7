"""Deployments: how often the service ships, how often a deploy fails, how long it takes.

CI reports every deployment to the lightkeeper server, which exposes the DORA figures
as `deployments_*` series; they exist only where the spec scrapes a server
(`prometheus.server_targets`). Those series are labelled `env` and `component` by the
server, not `service` and `environment` by a scrape job, so their selectors match the
server's job and map the `$environment` variable onto `env`. Without a server the
dashboard still shows what the service itself reports: the versions it runs, and when
more than one runs at once (a rollout, the heuristic DeploymentInProgress falls back to).
"""

from __future__ import annotations

from lightkeeper import catalogue as cat
from lightkeeper.spec.models import Spec
from lightkeeper.stack import promql
from lightkeeper.stack.dashboards import panels as p
from lightkeeper.stack.dashboards import queries as q
from lightkeeper.stack.dashboards.panels import Json, Query
from lightkeeper.stack.names import SERVER_JOB, DashboardKey

KEY: DashboardKey = "deployments"
FAILED = "failure|rolled_back"  # a change failure in DORA's sense: it had to be fixed or undone
BY_ENV = ("env",)
BY_COMPONENT = ("env", "component")


def server_series(signal: cat.Signal, suffix: str = "", *extra: promql.Matcher) -> str:
    """A deployment series of the server, scoped to the dashboard's environments."""
    labels = {*signal.labels, *(("le",) if suffix == "_bucket" else ())}
    unknown = [m[0] for m in extra if m[0] not in labels]
    if unknown or f"{signal.name}{suffix}" not in signal.series_names:
        raise ValueError(f"{signal.name}{suffix} has no label {', '.join(unknown)}")
    scope: list[promql.Matcher] = [("job", "=", SERVER_JOB), ("env", "=~", "$environment"), *extra]
    return promql.selector(f"{signal.name}{suffix}", scope)


def _increase(signal: cat.Signal, by: tuple[str, ...], window: str, *extra: promql.Matcher) -> str:
    return f"sum {promql.by(*by)} (increase({server_series(signal, '', *extra)}[{window}]))"


def _share(bad: str, window: str = "$__range") -> str:
    """Share of finished deployments with status matching `bad`; 0, not empty, when none failed."""
    total = _increase(cat.DEPLOYMENTS, BY_ENV, window)
    failed = _increase(cat.DEPLOYMENTS, BY_ENV, window, ("status", "=~", bad))
    return q.ratio(f"{failed} or {total} * 0", total)


def _quantiles(signal: cat.Signal) -> list[Query]:
    bucket = server_series(signal, "_bucket")
    return [
        Query(
            f"histogram_quantile({value}, sum {promql.by('env', 'le')} (increase({bucket}[$__range])))",
            f"{{{{env}}}} {name}",
            instant=True,
        )
        for name, value in (("p50", "0.5"), ("p95", "0.95"))
    ]


def server_panels() -> list[Json]:
    env = "{{env}}"
    in_progress = f"max {promql.by(*BY_COMPONENT)} ({server_series(cat.DEPLOYMENTS_IN_PROGRESS)})"
    return [
        p.row("Delivery (reported by CI to the lightkeeper server)"),
        p.timeseries(
            "Deployments per day by status",
            [Query(_increase(cat.DEPLOYMENTS, ("env", "status"), "1d"), "{{env}} {{status}}")],
            description="Finished deployments in the day before each point, by outcome.",
            stack=True,
            w=12,
        ),
        p.timeseries(
            "In progress",
            [Query(in_progress, "{{env}} {{component}}")],
            description="1 from a deployment's start until CI reports its finish (DeploymentInProgress).",
            w=12,
        ),
        p.stat(
            "Change-failure rate",
            [Query(_share(FAILED), env, instant=True)],
            unit="percentunit",
            description="Deployments that failed or were rolled back, over the dashboard's time range.",
            thresholds=p.fixed_thresholds(("green", None), ("yellow", 0.15), ("red", 0.3)),
            decimals=1,
        ),
        p.stat(
            "Rollback rate",
            [Query(_share("rolled_back"), env, instant=True)],
            unit="percentunit",
            description="Deployments rolled back, over the dashboard's time range.",
            decimals=1,
        ),
        p.stat(
            "Duration",
            _quantiles(cat.DEPLOYMENT_DURATION_SECONDS),
            unit="s",
            description="Start to finish of deployments finished in the time range (p50, p95).",
        ),
        p.stat(
            "Lead time",
            _quantiles(cat.DEPLOYMENT_LEAD_TIME_SECONDS),
            unit="s",
            description="Commit to successful finish (DORA lead time for changes; p50, p95).",
        ),
    ]


def version_panels() -> list[Json]:
    versions = q.aggregate("count", cat.BUILD_INFO, ("environment", "version"))
    return [
        p.row("Versions (reported by the service)"),
        p.timeseries(
            "Instances per version",
            [Query(versions, "{{environment}} {{version}}")],
            description="A new line is a deploy; two lines at once, a rollout in progress.",
            stack=True,
            w=16,
        ),
        p.table(
            "Running versions",
            [Query(versions, instant=True, table=True)],
            w=8,
        ),
    ]


def build(spec: Spec) -> Json:
    server = bool(spec.prometheus.server_targets) and cat.all_emitted(
        cat.DEPLOYMENTS, cat.DEPLOYMENTS_IN_PROGRESS
    )
    panels = [*(server_panels() if server else []), *version_panels()]
    return p.dashboard(
        spec,
        KEY,
        panels,
        description=f"How {spec.service} ships: deployments, failures, rollbacks, duration, lead time.",
    )
