"""Claude writes Markdown: interim edits show correct mrkdwn, final messages standard Markdown."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.slack.mrkdwn import to_mrkdwn
from bot.slack.text import WRITING_SUFFIX
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, start_bot

CASES = {
    "bold and italics": ("**bold** and *italic* and _also_", "*bold* and _italic_ and _also_"),
    "nested emphasis": ("*a **b** c* and **x *y* z**", "_a *b* c_ and *x _y_ z*"),
    "strike": ("~~gone~~", "~gone~"),
    "code with stars": ("`a*b*c` and **`x`**", "`a*b*c` and *`x`*"),
    "link with parentheses": (
        "[Foo](https://en.wikipedia.org/wiki/Foo_(bar))",
        "<https://en.wikipedia.org/wiki/Foo_(bar)|Foo>",
    ),
    "heading": ("# Title with **bold**\n\ntext", "*Title with bold*\n\ntext"),
    "lists": ("- one\n  - two\n- three\n\n1. a\n2. b", "• one\n    • two\n• three\n\n1. a\n2. b"),
    "quote": ("> quoted\n> more", "> quoted\n> more"),
    "fence keeps stars and escapes": ("```py\nx = 2 * 3 < 4\n```", "```\nx = 2 * 3 &lt; 4\n```"),
    "table": (
        "| Name | Qty |\n|------|-----|\n| apple | 3 |",
        "```\nName  | Qty\n------+----\napple | 3\n```",
    ),
    "escaping": ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
    "slack forms kept": (
        "ask <@U123ABC> in <#C123|general> or <https://x.io|here>",
        "ask <@U123ABC> in <#C123|general> or <https://x.io|here>",
    ),
    "mass mentions defused": (
        "hey <!channel> and <!here>",
        "hey &lt;!channel&gt; and &lt;!here&gt;",
    ),
    "any script": ("**日本語** and emoji 🎉", "*日本語* and emoji 🎉"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_markdown_to_mrkdwn(case: str) -> None:
    markdown, expected = CASES[case]
    assert to_mrkdwn(markdown) == expected


async def test_final_message_is_markdown_with_mrkdwn_fallback_and_interim_is_mrkdwn(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    answer = "## Steps\n\n1. Run **make**\n2. Read `out.log`\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    fake_anthropic.enqueue(Reply(chunks=[answer[:26], answer[26:]], delay=0.5))
    async with start_bot(settings) as bot:
        mention = await bot.mention("how?")
        await bot.wait_for_usage(1)

    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    # Final: Slack renders standard Markdown (tables too) from a markdown block.
    assert reply.blocks == [{"type": "markdown", "text": answer}]
    assert reply.text == to_mrkdwn(answer)
    # Interim: the first chunk as mrkdwn, with the writing indicator.
    assert f"*Steps*\n\n1. Run *make*{WRITING_SUFFIX}" in reply.versions


async def test_the_bot_never_posts_a_mass_mention(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Attention <!channel>", " and <!everyone>!"], delay=0.3))
    async with start_bot(settings) as bot:
        await bot.mention("shout")
        await bot.wait_for_usage(1)

    for call in fake_slack.calls_to("chat.update") + fake_slack.calls_to("chat.postMessage"):
        assert "<!channel>" not in str(call.params)
        assert "<!everyone>" not in str(call.params)
