"""Cost events: one record per LLM call, for the server's cost analytics.

A `CostEvent` carries what the server needs to break spend down (provider, model,
operation, tokens, cost, latency, status) and who it was for only in a form that
cannot be reversed: the user id is an HMAC with a salt (`llm_user_salt`, or a random
one per process when unset, which still separates users within a process but not
across them). The prompt is carried the same way, as `prompt_hash`, an HMAC of the
request's prompt fields with the same salt (and its own domain prefix): equal prompts
give equal hashes, so the server can tell an operation whose prompts repeat without
a cache hit, and nothing of the text leaves the process. Events go to every
registered sink, synchronously and guarded: a sink must only enqueue (the shipper to
the server's ingest API is one), and one that raises is logged and skipped, never
felt by the call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_log = logging.getLogger("lightkeeper.llm")


@dataclass(frozen=True, slots=True)
class CostEvent:
    """One LLM call as the server stores it. `cost_usd` is None when the call could not be
    priced (`price_source` then says why); it is never a guessed zero."""

    timestamp: datetime
    provider: str
    model: str
    operation: str
    status: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: float | None
    price_source: str
    latency_seconds: float
    time_to_first_chunk_seconds: float | None = None
    user_hash: str | None = None
    workspace_id: str | None = None
    request_id: str | None = None
    prompt_hash: str | None = None
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)


# Receives every cost event; must return quickly (enqueue, do not send).
CostSink = Callable[[CostEvent], None]


_sinks: list[CostSink] = []
_sinks_lock = threading.Lock()


def add_sink(sink: CostSink) -> None:
    with _sinks_lock:
        if sink not in _sinks:
            _sinks.append(sink)


def remove_sink(sink: CostSink) -> None:
    with _sinks_lock:
        if sink in _sinks:
            _sinks.remove(sink)


def has_sinks() -> bool:
    return bool(_sinks)


def emit(event: CostEvent) -> None:
    for sink in list(_sinks):
        try:
            sink(event)
        except Exception:
            _log.warning("an LLM cost event sink failed; the event was skipped for it", exc_info=True)


_process_salt = secrets.token_bytes(16)


def user_hasher(salt: str | None) -> Callable[[str], str]:
    """HMAC-SHA256 of a user id, hex, truncated to 32 characters (128 bits)."""
    key = salt.encode() if salt else _process_salt

    def digest(user_id: str) -> str:
        return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:32]

    return digest


_PROMPT_DOMAIN = b"lightkeeper-prompt\x00"  # a prompt's hash never equals a user id's


def prompt_hasher(salt: str | None) -> Callable[[Any], str]:
    """HMAC-SHA256 of a prompt's canonical JSON (keys sorted), hex, 32 characters."""
    key = salt.encode() if salt else _process_salt

    def digest(prompt: Any) -> str:
        text = json.dumps(prompt, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
        return hmac.new(key, _PROMPT_DOMAIN + text.encode(), hashlib.sha256).hexdigest()[:32]

    return digest
