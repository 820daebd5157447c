"""GET /metrics: Prometheus text that reflects what happened."""

from __future__ import annotations

import re

from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import make_settings, start_bot


def value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"{sample} not in metrics"
    return float(match.group(1))


async def test_metrics_reflect_a_run(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, budget_user_daily_usd="0.02")
    fake_anthropic.enqueue(
        Reply(text="One.", input_tokens=100, output_tokens=10, cache_read=50),
        Reply(status=529, headers={"retry-after-ms": "1"}),
        Reply(status=529, headers={"retry-after-ms": "1"}),
        Reply(status=529, headers={"retry-after-ms": "1"}),
    )
    fake_slack.fail_next("chat.update", "ratelimited", retry_after=1)
    async with start_bot(settings) as bot:
        await bot.mention("--short one", user="U0A")
        await bot.wait_for_usage(1)
        await bot.mention("--short two", user="U0A")
        await bot.wait_for_usage(2)
        await bot.mention("x" * 30000, user="U0B")  # its worst case passes the $0.02
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        text = await bot.metrics()

    assert value(text, 'claude_requests_total{outcome="complete",surface="slack"}') == 1
    assert value(text, 'claude_requests_total{outcome="error",surface="slack"}') == 1
    assert value(text, 'claude_tokens_total{kind="output"}') == 10
    assert value(text, 'claude_tokens_total{kind="cache_read"}') == 50
    # 100 · $2 + 10 · $10 + 50 · $0.20 per million
    assert value(text, "claude_cost_usd_total") == 0.00031
    assert value(text, "claude_time_to_first_token_seconds_count") == 1
    assert value(text, "claude_request_duration_seconds_count") == 2
    assert value(text, "claude_streams_in_flight") == 0
    assert value(text, 'slack_rate_limited_total{method="chat.update"}') == 1
    assert value(text, 'budget_refusals_total{scope="user"}') == 1
