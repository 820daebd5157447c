"""Prices and cost maths. Pure, apart from reading the TOML price files it is given.

Usage `input_tokens` excludes cache tokens, so
    cost = input·P_in + write_5m·P_w5m + write_1h·P_w1h + read·P_read + output·P_out.
Prices are US dollars per million tokens, so tokens × price is exactly micro-dollars: costs
are summed as Decimals and rounded once, to whole micro-dollars. A model without a price, or
a token kind used without a price, gives an unknown cost (None), never $0.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_DATED = re.compile(r"-\d{8}$")


@dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0

    @property
    def prompt(self) -> int:
        """Every input token of the request, cached or not (what long-context tiers count)."""
        return self.input + self.cache_write_5m + self.cache_write_1h + self.cache_read


@dataclass(frozen=True)
class Prices:
    """US dollars per million tokens; None where no price was found."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    cache_read: Decimal | None = None


@dataclass(frozen=True)
class ModelPrice:
    model: str
    base: Prices
    source: str = ""
    checked: str = ""
    long_context_above: int | None = None
    long_context: Prices | None = None

    def for_request(self, tokens: Tokens) -> Prices:
        # A long-context tier prices the whole request once its prompt passes the threshold.
        above = self.long_context_above
        if above is not None and self.long_context is not None and tokens.prompt > above:
            return self.long_context
        return self.base


@dataclass(frozen=True)
class PriceTable:
    version: str
    models: dict[str, ModelPrice]

    def lookup(self, model: str | None) -> ModelPrice | None:
        """The price row of a model id; a dated id (`…-20251001`) falls back to its alias."""
        if not model:
            return None
        return self.models.get(model) or self.models.get(_DATED.sub("", model))

    def cost_micros(self, model: str | None, tokens: Tokens) -> int | None:
        row = self.lookup(model)
        if row is None:
            return None
        prices = row.for_request(tokens)
        total = Decimal(0)
        for kind in KINDS:
            count = getattr(tokens, kind)
            if not count:
                continue
            price = getattr(prices, kind)
            if price is None:
                return None
            total += count * price
        return int(total.to_integral_value(rounding=ROUND_HALF_UP))

    def cache_savings_micros(self, model: str | None, tokens: Tokens) -> int | None:
        """What caching saved: reads at the input price minus what reads and writes cost.

        Negative when cache writes (priced above input) have not yet paid for themselves.
        """
        row = self.lookup(model)
        if row is None:
            return None
        prices = row.for_request(tokens)
        cached = Tokens(
            cache_write_5m=tokens.cache_write_5m,
            cache_write_1h=tokens.cache_write_1h,
            cache_read=tokens.cache_read,
        )
        actual = self.cost_micros(model, cached)
        if actual is None or prices.input is None:
            return None
        uncached = (cached.prompt * prices.input).to_integral_value(rounding=ROUND_HALF_UP)
        return int(uncached) - actual


def money(micros: int) -> str:
    """Dollars for people: cents from a dollar up, hundredths of a cent below."""
    dollars = micros / 1_000_000
    return f"${dollars:,.2f}" if abs(dollars) >= 1 or not micros else f"${dollars:,.4f}"


def load_price_table(override: Path | None = None) -> PriceTable:
    """The shipped table, with PRICING_FILE's rows (if any) replacing or adding models."""
    shipped = resources.files("bot.cost").joinpath("prices.toml").read_bytes()
    table = _parse(shipped, "bot/cost/prices.toml")
    if override is None:
        return table
    try:
        extra_bytes = override.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"PRICING_FILE cannot be read ({type(error).__name__}): {override}"
        ) from None
    extra = _parse(extra_bytes, str(override))
    digest = hashlib.sha256(extra_bytes).hexdigest()[:8]
    # The version names both files, so a ledger row says exactly which prices it used.
    return PriceTable(f"{table.version}+{extra.version}.{digest}", {**table.models, **extra.models})


def _parse(raw: bytes, name: str) -> PriceTable:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        models = {model: _model(model, row) for model, row in dict(data.get("models", {})).items()}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ConfigError(f"Price file {name} is not valid: {error}") from None
    return PriceTable(str(data.get("version", "custom")), models)


def _model(model: str, row: dict[str, Any]) -> ModelPrice:
    above = row.get("long_context_above")
    tier = row.get("long_context")
    return ModelPrice(
        model=model,
        base=_prices(row, model),
        source=str(row.get("source", "")),
        checked=str(row.get("checked", "")),
        long_context_above=int(above) if above is not None else None,
        long_context=_prices(tier, model) if tier is not None else None,
    )


def _prices(row: dict[str, Any], model: str) -> Prices:
    values: dict[str, Decimal] = {}
    for kind in KINDS:
        if kind in row:
            try:
                value = Decimal(str(row[kind]))
            except InvalidOperation:
                raise ValueError(f"{model}.{kind} is not a number: {row[kind]!r}") from None
            if value < 0 or not value.is_finite():
                raise ValueError(f"{model}.{kind} must be a price ≥ 0: {row[kind]!r}")
            values[kind] = value
    return Prices(**values)
