"""Reading price files: the shipped bot/cost/prices.toml and an admin's PRICING_FILE on top.

Every figure is read as a Decimal from a string, so "0.10" stays exactly one tenth.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from bot.cost.rates import KINDS, ModelPrice, Prices
from bot.errors import ConfigError

SHIPPED = "bot/cost/prices.toml"


@dataclass(frozen=True)
class PriceFile:
    """What one price file, or the shipped file merged with an override, says."""

    version: str
    models: dict[str, ModelPrice]
    # Prices for a model with no row of its own; None unless an admin sets one.
    fallback: ModelPrice | None = None
    # Section (inference_geo, speed) → the value reported in usage → factor on every token.
    multipliers: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # Server tool → US dollars per 1,000 uses.
    tools: dict[str, Decimal] = field(default_factory=dict)


def read_price_files(override: Path | None = None) -> PriceFile:
    """The shipped file, with PRICING_FILE (if any) merged on top."""
    shipped = resources.files("bot.cost").joinpath("prices.toml").read_bytes()
    table = parse_price_file(shipped, SHIPPED)
    if override is None:
        return table
    try:
        extra_bytes = override.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"PRICING_FILE cannot be read ({type(error).__name__}): {override}"
        ) from None
    extra = parse_price_file(extra_bytes, str(override))
    digest = hashlib.sha256(extra_bytes).hexdigest()[:8]
    # The version names both files, so a ledger row says exactly which prices it used.
    return merge(table, extra, f"{table.version}+{extra.version}.{digest}")


def merge(base: PriceFile, extra: PriceFile, version: str) -> PriceFile:
    """`extra` replaces whole model rows (a half-copied row would mix two price lists) but
    single multipliers and tool fees, which stand on their own."""
    sections = {
        name: {**base.multipliers.get(name, {}), **extra.multipliers.get(name, {})}
        for name in base.multipliers.keys() | extra.multipliers.keys()
    }
    return PriceFile(
        version=version,
        models={**base.models, **extra.models},
        fallback=extra.fallback or base.fallback,
        multipliers=sections,
        tools={**base.tools, **extra.tools},
    )


def parse_price_file(raw: bytes, name: str) -> PriceFile:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        models = {model: _model(model, row) for model, row in _table(data, "models").items()}
        multipliers = {
            section: {
                key: _number(value, f"multipliers.{section}.{key}", positive=True)
                for key, value in _as_table(values, f"multipliers.{section}").items()
            }
            for section, values in _table(data, "multipliers").items()
        }
        tools = {tool: _number(fee, f"tools.{tool}") for tool, fee in _table(data, "tools").items()}
        return PriceFile(
            version=str(data.get("version", "custom")),
            models=models,
            fallback=_model("fallback", data["fallback"]) if "fallback" in data else None,
            multipliers=multipliers,
            tools=tools,
        )
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, TypeError) as error:
        raise ConfigError(f"Price file {name} is not valid: {error}") from None


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    return _as_table(data.get(key, {}), key)


def _as_table(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a table, not {value!r}")
    return value


def _model(model: str, raw: Any) -> ModelPrice:
    row = _as_table(raw, model)
    above = row.get("long_context_above")
    tier = row.get("long_context")
    return ModelPrice(
        model=model,
        base=_prices(row, model),
        source=str(row.get("source", "")),
        checked=str(row.get("checked", "")),
        long_context_above=int(above) if above is not None else None,
        long_context=_prices(_table(row, "long_context"), model) if tier is not None else None,
    )


def _prices(row: dict[str, Any], model: str) -> Prices:
    return Prices(**{kind: _number(row[kind], f"{model}.{kind}") for kind in KINDS if kind in row})


def _number(raw: Any, name: str, *, positive: bool = False) -> Decimal:
    # Strings are the documented form; a TOML float would already have been rounded to
    # binary, so it is read through its shortest repr, which is what the admin typed.
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {raw!r}") from None
    if not value.is_finite() or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else "≥ 0"
        raise ValueError(f"{name} must be a number {bound}: {raw!r}")
    return value
