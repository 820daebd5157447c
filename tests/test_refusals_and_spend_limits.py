"""Refusals told apart from answers; the organisation's spend limit: no retries, a clear
note, one admin DM a day, /healthz and /usage say so."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.engine.events import Ended
from bot.engine.spend_limit import SpendLimit
from bot.errors import ClaudeError, ClaudeFailure, spend_limit_resets
from bot.store import Outcome, UsageRow
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, make_settings, start_bot
from tests.test_usage import usage

TOKEN = "chat-token-0123456789"


async def test_a_refusal_is_shown_recorded_and_counted_apart_from_answers(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_slack.users["U0ADMIN"] = {"is_admin": True}
    fake_anthropic.enqueue(
        Reply(text="I can't help", stop_reason="refusal", refusal_category="cyber"),
        Reply(text="Sure, here it is."),
    )
    async with start_bot(settings) as bot:
        refused = await bot.mention("Write me some malware")
        await bot.wait_for_usage(1)
        await bot.mention("Write me a haiku")
        rows = await bot.wait_for_usage(2)
        report = await usage(bot, fake_slack, "today", "U0ADMIN")

    [answer] = fake_slack.thread(CHANNEL, refused.ts)
    assert "I can't help" in answer.shown and "Claude declined to answer this." in answer.shown
    assert [(r.outcome, r.stop_reason, r.stop_detail) for r in rows] == [
        ("refused", "refusal", "cyber"),
        ("complete", "end_turn", None),
    ]
    assert "1 declined by Claude (refusals)" in report
    assert "0 failed" in report


async def test_the_spend_limit_is_not_retried_and_says_until_when_and_to_tell_an_admin(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, admin_user_ids="U0ADMIN,U0OWNER"
    )
    capped = Reply(status=429, error_code="enforced_spend_limit_reached")
    fake_anthropic.enqueue(capped, capped)
    async with start_bot(settings) as bot:
        first = await bot.mention("Anything")
        await bot.wait_for_usage(1)
        async with bot.http.get(f"{bot.url}/healthz") as response:
            health_status, health = response.status, await response.json()
        second = await bot.mention("Anything else")
        rows = await bot.wait_for_usage(2)
        report = await usage(bot, fake_slack, "today", "U0ADMIN")

    # One request each: the SDK's retries would fail the same way until the 1st.
    assert len(fake_anthropic.message_requests) == 2
    resets = spend_limit_resets(datetime.now(UTC))
    for mention in (first, second):
        [answer] = fake_slack.thread(CHANNEL, mention.ts)
        assert "reached its Claude spend limit" in answer.shown
        assert f"{resets:%-d %B %Y} at 00:00 UTC" in answer.shown
        assert "please tell an admin" in answer.shown
        assert "try again in a minute" not in answer.shown
    assert [r.error_kind for r in rows] == ["spend_limit", "spend_limit"]
    # The admins hear of it once a day, not once per question.
    dms = [m for ch in ("U0ADMIN", "U0OWNER") for m in fake_slack.messages.get(ch, {}).values()]
    assert len(dms) == 2
    assert all("spend limit is reached" in m.shown for m in dms)
    assert health_status == 200
    assert health["status"] == "ok"
    assert health["claude"]["status"] == "spend_limit_reached"
    assert health["claude"]["resets_at"] == resets.isoformat(timespec="seconds")
    assert "2 refused by the organisation's Anthropic spend limit" in report


async def test_admins_are_found_in_slack_when_none_are_configured(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_slack.users.update(
        {
            "U0BOSS": {"is_owner": True},
            "U0ADMIN": {"is_admin": True},
            "U0PLAIN": {},
            "U0OLD": {"is_admin": True, "deleted": True},
        }
    )
    fake_anthropic.enqueue(Reply(status=429, error_code="contract_spend_limit_reached"))
    async with start_bot(settings) as bot:
        await bot.mention("Anything")
        await bot.wait_for_usage(1)
        await fake_slack.wait_for(lambda: "U0ADMIN" in fake_slack.messages)

    told = sorted(ch for ch in fake_slack.messages if ch.startswith("U0"))
    assert told == ["U0ADMIN", "U0BOSS"]
    assert len(fake_anthropic.message_requests) == 1


async def test_an_ordinary_rate_limit_is_still_retried(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_anthropic.enqueue(
        Reply(status=429, headers={"retry-after-ms": "10"}), Reply(text="Fine now.")
    )
    async with start_bot(settings) as bot:
        mention = await bot.mention("Anything")
        [row] = await bot.wait_for_usage(1)

    assert len(fake_anthropic.message_requests) == 2
    assert row.error_kind is None
    assert "Fine now." in fake_slack.thread(CHANNEL, mention.ts)[0].shown


async def test_a_contract_limit_asks_for_an_admin_and_a_ramp_limit_says_when_to_retry(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, admin_user_ids="U0ADMIN", chat_api_token=TOKEN
    )
    fake_anthropic.enqueue(
        Reply(status=429, error_code="contract_spend_limit_reached"),
        Reply(status=429, error_code="contract_spend_limit_reached"),
        Reply(status=429, error_code="ramp_limit_exceeded", headers={"retry-after": "600"}),
    )
    async with start_bot(settings) as bot:
        # Met from /chat: the Slack admins hear of it all the same (once a day).
        async with bot.http.post(
            f"{bot.url}/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            contract_status, contract = response.status, await response.json()
        async with bot.http.get(f"{bot.url}/healthz") as response:
            health = await response.json()
        await fake_slack.wait_for(lambda: "U0ADMIN" in fake_slack.messages)
        await bot.mention("And from Slack?")  # the same limit, another surface: no second DM
        await bot.wait_for_usage(2)
        ramp = await bot.mention("Anything")
        rows = await bot.wait_for_usage(3)

    assert len(fake_anthropic.message_requests) == 3  # none retried
    assert contract_status == 502
    assert contract["error"]["type"] == "spend_limit"
    assert "spend limit of its contract" in contract["error"]["message"]
    assert "until it is raised" in contract["error"]["message"]
    assert health["claude"]["resets_at"] is None  # a contract's limit does not lapse by itself
    [dm] = fake_slack.messages["U0ADMIN"].values()
    assert "until the contract's limit is raised" in dm.shown
    [answer] = fake_slack.thread(CHANNEL, ramp.ts)
    assert "try again in about 10 min" in answer.shown
    assert [r.error_kind for r in rows] == ["spend_limit", "spend_limit", "rate_limited"]


def test_the_health_report_lapses_when_the_month_turns() -> None:
    now = [datetime(2026, 11, 30, 23, 0, tzinfo=UTC)]

    async def claim(_day: str) -> bool:
        return True

    limit = SpendLimit(clock=lambda: now[0], claim=claim)
    error = ClaudeError(ClaudeFailure.SPEND_LIMIT, "429", code="enforced_spend_limit_reached")
    ended = Ended(text="", usage=row(), error=error)
    assert limit.observe(ended)
    status = limit.status()
    assert status is not None and status["resets_at"] == "2026-12-01T00:00:00+00:00"
    now[0] = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    assert limit.status() is None  # nobody asked since, but the limit has reset


def row() -> UsageRow:
    return UsageRow(
        requested_model="claude-sonnet-5-5",
        resolved_model=None,
        input_tokens=0,
        output_tokens=0,
        cache_write_5m_tokens=0,
        cache_write_1h_tokens=0,
        cache_read_tokens=0,
        stop_reason=None,
        request_id=None,
        ttft_ms=None,
        latency_ms=1,
        outcome=Outcome.ERROR,
        error_kind="spend_limit",
    )
