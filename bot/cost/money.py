"""Amounts of money, kept as whole micro-dollars (int) and shown with Decimal arithmetic.

Floats are never used: 0.00015 has no exact binary form, so float formatting rounds 150 µ$
down to $0.0001 while 250 µ$ goes up to $0.0003. Decimal rounds both half-up, as a bill does.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICROS_PER_DOLLAR = 1_000_000
_CENTS = Decimal("0.01")
_SUB_CENTS = Decimal("0.0001")
_MICRO = Decimal("0.000001")


def dollars(micros: int) -> Decimal:
    """The exact dollar amount of `micros` micro-dollars."""
    return Decimal(micros).scaleb(-6)


def money(micros: int) -> str:
    """Dollars for people: cents from a dollar up, hundredths of a cent below.

    A non-zero amount never shows as $0.0000, which would read as free: it shows as
    "< $0.0001" (or "> -$0.0001" for a tiny refund or negative saving).
    """
    if micros == 0:
        return "$0.00"
    sign = "-" if micros < 0 else ""
    amount = abs(dollars(micros))
    shown = amount.quantize(_SUB_CENTS, rounding=ROUND_HALF_UP)
    # Judged after rounding, so $0.999995 reads "$1.00" and not "$1.0000".
    if shown >= 1:
        return f"{sign}${amount.quantize(_CENTS, rounding=ROUND_HALF_UP):,f}"
    if not shown:
        return "> -$0.0001" if sign else "< $0.0001"
    return f"{sign}${shown:f}"


def usd(micros: int) -> str:
    """The exact amount in dollars with six places ("0.000150"), for JSON and CSV.

    A string, not a number, so that no reader turns it back into a float.
    """
    return f"{dollars(micros).quantize(_MICRO):f}"
