"""Dollar cost of a call, computed in-process from the bundled genai-prices table.

No network: genai-prices ships its price data inside the package, and its optional
auto-updater (`UpdatePrices`) is never started here, so pricing works air-gapped and
adds no call to the request path. Its lookups honour dated price changes (the
request's own time is passed) and long-context tiers (priced on the call's total
input). A model missing from the table returns None - callers count it as unpriced,
never as a free call - and negotiated rates from the `llm_prices` setting win over
the table.

Asking genai-prices on every call would cost more than everything else Lightkeeper
does for it, so what it answers is kept per price table (a new snapshot, such as
`UpdatePrices` installs, starts afresh): the model's entry once, its price set once
per UTC day when its prices change only on given dates (once for good when they never
change, never when they change by the hour), and per-token rates once per price set
and long-context tier.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


_DAY_NS = 86_400 * 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MODELS = 1024
_MAX_DAYS = 400
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


class _PriceSet:
    """One price set of a model, its long-context thresholds and, once used, each tier's rates."""

    __slots__ = ("model_price", "thresholds", "tiers")

    def __init__(self, table: Any, model_price: Any) -> None:
        self.model_price = model_price
        self.thresholds = _thresholds(table, model_price)
        self.tiers: list[_Rates | None] = [None] * (len(self.thresholds) + 1)

    def rates(self, table: Any, input_tokens: int) -> _Rates:
        # Tiers are chosen on the call's total input, as genai-prices does.
        tier = bisect.bisect_left(self.thresholds, input_tokens)
        found = self.tiers[tier]
        if found is None:
            found = self.tiers[tier] = _derive(table, self.model_price, tier, self.thresholds)
        return found


class _Model:
    """Which price set of one model applies at a given time.

    A model with one price set (most) resolves once. A model whose sets only start on
    given dates resolves once per UTC day, which is all a start date can tell apart.
    Any other condition (deepseek's off-peak hours, a kind this code does not know)
    is asked of genai-prices on every call, so a new kind of condition is slower,
    never wrong.
    """

    __slots__ = ("by_day", "daily", "fixed", "info", "sets")

    def __init__(self, table: Any, info: Any) -> None:
        self.info = info
        self.sets: dict[int, _PriceSet] = {}  # by id() of genai-prices' ModelPrice
        self.by_day: dict[int, _PriceSet] = {}
        self.fixed: _PriceSet | None = None
        self.daily = False
        prices = info.prices
        if isinstance(prices, table.types.ModelPrice):
            self.fixed = _PriceSet(table, prices)
            return
        constraints = [p.constraint for p in prices if p.constraint is not None]
        if not constraints:
            self.fixed = _PriceSet(table, info.get_prices(_EPOCH))
        else:
            self.daily = all(isinstance(c, table.types.StartDateConstraint) for c in constraints)

    def price_set(self, table: Any, at_ns: int, when: datetime | None) -> _PriceSet:
        if self.fixed is not None:
            return self.fixed
        if self.daily:
            day = at_ns // _DAY_NS
            found = self.by_day.get(day)
            if found is None:
                found = self._resolve(table, at_ns, when)
                if len(self.by_day) >= _MAX_DAYS:
                    self.by_day.clear()
                self.by_day[day] = found
            return found
        return self._resolve(table, at_ns, when)

    def _resolve(self, table: Any, at_ns: int, when: datetime | None) -> _PriceSet:
        moment = when if when is not None else _EPOCH + timedelta(microseconds=at_ns // 1000)
        model_price = self.info.get_prices(moment)
        found = self.sets.get(id(model_price))
        if found is None or found.model_price is not model_price:
            found = self.sets[id(model_price)] = _PriceSet(table, model_price)
        return found


class _Snapshot:
    """What one genai-prices snapshot has told so far, by (provider, model); None: not in it."""

    __slots__ = ("models", "snapshot", "source")

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot
        self.models: dict[tuple[str, str], _Model | None] = {}
        self.source = price_data_version()
        if snapshot.from_auto_update:
            self.source = f"genai-prices data of {snapshot.timestamp.isoformat(timespec='seconds')}"

    def model(self, table: Any, provider: str, model: str) -> _Model | None:
        key = (provider, model)
        try:
            return self.models[key]
        except KeyError:
            pass
        try:
            _, info = self.snapshot.find_provider_model(model, None, provider, None)
        except LookupError:
            _warn_unknown(provider, model)
            found = None
        else:
            found = _Model(table, info)
        if len(self.models) >= _MAX_MODELS:
            self.models.clear()
        self.models[key] = found
        return found


_snapshot: _Snapshot | None = None


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


def _nanoseconds(when: datetime) -> int:
    """Exactly, in integers: a float timestamp can put a call a microsecond across midnight."""
    delta = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def price(
    provider: str,
    model: str,
    tokens: Tokens,
    when: datetime,
    overrides: Mapping[str, Mapping[str, float]],
) -> Price | None:
    """What the call cost, or None when neither the overrides nor the table know `model`.

    `when` is the request's time (a naive one is read as UTC, as genai-prices does).
    """
    return price_at(provider, model, tokens, _nanoseconds(when), overrides, when)


def price_at(
    provider: str,
    model: str,
    tokens: Tokens,
    at_ns: int,
    overrides: Mapping[str, Mapping[str, float]],
    when: datetime | None = None,
) -> Price | None:
    """`price` for a request made `at_ns` nanoseconds after the epoch (what a call record holds).

    The datetime genai-prices' dated lookups want is built only for a model whose
    prices change by the hour.
    """
    global _snapshot
    if overrides:
        rates = overrides.get(model.lower())
        if rates is not None:
            return Price(_override(rates, tokens), OVERRIDE_SOURCE)
    table = _genai_prices()
    snapshot = table.data_snapshot.get_snapshot()
    state = _snapshot
    if state is None or state.snapshot is not snapshot:  # a new table: updated, or set by the user
        state = _snapshot = _Snapshot(snapshot)
    known = state.model(table, provider, model)
    if known is None:
        return None
    rates_for = known.price_set(table, at_ns, when).rates(table, tokens.input)
    return Price(rates_for.cost(tokens), state.source)


def warm_up_in_background() -> None:
    """Load the table off the caller's thread, so no user call pays the first load."""
    if _table is None:
        threading.Thread(target=warm_up, name="lightkeeper-llm-prices", daemon=True).start()
