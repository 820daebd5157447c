"""The fault suite: Slack under load and rate limits, redeliveries, shutdown, hostile input."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from bot.config import Settings
from bot.slack.relay import INTERRUPTED_NOTE
from bot.store.models import utcnow
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, make_settings, settle, start_bot


def words(n: int, tag: str) -> list[str]:
    return [f"{tag}{i} " for i in range(n)]


async def test_a_429_storm_loses_no_text(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # The bot believes it may edit twice as fast as the fake Slack allows: 429s follow,
    # and each one pauses edits for its Retry-After; every reply still ends whole.
    fake_slack.buckets = {"chat.update": (2, 1.0)}
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        slack_updates_per_minute=120,
        slack_update_burst=4,
        stream_edit_interval=0.2,
    )
    fake_anthropic.enqueue(*(Reply(chunks=words(10, f"r{k}-"), delay=0.1) for k in range(4)))
    async with start_bot(settings) as bot:
        mentions = [await bot.mention("go", channel=f"C0{k}") for k in range(4)]
        await bot.wait_for_usage(4, timeout=60)

    assert fake_slack.ratelimited_count > 0
    for mention in mentions:
        [reply] = fake_slack.thread(mention.channel, mention.ts)
        tag = reply.shown.split(" ", 1)[0].removesuffix("0")
        assert reply.shown == "".join(words(10, tag)).strip()
        assert reply.buttons == []


def edit_budget_settings(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> Settings:
    """Slack allows 3 edits at once and 2 a second; the bot is told the same."""
    fake_slack.buckets = {"chat.update": (3, 2.0)}
    return make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        slack_updates_per_minute=120,
        slack_update_burst=3,
        stream_edit_interval=0.2,
    )


def assert_within_edit_budget(fake_slack: FakeSlack) -> None:
    """In any window of w seconds, at most burst + w · rate edits reached Slack."""
    updates = [c.at for c in fake_slack.calls_to("chat.update")]
    for i, start in enumerate(updates):
        for j in range(i, len(updates)):
            assert j - i + 1 <= 3 + (updates[j] - start) * 2.0 + 1e-6


async def test_the_edit_budget_is_respected_without_429s(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = edit_budget_settings(fake_slack, fake_anthropic, database_url)
    fake_anthropic.enqueue(*(Reply(chunks=words(15, f"r{k}-"), delay=0.1) for k in range(6)))
    async with start_bot(settings) as bot:
        for k in range(6):
            await bot.mention("go", channel=f"C1{k}")
        await bot.wait_for_usage(6, timeout=60)

    assert fake_slack.ratelimited_count == 0
    assert_within_edit_budget(fake_slack)


async def test_a_long_reply_does_not_starve_a_short_one(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_slack.buckets = {"chat.update": (2, 2.0)}
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        slack_updates_per_minute=120,
        slack_update_burst=2,
        stream_edit_interval=0.1,
    )
    fake_anthropic.enqueue(
        Reply(chunks=words(60, "long"), delay=0.1), Reply(chunks=["short answer"], delay=0)
    )
    async with start_bot(settings) as bot:
        long = await bot.mention("long one", channel="C0LONG")
        await fake_anthropic.wait_for_requests(1)
        await asyncio.sleep(1.0)
        short = await bot.mention("short one", channel="C0SHORT")
        await fake_slack.wait_for(
            lambda: fake_slack.thread_text("C0SHORT", short.ts) == ["short answer"], timeout=3
        )
        # The short answer is complete while the long one is still being written.
        assert fake_anthropic.in_flight == 1
        await bot.wait_for_usage(2, timeout=30)

    assert fake_slack.thread_text("C0LONG", long.ts) == ["".join(words(60, "long")).strip()]


async def test_redelivery_after_a_crash_before_any_reply_is_taken_again(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        store = bot.running.store
        # A worker took these and died: one before replying (lease long over), one after.
        long_ago = utcnow() - timedelta(minutes=10)
        assert await store.claim_event("EvDied", TEAM_ID, "app_mention", now=long_ago)
        assert await store.claim_event("EvReplied", TEAM_ID, "app_mention", now=long_ago)
        await store.event_replied("EvReplied")
        died = await bot.mention("answer me", event_id="EvDied", retry_num=2)
        replied = await bot.mention("answer me too", event_id="EvReplied", retry_num=2)
        await bot.wait_for_usage(1)
        await settle()
        assert len(await bot.usage()) == 1

    assert fake_slack.thread_text(CHANNEL, died.ts) == ["Hello from the fake Claude."]
    assert fake_slack.thread(CHANNEL, replied.ts) == []


async def test_shutdown_lets_a_reply_finish_within_the_grace_period(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, shutdown_grace_seconds=5)
    fake_anthropic.enqueue(Reply(chunks=words(10, "w"), delay=0.1))
    async with start_bot(settings) as bot:
        mention = await bot.mention("go")
        await fake_anthropic.wait_for_requests(1)
    # Leaving the block is the shutdown path SIGTERM takes.

    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown == "".join(words(10, "w")).strip()
    assert reply.buttons == []


async def test_shutdown_closes_a_reply_that_outlives_the_grace_period(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, shutdown_grace_seconds=0.3)
    fake_anthropic.enqueue(Reply(chunks=words(100, "w"), delay=0.1, input_tokens=33))
    async with start_bot(settings) as bot:
        mention = await bot.mention("go")
        await fake_slack.wait_for(
            lambda: any("w3" in t for t in fake_slack.thread_text(CHANNEL, mention.ts))
        )
    rows = await _rows_after_shutdown(settings)

    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown.startswith("w0 w1 w2 w3")
    assert reply.shown.endswith(INTERRUPTED_NOTE)
    assert reply.buttons == []
    [row] = rows
    assert (row.outcome, row.error_kind, row.input_tokens) == ("partial", "interrupted", 33)


async def _rows_after_shutdown(settings: Settings) -> list:  # type: ignore[type-arg]
    from bot.store import Ledger, make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        return await Ledger(make_sessionmaker(engine)).usage_rows()
    finally:
        await engine.dispose()


async def test_hostile_and_malformed_input(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        bad_json = await bot.post_signed("{not json")
        bad_form = await bot.post_signed(
            "payload=%7Bbad", content_type="application/x-www-form-urlencoded"
        )
        unknown_event = await bot.post_signed(
            json.dumps(
                {
                    "type": "event_callback",
                    "event_id": "EvOdd",
                    "team_id": TEAM_ID,
                    "event": {"type": "reaction_added", "user": "U1"},
                }
            )
        )
        unknown_command = await bot.command("/unknown", "x")
        script = await bot.mention("日本語で答えて 🎉 <!channel>")
        huge = await bot.mention("a" * 45_000)
        await bot.wait_for_usage(2, timeout=15)

    assert (bad_json.status, bad_form.status) == (400, 400)
    assert (unknown_event.status, unknown_command.status) == (200, 200)
    assert fake_slack.thread_text(CHANNEL, script.ts) == ["Hello from the fake Claude."]
    # The two mentions race each other to the model; either may be first.
    last = [str(r.body["messages"][-1]["content"]) for r in fake_anthropic.message_requests]
    assert any("日本語で答えて 🎉" in text for text in last)
    assert fake_slack.thread_text(CHANNEL, huge.ts) == ["Hello from the fake Claude."]
    for call in fake_slack.calls:
        assert "<!channel>" not in json.dumps(call.params)
        assert "Traceback" not in json.dumps(call.params)


async def test_a_hung_slack_call_does_not_hold_the_reply(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, slack_timeout_seconds=1)
    fake_anthropic.enqueue(Reply(chunks=words(5, "w"), delay=0.1))
    fake_slack.hang_next("chat.update", 30)
    async with start_bot(settings) as bot:
        mention = await bot.mention("go")
        await bot.wait_for_usage(1, timeout=15)

    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["".join(words(5, "w")).strip()]


async def test_posts_to_one_channel_that_reach_slack_late_draw_no_429(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # Slack allows one post a second in a channel, with no burst; the bot is told the same.
    # The first placeholder reaches Slack a second and a half late (later than the next one
    # would be due), the next on time: the bot's spacing must count from Slack's answer.
    fake_slack.post_per_channel_per_second, fake_slack.post_burst = 1.0, 1.0
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, slack_posts_per_second=1, slack_post_burst=1
    )
    fake_slack.hang_next("chat.postMessage", 1.5)
    async with start_bot(settings) as bot:
        mentions = await asyncio.gather(bot.mention("one"), bot.mention("two"))
        await bot.wait_for_usage(2, timeout=30)

    assert fake_slack.ratelimited_count == 0
    for mention in mentions:
        assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Hello from the fake Claude."]
