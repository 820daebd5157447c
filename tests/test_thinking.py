"""Thinking on purpose: what each model is sent, answers thinking cannot starve, thoughts
never shown, thinking tokens in the ledger and in /usage."""

from __future__ import annotations

import pytest

from bot.claude.thinking import THINKING_ALLOWANCE, plan, style_of
from bot.slack.views import CONTINUE_ACTION_ID
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.anthropic_models import plan_thinking
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, make_settings, start_bot
from tests.test_usage import usage

FORTY_WORDS = " ".join(f"word{i}" for i in range(40))
THOUGHT = "SECRET-THOUGHT: the user wants the capital; let me recall it."


def shows(fake_slack: FakeSlack, thread: str, text: str) -> bool:
    return any(text in shown for shown in fake_slack.thread_text(CHANNEL, thread))


@pytest.mark.parametrize(
    ("model", "kind", "thinking", "effort", "may_think"),
    [
        ("claude-sonnet-5-5", "short", {"type": "between_tools"}, "low", False),
        ("claude-sonnet-5-5", "default", {"type": "adaptive"}, "medium", True),
        ("claude-sonnet-5-5", "code", {"type": "adaptive"}, "high", True),
        ("claude-haiku-5-5", "short", {"type": "disabled"}, "low", False),
        ("claude-opus-5", "short", {"type": "disabled"}, "low", False),
        ("claude-opus-5-5", "short", {"type": "adaptive"}, "low", True),
        ("claude-fable-5-2", "long", {"type": "adaptive"}, "medium", True),
        ("claude-haiku-4-5", "code", None, None, False),
        ("us.anthropic.claude-sonnet-5-5-v1:0", "short", {"type": "between_tools"}, "low", False),
        ("claude-opus-5-5@20261001", "default", {"type": "adaptive"}, "medium", True),
    ],
)
def test_each_model_family_gets_a_thinking_setting_it_accepts(
    model: str, kind: str, thinking: object, effort: str | None, may_think: bool
) -> None:
    chosen = plan(model, kind, 300)
    assert (chosen.thinking, chosen.effort, chosen.may_think) == (thinking, effort, may_think)
    if may_think:
        assert chosen.max_tokens == 300 + THINKING_ALLOWANCE[effort or "medium"]


@pytest.mark.parametrize(
    "model",
    [
        "claude-sonnet-5-5",
        "claude-opus-5-5",
        "claude-haiku-5-5",
        "claude-opus-5",
        "claude-sonnet-5",
        "claude-fable-5-2",
        "claude-mythos-5-1",
        "claude-opus-4-8",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
        "claude-sonnet-5-5-latest",
    ],
)
@pytest.mark.parametrize("kind", ["short", "default", "long", "code"])
def test_what_the_bot_sends_is_what_the_fake_api_accepts(model: str, kind: str) -> None:
    chosen = plan(model, kind, 1_000)
    body: dict[str, object] = {"model": model}
    if chosen.thinking is not None:
        body["thinking"] = chosen.thinking
    if chosen.output_config is not None:
        body["output_config"] = chosen.output_config
    assert not isinstance(plan_thinking(body, max_tokens=chosen.max_tokens), str)


def test_an_unknown_future_model_is_sent_nothing_it_could_reject() -> None:
    assert style_of("claude-sonnet-9") == "unknown"
    chosen = plan("claude-sonnet-9", "short", 300)
    assert chosen.thinking is None and chosen.effort is None
    assert chosen.max_tokens == 300 + THINKING_ALLOWANCE["high"]  # its default effort


@pytest.mark.parametrize("model", ["claude-sonnet-5-5", "claude-opus-5-5"])
async def test_a_short_question_shows_every_word_though_the_model_thinks_600_tokens(
    model: str, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # Before: max_tokens=300 and no thinking setting; 600 tokens of thinking used it all and
    # 0 of the 40 words were shown.
    settings = make_settings(fake_slack, fake_anthropic, database_url, claude_model=model)
    fake_anthropic.enqueue(
        Reply(text=FORTY_WORDS, thinking_tokens=600, thinking_text=THOUGHT, output_tokens=None)
    )
    async with start_bot(settings) as bot:
        mention = await bot.mention("What is the capital of France?")
        [row] = await bot.wait_for_usage(1)
        await fake_slack.wait_for(
            lambda: "word39" in fake_slack.thread_text(CHANNEL, mention.ts)[0]
        )

    [request] = fake_anthropic.message_requests
    [answer] = fake_slack.thread(CHANNEL, mention.ts)
    assert all(f"word{i}" in answer.shown for i in range(40))
    assert not any("SECRET-THOUGHT" in version for version in answer.versions)
    assert row.stop_reason == "end_turn"
    # On Sonnet 5.5 this proves the request's shape (between_tools: the fake, like the API,
    # then does not think); on Opus 5.5, which always thinks, that the answer still fits.
    if model == "claude-sonnet-5-5":  # up-front thinking off: nothing spent on it
        assert request.body["thinking"] == {"type": "between_tools"}
        assert row.thinking_tokens == 0
    else:  # Opus 5.5 cannot stop thinking: it gets room for it
        assert request.body["thinking"] == {"type": "adaptive"}
        assert request.body["max_tokens"] >= 600 + 40
        assert row.thinking_tokens == 600
        assert row.output_tokens == 640
    assert request.body["output_config"] == {"effort": "low"}


async def test_an_explanation_gets_room_to_think_and_its_thinking_is_in_the_ledger(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # Before: max_tokens=1024, all of it spent thinking: 0 words and a Continue button.
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_slack.users["U0ADMIN"] = {"is_admin": True}
    explanation = " ".join(f"w{i}" for i in range(300))
    fake_anthropic.enqueue(Reply(text=explanation, thinking_tokens=1_000, thinking_text=THOUGHT))
    async with start_bot(settings) as bot:
        mention = await bot.mention("Our deploys feel slow; why might that be, and what helps?")
        [row] = await bot.wait_for_usage(1)
        await fake_slack.wait_for(lambda: shows(fake_slack, mention.ts, "w299"))
        report = await usage(bot, fake_slack, "today", "U0ADMIN")
        metrics = await bot.metrics()

    [request] = fake_anthropic.message_requests
    assert request.body["thinking"] == {"type": "adaptive"}
    assert request.body["output_config"] == {"effort": "medium"}
    assert request.body["max_tokens"] == settings.claude_max_tokens + THINKING_ALLOWANCE["medium"]
    [answer] = fake_slack.thread(CHANNEL, mention.ts)
    assert not answer.buttons
    assert row.thinking_tokens == 1_000 and row.output_tokens == 1_300
    # Thinking is billed as output: Sonnet 5.5 output is $10 per million tokens.
    assert row.cost_micros is not None and row.cost_micros >= 1_300 * 10
    assert "1,300 (of which 1,000 thinking)" in report
    assert 'claude_tokens_total{kind="thinking"} 1000.0' in metrics


async def test_thinking_that_uses_the_whole_limit_says_so_and_offers_continue(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_anthropic.enqueue(Reply(text="never reached", thinking_tokens=50_000))
    async with start_bot(settings) as bot:
        mention = await bot.mention("Plan our whole next year, thinking hard about it")
        [row] = await bot.wait_for_usage(1)
        await fake_slack.wait_for(lambda: bool(fake_slack.thread(CHANNEL, mention.ts)[0].buttons))

        [answer] = fake_slack.thread(CHANNEL, mention.ts)
        [button] = answer.buttons
        # Continue asks again with more room to think: the same would run out the same way.
        fake_anthropic.enqueue(Reply(text="Here is the plan.", thinking_tokens=20_000))
        await bot.click(CONTINUE_ACTION_ID, button["value"], thread_ts=mention.ts)
        rows = await bot.wait_for_usage(2)

    assert "spent its whole length limit thinking and wrote no answer" in answer.shown
    assert "Press Continue" in answer.shown
    assert button["action_id"] == CONTINUE_ACTION_ID
    assert row.stop_reason == "max_tokens" and row.thinking_tokens == row.output_tokens
    first, second = (r.body["max_tokens"] for r in fake_anthropic.message_requests)
    assert first == settings.claude_max_tokens + THINKING_ALLOWANCE["medium"]
    assert second == settings.claude_max_tokens + 4 * THINKING_ALLOWANCE["medium"]
    assert rows[1].stop_reason == "end_turn"
    assert any("Here is the plan." in t for t in fake_slack.thread_text(CHANNEL, mention.ts))


async def test_a_thinking_model_is_not_cut_off_by_the_first_token_deadline(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # Thinking deltas are signs of life: a model thinking for longer than the first-token
    # deadline is not taken for a silent one.
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, claude_first_token_seconds=0.5
    )
    fake_anthropic.enqueue(
        Reply(text="Done thinking.", thinking_tokens=8, thinking_text="a b c d e f g h", delay=0.15)
    )
    async with start_bot(settings) as bot:
        mention = await bot.mention("Thoughts on our roadmap?")
        [row] = await bot.wait_for_usage(1)

    assert row.error_kind is None and row.outcome == "complete"
    assert "Done thinking." in fake_slack.thread(CHANNEL, mention.ts)[0].shown
