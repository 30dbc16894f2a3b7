"""redis-py integration against the real Redis (db 5 only, flushed before and after)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio
from prometheus_client import REGISTRY, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

import lightkeeper
from lightkeeper.sdk.integrations.redis import instrument_redis, uninstrument_redis
from tests.support import services

pytestmark = pytest.mark.integration

DB = 5
SECRET_KEY = "session:tok_live_9f8e7d6c5b4a"
SECRET_VALUE = "sk-live-redis-value-31337"


def duration_count(command: str) -> float:
    return REGISTRY.get_sample_value("redis_command_duration_seconds_count", {"command": command}) or 0.0


def errors(command: str, error_type: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "redis_command_errors_total", {"command": command, "error_type": error_type}
        )
        or 0.0
    )


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    conn = redis.Redis(host=services.REDIS_HOST, port=services.REDIS_PORT, db=DB, socket_timeout=5)
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
async def async_client() -> AsyncIterator[redis.asyncio.Redis]:
    conn = redis.asyncio.Redis(host=services.REDIS_HOST, port=services.REDIS_PORT, db=DB, socket_timeout=5)
    await conn.flushdb()
    yield conn
    await conn.flushdb()
    await conn.aclose()


@pytest.fixture
def all_clients() -> Iterator[None]:
    lightkeeper.instrument_redis()
    yield
    uninstrument_redis()


@pytest.mark.usefixtures("all_clients")
def test_sync_commands_are_timed_by_name_only(client: redis.Redis) -> None:
    before_set, before_get = duration_count("SET"), duration_count("GET")
    client.set(SECRET_KEY, SECRET_VALUE)
    assert client.get(SECRET_KEY) == SECRET_VALUE.encode()
    client.get(SECRET_KEY)
    assert duration_count("SET") == before_set + 1
    assert duration_count("GET") == before_get + 2
    exposition = generate_latest(REGISTRY).decode()
    assert SECRET_KEY not in exposition
    assert SECRET_VALUE not in exposition


@pytest.mark.usefixtures("all_clients")
async def test_async_commands_are_timed(async_client: redis.asyncio.Redis) -> None:
    before = duration_count("HSET"), duration_count("HGETALL")
    await async_client.hset("user:1", mapping={"name": "ada", "token": SECRET_VALUE})
    assert (await async_client.hgetall("user:1"))[b"name"] == b"ada"
    assert (duration_count("HSET"), duration_count("HGETALL")) == (before[0] + 1, before[1] + 1)
    assert SECRET_VALUE not in generate_latest(REGISTRY).decode()


@pytest.mark.usefixtures("all_clients")
def test_pipeline_is_one_round_trip(client: redis.Redis) -> None:
    before_pipeline, before_incr = duration_count("PIPELINE"), duration_count("INCR")
    with client.pipeline() as pipe:
        pipe.incr("counter").incr("counter").expire("counter", 60)
        assert pipe.execute()[:2] == [1, 2]
    assert duration_count("PIPELINE") == before_pipeline + 1
    assert duration_count("INCR") == before_incr  # queued commands are not separate calls


@pytest.mark.usefixtures("all_clients")
async def test_async_pipeline_is_one_round_trip(async_client: redis.asyncio.Redis) -> None:
    before = duration_count("PIPELINE")
    async with async_client.pipeline() as pipe:
        pipe.set("a", "1").get("a")
        assert await pipe.execute() == [True, b"1"]
    assert duration_count("PIPELINE") == before + 1


@pytest.mark.usefixtures("all_clients")
def test_command_errors_by_type(client: redis.Redis) -> None:
    client.set("plain-string", "x")
    before = errors("LPUSH", "ResponseError")
    before_ok = duration_count("LPUSH")
    with pytest.raises(redis.ResponseError):
        client.lpush("plain-string", "y")  # WRONGTYPE
    assert errors("LPUSH", "ResponseError") == before + 1
    assert duration_count("LPUSH") == before_ok  # failures stay out of the latency histogram


@pytest.mark.usefixtures("all_clients")
def test_unknown_commands_share_other(client: redis.Redis) -> None:
    before = errors("other", "ResponseError")
    with pytest.raises(redis.ResponseError):
        client.execute_command("NOSUCHCOMMAND", SECRET_KEY)
    assert errors("other", "ResponseError") == before + 1
    assert "NOSUCHCOMMAND" not in generate_latest(REGISTRY).decode()


@pytest.mark.usefixtures("all_clients")
def test_connection_refused_is_counted_and_fast() -> None:
    port = services.closed_port()
    down = redis.Redis(
        host="127.0.0.1", port=port, db=DB, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    before = errors("GET", "ConnectionError")
    start = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        down.get("anything")
    assert time.monotonic() - start < 2.0
    assert errors("GET", "ConnectionError") == before + 1


@pytest.mark.usefixtures("all_clients")
async def test_async_timeout_against_a_silent_server_is_counted() -> None:
    with services.silent_listener() as port:
        hung = redis.asyncio.Redis(
            host="127.0.0.1",
            port=port,
            socket_timeout=0.3,
            socket_connect_timeout=0.3,
            retry=Retry(NoBackoff(), 0),
        )
        before = errors("PING", "TimeoutError")
        start = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            await hung.ping()
        assert time.monotonic() - start < 2.0
        await hung.aclose()
    assert errors("PING", "TimeoutError") == before + 1


def test_one_client_only(client: redis.Redis) -> None:
    other = redis.Redis(host=services.REDIS_HOST, port=services.REDIS_PORT, db=DB)
    instrument_redis(client)
    instrument_redis(client)  # idempotent
    try:
        before = duration_count("GET")
        client.get("k")
        other.get("k")
        assert duration_count("GET") == before + 1
        before_pipeline = duration_count("PIPELINE")
        with client.pipeline() as pipe:
            pipe.get("k").get("k")
            pipe.execute()
        assert duration_count("PIPELINE") == before_pipeline + 1
        # Every client on top of this one: still one count per command.
        instrument_redis()
        before = duration_count("GET")
        client.get("k")
        other.get("k")
        assert duration_count("GET") == before + 2
    finally:
        uninstrument_redis()
        uninstrument_redis(client)
        other.close()
    before = duration_count("GET")
    client.get("k")
    assert duration_count("GET") == before


def test_instrumenting_twice_counts_once(client: redis.Redis) -> None:
    instrument_redis()
    instrument_redis()
    try:
        before = duration_count("EXISTS")
        client.exists("k")
        assert duration_count("EXISTS") == before + 1
    finally:
        uninstrument_redis()


def test_cache_helpers_next_to_redis(client: redis.Redis) -> None:
    def hits() -> float:
        return REGISTRY.get_sample_value("cache_hits_total", {"cache": "profiles"}) or 0.0

    def misses() -> float:
        return REGISTRY.get_sample_value("cache_misses_total", {"cache": "profiles"}) or 0.0

    def cached_profile(user_id: int) -> bytes:
        found = client.get(f"profile:{user_id}")
        if found is not None:
            lightkeeper.cache_hit("profiles")
            return found
        lightkeeper.cache_miss("profiles")
        client.set(f"profile:{user_id}", b"{}", ex=60)
        return b"{}"

    before = hits(), misses()
    cached_profile(7)
    cached_profile(7)
    cached_profile(7)
    assert (hits(), misses()) == (before[0] + 2, before[1] + 1)
