"""PromQL for an SLO's events, rendered from the kind table in `lightkeeper.spec.sli_events`.

The recording rules, the burn-rate alerts' traffic guard, the no-data alert, the SLO
dashboard and the generated promtool tests all take their selectors from here, so
they cannot disagree on what an SLO counts. `rate` is taken per series before any
`sum`. The lightkeeper server's series are relabelled after `rate`: its `env` becomes
`environment` and the spec's service is set, so every SLO's ratio groups by
(service, environment) whichever process exposes its events.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightkeeper import catalogue as cat
from lightkeeper.spec import sli_events
from lightkeeper.spec.models import SLO, Spec
from lightkeeper.spec.sli_events import Events, Match, Part
from lightkeeper.stack import names, promql
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.promql import Matcher, by, selector

SE = ("service", "environment")


def slo_routes(spec: Spec, slo: SLO) -> list[str] | None:
    if slo.sli.route_group is not None:
        return list(spec.route_groups[slo.sli.route_group])
    return list(slo.sli.routes) if slo.sli.routes else None


def slo_events(spec: Spec, slo: SLO) -> Events:
    """The SLO's events; a server-scope kind needs the server scraped, else no rule sees them."""
    found = sli_events.events(slo.sli, slo_routes(spec, slo))
    if found.scope == "server" and not spec.prometheus.server_targets:
        raise GenerationError(
            f"SLO {slo.name!r} counts {slo.sli.kind} events, which only the lightkeeper server exposes; "
            "add its address to prometheus.server_targets (e.g. [lightkeeper:8080]) so Prometheus scrapes it",
            loc=("slos", slo.name, "sli", "kind"),
        )
    return found


def bucket_label(metric: str, bound: str) -> str:
    """The `le` of `metric`'s bucket bounded at `bound`; any other bound would be a guess."""
    family = cat.BY_NAME.get(metric.removesuffix("_bucket"))
    buckets = (family.buckets if family else None) or ()
    for b in buckets:
        if promql.decimal(b) == promql.decimal(bound):
            return promql.le_label(b)
    raise GenerationError(
        f"{promql.number(bound)} is not a bucket boundary of {metric.removesuffix('_bucket')}, so the "
        f"share of events within it would be a guess; use one of: "
        + ", ".join(promql.number(b) for b in buckets)
    )


def _matcher(metric: str, m: Match) -> Matcher:
    if m.op == "in":
        return promql.in_matcher(m.label, m.values)
    if m.op == "bound":
        return (m.label, "=", bucket_label(metric, m.value))
    return (m.label, m.op, m.value)


def part_selector(part: Part, scope: Sequence[Matcher]) -> str:
    """One selector for the part: `name{...}`, or `{__name__=~"a|b",...}` over several names."""
    own = [_matcher(part.metrics[0], m) for m in part.matchers]
    if len(part.metrics) == 1:
        return selector(part.metrics[0], [*scope, *own])
    return selector("", [("__name__", "=~", promql.one_of(part.metrics)), *scope, *own])


def scope_matchers(spec: Spec, events: Events, envs: Sequence[str] = ()) -> list[Matcher]:
    """The service's targets (restricted to `envs`), or the server's job and the spec's environments."""
    if events.scope == "service":
        found: list[Matcher] = [("service", "=", spec.service)]
        if envs:
            found.append(promql.in_matcher("environment", envs))
        return found
    wanted = list(envs) or sorted(spec.environments)
    return [("job", "=", names.SERVER_JOB), promql.in_matcher(events.environment_label, wanted)]


def variable_scope(events: Events, service: str, environment: str) -> list[Matcher]:
    """The scope from dashboard variables: a `service` and an `environment` regex."""
    if events.scope == "service":
        return [("service", "=", service), ("environment", "=~", environment)]
    return [("job", "=", names.SERVER_JOB), (events.environment_label, "=~", environment)]


def _relabelled(events: Events, inner: str, service: str) -> str:
    if events.scope == "service":
        return inner
    env = f'label_replace({inner}, "environment", "$1", {promql.quote(events.environment_label)}, "(.*)")'
    return f'label_replace({env}, "service", {promql.quote(service)}, "", "")'


def summed(
    events: Events,
    part: Part,
    scope: Sequence[Matcher],
    window: str,
    service: str,
    group: Sequence[str] = SE,
    fn: str = "rate",
) -> str:
    """`sum by (group) (fn(part[window]))`, relabelled to service and environment first."""
    inner = _relabelled(events, f"{fn}({part_selector(part, scope)}[{window}])", service)
    return f"sum {by(*group)} ({inner})"


def ratio(
    events: Events, scope: Sequence[Matcher], window: str, service: str, group: Sequence[str] = SE
) -> str:
    """bad / total over the window itself: event-weighted, never an average of ratios.

    No bad series yet (no error ever counted) is a ratio of 0, not a missing one; with
    only good events counted, total - good reads the same way.
    """
    total = summed(events, events.total, scope, window, service, group)
    if events.bad is not None:
        bad = summed(events, events.bad, scope, window, service, group)
        return f"({bad}\nor\n{total} * 0)\n/\n{total}"
    assert events.good is not None
    good = summed(events, events.good, scope, window, service, group)
    return f"({total} - {good})\n/\n{total}"


# --- what slo_rules reads -----------------------------------------------------------------
def error_ratio(spec: Spec, slo: SLO, window: str) -> str:
    found = slo_events(spec, slo)
    return ratio(found, scope_matchers(spec, found), window, spec.service)


def total_selector(spec: Spec, slo: SLO, envs: Sequence[str] = ()) -> str:
    """The total events' selector, for `absent()`: no series at all means no data."""
    found = slo_events(spec, slo)
    return part_selector(found.total, scope_matchers(spec, found, envs))


def total_increase(spec: Spec, slo: SLO, window: str) -> str:
    """Events counted over `window` per service and environment (the low-traffic guard)."""
    found = slo_events(spec, slo)
    return summed(found, found.total, scope_matchers(spec, found), window, spec.service, fn="increase")


def no_data(spec: Spec, slo: SLO, env: str) -> str:
    """1 while `env` has no series of the SLO's events, labelled with its service and environment."""
    found = slo_events(spec, slo)
    return _relabelled(found, f"absent({total_selector(spec, slo, (env,))})", spec.service)


def no_data_labels(spec: Spec, slo: SLO, env: str) -> dict[str, str]:
    """The labels of `no_data`: `absent()` keeps those its selector matches with `=`."""
    found = slo_events(spec, slo)
    part = found.total
    matchers = [
        *scope_matchers(spec, found, (env,)),
        *(_matcher(part.metrics[0], m) for m in part.matchers),
    ]
    labels = {label: value for label, op, value in matchers if op == "="}
    if found.scope == "server":
        labels.update(service=spec.service, environment=env)
    return labels


def example_series(
    spec: Spec, slo: SLO, target: dict[str, str], env: str
) -> tuple[list[tuple[str, dict[str, str]]], list[tuple[str, dict[str, str]]]]:
    """The series one good and one bad event increment, with the labels Prometheus gives them.

    `target` is the service target's labels in `env`; the server's series get its job,
    an instance and `env` instead.
    """
    found = slo_events(spec, slo)
    if found.scope == "service":
        base = dict(target)
    else:
        base = {"job": names.SERVER_JOB, "instance": "lightkeeper:8080", found.environment_label: env}

    def labelled(examples: tuple[sli_events.Example, ...]) -> list[tuple[str, dict[str, str]]]:
        out = []
        for metric, own in examples:
            labels = {**base, **dict(own)}
            if "le" in labels and labels["le"] != "+Inf":
                labels["le"] = bucket_label(metric, labels["le"])
            out.append((metric, labels))
        return out

    return labelled(found.good_example), labelled(found.bad_example)
