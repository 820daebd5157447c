"""Long replies lose nothing: in order, within Slack's limits, in as few messages as they allow."""

from __future__ import annotations

import math

from bot.config import Settings
from bot.slack.text import MARKDOWN_BLOCK_LIMIT
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, start_bot


def paragraphs(total: int) -> str:
    parts: list[str] = []
    i = 0
    while sum(len(p) + 2 for p in parts) < total:
        parts.append(f"Paragraph {i}. " + " ".join(f"word{i}-{j}" for j in range(60)) + ".")
        i += 1
    return "\n\n".join(parts)[:total].rstrip(" -.w") + "."


async def test_a_60000_character_answer_arrives_whole(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    answer = paragraphs(60_000)
    assert len(answer) >= 59_900
    chunks = [answer[i : i + 600] for i in range(0, len(answer), 600)]
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.01))
    async with start_bot(settings) as bot:
        mention = await bot.mention("write a lot")
        await bot.wait_for_usage(1, timeout=30)

    messages = fake_slack.thread(CHANNEL, mention.ts)
    # Slack refused nothing (the fake enforces text, section and markdown-block limits).
    assert [c.error for c in fake_slack.calls if c.error] == []
    assert "\n\n".join(m.shown for m in messages) == answer
    assert len(messages) <= math.ceil(len(answer) / MARKDOWN_BLOCK_LIMIT) + 1
    for message in messages:
        assert message.blocks == [{"type": "markdown", "text": message.shown}]
        assert len(message.text) <= 4000
        assert message.buttons == []


async def test_a_code_block_split_across_messages_is_closed_and_reopened(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    code = "\n".join(f"    value_{i} = compute({i}) * 2  # step {i}" for i in range(600))
    answer = f"Here is the script:\n\n```python\n{code}\n```\n\nThat's all."
    assert len(answer) > MARKDOWN_BLOCK_LIMIT
    fake_anthropic.enqueue(Reply(chunks=[answer[i : i + 500] for i in range(0, len(answer), 500)]))
    async with start_bot(settings) as bot:
        mention = await bot.mention("code please")
        await bot.wait_for_usage(1)

    first, *rest = fake_slack.thread_text(CHANNEL, mention.ts)
    assert rest
    assert first.startswith("Here is the script:\n\n```python\n")
    assert first.endswith("\n```")
    assert rest[0].startswith("```python\n")
    assert rest[-1].endswith("```\n\nThat's all.")
    for text in (first, *rest):
        assert text.count("```") % 2 == 0  # every piece renders as whole code blocks
    lines = [ln for t in (first, *rest) for ln in t.split("\n") if ln.startswith("    value_")]
    assert lines == code.split("\n")
