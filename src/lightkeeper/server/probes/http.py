"""The http probe: one request with httpx, then the assertions in a fixed order.

Order matters for the message a reader sees: status first (the most telling), then
headers, body, JSON paths, latency and certificate lifetime. The body is read only
when an assertion needs it, and never beyond `MAX_BODY` bytes, so a huge or endless
response cannot exhaust the server. Response content is quoted in errors only as
short, redacted excerpts of JSON values.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from typing import Any

import httpx
import jsonpath

from lightkeeper.server.probes import certs, secrets
from lightkeeper.server.probes.result import Observation, ProbeFailure
from lightkeeper.spec.probes import HttpProbe

MAX_BODY = 1024 * 1024
KEEPALIVE = 20  # idle connections kept; see shared_client


def shared_client(max_connections: int) -> httpx.AsyncClient:
    """The one client a scheduler probes through, sized to how many probes run at once.

    `max_connections` is the scheduler's concurrency, so a request never waits inside the
    pool: httpcore's pool re-scans every queued request against every connection on each
    change, which with httpx's default of 100 connections under a 200-probe concurrency was
    most of the scheduler's CPU at 10 000 probes (bench/server_probes.py). For the same
    reason few idle connections are kept: measured there, keeping one per possible
    request (to reuse them) cost 5x more CPU per probe than connecting again. No httpx
    timeout: `run_probe` bounds every request by the probe's own `timeout_seconds`, so
    the reported error is that timeout, not a pool default.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=KEEPALIVE)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(None))


def _headers(probe: HttpProbe, found_secrets: list[str]) -> dict[str, str]:
    out = dict(probe.headers)
    resolved = {h: secrets.from_env(v, f"value of header {h}") for h, v in probe.headers_env.items()}
    resolved |= {h: secrets.from_file(p, f"value of header {h}") for h, p in probe.headers_file.items()}
    for value in resolved.values():  # "Bearer abc…" is masked whole, and so is "abc…" quoted alone
        found_secrets.append(value)
        found_secrets.extend(part for part in value.split() if len(part) >= 8)
    return out | resolved


async def check(
    probe: HttpProbe, found_secrets: list[str], client: httpx.AsyncClient | None = None
) -> Observation:
    """Run the request on `client` (a shared pool) unless the probe needs its own CA bundle."""
    headers = _headers(probe, found_secrets)
    if client is not None and probe.ca_file is None:
        return await _request(probe, client, headers)
    verify: ssl.SSLContext | bool = certs.context(probe.ca_file) if probe.ca_file else True
    async with httpx.AsyncClient(verify=verify, timeout=probe.timeout_seconds + 1) as own:
        return await _request(probe, own, headers)


async def _request(probe: HttpProbe, client: httpx.AsyncClient, headers: dict[str, str]) -> Observation:
    started = time.perf_counter()
    needs_body = bool(probe.body_contains or probe.body_regex or probe.json_path_equals)
    async with client.stream(
        probe.method, probe.target, headers=headers, follow_redirects=probe.follow_redirects
    ) as response:
        expiry = _tls_expiry(response) if probe.target.startswith("https") else None
        body = await _read(response, MAX_BODY) if needs_body else b""
        latency_ms = (time.perf_counter() - started) * 1000
    try:
        _assert(probe, response, body, latency_ms, expiry)
    except ProbeFailure as failure:
        failure.latency_ms, failure.tls_expiry_seconds = latency_ms, expiry
        raise
    return Observation(latency_ms=latency_ms, tls_expiry_seconds=expiry)


def _tls_expiry(response: httpx.Response) -> float | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    return certs.peer_expiry(ssl_object) if ssl_object is not None else None


async def _read(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _assert(
    probe: HttpProbe, response: httpx.Response, body: bytes, latency_ms: float, expiry: float | None
) -> None:
    if not probe.accepts_status(response.status_code):
        expected = ", ".join(str(s) for s in probe.expected_status)
        raise ProbeFailure(f"expected status {expected}, got {response.status_code}")
    for header in probe.header_present:
        if header not in response.headers:
            raise ProbeFailure(f"header {header!r} missing from the response")
    text = body.decode(response.encoding or "utf-8", errors="replace") if body else ""
    if probe.body_contains and probe.body_contains not in text:
        raise ProbeFailure(f"body does not contain {json.dumps(probe.body_contains)}")
    if probe.body_regex and not re.search(probe.body_regex, text):
        raise ProbeFailure(f"body does not match /{probe.body_regex}/")
    if probe.json_path_equals:
        _assert_json(probe.json_path_equals, text)
    if probe.max_latency_ms is not None and latency_ms > probe.max_latency_ms:
        raise ProbeFailure(f"latency {latency_ms:.0f} ms over the {probe.max_latency_ms:g} ms limit")
    if probe.tls_min_days is not None:
        if expiry is None:
            raise ProbeFailure("tls_min_days is set but the answer did not come over TLS")
        certs.check_min_days(expiry, probe.tls_min_days)


def _assert_json(expected: dict[str, Any], text: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        raise ProbeFailure("body is not JSON, expected a JSON document for json_path_equals") from None
    for path, want in expected.items():
        try:
            found = jsonpath.findall(path, document)
        except jsonpath.JSONPathError as exc:
            raise ProbeFailure(f"JSON path {path} is not valid ({exc})") from None
        if not found:
            raise ProbeFailure(f"JSON path {path} not found in the body, expected {_show(want)}")
        if found[0] != want:
            raise ProbeFailure(f"JSON path {path} is {_show(found[0])}, expected {_show(want)}")


def _show(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:79] + "…"
