"""Fast, correct answers to Slack while degraded: a signed request gets its answer within
Slack's 3 seconds whatever Slack's API or the database do, and never a 500. Bolt authorizes
from the auth.test answer the bot already has; before Slack's API has ever answered, an event
gets a quick 503 (Slack delivers it again) and a slash command a note for the asker."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.slack.requests import NOT_CONNECTED
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, captured_log, eventually, make_settings, start_bot

SLACK_LIMIT_MS = 3000


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    with captured_log("INFO", "json") as stream:
        yield stream


async def test_mentions_while_slack_is_unreachable_are_acknowledged_at_once(
    log: io.StringIO, settings: Any, fake_slack: FakeSlack
) -> None:
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, what="ready")
        await fake_slack.close()  # from now on, connections to Slack are refused
        mentions = [await bot.mention(f"question {i}") for i in range(3)]
        await asyncio.sleep(3)  # the replies try, and fail, to reach Slack

    assert [m.delivery.status for m in mentions] == [200, 200, 200]
    assert max(m.delivery.elapsed_ms for m in mentions) < SLACK_LIMIT_MS
    assert len(fake_slack.calls_to("auth.test")) == 1  # Bolt used the bot's own answer
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert not [line for line in lines if "unhandled" in line["message"].lower()]
    # Each failure's traceback is written once; its repeats are one line with a count.
    failed = [line for line in lines if "exception" in line]
    by_failure: dict[str, list[dict[str, Any]]] = {}
    for line in failed:
        by_failure.setdefault(line["message"].split("channel=")[0], []).append(line)
    assert by_failure, "the replies' failures to reach Slack are logged"
    for same in by_failure.values():
        assert "exc_info" in same[0]
        assert all("exc_info" not in line for line in same[1:])
        assert [line.get("repeat") for line in same[1:]] == list(range(2, len(same) + 1))


async def test_before_slack_ever_answered_an_event_gets_a_quick_503_and_a_command_a_note(
    settings: Any, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next("auth.test", "drop", times=1000)
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.slack == "unreachable", what="unreachable")
        mention = await bot.mention("anyone there?")
        command = await bot.command("/ask", "what is 2 + 2?")
        challenge = await bot.post_signed(
            json.dumps({"token": "t", "challenge": "c1", "type": "url_verification"})
        )

    assert mention.delivery.status == 503  # Slack delivers it again later
    assert mention.delivery.elapsed_ms < SLACK_LIMIT_MS
    assert command.status == 200
    assert json.loads(command.body) == {"response_type": "ephemeral", "text": NOT_CONNECTED}
    assert (challenge.status, json.loads(challenge.body)) == (200, {"challenge": "c1"})


async def test_requests_while_the_database_is_locked_are_acknowledged_in_time(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    path = tmp_path / "bot.db"
    settings = make_settings(fake_slack, fake_anthropic, f"sqlite+aiosqlite:///{path}")
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, what="ready")
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # every write waits (up to the busy timeout)
        try:
            mention = await bot.mention("a question while the database is busy")
            command = await bot.command("/ask", "another one")
            await asyncio.sleep(0.5)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        await bot.wait_for_usage(2)

    assert mention.delivery.status == 200
    assert command.status == 200
    assert mention.delivery.elapsed_ms < SLACK_LIMIT_MS
    assert command.elapsed_ms < SLACK_LIMIT_MS
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Hello from the fake Claude."]


def slow_bolt(bot: Any, seconds: float) -> None:
    """Whatever Bolt does before its listener (authorizing, parsing, matching) takes
    `seconds`: a global middleware that waits before letting the request through."""
    bolt = bot.running.health.bolt
    assert bolt is not None

    async def wait_then_go(next: Any) -> None:
        await asyncio.sleep(seconds)
        await next()

    bolt.use(wait_then_go)


async def test_an_event_is_acknowledged_without_waiting_for_bolt(
    settings: Any, fake_slack: FakeSlack
) -> None:
    async with start_bot(settings) as bot:
        slow_bolt(bot, 1.5)
        mention = await bot.mention("a question while Bolt is slow")
        await bot.wait_for_usage(1)

    assert mention.delivery.status == 200
    assert mention.delivery.elapsed_ms < 500
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Hello from the fake Claude."]


async def test_an_event_acknowledged_just_before_shutdown_is_still_answered(
    settings: Any, fake_slack: FakeSlack
) -> None:
    async with start_bot(settings) as bot:
        slow_bolt(bot, 1.0)
        mention = await bot.mention("a question as the bot stops")
        assert mention.delivery.status == 200
        # The context's exit shuts the bot down while Bolt still holds the question.

    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Hello from the fake Claude."]


async def test_a_mention_acknowledged_while_slack_is_down_is_answered_when_it_is_back(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # Slack's API drops the bot's posts for a while after the mention was acknowledged (so
    # Slack will not deliver it again): the question is kept and tried again until a post
    # gets through, then answered once.
    settings = make_settings(fake_slack, fake_anthropic, database_url, recovery_after_seconds=0.6)
    async with start_bot(settings) as bot:
        fake_slack.fail_next("chat.postMessage", "drop", times=8)
        mention = await bot.mention("are you there?")
        await bot.wait_for_usage(1, timeout=30)
        await asyncio.sleep(0.5)

    assert mention.delivery.status == 200
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Hello from the fake Claude."]
    assert len(fake_anthropic.message_requests) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) > 8  # it was tried again
