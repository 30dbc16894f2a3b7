"""OpenSLO export then import gives back the SLOs the engine reads, field for field.

`lightkeeper slo export` is how an SLO leaves for other tools and `slo import` how it
comes back; anything dropped on the way (a custom tier, a `for:`, a period unit, an
empty route list) silently changes what the generator pages on. Hypothesis builds
specs over every SLI kind and option; one hand-written spec pins the cases by name.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightkeeper import catalogue
from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import SEVERITIES, Spec
from lightkeeper.stack.openslo import export_yaml, import_documents, import_yaml

BASE = "service: shop\nenvironments: {prod: {targets: ['api:8000']}}\n"

names = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)
durations = st.builds(
    lambda n, unit: f"{n}{unit}", st.integers(1, 500), st.sampled_from(["ms", "s", "m", "h", "d", "w", "y"])
)
routes = st.lists(st.from_regex(r"/api(/[a-z_]{1,8}|/\{[a-z_]{1,6}\}){0,3}", fullmatch=True), max_size=4)
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)

tiers = st.fixed_dictionaries(
    {
        "name": names,
        "long_window": durations,
        "short_window": durations,
        "budget_share": st.floats(min_value=1e-6, max_value=1, exclude_min=True),
        "severity": st.sampled_from(SEVERITIES),
    },
    optional={"for": durations},
)
alerting = st.fixed_dictionaries(
    {},
    optional={
        "page": st.booleans(),
        "ticket": st.booleans(),
        "min_requests": st.integers(0, 10_000),
        "no_data_for": durations,
        "tiers": st.lists(tiers, max_size=5),
    },
)
scope: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({}),
    routes.map(lambda r: {"routes": r}),
    st.tuples(names, routes.filter(bool)).map(lambda g: {"route_group": g}),
)
availability = st.fixed_dictionaries(
    {"kind": st.just("availability")},
    optional={"bad_status": st.sampled_from(["5..", "5..|429", "4..|5..", "500|502|503", "(5..|408)"])},
)
latency = st.fixed_dictionaries(
    {
        "kind": st.just("latency"),
        "threshold_seconds": st.one_of(
            st.sampled_from(catalogue.HTTP_DURATION_BUCKETS),
            st.floats(min_value=1e-4, max_value=1e4, allow_nan=False),
        ),
    }
)

database = st.just({"kind": "database"})
deployment = st.fixed_dictionaries(
    {"kind": st.just("deployment")},
    optional={
        "components": st.lists(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,12}", fullmatch=True), min_size=1)
    },
)
# Kinds scoped by route; the others count a whole service or component.
ROUTED = ("availability", "latency")


@st.composite
def slos(draw: st.DrawFn, name: str) -> dict[str, Any]:
    sli = dict(draw(st.one_of(availability, latency, database, deployment)))
    where = draw(scope) if sli["kind"] in ROUTED else {}
    slo: dict[str, Any] = {
        "name": name,
        "objective": draw(st.floats(min_value=0.001, max_value=99.999)),
        "period": draw(st.one_of(st.just("calendar_month"), durations)),
        "sli": sli,
    }
    if "route_group" in where:
        group, group_routes = where["route_group"]
        sli["route_group"] = group
        slo["_group"] = {group: group_routes}
    else:
        sli.update(where)
    if draw(st.booleans()):
        slo["description"] = draw(text)
    if draw(st.booleans()):
        slo["alerting"] = draw(alerting)
    return slo


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    chosen = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    items = [draw(slos(n)) for n in chosen]
    groups: dict[str, list[str]] = {}
    for item in items:
        groups.update(item.pop("_group", {}))
    return Spec.model_validate(
        {
            "service": "shop",
            "environments": {"prod": {"targets": ["api:8000"]}},
            "route_groups": groups,
            "slos": items,
        }
    )


def round_trip(spec: Spec) -> None:
    """Both import paths: the models `import_documents` returns, and the YAML `slo import` prints."""
    exported = export_yaml(spec)
    slos, groups = import_documents(list(yaml.safe_load_all(exported)))
    assert slos == list(spec.slos)
    used = {s.sli.route_group for s in spec.slos if s.sli.route_group is not None}
    assert groups == {g: spec.route_groups[g] for g in used}
    reread = parse_spec(BASE + import_yaml(exported), "imported.yaml")
    assert reread.slos == spec.slos
    assert reread.route_groups == groups


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_every_generated_spec_survives_export_and_import(spec: Spec) -> None:
    round_trip(spec)


EVERY_KIND = (
    BASE
    + """\
route_groups:
  content: ["/api/content", "/api/content/{id}"]
slos:
  - {name: availability, objective: 99.9, period: 30d, description: "Whole service, 5xx is bad",
     sli: {kind: availability}}
  - name: strict-availability
    objective: 99.5
    period: calendar_month
    sli: {kind: availability, routes: ["/api/orders"], bad_status: "4..|5.."}
    alerting: {page: false, min_requests: 20, no_data_for: 1h}
  - name: content-latency
    objective: 99
    period: 28d
    sli: {kind: latency, threshold_seconds: 0.5, route_group: content}
    alerting:
      ticket: false
      tiers:
        - {name: fast, long_window: 1h, short_window: 5m, budget_share: 0.02, severity: critical, for: 2m}
        - {name: slow, long_window: 3d, short_window: 6h, budget_share: 0.1, severity: medium}
  - {name: quarter, objective: 99.95, period: 90d,
     sli: {kind: latency, threshold_seconds: 2.5, routes: []}, alerting: {page: false, ticket: false}}
  - {name: yearly, objective: 99.999, period: 1y, sli: {kind: availability, bad_status: "5..|429"}}
  - {name: queries, objective: 99.99, period: 30d, sli: {kind: database}}
  - {name: deploys, objective: 95, period: 28d, sli: {kind: deployment}}
  - {name: api-deploys, objective: 90, period: 90d, sli: {kind: deployment, components: [api, web.v2]}}
"""
)


def test_a_spec_with_every_sli_kind_and_option_round_trips() -> None:
    spec = parse_spec(EVERY_KIND, "every.yaml")
    assert {s.sli.kind for s in spec.slos} == {"availability", "latency", "database", "deployment"}
    round_trip(spec)


def test_custom_tiers_switched_off_by_page_still_travel() -> None:
    """`page: false` silences page tiers at generation time; the tiers themselves are the user's."""
    spec = parse_spec(EVERY_KIND, "every.yaml")
    (slo,), _ = import_documents(
        [
            d
            for d in yaml.safe_load_all(export_yaml(spec))
            if d["metadata"]["name"].startswith("content-latency")
        ]
    )
    assert slo.alerting.tiers is not None
    assert [(t.name, t.severity, t.for_) for t in slo.alerting.tiers] == [
        ("fast", "critical", "2m"),
        ("slow", "medium", None),
    ]


def test_exports_from_before_the_alerting_block_still_import_their_custom_tiers() -> None:
    """Older exports flagged `custom_tiers` and carried the tiers only as resolved for generation."""
    spec = parse_spec(EVERY_KIND, "every.yaml")
    docs = [d for d in yaml.safe_load_all(export_yaml(spec)) if d["metadata"]["name"] == "content-latency"]
    annotations = docs[0]["metadata"]["annotations"]
    annotations["lightkeeper.dev/alerting"] = json.dumps(
        {"page": True, "ticket": True, "min_requests": 0, "no_data_for": "15m", "custom_tiers": True}
    )
    annotations["lightkeeper.dev/burn-rate-tiers"] = json.dumps(
        [
            {
                "name": "fast",
                "long_window": "1h",
                "short_window": "5m",
                "budget_share": "0.02",
                "severity": "critical",
                "for": "2m",
            }
        ]
    )
    (slo,), _ = import_documents(docs)
    assert slo.alerting.tiers is not None
    assert [(t.name, t.budget_share, t.for_) for t in slo.alerting.tiers] == [("fast", 0.02, "2m")]
