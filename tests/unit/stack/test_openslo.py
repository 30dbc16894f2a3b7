"""OpenSLO v1 export and import, with the burn-rate tiers carried in annotations."""

from __future__ import annotations

import json

import pytest
import yaml

from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack.openslo import (
    OpenSLOError,
    export_documents,
    export_yaml,
    import_documents,
    import_yaml,
)
from tests.unit.stack._specs import example_spec


def test_export_writes_sli_and_slo_documents() -> None:
    docs = export_documents(example_spec())
    assert [d["kind"] for d in docs] == ["SLI", "SLO"] * 3
    assert all(d["apiVersion"] == "openslo/v1" for d in docs)
    slo = docs[1]
    assert slo["spec"]["objectives"] == [{"displayName": "availability", "target": 0.999}]
    assert slo["spec"]["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    tiers = json.loads(slo["metadata"]["annotations"]["lightkeeper.dev/burn-rate-tiers"])
    assert [(t["long_window"], t["short_window"], t["budget_share"]) for t in tiers] == [
        ("1h", "5m", "0.02"),
        ("6h", "30m", "0.05"),
        ("1d", "2h", "0.1"),
        ("3d", "6h", "0.1"),
    ]
    month = docs[5]["spec"]["timeWindow"][0]
    assert month["duration"] == "1M" and month["isRolling"] is False


def test_round_trip_keeps_every_slo() -> None:
    spec = example_spec()
    slos, groups = import_documents(list(yaml.safe_load_all(export_yaml(spec))))
    assert slos == list(spec.slos)
    assert groups == {"content": spec.route_groups["content"], "publishing": spec.route_groups["publishing"]}


def test_import_output_is_a_valid_spec_fragment() -> None:
    text = import_yaml(export_yaml(example_spec()))
    spec = parse_spec("service: x\nenvironments: {prod: {targets: ['x:1']}}\n" + text)
    assert [s.name for s in spec.slos] == ["availability", "content-latency", "publishing-availability"]


FOREIGN = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout}
spec:
  service: shop
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  objectives: [{target: 0.995}]
  indicator:
    metadata: {name: checkout-latency}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_request_duration_seconds_bucket{route="/api/checkout",le="0.5"}[5m]))
        total:
          metricSource:
            type: Prometheus
            spec: {query: 'sum(rate(http_request_duration_seconds_count{route="/api/checkout"}[5m]))'}
"""


def test_foreign_openslo_is_mapped_from_its_queries() -> None:
    (slo,), _ = import_documents(list(yaml.safe_load_all(FOREIGN)))
    assert (slo.name, slo.objective, slo.period) == ("checkout", 99.5, "28d")
    assert (
        slo.sli.kind == "latency" and slo.sli.threshold_seconds == 0.5 and slo.sli.routes == ["/api/checkout"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("http_request_duration_seconds_bucket", "orders_ok_total"), "cannot map its queries"),
        (("openslo/v1", "openslo/v2alpha"), "only apiVersion openslo/v1"),
        (("duration: 28d, isRolling: true", "duration: 1w, isRolling: false"), "calendar windows"),
    ],
)
def test_unmappable_input_is_refused_with_the_reason(change: tuple[str, str], message: str) -> None:
    with pytest.raises(OpenSLOError, match=message):
        import_yaml(FOREIGN.replace(*change))


def test_no_slo_documents() -> None:
    with pytest.raises(OpenSLOError, match="no SLO documents"):
        import_yaml("apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\n")
