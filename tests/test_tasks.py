"""Right-sized requests: max_tokens by kind of task, and a Continue button when cut short."""

from __future__ import annotations

import pytest

from bot.claude.thinking import THINKING_ALLOWANCE
from bot.config import Settings
from bot.engine.kinds import classify
from bot.slack.views import CONTINUE_ACTION_ID
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, conversation, settle, start_bot


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("What is the capital of Peru?", "short"),
        ("Is Friday a holiday?", "short"),
        ("Why does this Python function raise a KeyError?", "code"),
        ("Fix this: `SELECT * FROM users WHERE`", "code"),
        ("Write a blog post about our Q3 launch", "long"),
        ("Explain our onboarding process in detail", "long"),
        ("I'm thinking about how we plan sprints; thoughts on a better cadence?", "default"),
    ],
)
def test_questions_are_classified(question: str, kind: str) -> None:
    assert classify(question) == (kind, question)


def test_an_explicit_hint_wins_and_is_removed() -> None:
    assert classify("--code what is the capital of Peru?") == (
        "code",
        "what is the capital of Peru?",
    )
    assert classify("--long hi") == ("long", "hi")
    assert classify("--short write an essay on everything") == (
        "short",
        "write an essay on everything",
    )


async def test_max_tokens_follows_the_task(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        for i, question in enumerate(
            ["What is 2+2?", "Write a Python function to sort a list", "--long hello", "Thoughts?"]
        ):
            await bot.mention(question)
            await bot.wait_for_usage(i + 1)

    # The answer's own length per kind, plus room to think where the model may think
    # (a short question on Sonnet 5.5 gets no up-front thinking: bot.claude.thinking).
    assert [r.body["max_tokens"] for r in fake_anthropic.message_requests] == [
        settings.max_tokens_short,
        settings.max_tokens_code + THINKING_ALLOWANCE["high"],
        settings.max_tokens_long + THINKING_ALLOWANCE["medium"],
        settings.claude_max_tokens + THINKING_ALLOWANCE["medium"],
    ]
    # The hint itself never reaches Claude.
    assert conversation(fake_anthropic.message_requests[2].body)[-1]["content"] == (
        "<@U0USER>: hello"
    )


async def test_an_answer_cut_at_max_tokens_offers_continue(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(
        Reply(text="The first half of a long", stop_reason="max_tokens"),
        Reply(text="answer, and the second half."),
    )
    async with start_bot(settings) as bot:
        mention = await bot.mention("--short tell me everything")
        await bot.wait_for_usage(1)
        # The usage is recorded as the answer ends; its final edit may reach Slack just after.
        await fake_slack.wait_for(
            lambda: any(
                b["action_id"] == CONTINUE_ACTION_ID
                for b in fake_slack.thread(CHANNEL, mention.ts)[0].buttons
            )
        )
        [cut] = fake_slack.thread(CHANNEL, mention.ts)
        [button] = cut.buttons
        assert button["action_id"] == CONTINUE_ACTION_ID
        # Someone else may not spend the asker's continuation.
        await bot.click(
            CONTINUE_ACTION_ID, button["value"], user="U0STRANGER", thread_ts=mention.ts
        )
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        await settle(0.2)
        assert len(fake_anthropic.message_requests) == 1
        await bot.click(
            CONTINUE_ACTION_ID,
            button["value"],
            message_ts=cut.ts,
            thread_ts=mention.ts,
            message=cut.to_api(),
        )
        await bot.wait_for_usage(2)

    first, second = fake_slack.thread(CHANNEL, mention.ts)
    assert first.shown.startswith("The first half of a long\n\n✂️")
    assert first.buttons == []  # one continuation per button
    assert second.shown == "answer, and the second half."
    sent = conversation(fake_anthropic.message_requests[1].body)
    assert sent[-2] == {"role": "assistant", "content": "The first half of a long"}
    assert "continue" in sent[-1]["content"]
    # The continuation keeps the original task's size.
    assert fake_anthropic.message_requests[1].body["max_tokens"] == settings.max_tokens_short
