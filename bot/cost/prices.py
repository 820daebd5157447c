"""Prices and cost maths. Pure, apart from reading the TOML price files it is given.

Usage `input_tokens` excludes cache tokens, so
    cost = (input·P_in + write_5m·P_w5m + write_1h·P_w1h + read·P_read + output·P_out)
           × geo × speed + tool fees.
Prices are US dollars per million tokens, so tokens × price is exactly micro-dollars: costs
are summed as Decimals and rounded once, half-up, to whole micro-dollars.

Two answers, because they serve different readers. The exact cost is None when any figure
it needs is unknown: the ledger must not pass a guess off as the bill, and must never say $0.
The estimate is always a number, filled from the dearest comparable price, so budgets and
reports can still count the request without under-counting it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from bot.cost.model_ids import canonical_model, model_family
from bot.cost.money import money, usd
from bot.cost.price_file import PriceFile, read_price_files
from bot.cost.rates import KINDS, ModelPrice, Prices, Tokens

__all__ = [
    "KINDS",
    "Cost",
    "ModelPrice",
    "PriceTable",
    "Prices",
    "Tokens",
    "canonical_model",
    "load_price_table",
    "model_family",
    "money",
    "usd",
]

# Values that cost nothing extra without being listed: the API's own defaults.
_NEUTRAL = {"inference_geo": "global", "speed": "standard"}
# [tools] fees are per 1,000 uses; a dollar is 1,000,000 µ$, so one use costs fee × 1,000 µ$.
_MICROS_PER_USE_PER_FEE = 1_000


@dataclass(frozen=True)
class Cost:
    micros: int | None  # exact, or None when a price, multiplier or fee it needs is unknown
    estimate_micros: int  # equal to micros when that is known; never below what is known

    @property
    def estimated(self) -> bool:
        return self.micros is None


@dataclass(frozen=True)
class PriceTable(PriceFile):
    def lookup(self, model: str | None) -> ModelPrice | None:
        """The price row of a model id, under its own name or its canonical one.

        No family or fallback row here: an id without a row is unknown by name, so the
        caller can log exactly which model needs a price.
        """
        if not model:
            return None
        return self.models.get(model) or self.models.get(canonical_model(model))

    def cost(
        self,
        model: str | None,
        tokens: Tokens,
        *,
        inference_geo: str | None = None,
        speed: str | None = None,
        web_searches: int = 0,
        web_fetches: int = 0,
    ) -> Cost:
        exact = True
        prices = self._tier(model, tokens.prompt)
        total = Decimal(0)
        for kind in KINDS:
            count: int = getattr(tokens, kind)
            if not count:
                continue
            price = prices.of(kind) if prices else None
            if price is None:
                exact = False
                price = self._fill(model, kind, tokens.prompt)
            total += count * price
        for section, value in (("inference_geo", inference_geo), ("speed", speed)):
            factor = self._multiplier(section, value)
            if factor is None:
                exact = False
                factor = self._highest_multiplier(section)
            total *= factor
        for tool, uses in (("web_search", web_searches), ("web_fetch", web_fetches)):
            if not uses:
                continue
            fee = self.tools.get(tool)
            if fee is None:
                exact = False
                fee = max(self.tools.values(), default=Decimal(0))
            total += uses * fee * _MICROS_PER_USE_PER_FEE
        micros = _round(total)
        return Cost(micros if exact else None, micros)

    def cost_micros(self, model: str | None, tokens: Tokens) -> int | None:
        """The exact cost of the tokens alone; None when unknown (see `cost`)."""
        return self.cost(model, tokens).micros

    def worst_case(
        self,
        model: str | None,
        prompt_tokens: int,
        max_tokens: int,
        *,
        inference_geo: str | None = None,
        cache_write_1h: bool = True,
        tool_uses: Mapping[str, int] | None = None,
    ) -> int:
        """The most a request could cost, for holding against a budget before it is sent.

        `tool_uses`: the most uses of each server tool (web_search, web_fetch) it may make,
        each at its fee. (What tool results add to the prompt is not foreseeable here.)

        Every prompt token is priced at the dearest of input and cache write, since the
        request may write all of it to the cache; `cache_write_1h=False` is for a caller
        that marks only 5-minute breakpoints. `inference_geo=None` means the workspace
        default, which the bot cannot see, so the dearest region is assumed.
        """
        prices = self._tier(model, prompt_tokens)

        def price(kind: str) -> Decimal:
            known = prices.of(kind) if prices else None
            return known if known is not None else self._fill(model, kind, prompt_tokens)

        writes = ("cache_write_5m", "cache_write_1h") if cache_write_1h else ("cache_write_5m",)
        prompt_price = max(price(kind) for kind in ("input", *writes))
        geo = self._multiplier("inference_geo", inference_geo) if inference_geo else None
        if geo is None:
            geo = self._highest_multiplier("inference_geo")
        fees = sum(
            uses * self.tools.get(tool, max(self.tools.values(), default=Decimal(0)))
            for tool, uses in (tool_uses or {}).items()
        )
        tokens = (prompt_tokens * prompt_price + max_tokens * price("output")) * geo
        return _round(tokens + fees * _MICROS_PER_USE_PER_FEE)

    def cache_savings_micros(self, model: str | None, tokens: Tokens) -> int | None:
        """What caching saved: reads at the input price minus what reads and writes cost.

        Negative when cache writes (priced above input) have not yet paid for themselves.
        """
        # The whole request's tier: pricing the cached part alone could pick the wrong one.
        prices = self._tier(model, tokens.prompt)
        if prices is None or prices.input is None:
            return None
        saved = Decimal(0)
        for kind in ("cache_write_5m", "cache_write_1h", "cache_read"):
            count: int = getattr(tokens, kind)
            if not count:
                continue
            price = prices.of(kind)
            if price is None:
                return None
            saved += count * (prices.input - price)
        return _round(saved)

    def _tier(self, model: str | None, prompt_tokens: int) -> Prices | None:
        row = self.lookup(model)
        return row.tier(prompt_tokens) if row else None

    def _fill(self, model: str | None, kind: str, prompt_tokens: int) -> Decimal:
        """A stand-in for an unknown price that does not under-count: the dearest price of
        that kind in the model's family, else the admin's fallback row, else the table."""
        family = model_family(model) if model else None
        if family is not None:
            kin = (row for name, row in self.models.items() if model_family(name) == family)
            found = _highest(kin, kind, prompt_tokens)
            if found is not None:
                return found
        if self.fallback is not None:
            found = self.fallback.tier(prompt_tokens).of(kind)
            if found is not None:
                return found
        # The shipped table prices every kind somewhere, so 0 is only for a hand-built table.
        return _highest(self.models.values(), kind, prompt_tokens) or Decimal(0)

    def _multiplier(self, section: str, value: str | None) -> Decimal | None:
        configured = self.multipliers.get(section, {})
        if value in configured:
            return configured[value]
        if value is None or value == _NEUTRAL.get(section):
            return Decimal(1)
        return None

    def _highest_multiplier(self, section: str) -> Decimal:
        return max([Decimal(1), *self.multipliers.get(section, {}).values()])


def load_price_table(override: Path | None = None) -> PriceTable:
    """The shipped table, with PRICING_FILE (if any) replacing or adding rows, multipliers,
    tool fees and the fallback row."""
    file = read_price_files(override)
    return PriceTable(
        version=file.version,
        models=file.models,
        fallback=file.fallback,
        multipliers=file.multipliers,
        tools=file.tools,
    )


def _highest(rows: Iterable[ModelPrice], kind: str, prompt_tokens: int) -> Decimal | None:
    # Each row at the tier it would charge for this request, so a long prompt compares
    # long-context prices.
    found = [p for row in rows if (p := row.tier(prompt_tokens).of(kind)) is not None]
    return max(found, default=None)


def _round(micros: Decimal) -> int:
    return int(micros.to_integral_value(rounding=ROUND_HALF_UP))
