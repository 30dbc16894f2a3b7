"""Advice computed from the raw events, each with the numbers behind it.

- caching: an operation whose prompts repeat (the same `prompt_hash` seen at least
  REPEAT_SHARE of the time) while almost none of its input is read from the provider's
  cache — a cache-friendly prompt layout would cut its input cost. Events without a
  prompt hash are skipped: repeats cannot be known without it.
- waste: the share of spend on failed calls and on retries (a second call with the same
  request id and operation) when above WASTE_SHARE.
- cheaper model: the same tokens priced (offline, genai-prices via the SDK's pricing) on
  a named cheaper model of the same provider, when it saves at least MIN_SAVING.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from lightkeeper.sdk.llm.pricing import price
from lightkeeper.sdk.llm.tokens import Tokens
from lightkeeper.server.store.tables import llm_events

REPEAT_SHARE = 0.3
CACHED_SHARE = 0.05
WASTE_SHARE = 0.05
MIN_SAVING = 0.2
# cheaper models of the same provider worth naming, most capable first (genai-prices prices them)
CHEAPER = {
    "openai": ("gpt-4.1-mini", "gpt-4o-mini", "gpt-4.1-nano"),
    "anthropic": ("claude-3-5-haiku-latest", "claude-haiku-4-5"),
}


@dataclass(frozen=True, slots=True)
class Recommendation:
    kind: str  # "caching" | "waste" | "cheaper_model"
    operation: str | None
    model: str | None
    message: str
    share: float  # repeat share, wasted share, or saving share (0..1)
    saving_usd: float | None


def all_for(engine: Engine, start: datetime, end: datetime) -> list[Recommendation]:
    where = (llm_events.c.at >= start, llm_events.c.at < end)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                llm_events.c.provider,
                llm_events.c.model,
                llm_events.c.operation,
                llm_events.c.status,
                llm_events.c.request_id,
                llm_events.c.prompt_hash,
                llm_events.c.input_tokens,
                llm_events.c.output_tokens,
                llm_events.c.cache_read_tokens,
                llm_events.c.cache_write_tokens,
                llm_events.c.reasoning_tokens,
                func.coalesce(llm_events.c.cost_usd, 0.0).label("cost"),
                llm_events.c.at,
            )
            .where(*where)
            .order_by(llm_events.c.at, llm_events.c.id)
        ).all()
    found = list(rows)
    return [*caching(found), *waste(found), *cheaper_models(found, end)]


def caching(rows: list[Any]) -> list[Recommendation]:
    by_op: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.prompt_hash:
            by_op[row.operation].append(row)
    out = []
    for operation, items in sorted(by_op.items()):
        if len(items) < 2:
            continue
        repeat = 1 - len({r.prompt_hash for r in items}) / len(items)
        inputs = sum(r.input_tokens for r in items)
        cached = sum(r.cache_read_tokens for r in items) / inputs if inputs else 0.0
        if repeat >= REPEAT_SHARE and cached < CACHED_SHARE:
            out.append(
                Recommendation(
                    "caching",
                    operation,
                    None,
                    f"{operation}: {repeat:.0%} of calls repeat an earlier prompt but only {cached:.0%} "
                    "of input tokens are cache reads; put the stable part of the prompt first so the "
                    "provider's prompt cache applies",
                    round(repeat, 4),
                    None,
                )
            )
    return out


def waste(rows: list[Any]) -> list[Recommendation]:
    total = sum(r.cost for r in rows)
    seen: set[tuple[str, str]] = set()
    failed = retried = 0.0
    for row in rows:
        if row.status != "ok":
            failed += row.cost
        elif row.request_id:
            key = (row.request_id, row.operation)
            if key in seen:
                retried += row.cost
            seen.add(key)
        if row.request_id:
            seen.add((row.request_id, row.operation))
    share = (failed + retried) / total if total else 0.0
    if share < WASTE_SHARE:
        return []
    return [
        Recommendation(
            "waste",
            None,
            None,
            f"{share:.0%} of spend went to failed calls (${failed:.2f}) and retries (${retried:.2f})",
            round(share, 4),
            round(failed + retried, 6),
        )
    ]


def cheaper_models(rows: list[Any], when: datetime) -> list[Recommendation]:
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for row in rows:
        if row.status == "ok":
            groups[(row.provider, row.model, row.operation)].append(row)
    out = []
    for (provider, model, operation), items in sorted(groups.items()):
        spent = sum(r.cost for r in items)
        if spent <= 0:
            continue
        # like for like: both models priced from the table on the same tokens
        baseline = _reprice(provider, model, items, when) or spent
        best: tuple[float, str] | None = None
        for candidate in CHEAPER.get(provider, ()):  # most capable first: name the first that saves enough
            cost = _reprice(provider, candidate, items, when) if candidate != model else None
            if cost is not None and cost <= baseline * (1 - MIN_SAVING):
                best = (cost, candidate)
                break
        if best is None:
            continue
        saving = 1 - best[0] / baseline
        out.append(
            Recommendation(
                "cheaper_model",
                operation,
                model,
                f"{operation} on {model} would cost {saving:.0%} less on {best[1]} "
                f"(${spent:.2f} → ${spent * (1 - saving):.2f} for the same tokens); check its quality first",
                round(saving, 4),
                round(spent * saving, 6),
            )
        )
    return out


def _reprice(provider: str, model: str, items: list[Any], when: datetime) -> float | None:
    total = 0.0
    for r in items:
        tokens = Tokens(
            r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, r.reasoning_tokens
        )
        priced = price(provider, model, tokens, when, {})
        if priced is None:
            return None
        total += float(priced.usd)
    return total
