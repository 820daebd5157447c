"""Pure Slack text handling: mention stripping, escaping, splitting."""

from __future__ import annotations

import pytest

from bot.slack_text import escape_mrkdwn, split_markdown, strip_bot_mention

LIMIT = 3800


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<@U0BOT> hello", "hello"),
        ("hello <@U0BOT>", "hello"),
        ("<@U0BOT|claude> hi   there", "hi there"),
        ("ask <@U0ALICE> and <@U0BOT>", "ask <@U0ALICE> and"),
        ("<@U0BOT>", ""),
        ("line one\n<@U0BOT> line two", "line one\n line two"),
    ],
)
def test_strip_bot_mention(raw: str, expected: str) -> None:
    assert strip_bot_mention(raw, "U0BOT") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("hi <@U123ABC>", "hi <@U123ABC>"),
        ("see <#C123|general>", "see <#C123|general>"),
        ("<https://example.com|site>", "<https://example.com|site>"),
        ("<!channel> <!here> <!everyone>", "&lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt;"),
        ("<script>", "&lt;script&gt;"),
        ("emoji 🎉 and 日本語", "emoji 🎉 and 日本語"),
    ],
)
def test_escape_mrkdwn(raw: str, expected: str) -> None:
    assert escape_mrkdwn(raw) == expected


def test_short_text_is_one_piece() -> None:
    assert split_markdown("hello", LIMIT) == ["hello"]


def test_split_prefers_paragraphs_and_loses_nothing() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(20)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    pieces = split_markdown(text, LIMIT)
    assert len(pieces) > 1
    assert all(len(p) <= LIMIT for p in pieces)
    assert all(p.endswith("word") for p in pieces)  # cut at paragraph ends
    assert "".join(pieces).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )


def test_hard_cut_never_splits_an_entity() -> None:
    room = LIMIT - 4  # split_markdown keeps room to close a code fence
    text = "x" * (room - 3) + "&amp;" + "y" * 100
    first, second = split_markdown(text, LIMIT)
    assert first == "x" * (room - 3)
    assert second.startswith("&amp;")
