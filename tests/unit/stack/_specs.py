"""Spec texts shared by the stack tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightkeeper import catalogue
from lightkeeper.spec.loader import load_spec, parse_spec
from lightkeeper.spec.models import Spec

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "lightkeeper.yaml"

# The shape from the issue, verbatim: it must keep working.
ISSUE_EXAMPLE = """\
service: api
environments:
  prod: {targets: ["api:8000"]}
  beta: {targets: ["api-beta:8000"], thresholds: {latency_p95_seconds: 0.3}}
slos:
  - name: availability
    objective: 99.9
    period: 30d
    sli: {kind: availability}                      # good = not 5xx
  - name: chat-latency
    objective: 99
    period: 30d
    sli: {kind: latency, threshold_seconds: 0.5, routes: ["/api/chat"]}
alerts:
  error_rate: {high: 0.05, critical: 0.5}
  latency_p95_seconds: {medium: 0.5, high: 2.0}
routing:
  critical: [pager, chat]
  high: [chat]
  medium: [tickets]
  low: []
receivers:
  pager: {pagerduty: {routing_key_file: /run/secrets/pagerduty}}
  chat: {slack: {webhook_url_env: SLACK_WEBHOOK_URL, channel: "#alerts"}}
  tickets: {webhook: {url: "https://tickets.example.com/hooks/alerts"}}
runbooks: {base_url: "https://runbooks.example.com"}
"""


def issue_spec() -> Spec:
    return parse_spec(ISSUE_EXAMPLE, "issue.yaml")


def example_spec() -> Spec:
    return load_spec(EXAMPLE)


def with_slo(slo_yaml: str, extra: str = "") -> Spec:
    """A minimal spec with one SLO given as a YAML flow mapping."""
    return parse_spec(
        f"service: api\nenvironments:\n  prod: {{targets: ['api:8000']}}\nslos:\n  - {slo_yaml}\n{extra}",
        "slo.yaml",
    )


def plan_signals(monkeypatch: pytest.MonkeyPatch, *signals: catalogue.Signal) -> None:
    """Mark catalogue signals as planned for one test, as if no code emitted them yet.

    Every generator asks `Signal.emitted` (directly or through `catalogue.all_emitted`),
    so patching the property reaches the expressions that captured the signal objects.
    """
    names = {s.name for s in signals}
    monkeypatch.setattr(
        catalogue.Signal, "emitted", property(lambda s: s.planned is None and s.name not in names)
    )
