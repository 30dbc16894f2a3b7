"""One GenAI span per LLM call when another instrumentation traces it too.

OpenLLMetry (`opentelemetry-instrumentation-openai`) is really enabled here, once
wrapping our wrapper and once wrapped by it, and the anthropic SDK's own call spans
are on as they are by default; the calls go through the real clients to the local
fake API. Lightkeeper's metrics must not depend on who writes the span.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from openai.resources import embeddings, responses
from openai.resources.chat import completions as chat_completions
from opentelemetry import trace
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import lightkeeper
from lightkeeper.sdk.llm import coexist, record
from lightkeeper.sdk.llm.anthropic import uninstrument_anthropic
from lightkeeper.sdk.llm.openai import uninstrument_openai
from lightkeeper.testing import capture_metrics
from tests.support.llm_fake import LLMFake

pytestmark = pytest.mark.integration

REQUESTS = "lightkeeper_llm_requests_total"
PROMPT: Any = [{"role": "user", "content": "Say something"}]
OURS = "lightkeeper.llm"


@pytest.fixture(scope="module")
def fake() -> Iterator[LLMFake]:
    with LLMFake() as server:
        yield server


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A private tracer provider seen as the process's (the global one is set once per process)."""
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    record.reset()
    yield exported
    record.reset()
    provider.shutdown()


def genai_spans(exported: InMemorySpanExporter) -> list[ReadableSpan]:
    record.flush()  # Lightkeeper writes its spans in batches
    return [
        s
        for s in exported.get_finished_spans()
        if s.kind == trace.SpanKind.CLIENT and "gen_ai.operation.name" in (s.attributes or {})
    ]


def chat_twice(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o", messages=PROMPT)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass


def uninstrument_openllmetry(instrumentor: OpenAIInstrumentor) -> None:
    """`uninstrument()`, then undo the wrappers it leaves in place.

    OpenLLMetry 0.62's `_uninstrument` names its targets as "module", "Class.method",
    which `unwrap` splits wrongly: the class methods stay wrapped (and keep making
    spans) for the rest of the process unless unwrapped here.
    """
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    for module in (chat_completions, embeddings, responses):
        for name in (
            "Completions",
            "AsyncCompletions",
            "Embeddings",
            "AsyncEmbeddings",
            "Responses",
            "AsyncResponses",
        ):
            if hasattr(module, name):
                unwrap(getattr(module, name), "create")


@pytest.mark.parametrize("outer", ["lightkeeper", "openllmetry"])
def test_with_openllmetry_enabled_each_openai_call_has_one_genai_span(
    fake: LLMFake, exporter: InMemorySpanExporter, outer: str
) -> None:
    provider = trace.get_tracer_provider()
    client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
    openllmetry = OpenAIInstrumentor()
    if outer == "lightkeeper":  # our per-client patch calls the class method OpenLLMetry wraps
        openllmetry.instrument(tracer_provider=provider)
        lightkeeper.instrument_openai(client)
    else:  # OpenLLMetry wraps the class method we patched first
        lightkeeper.instrument_openai()
        openllmetry.instrument(tracer_provider=provider)
    try:
        with capture_metrics() as m:
            chat_twice(client)
            record.flush()
        found = genai_spans(exporter)
        assert len(found) == 2, [(s.name, s.instrumentation_scope) for s in found]
        assert all(s.instrumentation_scope is not None for s in found)
        assert not [s for s in found if s.instrumentation_scope.name == OURS]  # type: ignore[union-attr]
        assert m.value(REQUESTS, provider="openai", status="ok") == 2

        uninstrument_openllmetry(openllmetry)  # alone again: the span is ours
        exporter.clear()
        alone = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
        lightkeeper.instrument_openai(alone)  # a per-client patch keeps the method it found
        chat_twice(alone)
        uninstrument_openai(alone)
        alone.close()
        found = genai_spans(exporter)
        assert [s.instrumentation_scope.name for s in found] == [OURS, OURS]  # type: ignore[union-attr]
    finally:
        uninstrument_openllmetry(openllmetry)
        uninstrument_openai(client if outer == "lightkeeper" else None)
        client.close()


def test_a_call_the_anthropic_sdk_traces_itself_gets_no_second_span(
    fake: LLMFake, exporter: InMemorySpanExporter
) -> None:
    traced = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    untraced = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, open_telemetry=False)
    try:
        with capture_metrics() as m:
            for client in (traced, untraced):
                lightkeeper.instrument_anthropic(client)
                client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=PROMPT)
                list(
                    client.messages.create(
                        model="claude-sonnet-4-5", max_tokens=10, messages=PROMPT, stream=True
                    )
                )
            record.flush()
        found = genai_spans(exporter)
        scopes = sorted(s.instrumentation_scope.name for s in found)  # type: ignore[union-attr]
        # Two calls each: the SDK's spans for the traced client, ours for the other.
        assert scopes == ["com.anthropic.sdk.python"] * 2 + [OURS] * 2
        assert m.value(REQUESTS, provider="anthropic", status="ok") == 4
    finally:
        for client in (traced, untraced):
            uninstrument_anthropic(client)
            client.close()


def test_the_sdk_tracing_option_is_each_clients_own_and_a_copy_reads_its_own() -> None:
    """The option is remembered per client: a copy made with another option must not inherit it."""
    traced = anthropic.Anthropic(api_key="k", max_retries=0)
    untraced = traced.with_options(open_telemetry=False)
    traced_again = untraced.with_options(open_telemetry={"traces": {"enabled": True}})
    plain = openai.OpenAI(api_key="sk-test", max_retries=0)
    try:
        for _ in range(2):  # the second round is answered from what the first remembered
            assert coexist._sdk_traces(traced.messages)
            assert not coexist._sdk_traces(untraced.messages)
            assert coexist._sdk_traces(traced_again.messages)
            assert not coexist._sdk_traces(plain.chat.completions)
    finally:
        for client in (traced, untraced, traced_again, plain):
            client.close()


def test_an_outer_genai_client_span_of_another_library_is_not_doubled(
    fake: LLMFake, exporter: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer_provider().get_tracer("someone.else")
    client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)
    lightkeeper.instrument_openai(client)
    try:
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
        with tracer.start_as_current_span("chat gpt-4o", kind=trace.SpanKind.CLIENT, attributes=attributes):
            client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        # An application's own span around calls is no GenAI client span: ours is written.
        with tracer.start_as_current_span("summarise", attributes={"gen_ai.operation.name": "chat"}):
            client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        # Another provider's client span does not describe this call.
        anthropic_span = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic"}
        with tracer.start_as_current_span("chat", kind=trace.SpanKind.CLIENT, attributes=anthropic_span):
            client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        scopes = [s.instrumentation_scope.name for s in genai_spans(exporter)]  # type: ignore[union-attr]
        assert sorted(scopes) == [OURS, OURS, "someone.else", "someone.else"]
    finally:
        uninstrument_openai(client)
        client.close()
