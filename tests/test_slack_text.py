"""Pure Slack text handling: mention stripping, escaping, splitting."""

from __future__ import annotations

import pytest

from bot.slack.text import escape_mrkdwn, split_markdown, strip_bot_mention

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


@pytest.mark.parametrize(
    "reference",
    [
        "<@U123>",
        "<@U123|alice>",
        "<@W0ENTERPRISE>",
        "<@W0ENTERPRISE|carol smith>",
        "<#C123>",
        "<#C123|general>",
        "<#G123>",
        "<#G123|private>",
    ],
)
def test_escape_keeps_user_and_channel_references(reference: str) -> None:
    assert escape_mrkdwn(f"ask {reference} & <b>") == f"ask {reference} &amp; &lt;b&gt;"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<!channel|channel>", "&lt;!channel|channel&gt;"),
        ("<!here|here> <!everyone|everyone>", "&lt;!here|here&gt; &lt;!everyone|everyone&gt;"),
        ("<!subteam^S123|@team>", "&lt;!subteam^S123|@team&gt;"),
        ("<@u123>", "&lt;@u123&gt;"),  # not an id: lower case
        ("<@X123|x>", "&lt;@X123|x&gt;"),  # not a user id
        ("<#D123|dm>", "&lt;#D123|dm&gt;"),  # not a channel id
        ("<@U1|a <!channel>>", "&lt;@U1|a &lt;!channel&gt;&gt;"),  # no markup inside a label
        ("<@U1|<!here>", "&lt;@U1|&lt;!here&gt;"),
    ],
)
def test_escape_still_defuses_everything_else(raw: str, expected: str) -> None:
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
