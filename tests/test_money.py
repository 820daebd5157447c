"""Money shown to people and written for machines, from whole micro-dollars."""

from __future__ import annotations

import pytest

from bot.cost.money import money, usd
from bot.cost.prices import money as old_name


@pytest.mark.parametrize(
    ("micros", "shown"),
    [
        (0, "$0.00"),
        # Half-up at the fourth place, both ways: float formatting gave $0.0001 for 150.
        (150, "$0.0002"),
        (250, "$0.0003"),
        (149, "$0.0001"),
        (50, "$0.0001"),
        (999_949, "$0.9999"),
        # Rounds up to a dollar, so it is shown the way dollars are.
        (999_995, "$1.00"),
        (1_000_000, "$1.00"),
        (1_234_565, "$1.23"),
        (1_235_000, "$1.24"),
        (1_234_567_890, "$1,234.57"),
        (-150, "-$0.0002"),
        (-1_500_000, "-$1.50"),
        (-1_234_567_890, "-$1,234.57"),
        # Non-zero never reads as free.
        (1, "< $0.0001"),
        (49, "< $0.0001"),
        (-1, "> -$0.0001"),
        (-49, "> -$0.0001"),
    ],
)
def test_money_for_people(micros: int, shown: str) -> None:
    assert money(micros) == shown


@pytest.mark.parametrize(
    ("micros", "exact"),
    [
        (0, "0.000000"),
        (1, "0.000001"),
        (150, "0.000150"),
        (-1_500_000, "-1.500000"),
        (1_234_567_890, "1234.567890"),
    ],
)
def test_usd_is_exact_with_six_places(micros: int, exact: str) -> None:
    assert usd(micros) == exact


def test_the_old_import_still_works() -> None:
    assert old_name is money
