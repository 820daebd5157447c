"""Claude's web tools where a channel turns them on: shown while they work, sources as links
under the answer, priced per use from the price file, held against budgets beforehand."""

from __future__ import annotations

from bot.cost.prices import Tokens, load_price_table
from bot.store.models import UsageRecord
from tests.fakes.anthropic import FakeAnthropic, Reply, WebSearch
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, make_settings, start_bot
from tests.test_channel_settings import ADMIN, an_admin, command  # noqa: F401 - a fixture

SEARCH = Reply(
    tool_steps=[
        WebSearch(
            "slack rate limits",
            results=[("Rate limits | Slack", "https://docs.slack.dev/apis/web-api/rate-limits")],
            delay=0.8,
        )
    ],
    text="Tier 3 allows about 50 calls a minute.",
    cited=["https://docs.slack.dev/apis/web-api/rate-limits"],
)


async def test_a_channel_with_web_search_shows_the_search_and_its_sources(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(SEARCH)
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        await command(bot, fake_slack, "settings tools web_search", user_id=ADMIN)
        mention = await bot.mention("what are slack's rate limits?")
        [row] = await bot.wait_for_usage(1)
        await bot.command(
            "/usage", "today", user_id=ADMIN, response_url=fake_slack.response_url("usage")
        )
        await fake_slack.wait_for(lambda: any(k == "usage" for k, _ in fake_slack.responses))

    [request] = fake_anthropic.message_requests
    assert [t["name"] for t in request.body["tools"]] == ["web_search"]
    edits = [str(c.params.get("text")) for c in fake_slack.calls_to("chat.update")]
    assert any('searching the web for "slack rate limits"' in e for e in edits)
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown.startswith("Tier 3 allows about 50 calls a minute.")
    markdown = reply.blocks[0]["text"]
    assert markdown.endswith(
        "**Sources:** [Rate limits | Slack](https://docs.slack.dev/apis/web-api/rate-limits)"
    )
    assert row.web_search_requests == 1
    fee = 10_000  # the price file's $10 per 1,000 searches
    tokens_only = load_price_table().cost_micros(row.requested_model, row_tokens(row))
    assert tokens_only is not None
    assert row.cost_micros == tokens_only + fee
    [report] = [body for key, body in fake_slack.responses if key == "usage"]
    assert "1 web searches, 0 fetches" in str(report["blocks"])


async def test_a_channel_without_tools_offers_none(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="No tools."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        await bot.mention("hello")
        await bot.wait_for_usage(1)

    assert "tools" not in fake_anthropic.message_requests[0].body


def row_tokens(row: UsageRecord) -> Tokens:
    return Tokens(
        input=row.input_tokens,
        output=row.output_tokens,
        cache_write_5m=row.cache_write_5m_tokens,
        cache_write_1h=row.cache_write_1h_tokens,
        cache_read=row.cache_read_tokens,
    )


def test_the_worst_case_held_against_budgets_counts_each_possible_search() -> None:
    prices = load_price_table()
    plain = prices.worst_case("claude-sonnet-5-5", 1000, 1000)
    searching = prices.worst_case("claude-sonnet-5-5", 1000, 1000, tool_uses={"web_search": 5})
    assert searching - plain == 5 * 10_000
