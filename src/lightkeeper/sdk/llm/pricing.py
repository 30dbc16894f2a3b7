"""Dollar cost of a call, computed in-process from the bundled genai-prices table.

No network: genai-prices ships its price data inside the package, and its optional
auto-updater (`UpdatePrices`) is never started here, so pricing works air-gapped and
adds no call to the request path. Its lookups honour dated price changes (the
request's own time is passed) and long-context tiers (priced on the call's total
input). A model missing from the table returns None - callers count it as unpriced,
never as a free call - and negotiated rates from the `llm_prices` setting win over
the table.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from lightkeeper.sdk.llm.tokens import Tokens

_log = logging.getLogger("lightkeeper.llm")
_PER = Decimal(1_000_000)
OVERRIDE_SOURCE = "llm_prices setting"


@dataclass(frozen=True, slots=True)
class Price:
    """A priced call: the amount and which price data produced it (stamped on cost records)."""

    usd: Decimal
    source: str


@cache
def price_data_version() -> str:
    """genai-prices' package version: its price data is released with the package."""
    try:
        return f"genai-prices {version('genai-prices')}"
    except PackageNotFoundError:
        return "genai-prices (not installed)"


_table: Any = None
_table_lock = threading.Lock()


def _genai_prices() -> Any:
    """The library, imported on first use: loading its table takes ~0.1 s, once."""
    global _table
    if _table is None:
        with _table_lock:
            if _table is None:
                import genai_prices
                import genai_prices.data_snapshot
                import genai_prices.types

                _table = genai_prices
    return _table


def warm_up() -> None:
    """Load the table and its lookup caches ahead of the first call (from a thread)."""
    try:
        _genai_prices().data_snapshot.get_snapshot().find_provider_model("gpt-4o", None, "openai", None)
    except Exception:  # pragma: no cover - only makes the first priced call faster
        _log.debug("genai-prices warm-up failed", exc_info=True)


def _override(rates: Mapping[str, float], tokens: Tokens) -> Decimal:
    def rate(name: str, fallback: str = "input") -> Decimal:
        return Decimal(str(rates.get(name, rates[fallback])))

    uncached = max(tokens.input - tokens.cache_read - tokens.cache_write, 0)
    total = (
        uncached * rate("input")
        + tokens.cache_read * rate("cached_input")
        + tokens.cache_write * rate("cache_write")
        + tokens.output * rate("output")
    )
    return total / _PER


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per token of each kind, plus per request, for one price set and tier."""

    uncached: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    per_request: Decimal

    def cost(self, tokens: Tokens) -> Decimal:
        uncached = max(tokens.input - tokens.cache_read - tokens.cache_write, 0)
        return (
            uncached * self.uncached
            + tokens.cache_read * self.cache_read
            + tokens.cache_write * self.cache_write
            + tokens.output * self.output
            + self.per_request
        )


_MAX_RATES = 1024
_rates: dict[tuple[int, int], tuple[_Rates, Any]] = {}
_unknown: set[tuple[str, str]] = set()


def _thresholds(table: Any, model_price: Any) -> tuple[int, ...]:
    starts = {
        tier.start
        for value in vars(model_price).values()
        if isinstance(value, table.types.TieredPrices)
        for tier in value.tiers
    }
    return tuple(sorted(starts))


def _derive(table: Any, model_price: Any, tier: int, thresholds: tuple[int, ...]) -> _Rates:
    """Per-token rates for one tier, read off the library's own calculation.

    genai-prices needs ~0.3 ms per calculation, 15x the whole per-call budget. Within
    one price set and one long-context tier the price is linear in each token count,
    so five calculations at a representative input size give every coefficient, and
    later calls in that tier are a few multiplications - with the library's numbers,
    tiers and rounding rules, not a copy of its table.
    """
    size = 1 if tier == 0 else thresholds[tier - 1] + 1

    def calc(**counts: int) -> Decimal:
        return Decimal(model_price.calc_price(table.Usage(**counts))["total_price"])

    base = calc(input_tokens=size)
    uncached = calc(input_tokens=size + 1) - base
    per_request = base - size * uncached
    return _Rates(
        uncached=uncached,
        cache_read=(calc(input_tokens=size, cache_read_tokens=size) - per_request) / size,
        cache_write=(calc(input_tokens=size, cache_write_tokens=size) - per_request) / size,
        output=(calc(input_tokens=size, output_tokens=size) - base) / size,
        per_request=per_request,
    )


def _warn_unknown(provider: str, model: str) -> None:
    key = (provider, model)
    if key in _unknown or len(_unknown) >= 1024:
        return
    _unknown.add(key)
    _log.warning(
        "no price for %s model %r in %s; its calls are counted in "
        "lightkeeper_llm_unpriced_calls_total - add it to the llm_prices setting",
        provider,
        model,
        price_data_version(),
    )


def price(
    provider: str,
    model: str,
    tokens: Tokens,
    when: datetime,
    overrides: Mapping[str, Mapping[str, float]],
) -> Price | None:
    """What the call cost, or None when neither the overrides nor the table know `model`."""
    rates = overrides.get(model.lower())
    if rates is not None:
        return Price(_override(rates, tokens), OVERRIDE_SOURCE)
    if (provider, model) in _unknown:
        return None
    table = _genai_prices()
    snapshot = table.data_snapshot.get_snapshot()
    try:
        _, info = snapshot.find_provider_model(model, None, provider, None)
    except LookupError:
        _warn_unknown(provider, model)
        return None
    model_price = info.get_prices(when)
    thresholds = _thresholds(table, model_price)
    tier = bisect.bisect_left(thresholds, tokens.input)
    key = (id(model_price), tier)
    found = _rates.get(key)
    if found is None or found[1] is not model_price:
        found = (_derive(table, model_price, tier, thresholds), model_price)
        if len(_rates) >= _MAX_RATES:
            _rates.clear()
        _rates[key] = found
    source = price_data_version()
    if snapshot.from_auto_update:
        source = f"genai-prices data of {snapshot.timestamp.isoformat(timespec='seconds')}"
    return Price(found[0].cost(tokens), source)


def warm_up_in_background() -> None:
    """Load the table off the caller's thread, so no user call pays the first load."""
    if _table is None:
        threading.Thread(target=warm_up, name="lightkeeper-llm-prices", daemon=True).start()
