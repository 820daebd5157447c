"""The value types of the price table: token counts, prices per kind, a model's row."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
WRITE_KINDS = ("cache_write_5m", "cache_write_1h")


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

    def of(self, kind: str) -> Decimal | None:
        price: Decimal | None = getattr(self, kind)
        return price


@dataclass(frozen=True)
class ModelPrice:
    model: str
    base: Prices
    source: str = ""
    checked: str = ""
    long_context_above: int | None = None
    long_context: Prices | None = None

    def tier(self, prompt_tokens: int) -> Prices:
        # A long-context tier prices the whole request once its prompt passes the threshold,
        # output and cache tokens included.
        above = self.long_context_above
        if above is not None and self.long_context is not None and prompt_tokens > above:
            return self.long_context
        return self.base

    def for_request(self, tokens: Tokens) -> Prices:
        return self.tier(tokens.prompt)
