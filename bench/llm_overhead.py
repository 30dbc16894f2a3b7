"""What Lightkeeper's LLM wrapper adds per call and per streamed chunk.

    .venv/bin/python -m bench.llm_overhead [--calls 300] [--chunks 2000] [--rounds 5]

Two measurements, each against its anchor in the same run, rounds interleaved so
machine noise hits both alike (medians reported, minima end to end):

* end to end, through the real `openai` client against the local fake API
  (tests/support/llm_fake.py on 127.0.0.1): a non-streaming chat completion, and a
  stream of `--chunks` chunks, wrapped vs unwrapped client; and, when
  `opentelemetry-instrumentation-openai` (OpenLLMetry) is installed, that instead;
* in isolation, to see below the HTTP noise: the wrapper around a function that
  returns an already parsed `ChatCompletion`, and `ObservedStream` over already
  parsed chunks, against calling / iterating them bare.

Targets (issue 13): <= 20 us per call, <= 2 us per streamed chunk.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import openai
from prometheus_client import CollectorRegistry, Counter
from tests.support.llm_fake import LLMFake

import lightkeeper
from lightkeeper.sdk.llm import record
from lightkeeper.sdk.llm.openai import CHAT, ChatChunks
from lightkeeper.sdk.llm.record import Call
from lightkeeper.sdk.llm.streams import ObservedStream
from lightkeeper.sdk.llm.wrap import sync_wrapper

CALL_TARGET_US = 20.0
CHUNK_TARGET_US = 2.0
PROMPT: Any = [{"role": "user", "content": "hi"}]


def _timed(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def _rounds(
    variants: dict[str, Callable[[], float]],
    rounds: int,
    pick: Callable[[list[float]], float] = statistics.median,
) -> dict[str, float]:
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            results[name].append(run())
    return {name: pick(values) for name, values in results.items()}


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-bench", max_retries=0)


def end_to_end(args: argparse.Namespace) -> None:
    with LLMFake(chunks=args.chunks) as fake:
        bare, wrapped = _client(fake.url), _client(fake.url)
        lightkeeper.instrument_openai(wrapped)

        def call(client: openai.OpenAI) -> Callable[[], float]:
            return lambda: _timed(
                lambda: client.chat.completions.create(model="gpt-4o", messages=PROMPT), args.calls
            )

        def stream(client: openai.OpenAI) -> Callable[[], float]:
            def run() -> float:
                def one() -> None:
                    for _ in client.chat.completions.create(
                        model="gpt-4o", messages=PROMPT, stream=True, stream_options={"include_usage": True}
                    ):
                        pass

                return _timed(one, max(args.calls // 30, 3)) / float(args.chunks + 3)

            return run

        variants = {"call bare": call(bare), "call wrapped": call(wrapped)}
        variants |= {"chunk bare": stream(bare), "chunk wrapped": stream(wrapped)}
        if importlib.util.find_spec("opentelemetry.instrumentation.openai") is not None:
            variants |= _openllmetry(fake.url, call, stream)
        # The fastest round of each: the fake server's and the machine's noise only ever add.
        found = _rounds(variants, args.rounds, min)

    print(f"end to end, real openai client -> local fake ({args.calls} calls, {args.chunks}-chunk streams)")
    for kind in ("call", "chunk"):
        base = found[f"{kind} bare"]
        print(f"  {kind:5} bare            {base * 1e6:9.1f} us")
        for name, value in found.items():
            if name.startswith(kind) and name != f"{kind} bare":
                added = (value - base) * 1e6
                print(f"  {name:21} {value * 1e6:9.1f} us   +{added:6.2f} us   x{value / base:.3f}")


def _openllmetry(url: str, call: Any, stream: Any) -> dict[str, Callable[[], float]]:
    """OpenLLMetry patches the classes, so its client is measured with our wrapper absent."""
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    instrumentor = OpenAIInstrumentor()
    client = _client(url)

    def on(measure: Callable[[], float]) -> Callable[[], float]:
        def run() -> float:
            instrumentor.instrument(tracer_provider=provider)
            try:
                return measure()
            finally:
                instrumentor.uninstrument()

        return run

    return {"call OpenLLMetry": on(call(client)), "chunk OpenLLMetry": on(stream(client))}


def isolated(args: argparse.Namespace) -> None:
    with LLMFake(chunks=args.chunks) as fake:
        client = _client(fake.url)
        completion = client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", messages=PROMPT, stream=True, stream_options={"include_usage": True}
            )
        )

    def create(self: Any, **kwargs: Any) -> Any:
        return completion

    wrapped = sync_wrapper(CHAT)(create)
    record.declare_families()
    n = args.calls * 50
    queued: list[Call] = []
    registry = CollectorRegistry()
    anchor = Counter(
        "bench_anchor", "anchor", ["provider", "model", "operation", "status"], registry=registry
    )

    def bare_calls() -> float:
        return _timed(lambda: create(None, model="gpt-4o", messages=PROMPT), n)

    def caller_path() -> float:
        # The caller's share: the call is queued, as the write-behind buffer does.
        queue, record._waiting.add = record._waiting.add, queued.append  # type: ignore[method-assign,assignment]
        try:
            return _timed(lambda: wrapped(None, model="gpt-4o", messages=PROMPT), n)
        finally:
            record._waiting.add = queue  # type: ignore[method-assign]

    def recording() -> float:
        start = time.perf_counter()
        count = len(queued)
        record._write(queued)
        queued.clear()
        return (time.perf_counter() - start) / max(count, 1)

    def anchor_inc() -> float:
        return _timed(lambda: anchor.labels("openai", "gpt-4o", "chat", "ok").inc(), n)

    def bare_chunks() -> float:
        start = time.perf_counter()
        for _ in range(20):
            for _ in iter(chunks):
                pass
        return (time.perf_counter() - start) / (20 * len(chunks))

    def wrapped_chunks() -> float:
        start = time.perf_counter()
        for _ in range(20):
            stream = ObservedStream(iter(chunks), Call("openai", "chat", "gpt-4o", None), ChatChunks())
            for _ in stream:
                pass
        return (time.perf_counter() - start) / (20 * len(chunks))

    found = _rounds(
        {
            "bare": bare_calls,
            "caller": caller_path,
            "recording": recording,
            "anchor": anchor_inc,
            "chunk bare": bare_chunks,
            "chunk wrapped": wrapped_chunks,
        },
        args.rounds,
    )
    record.flush()
    caller = (found["caller"] - found["bare"]) * 1e6
    chunk = (found["chunk wrapped"] - found["chunk bare"]) * 1e6
    print("in isolation (parsed responses, no HTTP)")
    print(f"  per call, caller's path      +{caller:6.2f} us   (target <= {CALL_TARGET_US:g} us)")
    print(f"  per call, batched recording   {found['recording'] * 1e6:6.2f} us   (off the call path)")
    print(f"  anchor: one labels().inc()    {found['anchor'] * 1e6:6.2f} us   (this machine's speed)")
    print(f"  per streamed chunk           +{chunk:6.2f} us   (target <= {CHUNK_TARGET_US:g} us)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    isolated(args)
    end_to_end(args)


if __name__ == "__main__":
    main()
