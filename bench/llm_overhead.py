"""What Lightkeeper's LLM wrapper adds per call and per streamed chunk, against anchors.

    .venv/bin/python -m bench.llm_overhead [--calls 400] [--chunks 1000] [--rounds 5]
        [--anchors-python /path/to/bench-venv/bin/python]

Issue 13's targets: <= 20 us per call, <= 2 us per streamed chunk, and below both
anchors, OpenLLMetry (`opentelemetry-instrumentation-openai`, in the project's venv)
and OpenLIT (`openlit`, which pins openai < 3 and pulls in ~40 packages, so it lives
in a bench-only venv: see bench/requirements-anchors.txt; without
`--anchors-python` or LK_BENCH_ANCHORS_PYTHON its rows are left out).

Each variant runs in a process of its own (instrumentors patch classes for good), one
process per variant per round, the variants' order rotated every round so machine
noise hits them alike; medians over rounds are reported. Every variant has the same
OpenTelemetry SDK tracer provider (a batch processor into an exporter that drops
spans), so each writes the spans it would write in production; content capture is
off everywhere (Lightkeeper's default), and OpenLIT's own metrics are off (its
default exporter would print them). Overhead is each variant minus the bare client
of the same venv (the anchors venv has openai 2.x: its bare client is measured too).

Times are CPU seconds, not inflated when other processes share the cores: per
variant, of the whole process (`time.process_time`, every thread: what a call costs
the service, background recording and span export included); in the in-process split,
of the calling thread only (`time.thread_time`: the call's own path, which a span
processor's export thread would otherwise blur). Through the real client the
comparison is only as precise as the client is steady: openai 3's own parsing costs
~2 ms per call and ~200 us per chunk here, and varies by tens of percent between
processes, so only differences of several hundred us per call show; the in-process
split resolves the microsecond targets.

Three transports per process:

* stub: the real `openai` client whose `Completions.create` (the method every
  instrumentation wraps) returns a parsed completion, or an `openai.Stream` over
  parsed chunks, at once. The bare call then costs ~1 us and the bare chunk well
  under one, so each instrumentation's whole cost - its wrapper, its recording on
  whatever thread, its spans - shows to a few microseconds in the process's CPU time;
* mock: the real `openai` client over an `httpx.MockTransport` that answers with a
  completion and an SSE stream recorded from the local fake, so no socket, server or
  scheduler noise hides a microsecond;
* e2e: the real client against the local fake API (tests/support/llm_fake.py) on
  127.0.0.1, as a service would see it.

A separate in-process measurement splits Lightkeeper's cost into the caller's share
and the batched recording done off the call path.

This file is also the worker (`python bench/llm_overhead.py --worker VARIANT ...`): its
top level imports only the standard library, so it runs in the anchors venv too.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CALL_TARGET_US = 20.0
WRITE_BATCH = 1024  # the write-behind's cap (lightkeeper.sdk.write_behind.WriteBehind)
CHUNK_TARGET_US = 2.0
PROMPT: Any = [{"role": "user", "content": "hi"}]
MODEL = "gpt-4o"
HERE = Path(__file__).resolve()
# (variant, which interpreter runs it, the bare variant it is compared with)
VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("bare", "project", "bare"),
    ("lightkeeper", "project", "bare"),
    ("openllmetry", "project", "bare"),
    ("bare-anchors", "anchors", "bare-anchors"),
    ("openlit", "anchors", "bare-anchors"),
)


# --- the worker: one variant, one process ------------------------------------------
def _tracer_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(provider)
    return provider


def _httpx_of_openai() -> Any:
    """The HTTP library this openai release is built on (httpx2 from openai 3 on)."""
    import openai._base_client as base

    return getattr(base, "httpx2", None) or getattr(base, "httpx")  # noqa: B009


def _mock_client(fixtures: Path) -> Any:
    import openai

    http = _httpx_of_openai()
    completion = (fixtures / "completion.json").read_bytes()
    stream = (fixtures / "stream.sse").read_bytes()

    def answer(request: Any) -> Any:
        if json.loads(request.content).get("stream"):
            return http.Response(200, content=stream, headers={"content-type": "text/event-stream"})
        return http.Response(200, content=completion, headers={"content-type": "application/json"})

    transport = http.MockTransport(answer)
    return openai.OpenAI(
        base_url="http://llm.invalid/v1",
        api_key="sk-bench",
        max_retries=0,
        http_client=http.Client(transport=transport),
    )


def _parsed(fixtures: Path) -> tuple[Any, list[Any]]:
    """The fixtures' completion and stream chunks as the client parses them."""
    client = _mock_client(fixtures)
    completion = client.chat.completions.create(model=MODEL, messages=PROMPT)
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
    )
    return completion, chunks


def _install_stub(fixtures: Path) -> Any:
    """A client whose calls end at `Completions.create`, before any HTTP; others go on as before.

    Installed on the class before any instrumentation, so each wraps the stub just as
    it wraps the real method (OpenLLMetry and OpenLIT patch the class; Lightkeeper's
    per-client patch finds the class's function). A stream is a real `openai.Stream`
    (instrumentations tell streams by that class) whose chunks were parsed up front.
    """
    import openai
    from openai.resources.chat import completions

    completion, chunks = _parsed(fixtures)
    stub = _mock_client(fixtures)
    real = completions.Completions.create

    class ParsedStream(openai.Stream):  # type: ignore[type-arg]
        def __init__(self) -> None:  # no response to read: the chunks are parsed already
            self._iterator = iter(chunks)

        def close(self) -> None:
            pass

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._client is not stub:
            return real(self, *args, **kwargs)
        return ParsedStream() if kwargs.get("stream") else completion

    completions.Completions.create = create  # type: ignore[method-assign]
    return stub


def _instrument(variant: str, client: Any, pricing: Path) -> None:
    if variant.startswith("bare"):
        return
    if variant == "lightkeeper":
        import lightkeeper

        lightkeeper.instrument_openai(client)
    elif variant == "openllmetry":
        from opentelemetry import trace
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=trace.get_tracer_provider())
    elif variant == "openlit":
        import openlit  # type: ignore[import-not-found]  # the anchors venv only

        openlit.init(
            capture_message_content=False,
            disable_metrics=True,
            disable_events=True,
            pricing_json=str(pricing),  # its default fetches a price list from the internet
            disabled_instrumentors=[],
        )
    else:
        raise SystemExit(f"unknown variant {variant}")


def _settle() -> None:
    """Inside the timed window: finish the work the calls left to background threads.

    Lightkeeper records calls in batches up to 50 ms later, and every variant's batch
    span processor exports later still; without this the clock would stop before some
    of that work ran, flattering whoever defers most.
    """
    from opentelemetry import trace

    recorder = sys.modules.get("lightkeeper.sdk.llm.record")
    if recorder is not None:
        recorder.flush()
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]  # the SDK provider


def _per_call(client: Any, n: int) -> float:
    create = client.chat.completions.create
    start = time.process_time()
    for _ in range(n):
        create(model=MODEL, messages=PROMPT)
    _settle()
    return (time.process_time() - start) / n


def _per_chunk(client: Any, streams: int, chunks: int) -> float:
    create = client.chat.completions.create
    start = time.process_time()
    for _ in range(streams):
        for _ in create(model=MODEL, messages=PROMPT, stream=True, stream_options={"include_usage": True}):
            pass
    _settle()
    return (time.process_time() - start) / (streams * chunks)


def worker(args: argparse.Namespace) -> None:
    os.environ["TRACELOOP_TRACE_CONTENT"] = "false"  # OpenLLMetry: no prompts on spans
    _tracer_provider()
    fixtures = Path(args.fixtures)
    stub = _install_stub(fixtures)  # before any instrumentation, which wraps it
    clients = {"mock": _mock_client(fixtures)}
    if args.url:
        import openai

        clients["e2e"] = openai.OpenAI(base_url=f"{args.url}/v1", api_key="sk-bench", max_retries=0)
    clients["stub"] = stub  # measured last: its thousands of calls leave nothing behind for the others
    for client in clients.values():
        _instrument(args.worker, client, fixtures / "pricing.json")
    found: dict[str, float] = {}
    chunks = (fixtures / "stream.sse").read_bytes().count(b"data: {")  # with role, finish, usage
    # The stub's calls are cheap: many more of them, to average the recording's batches.
    scale = {"stub": (10, 4), "mock": (1, 1)}
    for mode, client in clients.items():
        calls_x, streams_x = scale.get(mode, (0, 0))
        calls = args.calls * calls_x if calls_x else max(args.calls // 4, 20)
        streams = args.streams * streams_x if streams_x else max(args.streams // 2, 2)
        _per_call(client, max(calls // 5, 10))  # warm caches, price table, lazy imports
        _per_chunk(client, 1, chunks)
        found[f"{mode} call"] = _per_call(client, calls)
        found[f"{mode} chunk"] = _per_chunk(client, streams, chunks)
    print(json.dumps(found))


# --- the orchestrator ---------------------------------------------------------------
def _record_fixtures(url: str, into: Path, chunks: int) -> None:
    """A completion and an SSE stream as the local fake sends them, and a price list for OpenLIT."""
    import httpx

    endpoint = f"{url}/v1/chat/completions"
    with httpx.Client(timeout=30) as http:
        plain = http.post(endpoint, json={"model": MODEL, "messages": PROMPT})
        streamed = http.post(
            endpoint,
            json={
                "model": MODEL,
                "messages": PROMPT,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    plain.raise_for_status()
    streamed.raise_for_status()
    (into / "completion.json").write_bytes(plain.content)
    (into / "stream.sse").write_bytes(streamed.content)
    sent = streamed.content.count(b"data: {")
    if sent < chunks:
        raise SystemExit(f"the fake sent {sent} chunks, {chunks} were asked for")
    # USD per 1k tokens, gpt-4o's list price, so OpenLIT prices the calls as Lightkeeper does.
    prices = {"chat": {MODEL: {"promptPrice": 0.0025, "completionPrice": 0.01}}, "embeddings": {}}
    (into / "pricing.json").write_text(json.dumps(prices))


def _run_worker(
    python: str, variant: str, fixtures: Path, url: str, args: argparse.Namespace
) -> dict[str, float]:
    command = [
        python,
        str(HERE),
        "--worker",
        variant,
        "--fixtures",
        str(fixtures),
        "--url",
        url,
        "--calls",
        str(args.calls),
        "--streams",
        str(args.streams),
        "--chunks",
        str(args.chunks),
    ]
    # One hash seed for every worker: dict and set layouts then differ less between processes.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if python == sys.executable:
        env["PYTHONPATH"] = str(HERE.parents[1] / "src")
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"variant {variant} failed:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(args: argparse.Namespace) -> None:
    from tests.support.llm_fake import LLMFake

    anchors = args.anchors_python or os.environ.get("LK_BENCH_ANCHORS_PYTHON")
    pythons = {"project": sys.executable, "anchors": anchors}
    variants = [v for v in VARIANTS if pythons[v[1]]]
    samples: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    with LLMFake(chunks=args.chunks) as fake, tempfile.TemporaryDirectory() as tmp:
        fixtures = Path(tmp)
        _record_fixtures(fake.url, fixtures, args.chunks)
        for r in range(args.rounds):
            shift = r % len(variants)
            for name, python, _ in variants[shift:] + variants[:shift]:
                samples[name].append(_run_worker(str(pythons[python]), name, fixtures, fake.url, args))
    medians = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    _table(medians, {name: base for name, _, base in variants}, args)
    if not anchors:
        print("OpenLIT left out: pass --anchors-python (see bench/requirements-anchors.txt)")


def _table(medians: dict[str, dict[str, float]], bases: dict[str, str], args: argparse.Namespace) -> None:
    print(f"\nper variant, medians of {args.rounds} rounds ({args.chunks}-chunk streams); load {_load()}")
    for mode in ("stub", "mock", "e2e"):
        for kind in ("call", "chunk"):
            key = f"{mode} {kind}"
            ours = medians["lightkeeper"][key] - medians["bare"][key]
            header = f"{'variant':13} {'time us':>9} {'added us':>9} {'x bare':>7} {'added vs ours':>14}"
            print(f"\n  {key:10}  {header}")
            for name, values in medians.items():
                base = medians[bases[name]][key]
                added = values[key] - base
                vs = (
                    f"{added / ours:13.1f}x"
                    if name not in ("lightkeeper",) and ours > 0 and name != bases[name]
                    else ""
                )
                print(
                    f"  {'':10}  {name:13} {values[key] * 1e6:9.2f} {added * 1e6:+9.2f} "
                    f"{values[key] / base:7.3f} {vs:>14}"
                )


def _verdict(added_us: float, target_us: float) -> str:
    return f"target <= {target_us:g} us: {'met' if added_us <= target_us else 'MISSED'}"


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    except OSError:
        return "unknown"


def _timed(fn: Callable[[], object], n: int) -> float:
    start = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - start) / n


def isolated(args: argparse.Namespace) -> None:
    """The wrapper around a function returning a parsed completion: the caller's share vs recording."""
    import openai
    from tests.support.llm_fake import LLMFake

    from lightkeeper.sdk.llm import record
    from lightkeeper.sdk.llm.openai import CHAT, ChatChunks
    from lightkeeper.sdk.llm.record import Call
    from lightkeeper.sdk.llm.streams import ObservedStream
    from lightkeeper.sdk.llm.wrap import sync_wrapper

    with LLMFake(chunks=args.chunks) as fake:
        client = openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-bench", max_retries=0)
        completion = client.chat.completions.create(model=MODEL, messages=PROMPT)
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=PROMPT, stream=True, stream_options={"include_usage": True}
            )
        )

    def create(self: Any, **kwargs: Any) -> Any:
        return completion

    wrapped = sync_wrapper(CHAT)(create)
    record.declare_families()
    spans_on = args.isolated_spans
    if spans_on:
        _tracer_provider()
    n: int = args.calls * 25
    queued: list[Call] = []
    written: list[float] = []  # recording time per call, of the last caller_path() run

    def bare_calls() -> float:
        return _timed(functools.partial(create, None, model=MODEL, messages=PROMPT), n)

    def caller_path() -> float:
        """The calls, timed; between batches, their recording, timed apart.

        The queue is written every WRITE_BATCH calls, the most the write-behind lets wait:
        a queue of all `n` calls would have the garbage collector walk thousands of
        records no service holds, and bill that to the calls.
        """
        queue, record._waiting.add = record._waiting.add, queued.append  # type: ignore[method-assign,assignment]
        call = functools.partial(wrapped, None, model=MODEL, messages=PROMPT)
        calls: float = 0.0
        writing: float = 0.0
        try:
            for _ in range(n // WRITE_BATCH):
                calls += _timed(call, WRITE_BATCH) * WRITE_BATCH
                start = time.thread_time()
                record._write(queued)
                writing += time.thread_time() - start
                queued.clear()
        finally:
            record._waiting.add = queue  # type: ignore[method-assign]
        if spans_on:  # the span exporter's thread, done now rather than during the next timing
            _settle()
        done = (n // WRITE_BATCH) * WRITE_BATCH
        written.append(writing / done)
        return calls / done

    def recording() -> float:
        return written[-1]

    def bare_chunks() -> float:
        start = time.thread_time()
        for _ in range(10):
            for _ in iter(chunks):
                pass
        return (time.thread_time() - start) / (10 * len(chunks))

    def wrapped_chunks() -> float:
        start = time.thread_time()
        for _ in range(10):
            for _ in ObservedStream(iter(chunks), Call("openai", "chat", MODEL, None), ChatChunks()):
                pass
        return (time.thread_time() - start) / (10 * len(chunks))

    runs: dict[str, Callable[[], float]] = {
        "bare": bare_calls,
        "caller": caller_path,
        "recording": recording,
        "chunk bare": bare_chunks,
        "chunk wrapped": wrapped_chunks,
    }
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):  # interleaved: each recording writes the calls its round queued
        for name, run in runs.items():
            seen[name].append(run())
    found = {name: statistics.median(values) for name, values in seen.items()}
    record.flush()
    tracing = "spans on (SDK provider, batch export)" if spans_on else "no tracer provider"
    print(f"lightkeeper in isolation (parsed responses, no client, no HTTP; {tracing}); load {_load()}")
    call = (found["caller"] - found["bare"]) * 1e6
    chunk = (found["chunk wrapped"] - found["chunk bare"]) * 1e6
    print(f"  per call, caller's path      +{call:6.2f} us   ({_verdict(call, CALL_TARGET_US)})")
    print(f"  per call, batched recording   {found['recording'] * 1e6:6.2f} us   (off the call path)")
    print(f"  per streamed chunk           +{chunk:6.2f} us   ({_verdict(chunk, CHUNK_TARGET_US)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--streams", type=int, default=6)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--anchors-python", default=None)
    parser.add_argument(
        "--isolated-spans", action="store_true", help="set a tracer provider for the in-process split"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--fixtures", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    isolated(args)
    compare(args)


if __name__ == "__main__":
    main()
