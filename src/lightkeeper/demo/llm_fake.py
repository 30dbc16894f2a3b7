"""A local stand-in for the OpenAI and Anthropic HTTP APIs, for the demo and the tests only.

Not a provider emulator for production use: it answers every call with canned text
and the usage it was told to report, so the demo's example app can make real
`openai` client calls (and get priced) without a network or an API key, and the
tests can construct exact token counts. It serves the shapes the providers send (JSON
bodies and SSE streams, usage blocks where each provider puts them) on 127.0.0.1 at an
ephemeral port. Set the usage the next calls report (`fake.usage`), make a call fail
(`fake.fail_next`), read the requests received (`fake.requests`).
`python -m lightkeeper.demo.llm_fake` prints its URL and serves until interrupted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_OPENAI_USAGE: dict[str, Any] = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
DEFAULT_ANTHROPIC_USAGE: dict[str, Any] = {
    "input_tokens": 12,
    "output_tokens": 5,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
Events = Iterator[tuple[str | None, dict[str, Any]]]
WORDS = ("The", " quick", " brown", " fox", " jumps")


def _responses_usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": usage["prompt_tokens_details"]["cached_tokens"]},
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]},
        "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
    }


class LLMFake:
    """The fake server; use as a context manager. `url` is its base URL (no path)."""

    def __init__(self, chunks: int = len(WORDS)) -> None:
        self.openai_usage: dict[str, Any] = json.loads(json.dumps(DEFAULT_OPENAI_USAGE))
        self.anthropic_usage: dict[str, Any] = dict(DEFAULT_ANTHROPIC_USAGE)
        self.response_model: str | None = None  # default: the requested model
        self.chunks = chunks
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._fail: tuple[int, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake._serve(self, self.path.split("?")[0], body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LLMFake:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, status: int, error_type: str = "rate_limit_error") -> None:
        """The next request gets this HTTP error, in its provider's error shape."""
        self._fail = (status, {"type": error_type, "message": "fake failure"})

    # --- serving ------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((path, body))
            fail, self._fail = self._fail, None
        if fail is not None:
            status, error = fail
            shape = {"type": "error", "error": error} if path == "/v1/messages" else {"error": error}
            self._json(handler, status, shape)
            return
        model = self.response_model or body.get("model", "unknown")
        stream = bool(body.get("stream"))
        if path == "/v1/chat/completions":
            if stream:
                self._sse(handler, self._chat_stream(model, body), done=True)
            else:
                self._json(handler, 200, self._chat(model))
        elif path == "/v1/responses":
            if stream:
                self._sse(handler, self._responses_stream(model))
            else:
                self._json(handler, 200, self._response(model))
        elif path == "/v1/embeddings":
            self._json(handler, 200, self._embeddings(model, body))
        elif path == "/v1/messages":
            if stream:
                self._sse(handler, self._messages_stream(model))
            else:
                self._json(handler, 200, self._message(model))
        else:
            self._json(handler, 404, {"error": {"type": "not_found", "message": path}})

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _sse(
        handler: BaseHTTPRequestHandler,
        events: Events,
        done: bool = False,
    ) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def write(text: str) -> None:
            data = text.encode()
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        try:
            for event, payload in events:
                prefix = f"event: {event}\n" if event else ""
                write(f"{prefix}data: {json.dumps(payload)}\n\n")
            if done:
                write("data: [DONE]\n\n")
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    # --- OpenAI -------------------------------------------------------------------

    def _chat(self, model: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(WORDS), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": self.openai_usage,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def _chat_stream(self, model: str, body: dict[str, Any]) -> Events:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time())}
        base |= {"model": model, "system_fingerprint": "fp_fake"}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        yield None, base | {"choices": [choice({"role": "assistant", "content": ""})]} | extra
        for i in range(self.chunks):
            word = WORDS[i % len(WORDS)]
            yield None, base | {"choices": [choice({"content": word})]} | extra
        yield None, base | {"choices": [choice({}, "stop")]} | extra
        if include_usage:
            yield None, base | {"choices": [], "usage": self.openai_usage}

    def _response(self, model: str, status: str = "completed") -> dict[str, Any]:
        text = "".join(WORDS)
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": model,
            "output": [
                {
                    "type": "message",
                    "id": "msg_fake",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": _responses_usage(self.openai_usage) if status == "completed" else None,
        }

    def _responses_stream(self, model: str) -> Events:
        created = self._response(model, status="in_progress")
        created["output"] = []
        yield "response.created", {"type": "response.created", "sequence_number": 0, "response": created}
        for i in range(self.chunks):
            delta = {
                "type": "response.output_text.delta",
                "sequence_number": i + 1,
                "item_id": "msg_fake",
                "output_index": 0,
                "content_index": 0,
                "delta": WORDS[i % len(WORDS)],
                "logprobs": [],
            }
            yield "response.output_text.delta", delta
        done = {
            "type": "response.completed",
            "sequence_number": self.chunks + 1,
            "response": self._response(model),
        }
        yield "response.completed", done

    def _embeddings(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(count)],
            "model": model,
            "usage": {
                "prompt_tokens": self.openai_usage["prompt_tokens"],
                "total_tokens": self.openai_usage["prompt_tokens"],
            },
        }

    # --- Anthropic ----------------------------------------------------------------

    def _message(self, model: str) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "".join(WORDS)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": self.anthropic_usage,
        }

    def _messages_stream(self, model: str) -> Events:
        start = self._message(model)
        start["content"] = []
        start["stop_reason"] = None
        start["usage"] = dict(self.anthropic_usage, output_tokens=1)
        yield "message_start", {"type": "message_start", "message": start}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        yield "content_block_start", block
        for i in range(self.chunks):
            delta = {"type": "text_delta", "text": WORDS[i % len(WORDS)]}
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        usage = {"output_tokens": self.anthropic_usage["output_tokens"]}
        message_delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
        yield "message_delta", message_delta | {"usage": usage}
        yield "message_stop", {"type": "message_stop"}


if __name__ == "__main__":  # pragma: no cover - manual use
    with LLMFake() as served:
        print(served.url, flush=True)
        threading.Event().wait()
