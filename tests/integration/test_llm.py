"""LLM calls through the real `openai` and `anthropic` clients against a local fake API.

Every number is checked exactly: tokens as the provider reported them, converted to
one convention, and cost recomputed here from genai-prices' own rate table (never a
copied constant), so a wrong inclusion rule (cached tokens twice or not at all, cache
writes dropped, reasoning missing from output) shows up as a wrong dollar amount.
"""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import TieredPrices

import lightkeeper
from lightkeeper.sdk import settings as settings_module
from lightkeeper.sdk.llm import add_sink, events, pricing, record, remove_sink
from lightkeeper.sdk.llm.anthropic import uninstrument_anthropic
from lightkeeper.sdk.llm.openai import uninstrument_openai
from lightkeeper.sdk.llm.pricing import price_data_version
from lightkeeper.sdk.settings import load_settings
from lightkeeper.testing import MetricsDelta, capture_metrics
from tests.support import services
from tests.support.llm_fake import WORDS, LLMFake

pytestmark = pytest.mark.integration

COST = "lightkeeper_llm_cost_usd_total"
REQUESTS = "lightkeeper_llm_requests_total"
UNPRICED = "lightkeeper_llm_unpriced_calls_total"
TOKENS = "gen_ai_client_token_usage_sum"
PROMPT: Any = [{"role": "user", "content": "Say something"}]


def rate(provider: str, model: str, key: str) -> Decimal:
    """USD per million tokens for `key` from genai-prices' table today (below any tier)."""
    _, info = get_snapshot().find_provider_model(model, None, provider, None)
    value = getattr(info.get_prices(datetime.now(UTC)), key)
    return value.base if isinstance(value, TieredPrices) else value


def expected_cost(
    provider: str, model: str, *, uncached: int, cache_read: int = 0, cache_write: int = 0, output: int
) -> float:
    counts = {"input_mtok": uncached, "cache_read_mtok": cache_read, "cache_write_mtok": cache_write}
    counts["output_mtok"] = output
    total = sum((n * rate(provider, model, key) for key, n in counts.items() if n), Decimal(0))
    return float(total / Decimal(1_000_000))


@pytest.fixture(scope="module")
def fake() -> Iterator[LLMFake]:
    with LLMFake() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(fake: LLMFake) -> Iterator[list[events.CostEvent]]:
    """Default usage, a fresh label cache, and the cost events of the test."""
    fake.openai_usage = {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    fake.anthropic_usage = {
        "input_tokens": 12,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    fake.response_model = None
    record.reset()
    seen: list[events.CostEvent] = []
    add_sink(seen.append)
    yield seen
    remove_sink(seen.append)
    record.reset()


@pytest.fixture
def settings() -> Iterator[Any]:
    """Apply LLM settings as instrument() would, restoring the previous ones after."""
    before = settings_module._current

    def apply(**values: Any) -> None:
        settings_module.remember(load_settings(**values))
        record.reset()

    yield apply
    settings_module._current = before
    record.reset()


@pytest.fixture
def oai(fake: LLMFake) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
    lightkeeper.instrument_openai(client)
    yield client
    uninstrument_openai(client)
    client.close()


@pytest.fixture
def aoai(fake: LLMFake) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
    lightkeeper.instrument_openai(client)
    return client


@pytest.fixture
def claude(fake: LLMFake) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-test", max_retries=0)
    lightkeeper.instrument_anthropic(client)
    yield client
    uninstrument_anthropic(client)
    client.close()


@pytest.fixture
def claude_untraced(fake: LLMFake) -> Iterator[anthropic.Anthropic]:
    """A client whose SDK makes no call span of its own, so the span is Lightkeeper's."""
    client = anthropic.Anthropic(
        base_url=fake.url, api_key="sk-ant-test", max_retries=0, open_telemetry=False
    )
    lightkeeper.instrument_anthropic(client)
    yield client
    uninstrument_anthropic(client)
    client.close()


@pytest.fixture
def aclaude(fake: LLMFake) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(base_url=fake.url, api_key="sk-ant-test", max_retries=0)
    lightkeeper.instrument_anthropic(client)
    return client


def tokens(m: MetricsDelta, provider: str, kind: str) -> float:
    return m.value(TOKENS, gen_ai_provider_name=provider, gen_ai_token_type=kind)


# --- OpenAI: exact tokens and cost ---------------------------------------------------


def test_openai_cached_tokens_are_priced_once_at_the_cached_rate(
    oai: openai.OpenAI, fake: LLMFake, fresh: list[events.CostEvent]
) -> None:
    # prompt_tokens (1000) already include the 400 cached ones: 600 at the input rate,
    # 400 at the cached rate; counting them twice or at full price is the bug.
    fake.openai_usage |= {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}
    fake.openai_usage["prompt_tokens_details"] = {"cached_tokens": 400}
    with capture_metrics() as m:
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT)

    cost = expected_cost("openai", "gpt-4o", uncached=600, cache_read=400, output=50)
    assert m.value(COST, provider="openai", model="gpt-4o", operation="chat") == pytest.approx(cost, rel=1e-9)
    assert tokens(m, "openai", "input") == 1000
    assert tokens(m, "openai", "output") == 50
    record.flush()  # calls are recorded in batches
    (event,) = fresh
    assert (event.input_tokens, event.cache_read_tokens, event.output_tokens) == (1000, 400, 50)
    assert event.cost_usd == pytest.approx(cost, rel=1e-9)
    assert event.price_source == price_data_version()
    assert event.price_source.startswith("genai-prices ")


def test_openai_reasoning_tokens_are_billed_as_output(oai: openai.OpenAI, fake: LLMFake) -> None:
    # completion_tokens (900) include 700 reasoning tokens; all 900 cost the output rate.
    fake.openai_usage |= {"prompt_tokens": 100, "completion_tokens": 900, "total_tokens": 1000}
    fake.openai_usage["completion_tokens_details"] = {"reasoning_tokens": 700}
    with capture_metrics() as m:
        oai.chat.completions.create(model="o3-mini", messages=PROMPT)

    cost = expected_cost("openai", "o3-mini", uncached=100, output=900)
    assert m.value(COST, model="o3-mini") == pytest.approx(cost, rel=1e-9)
    assert tokens(m, "openai", "output") == 900


def test_openai_stream_with_usage_yields_every_chunk_and_prices_the_final_usage(
    oai: openai.OpenAI, fake: LLMFake, fresh: list[events.CostEvent]
) -> None:
    fake.openai_usage |= {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}
    fake.openai_usage["prompt_tokens_details"] = {"cached_tokens": 100}
    with capture_metrics() as m:
        stream = oai.chat.completions.create(
            model="gpt-4o-mini", messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(WORDS)
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 300
    cost = expected_cost("openai", "gpt-4o-mini", uncached=200, cache_read=100, output=40)
    assert m.value(COST, model="gpt-4o-mini") == pytest.approx(cost, rel=1e-9)
    assert m.value(REQUESTS, model="gpt-4o-mini", status="ok") == 1
    assert (
        m.value(
            "gen_ai_client_operation_time_to_first_chunk_seconds_count", gen_ai_request_model="gpt-4o-mini"
        )
        == 1
    )
    record.flush()  # calls are recorded in batches
    (event,) = fresh
    assert event.time_to_first_chunk_seconds is not None
    assert 0 < event.time_to_first_chunk_seconds <= event.latency_seconds


def test_openai_stream_without_usage_is_unpriced_and_the_request_is_left_as_sent(
    oai: openai.OpenAI, fake: LLMFake
) -> None:
    with capture_metrics() as m:
        chunks = list(oai.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True))

    assert all(c.choices for c in chunks)  # no usage chunk was added behind the caller's back
    assert "stream_options" not in fake.requests[-1][1]
    assert m.value(UNPRICED, provider="openai", model="gpt-4o") == 1
    assert m.value(COST) == 0


def test_openai_responses_and_embeddings_are_priced(oai: openai.OpenAI, fake: LLMFake) -> None:
    fake.openai_usage |= {"prompt_tokens": 2000, "completion_tokens": 100, "total_tokens": 2100}
    fake.openai_usage["prompt_tokens_details"] = {"cached_tokens": 1000}
    fake.openai_usage["completion_tokens_details"] = {"reasoning_tokens": 60}
    with capture_metrics() as m:
        oai.responses.create(model="gpt-4o", input="Say something")
        list(oai.responses.create(model="gpt-4o", input="Say something", stream=True))
        oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    one = expected_cost("openai", "gpt-4o", uncached=1000, cache_read=1000, output=100)
    assert m.value(COST, model="gpt-4o") == pytest.approx(2 * one, rel=1e-9)
    embedding = expected_cost("openai", "text-embedding-3-small", uncached=2000, output=0)
    assert m.value(COST, model="text-embedding-3-small", operation="embeddings") == pytest.approx(
        embedding, rel=1e-9
    )
    assert m.value(TOKENS, gen_ai_operation_name="embeddings", gen_ai_token_type="output") == 0


async def test_async_openai_calls_and_streams_are_recorded(aoai: openai.AsyncOpenAI, fake: LLMFake) -> None:
    with capture_metrics() as m:
        await aoai.chat.completions.create(model="gpt-4o", messages=PROMPT)
        stream = await aoai.chat.completions.create(
            model="gpt-4o", messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]

    assert len(chunks) == len(WORDS) + 3
    assert m.value(REQUESTS, provider="openai", status="ok") == 2
    cost = expected_cost("openai", "gpt-4o", uncached=12, output=5)
    assert m.value(COST, model="gpt-4o") == pytest.approx(2 * cost, rel=1e-9)
    await aoai.close()


# --- Anthropic: exact tokens and cost ------------------------------------------------


def test_anthropic_cache_reads_and_writes_are_added_to_input_and_priced(
    claude: anthropic.Anthropic, fake: LLMFake, fresh: list[events.CostEvent]
) -> None:
    # Anthropic's input_tokens (200) exclude the cache read (3000) and write (1000).
    fake.anthropic_usage |= {
        "input_tokens": 200,
        "output_tokens": 80,
        "cache_read_input_tokens": 3000,
        "cache_creation_input_tokens": 1000,
    }
    with capture_metrics() as m:
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=PROMPT)

    cost = expected_cost(
        "anthropic", "claude-sonnet-4-5", uncached=200, cache_read=3000, cache_write=1000, output=80
    )
    assert m.value(COST, provider="anthropic", model="claude-sonnet-4-5") == pytest.approx(cost, rel=1e-9)
    assert tokens(m, "anthropic", "input") == 4200
    record.flush()  # calls are recorded in batches
    (event,) = fresh
    assert (event.input_tokens, event.cache_read_tokens, event.cache_write_tokens) == (4200, 3000, 1000)


def test_anthropic_stream_reads_usage_from_message_start_and_message_delta(
    claude: anthropic.Anthropic, fake: LLMFake
) -> None:
    fake.anthropic_usage |= {"input_tokens": 50, "output_tokens": 70, "cache_creation_input_tokens": 500}
    with (
        capture_metrics() as m,
        claude.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=PROMPT, stream=True
        ) as stream,
    ):
        kinds = [event.type for event in stream]

    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    cost = expected_cost("anthropic", "claude-sonnet-4-5", uncached=50, cache_write=500, output=70)
    assert m.value(COST, model="claude-sonnet-4-5") == pytest.approx(cost, rel=1e-9)
    assert m.value(REQUESTS, model="claude-sonnet-4-5", status="ok") == 1


def test_a_long_context_call_is_priced_at_the_tier_rate(claude: anthropic.Anthropic, fake: LLMFake) -> None:
    fake.anthropic_usage |= {"input_tokens": 250_000, "output_tokens": 1000}
    _, info = get_snapshot().find_provider_model("claude-sonnet-4-5", None, "anthropic", None)
    prices = info.get_prices(datetime.now(UTC))
    assert isinstance(prices.input_mtok, TieredPrices) and isinstance(prices.output_mtok, TieredPrices)
    tier_in = next(t.price for t in reversed(prices.input_mtok.tiers) if t.start < 250_000)
    tier_out = next(t.price for t in reversed(prices.output_mtok.tiers) if t.start < 250_000)
    with capture_metrics() as m:
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=PROMPT)

    expected = float((250_000 * tier_in + 1000 * tier_out) / Decimal(1_000_000))
    assert tier_in > prices.input_mtok.base
    assert m.value(COST, model="claude-sonnet-4-5") == pytest.approx(expected, rel=1e-9)


async def test_async_anthropic_stream_is_recorded(aclaude: anthropic.AsyncAnthropic) -> None:
    with capture_metrics() as m:
        stream = await aclaude.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=PROMPT, stream=True
        )
        async for _ in stream:
            pass

    cost = expected_cost("anthropic", "claude-haiku-4-5", uncached=12, output=5)
    assert m.value(COST, model="claude-haiku-4-5") == pytest.approx(cost, rel=1e-9)
    await aclaude.close()


# --- Abandoned streams, errors, unknown models ---------------------------------------


def test_an_anthropic_stream_closed_half_way_is_priced_for_what_it_saw(
    claude: anthropic.Anthropic, fake: LLMFake, fresh: list[events.CostEvent]
) -> None:
    fake.anthropic_usage |= {"input_tokens": 100, "cache_read_input_tokens": 900}
    with capture_metrics() as m:
        stream = claude.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=PROMPT, stream=True
        )
        for i, _ in enumerate(stream):
            if i == 3:
                break
        stream.close()

    assert m.value(REQUESTS, model="claude-sonnet-4-5", status="abandoned") == 1
    # The input side (message_start) is known and billed; output so far: message_start's 1.
    cost = expected_cost("anthropic", "claude-sonnet-4-5", uncached=100, cache_read=900, output=1)
    assert m.value(COST, model="claude-sonnet-4-5") == pytest.approx(cost, rel=1e-9)
    record.flush()  # calls are recorded in batches
    (event,) = fresh
    assert event.status == "abandoned" and event.input_tokens == 1000


def test_usage_sent_after_the_finish_reason_is_not_lost_when_the_caller_stops_there(
    oai: openai.OpenAI, claude: anthropic.Anthropic, fake: LLMFake
) -> None:
    # Callers commonly stop at the finish reason (OpenAI) or the last content block
    # (Anthropic); the usage follows in the next event and must still be counted.
    fake.openai_usage |= {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}
    fake.anthropic_usage |= {"input_tokens": 30, "output_tokens": 70}
    with capture_metrics() as m:
        stream = oai.chat.completions.create(
            model="gpt-4o", messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                break
        stream.close()
        events_seen = claude.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=PROMPT, stream=True
        )
        for event in events_seen:
            if event.type == "content_block_stop":
                break
        events_seen.close()

    assert m.value(REQUESTS, status="ok") == 2
    assert m.value(COST, model="gpt-4o") == pytest.approx(
        expected_cost("openai", "gpt-4o", uncached=40, output=9), rel=1e-9
    )
    assert m.value(COST, model="claude-sonnet-4-5") == pytest.approx(
        expected_cost("anthropic", "claude-sonnet-4-5", uncached=30, output=70), rel=1e-9
    )


def test_a_stream_dropped_unread_is_recorded_when_collected(oai: openai.OpenAI) -> None:
    with capture_metrics() as m:
        stream = oai.chat.completions.create(
            model="gpt-4o", messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
        next(stream)
        del stream
        gc.collect()

    assert m.value(REQUESTS, model="gpt-4o", status="abandoned") == 1
    # Usage comes in the last chunk, never read: unknown cost, not $0.
    assert m.value(UNPRICED, model="gpt-4o") == 1
    assert m.value(COST) == 0


def test_a_provider_error_is_counted_and_priced_at_zero(
    oai: openai.OpenAI, claude: anthropic.Anthropic, fake: LLMFake, fresh: list[events.CostEvent]
) -> None:
    with capture_metrics() as m:
        fake.fail_next(429)
        with pytest.raises(openai.RateLimitError):
            oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
        fake.fail_next(529, "overloaded_error")
        with pytest.raises(anthropic.APIStatusError):
            claude.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=PROMPT)

    assert m.value(REQUESTS, provider="openai", status="error") == 1
    assert m.value(REQUESTS, provider="anthropic", status="error") == 1
    assert m.value("gen_ai_client_errors_total", error_type="RateLimitError") == 1
    assert m.value(UNPRICED) == 0  # billed nothing: a known zero, not an unknown
    record.flush()  # calls are recorded in batches
    assert [e.cost_usd for e in fresh] == [0.0, 0.0]
    assert all(e.price_source.startswith("not billed") for e in fresh)


def test_an_unknown_model_is_unpriced_with_one_warning_per_model(
    oai: openai.OpenAI, caplog: pytest.LogCaptureFixture, fresh: list[events.CostEvent]
) -> None:
    with capture_metrics() as m, caplog.at_level(logging.WARNING, logger="lightkeeper.llm"):
        for _ in range(3):
            oai.chat.completions.create(model="acme-private-llm-7", messages=PROMPT)

    assert m.value(UNPRICED, provider="openai", model="acme-private-llm-7") == 3
    assert m.value(COST) == 0
    record.flush()  # calls are recorded in batches
    assert [e.cost_usd for e in fresh] == [None, None, None]
    warnings = [r for r in caplog.records if "acme-private-llm-7" in r.getMessage()]
    assert len(warnings) == 1


def test_negotiated_prices_override_the_table(oai: openai.OpenAI, fake: LLMFake, settings: Any) -> None:
    settings(llm_prices={"acme-private-llm-7": {"input": 1.0, "output": 2.0, "cached_input": 0.5}})
    fake.openai_usage |= {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    fake.openai_usage["prompt_tokens_details"] = {"cached_tokens": 400_000}
    with capture_metrics() as m:
        oai.chat.completions.create(model="acme-private-llm-7", messages=PROMPT)

    assert m.value(COST, model="acme-private-llm-7") == pytest.approx(0.6 * 1.0 + 0.4 * 0.5 + 2.0)
    assert m.value(UNPRICED) == 0


# --- Labels, operations, users -------------------------------------------------------


def test_operation_labels_come_from_the_declared_set(oai: openai.OpenAI, settings: Any) -> None:
    settings(llm_operations=("summarise",))
    with capture_metrics() as m:
        with lightkeeper.llm_operation("summarise"):
            oai.chat.completions.create(model="gpt-4o-2024-08-06", messages=PROMPT)
        with lightkeeper.llm_operation("user-supplied-{id}"):
            oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT)

    # The dated snapshot shares its family's label.
    assert m.value(REQUESTS, model="gpt-4o", operation="summarise") == 1
    assert m.value(REQUESTS, model="gpt-4o", operation="other") == 1
    assert m.value(REQUESTS, model="gpt-4o", operation="chat") == 1
    assert not m.samples("gen_ai_client_token_usage_count") or all(
        s["gen_ai_request_model"] == "gpt-4o" for s, _ in m.samples("gen_ai_client_token_usage_count")
    )


def test_distinct_models_are_capped(oai: openai.OpenAI, settings: Any) -> None:
    settings(llm_max_models=2, llm_prices={f"m{i}": {"input": 1.0, "output": 1.0} for i in range(4)})
    with capture_metrics() as m:
        for i in range(4):
            oai.chat.completions.create(model=f"m{i}", messages=PROMPT)

    models = {labels["model"] for labels, _ in m.samples(REQUESTS)}
    assert models == {"m0", "m1", "other"}


def test_the_user_id_reaches_cost_events_only_hashed(
    oai: openai.OpenAI, settings: Any, fresh: list[events.CostEvent]
) -> None:
    settings(llm_user_salt="pepper")
    with lightkeeper.llm_operation("summarise", user_id="alice@example.com", workspace_id="ws-1"):
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
    with lightkeeper.llm_operation("summarise", user_id="bob@example.com"):
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT)

    record.flush()  # calls are recorded in batches
    hashes = [e.user_hash for e in fresh]
    assert hashes[0] == hashes[1] != hashes[2]
    assert all(h is not None and "alice" not in h and len(h) == 32 for h in hashes)
    assert "alice" not in repr(fresh)
    assert fresh[0].workspace_id == "ws-1"


def test_cost_events_carry_a_salted_prompt_hash_that_repeats_with_the_prompt(
    oai: openai.OpenAI, claude_untraced: anthropic.Anthropic, settings: Any, fresh: list[events.CostEvent]
) -> None:
    settings(llm_user_salt="pepper")
    other: Any = [{"role": "user", "content": "Say something else"}]
    oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
    oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
    oai.chat.completions.create(model="gpt-4o", messages=other)
    claude_untraced.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=PROMPT)
    claude_untraced.messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=PROMPT, system="Be brief"
    )
    list(oai.responses.create(model="gpt-4o", input="Say something", stream=True))
    record.flush()
    first = [e.prompt_hash for e in fresh]
    # Equal prompts, whichever provider they went to, and only those, hash alike.
    assert first[0] == first[1] == first[3]
    assert len({first[0], first[2], first[4], first[5]}) == 4
    assert all(h is not None and len(h) == 32 and int(h, 16) >= 0 for h in first)
    assert "Say something" not in repr(fresh)
    assert first[0] != events.user_hasher("pepper")(json.dumps({"messages": PROMPT}))

    fresh.clear()
    conversation: Any = list(PROMPT)
    answer = oai.chat.completions.create(model="gpt-4o", messages=conversation)
    conversation.append({"role": "assistant", "content": answer.choices[0].message.content})
    record.flush()  # hashed after the list grew: the prompt as sent still counts
    assert fresh[0].prompt_hash == first[0]

    fresh.clear()
    settings(llm_user_salt="other-salt")  # the salt keys the hash: no dictionary across tenants
    oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
    record.flush()
    assert fresh[0].prompt_hash is not None and fresh[0].prompt_hash != first[0]


# --- Failure isolation ---------------------------------------------------------------


def test_a_failing_sink_or_price_table_never_reaches_the_caller(
    oai: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_sink(event: events.CostEvent) -> None:
        raise RuntimeError("sink down")

    def broken_price(*args: Any) -> None:
        raise RuntimeError("table broken")

    add_sink(broken_sink)
    try:
        monkeypatch.setattr(pricing, "price", broken_price)
        result = oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
        chunks = list(
            oai.chat.completions.create(
                model="gpt-4o", messages=PROMPT, stream=True, stream_options={"include_usage": True}
            )
        )
    finally:
        remove_sink(broken_sink)
    assert result.choices[0].message.content == "".join(WORDS)
    assert len(chunks) == len(WORDS) + 3


def test_class_level_patching_records_each_call_once(fake: LLMFake) -> None:
    instrumented = lightkeeper.instrument_llm()
    try:
        client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
        lightkeeper.instrument_openai(client)  # both levels: still one record per call
        with capture_metrics() as m:
            client.chat.completions.create(model="gpt-4o", messages=PROMPT)
            anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0).messages.create(
                model="claude-sonnet-4-5", max_tokens=10, messages=PROMPT
            )
    finally:
        uninstrument_openai()
        uninstrument_anthropic()
    assert instrumented == ["openai", "anthropic"]
    assert m.value(REQUESTS, provider="openai") == 1
    assert m.value(REQUESTS, provider="anthropic") == 1


def test_pricing_makes_no_network_call_at_import_or_call_time(fake: LLMFake) -> None:
    # A fresh interpreter where every connection but the fake's raises.
    script = textwrap.dedent(
        f"""
        import socket
        real_connect = socket.socket.connect
        def guarded(self, address):
            if address[:2] != ("127.0.0.1", {fake.url.rsplit(":", 1)[1]}):
                raise AssertionError(f"network call to {{address}}")
            return real_connect(self, address)
        socket.socket.connect = guarded
        real_getaddrinfo = socket.getaddrinfo
        def resolve(host, *args, **kwargs):
            if host not in ("127.0.0.1", "localhost"):
                raise AssertionError(f"DNS lookup of {{host}}")
            return real_getaddrinfo(host, *args, **kwargs)
        socket.getaddrinfo = resolve

        import openai, lightkeeper
        from lightkeeper.sdk.llm import pricing, add_sink
        seen = []
        add_sink(seen.append)
        client = openai.OpenAI(base_url="{fake.url}/v1", api_key="sk-test", max_retries=0)
        lightkeeper.instrument_openai(client)
        client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "x"}}])
        from lightkeeper.sdk.llm import record
        record.flush()
        assert seen[0].cost_usd and seen[0].cost_usd > 0, seen
        print("PRICED", seen[0].cost_usd)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=services.ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PRICED" in result.stdout


# --- Spans and privacy ---------------------------------------------------------------


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A private tracer provider seen as the process's (the global one is set once per process)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield provider, exporter
    provider.shutdown()


def test_each_call_is_a_child_span_named_operation_and_model(
    oai: openai.OpenAI, claude_untraced: anthropic.Anthropic, fake: LLMFake, spans: Any
) -> None:
    claude = claude_untraced
    provider, exporter = spans
    fake.openai_usage["prompt_tokens_details"] = {"cached_tokens": 4}
    with provider.get_tracer("test").start_as_current_span("GET /summarise") as parent:
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT)
        stream = claude.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=PROMPT, stream=True
        )
        list(stream)

    record.flush()  # calls are recorded in batches
    by_name = {
        s.name: s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "lightkeeper.llm"
    }
    chat, message = by_name["chat gpt-4o"], by_name["chat claude-sonnet-4-5"]
    for span in (chat, message):
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.attributes is not None
        assert "gen_ai.input.messages" not in span.attributes  # content capture is off by default
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 12
    assert chat.attributes["gen_ai.usage.cache_read.input_tokens"] == 4
    assert chat.attributes["lightkeeper.llm.cost_usd"] > 0
    assert message.attributes is not None
    assert message.attributes["gen_ai.response.time_to_first_chunk"] > 0


def test_captured_content_is_redacted_before_any_sink(
    oai: openai.OpenAI,
    claude_untraced: anthropic.Anthropic,
    settings: Any,
    spans: Any,
    fresh: list[events.CostEvent],
) -> None:
    claude = claude_untraced
    _, exporter = spans
    settings(llm_capture_content=True)
    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
    secret = f"my api key is {key} and password=hunter2hunter2, summarise this"
    said: Any = [{"role": "user", "content": secret}]
    oai.chat.completions.create(model="gpt-4o", messages=said)
    claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=10,
        system=secret,
        messages=said,
    )
    list(oai.responses.create(model="gpt-4o", input=secret, stream=True))

    # Lightkeeper's spans only (the anthropic client's own call spans are off).
    record.flush()  # calls are recorded in batches
    finished = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "lightkeeper.llm"]
    assert len(finished) == 3
    for span in finished:
        assert span.attributes is not None
        captured = str(span.attributes["gen_ai.input.messages"])
        assert "summarise this" in captured  # content is captured...
        assert key not in captured and "hunter2hunter2" not in captured  # ...secrets are not
        assert str(span.attributes["gen_ai.output.messages"]).strip('"[]').startswith("The quick")
    assert key not in repr(fresh) and "hunter2" not in repr(fresh)


def test_instrument_with_llm_on_patches_both_client_classes() -> None:
    from starlette.applications import Starlette

    from lightkeeper.sdk.integrations import patching

    before = settings_module._current
    try:
        lightkeeper.instrument(Starlette(), llm=True, configure_logging=False)
        assert patching.is_wrapped(openai.resources.chat.completions.Completions.create)
        assert patching.is_wrapped(openai.resources.embeddings.AsyncEmbeddings.create)
        assert patching.is_wrapped(anthropic.resources.messages.AsyncMessages.create)
    finally:
        uninstrument_openai()
        uninstrument_anthropic()
        settings_module._current = before
        record.reset()
    assert not patching.is_wrapped(openai.resources.chat.completions.Completions.create)
