"""Token conventions, offline pricing, bounded labels and stream pass-through, without a network.

The provider-facing behaviour (real clients, real HTTP) is in tests/integration/test_llm.py;
these pin the rules each of those results depends on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from genai_prices.data_snapshot import get_snapshot

from lightkeeper.sdk.llm import pricing, record, tokens
from lightkeeper.sdk.llm.labels import Models, Operations, normalise_model
from lightkeeper.sdk.llm.record import Call
from lightkeeper.sdk.llm.streams import ObservedAsyncStream, ObservedStream
from lightkeeper.sdk.llm.tokens import Tokens
from lightkeeper.sdk.settings import SettingsError, load_settings
from lightkeeper.testing import capture_metrics

# --- token conventions -------------------------------------------------------------


def test_openai_cached_tokens_stay_inside_the_prompt_count() -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 400},
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    assert tokens.openai_chat(usage) == Tokens(input=1000, output=300, cache_read=400, reasoning=200)


def test_anthropic_cache_reads_and_writes_are_added_to_its_input_tokens() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 7,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 1000,
    }
    assert tokens.anthropic(usage) == Tokens(input=1110, output=7, cache_read=100, cache_write=1000)


def test_missing_or_odd_usage_fields_read_as_zero() -> None:
    assert tokens.openai_chat(None) is None
    assert tokens.openai_responses({"input_tokens": None, "output_tokens": -3}) == Tokens()
    assert tokens.anthropic({"input_tokens": "12"}) == Tokens()


# --- offline pricing -----------------------------------------------------------------


def _o3_rates(when: datetime) -> tuple[Decimal, Decimal]:
    _, info = get_snapshot().find_provider_model("o3", None, "openai", None)
    prices = info.get_prices(when)
    assert isinstance(prices.input_mtok, Decimal) and isinstance(prices.output_mtok, Decimal)
    return prices.input_mtok, prices.output_mtok


def test_a_dated_price_change_is_honoured_by_request_time() -> None:
    before, after = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    assert _o3_rates(before) != _o3_rates(after)  # the table has a change between the two
    used = Tokens(input=1_000_000, output=1_000_000, reasoning=800_000)
    for when in (before, after):
        priced = pricing.price("openai", "o3", used, when, {})
        assert priced is not None
        assert priced.usd == sum(_o3_rates(when))  # reasoning is already inside output


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "o3"),
        ("openai", "gpt-5.6-terra"),
        ("openai", "text-embedding-3-small"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-6"),
    ],
)
@pytest.mark.parametrize("when", [datetime(2025, 5, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)])
def test_the_fast_path_agrees_with_genai_prices_to_the_last_digit(
    provider: str, model: str, when: datetime
) -> None:
    import genai_prices

    cases = [
        Tokens(input=1, output=1),
        Tokens(input=1000, output=300, cache_read=400, reasoning=200),
        Tokens(input=5000, output=10, cache_read=1000, cache_write=3000),
        Tokens(input=200_000, output=5),  # at a long-context threshold
        Tokens(input=200_001, output=5, cache_read=100_000, cache_write=50_000),  # just past it
        Tokens(input=1_500_000, output=70_000, cache_read=1_000_000),
    ]
    for used in cases:
        usage = genai_prices.Usage(
            input_tokens=used.input,
            output_tokens=used.output,
            cache_read_tokens=used.cache_read,
            cache_write_tokens=used.cache_write,
        )
        library = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)
        ours = pricing.price(provider, model, used, when, {})
        assert ours is not None
        assert ours.usd == library.total_price, (model, when, used)


def test_an_unknown_model_has_no_price_rather_than_zero() -> None:
    assert pricing.price("openai", "not-a-model-xyz", Tokens(input=5), datetime.now(UTC), {}) is None


def test_overrides_price_cached_and_written_input_at_their_own_rates() -> None:
    rates = {"house-model": {"input": 2.0, "output": 10.0, "cached_input": 0.5, "cache_write": 4.0}}
    used = Tokens(input=1_000_000, output=100_000, cache_read=200_000, cache_write=300_000)
    priced = pricing.price("anthropic", "House-Model", used, datetime.now(UTC), rates)
    assert priced is not None and priced.source == pricing.OVERRIDE_SOURCE
    assert priced.usd == Decimal("0.5") * 2 + Decimal("0.2") * Decimal("0.5") + Decimal("0.3") * 4 + 1


@pytest.mark.parametrize(
    "prices",
    [
        {"m": {"input": 1.0}},
        {"m": {"input": 1.0, "output": 1.0, "cached": 0.1}},
        {"m": {"input": -1.0, "output": 1.0}},
        {" ": {"input": 1.0, "output": 1.0}},
    ],
)
def test_malformed_price_overrides_fail_at_start_up(prices: dict[str, dict[str, float]]) -> None:
    with pytest.raises(SettingsError, match="llm_prices"):
        load_settings(llm_prices=prices)


def _library_price(provider: str, model: str, used: Tokens, when: datetime) -> Decimal:
    import genai_prices

    usage = genai_prices.Usage(
        input_tokens=used.input,
        output_tokens=used.output,
        cache_read_tokens=used.cache_read,
        cache_write_tokens=used.cache_write,
    )
    found = genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=when)
    return Decimal(found.total_price)


def test_off_peak_prices_follow_the_hour_within_one_day() -> None:
    """deepseek's off-peak rate changes within a day: a price set cached per day would miss it."""
    used = Tokens(input=1_000_000, output=1_000_000)
    day = datetime(2026, 3, 2, tzinfo=UTC)
    seen = set()
    for moment in (day.replace(hour=1), day.replace(hour=17), day.replace(hour=2), day.replace(minute=10)):
        ours = pricing.price("deepseek", "deepseek-chat", used, moment, {})
        assert ours is not None
        assert ours.usd == _library_price("deepseek", "deepseek-chat", used, moment), moment
        seen.add(ours.usd)
    assert len(seen) == 2  # peak and off-peak both met, in either order


def test_a_dated_change_starts_at_midnight_utc_whatever_was_priced_before() -> None:
    start = datetime(2025, 6, 10, tzinfo=UTC)  # o3's price cut in the bundled table
    used = Tokens(input=1_000_000, output=1_000_000)
    moments = [
        start - timedelta(microseconds=1),
        start,
        start - timedelta(hours=1),  # back in time, as a repricing of old calls goes
        datetime(2025, 6, 10, 1, 30, tzinfo=timezone(timedelta(hours=2))),  # 23:30 UTC the day before
        datetime(2025, 6, 10, 0, 0, 1),  # naive: read as UTC
    ]
    for moment in moments:
        expected = sum(_o3_rates(moment))
        by_time = pricing.price("openai", "o3", used, moment, {})
        aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
        at_ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        by_ns = pricing.price_at("openai", "o3", used, at_ns, {})
        assert by_time is not None and by_ns is not None
        assert by_time.usd == by_ns.usd == expected, moment
    assert sum(_o3_rates(moments[0])) != sum(_o3_rates(moments[1]))


def test_a_new_price_table_replaces_what_was_looked_up_in_the_old_one() -> None:
    """What `UpdatePrices` does: a custom snapshot, used from the next call on."""
    import copy

    from genai_prices import data_snapshot, types

    used = Tokens(input=1_000_000, output=1_000_000)
    when = datetime(2026, 1, 5, tzinfo=UTC)
    before = pricing.price("openai", "gpt-4o", used, when, {})
    assert before is not None and before.source == pricing.price_data_version()
    providers = copy.deepcopy(get_snapshot().providers)
    openai = next(p for p in providers if p.id == "openai")
    model = next(m for m in openai.models if m.id == "gpt-4o")
    model.prices = types.ModelPrice(input_mtok=Decimal("7"), output_mtok=Decimal("11"))
    updated = data_snapshot.DataSnapshot(providers=providers, from_auto_update=True)
    data_snapshot.set_custom_snapshot(updated)
    try:
        after = pricing.price("openai", "gpt-4o", used, when, {})
        assert after is not None and after.usd == Decimal(18)
        assert after.source.startswith("genai-prices data of ")
    finally:
        data_snapshot.set_custom_snapshot(None)
    again = pricing.price("openai", "gpt-4o", used, when, {})
    assert again is not None and again.usd == before.usd and again.source == before.source


def test_the_price_data_version_names_the_table() -> None:
    from importlib.metadata import version

    assert pricing.price_data_version() == f"genai-prices {version('genai-prices')}"


# --- labels --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "label"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("gpt-4-0613", "gpt-4"),
        ("GPT-4o", "gpt-4o"),
        ("text-embedding-3-small", "text-embedding-3-small"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("bad model name; drop table", "other"),
        ("", "other"),
    ],
)
def test_model_names_are_normalised(model: str, label: str) -> None:
    assert Models(8)(model) == label


def test_model_labels_are_capped_per_process() -> None:
    models = Models(2)
    assert [models(m) for m in ("a1", "b1", "c1", "a1-2024-01-01")] == ["a1", "b1", "other", "a1"]
    assert normalise_model("x" * 500) == "other"


def test_operations_outside_the_declared_set_read_other() -> None:
    declared = Operations(("summarise", "classify"))
    assert [declared(n) for n in ("summarise", "translate")] == ["summarise", "other"]
    free = Operations(())
    assert [free(n) for n in ("summarise", "has space")] == ["summarise", "other"]


# --- streams -------------------------------------------------------------------------


class Inner:
    """A provider stream stand-in: yields given objects, remembers being closed."""

    def __init__(self, items: list[Any]) -> None:
        self._items = iter(items)
        self.closed = False
        self.response = "the raw response"

    def __next__(self) -> Any:
        return next(self._items)

    async def __anext__(self) -> Any:
        try:
            return next(self._items)
        except StopIteration:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self.closed = True


class Counting:
    def __init__(self) -> None:
        self.model: str | None = "gpt-4o"
        self.tokens: Tokens | None = None
        self.awaiting_usage = False
        self.seen = 0

    def observe(self, chunk: Any) -> None:
        self.seen += 1
        if self.seen == 2:
            self.tokens = Tokens(input=10, output=2)

    def content(self) -> Any:
        return None


@pytest.fixture(autouse=True)
def _fresh_config() -> Iterator[None]:
    record.reset()
    record.declare_families()
    yield
    record.reset()


def test_a_wrapped_stream_yields_the_very_same_objects_and_forwards_attributes() -> None:
    items = [object() for _ in range(5)]
    stream = ObservedStream(Inner(items), Call("openai", "chat", "gpt-4o", None), Counting())
    assert [id(x) for x in stream] == [id(x) for x in items]
    assert stream.response == "the raw response"


class ProviderStream(Inner):
    """Like openai's and anthropic's streams: `__iter__` is a generator over the same source."""

    def __iter__(self) -> Iterator[Any]:
        yield from self._items


def test_a_provider_stream_is_read_once_in_order_whichever_way_the_caller_reads() -> None:
    items = [object() for _ in range(6)]
    inner = ProviderStream(items)
    with capture_metrics() as m:
        stream = ObservedStream(inner, Call("openai", "chat", "gpt-4o", None), Counting())
        first = next(stream)
        rest = list(stream)
    assert [id(x) for x in [first, *rest]] == [id(x) for x in items]
    assert m.value("lightkeeper_llm_requests_total", status="ok") == 1


def test_closing_a_finished_answer_drains_its_usage_from_the_same_source() -> None:
    class AwaitingAfterFirst(Counting):
        def observe(self, chunk: Any) -> None:
            super().observe(chunk)
            self.awaiting_usage = self.seen == 1  # the answer ends at the first chunk

    inner = ProviderStream([object() for _ in range(4)])
    with capture_metrics() as m:
        stream = ObservedStream(inner, Call("openai", "chat", "gpt-4o", None), AwaitingAfterFirst())
        next(stream)
        stream.close()
    assert inner.closed
    assert m.value("lightkeeper_llm_requests_total", status="ok") == 1  # drained: complete, not abandoned
    assert m.value("gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 10


def test_a_stream_closed_early_is_recorded_once_as_abandoned() -> None:
    inner = Inner([object() for _ in range(5)])
    with capture_metrics() as m:
        stream = ObservedStream(inner, Call("openai", "chat", "gpt-4o", None), Counting())
        next(stream), next(stream)
        stream.close()
        stream.close()
        del stream
    assert inner.closed
    assert m.value("lightkeeper_llm_requests_total", status="abandoned") == 1
    assert m.value("lightkeeper_llm_requests_total") == 1
    assert m.value("gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 10


def test_a_failing_observer_never_breaks_the_stream() -> None:
    class Broken(Counting):
        def observe(self, chunk: Any) -> None:
            raise RuntimeError("telemetry bug")

    items = [1, 2, 3]
    assert list(ObservedStream(Inner(items), Call("openai", "chat", "gpt-4o", None), Broken())) == items


def test_an_error_mid_stream_reaches_the_caller_and_is_counted() -> None:
    class Failing(Inner):
        def __next__(self) -> Any:
            raise ConnectionError("reset")

    with capture_metrics() as m:
        stream = ObservedStream(Failing([]), Call("openai", "chat", "gpt-4o", None), Counting())
        with pytest.raises(ConnectionError):
            next(stream)
    assert m.value("lightkeeper_llm_requests_total", status="error") == 1
    assert m.value("gen_ai_client_errors_total", error_type="ConnectionError") == 1


async def test_an_async_stream_yields_the_same_objects_and_records_once() -> None:
    items = [object() for _ in range(3)]
    with capture_metrics() as m:
        stream = ObservedAsyncStream(Inner(items), Call("anthropic", "chat", "claude-x", None), Counting())
        got = [x async for x in stream]
    assert [id(x) for x in got] == [id(x) for x in items]
    assert m.value("lightkeeper_llm_requests_total", provider="anthropic", status="ok") == 1
