"""The daily spend chart: a real PNG that Pillow can read, and a text chart that fits a section."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from decimal import Decimal

from PIL import Image

from bot.cost.chart import daily_chart_png, daily_chart_text, month_days

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MARCH = [(date(2026, 3, day), Decimal(day) / 4) for day in range(1, 32)]


def decoded(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated or corrupt file fails here
    return image


def colours(image: Image.Image) -> set[tuple[int, ...]]:
    return {tuple(c) for _, c in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}


BAR_RGB = (0x4A, 0x7B, 0xD0)


def test_png_is_800_by_300_and_decodes() -> None:
    image = decoded(daily_chart_png(MARCH, title="Claude spend, March 2026"))

    assert image.format == "PNG"
    assert image.size == (800, 300)
    assert BAR_RGB in colours(image)


def test_a_month_with_empty_days_has_gaps_and_the_whole_month() -> None:
    days = [(date(2026, 2, 3), Decimal("1.50")), (date(2026, 2, 20), Decimal("0.25"))]

    filled = month_days(days)
    image = decoded(daily_chart_png(days, title="February"))

    assert [d.day for d, _ in filled] == list(range(1, 29))  # 2026 is no leap year
    assert [a for _, a in filled if a] == [Decimal("1.50"), Decimal("0.25")]
    # Bars only where there was spend: few columns hold the bar colour.
    rgb = image.convert("RGB")
    bar_columns = [
        x for x in range(800) if any(rgb.getpixel((x, y)) == BAR_RGB for y in range(300))
    ]
    assert 10 < len(bar_columns) < 60


def test_a_single_day_and_a_day_given_twice() -> None:
    one = [(date(2026, 4, 30), Decimal("0.004"))]
    twice = [(date(2026, 4, 2), Decimal("1")), (date(2026, 4, 2), Decimal("2"))]

    image = decoded(daily_chart_png(one, title="One day"))
    filled = month_days(twice)

    assert image.size == (800, 300)
    assert BAR_RGB in colours(image)
    assert filled[1] == (date(2026, 4, 2), Decimal(3))
    assert len(filled) == 30


def test_all_zero_and_nothing_at_all_still_draw() -> None:
    zero = [(date(2026, 3, day), Decimal(0)) for day in range(1, 11)]

    for png in (
        daily_chart_png(zero, title="Quiet"),
        daily_chart_png([], title="Nothing yet", month=date(2026, 3, 1)),
        daily_chart_png([], title="Nothing at all"),
    ):
        image = decoded(png)
        assert image.size == (800, 300)
        assert BAR_RGB not in colours(image)


def test_a_title_with_dollar_signs_is_text_not_maths() -> None:
    # Two "$" would start TeX maths in matplotlib; here they are just dollars.
    decoded(daily_chart_png(MARCH, title="Budget $100, spent $60 ($ sign test)"))


def test_text_chart_one_line_per_day_scaled_to_the_biggest() -> None:
    days = [(date(2026, 3, 1), Decimal("2")), (date(2026, 3, 3), Decimal("4"))]

    text = daily_chart_text(days, width=10)
    lines = text.splitlines()

    assert lines[0] == lines[-1] == "```"
    assert lines[1:-1] == [
        "03-01  █████       $2.00",
        "03-02  ·           $0.00",
        "03-03  ██████████  $4.00",
    ]


def test_text_chart_small_amounts_still_show_a_sliver() -> None:
    days = [(date(2026, 3, 1), Decimal("100")), (date(2026, 3, 2), Decimal("0.01"))]

    second = daily_chart_text(days, width=30).splitlines()[2]

    assert second.startswith("03-02  ▏ ")
    assert second.endswith("$0.0100")


def test_text_chart_of_31_days_fits_a_section_even_with_wide_bars() -> None:
    big = [(d, a * 1000) for d, a in MARCH]

    for width in (30, 60, 200, 1000):
        text = daily_chart_text(big, width=width)
        assert len(text) <= 3000
        assert text.count("\n") == 32  # fences + 31 days: nothing left out
        assert "03-31" in text and "$7,750.00" in text


def test_text_chart_leaves_out_the_earliest_days_when_even_narrow_bars_do_not_fit() -> None:
    text = daily_chart_text(MARCH, width=30, limit=400)

    assert len(text) <= 400
    assert "(earlier days left out)" in text
    assert "03-31" in text and "03-01" not in text


def test_text_chart_without_spend() -> None:
    assert daily_chart_text([]) == "```\nNo spend\n```"
    assert daily_chart_text([(date(2026, 3, 1), Decimal(0))]) == "```\nNo spend\n```"
    month = daily_chart_text([], month=date(2026, 2, 1))
    assert month.count("·") == 28


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, bot.cost.chart; print('matplotlib' in sys.modules)"
    out = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
