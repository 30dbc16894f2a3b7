"""The product-level signals of the example app, read back from its /metrics.

LLM cost per model, declared usage events, workflow gauges, sign-ins and outbound
dependency calls: the numbers the demo shows next to the HTTP golden signals. Parsed
with prometheus-client's parser and found by catalogue name, like `summary.py`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from lightkeeper import catalogue

_LLM_COST = catalogue.LLM_COST.name
_LLM_REQUESTS = catalogue.LLM_REQUESTS.name
_USAGE = catalogue.USAGE_EVENTS.name
_AUTH = catalogue.AUTH_ATTEMPTS.name
_DEPENDENCY = catalogue.DEPENDENCY_CALLS.name
_ENTITIES = catalogue.WORKFLOW_ENTITIES.name
_STUCK = catalogue.WORKFLOW_STUCK_ENTITIES.name


@dataclass(frozen=True)
class LlmModelUsage:
    provider: str
    model: str
    # by status: ok, error, abandoned
    requests: dict[str, int]
    cost_usd: float


@dataclass(frozen=True)
class ProductSummary:
    llm: list[LlmModelUsage] = field(default_factory=list)
    # event -> count over all its declared label values
    usage: dict[str, int] = field(default_factory=dict)
    # entity -> status -> entities now in it
    workflow: dict[str, dict[str, int]] = field(default_factory=dict)
    # entity -> threshold -> entities stuck longer than it (over all processing statuses)
    stuck: dict[str, dict[str, int]] = field(default_factory=dict)
    # "method/outcome" -> count
    auth_attempts: dict[str, int] = field(default_factory=dict)
    # "dependency operation" -> outcome -> count
    dependencies: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def llm_cost_usd(self) -> float:
        return sum(m.cost_usd for m in self.llm)

    @property
    def llm_requests(self) -> int:
        return sum(sum(m.requests.values()) for m in self.llm)


def parse_product_metrics(text: str) -> ProductSummary:
    """Raises ValueError when the text is not a valid Prometheus exposition."""
    cost: defaultdict[tuple[str, str], float] = defaultdict(float)
    requests: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    usage: Counter[str] = Counter()
    workflow: defaultdict[str, Counter[str]] = defaultdict(Counter)
    stuck: defaultdict[str, Counter[str]] = defaultdict(Counter)
    auth: Counter[str] = Counter()
    dependencies: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if sample.name == _LLM_COST:
                cost[(labels["provider"], labels["model"])] += value
            elif sample.name == _LLM_REQUESTS:
                requests[(labels["provider"], labels["model"])][labels["status"]] += int(value)
            elif sample.name == _USAGE:
                usage[labels["event"]] += int(value)
            elif sample.name == _ENTITIES:
                workflow[labels["entity"]][labels["status"]] += int(value)
            elif sample.name == _STUCK:
                stuck[labels["entity"]][labels["threshold"]] += int(value)
            elif sample.name == _AUTH:
                auth[f"{labels['method']}/{labels['outcome']}"] += int(value)
            elif sample.name == _DEPENDENCY:
                dependencies[f"{labels['dependency']} {labels['operation']}"][labels["outcome"]] += int(value)
    models = sorted(set(cost) | set(requests))
    return ProductSummary(
        llm=[
            LlmModelUsage(
                provider, model, dict(sorted(requests[(provider, model)].items())), cost[(provider, model)]
            )
            for provider, model in models
        ],
        usage=dict(sorted(usage.items())),
        workflow={entity: dict(sorted(counts.items())) for entity, counts in sorted(workflow.items())},
        stuck={entity: dict(counts) for entity, counts in sorted(stuck.items())},
        auth_attempts={key: count for key, count in sorted(auth.items()) if count},
        dependencies={key: dict(sorted(o.items())) for key, o in sorted(dependencies.items())},
    )
