"""Two replicas on one database act as one bot: a Stop clicked on either reaches the reply
whichever replica streams it; a message is answered once whichever replica Slack hands it."""

from __future__ import annotations

import time

import pytest

from bot.slack.history import Me
from bot.slack.listeners import STOP_REFUSED
from bot.slack.responder import Question, question_payload
from bot.slack.views import STOP_ACTION_ID
from bot.store import message_claim
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, USER, make_settings, settle, start_bot
from tests.test_stop import SLOW, streaming_reply


@pytest.mark.both_databases
async def test_a_stop_clicked_on_another_replica_stops_the_reply_within_a_second(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_anthropic.enqueue(SLOW)
    async with start_bot(settings) as one, start_bot(settings) as two:
        mention, reply = await streaming_reply(one, fake_slack)
        value = reply.buttons[0]["value"]
        # A stranger's click on the other replica is refused there, privately.
        await two.click(STOP_ACTION_ID, value, user="U0STRANGER", thread_ts=mention.ts)
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        clicked_at = time.monotonic()
        await two.click(STOP_ACTION_ID, value, message_ts=reply.ts, thread_ts=mention.ts)
        [row] = await one.wait_for_usage(1)
        stopped_after = time.monotonic() - clicked_at

    assert fake_slack.ephemerals[0].params["text"].endswith(STOP_REFUSED)
    assert row.error_kind == "stopped"
    assert stopped_after < 1.5  # the poll is every 0.5 s; the reply had seconds to go
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown.endswith("⏹️ Stopped by <@U0USER>.")


@pytest.mark.both_databases
async def test_a_message_handed_to_both_replicas_is_answered_once(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_anthropic.enqueue(Reply(text="Once."))
    async with start_bot(settings) as one, start_bot(settings) as two:
        first = await one.mention("hello")
        # Slack's retry of the same event reaches the other replica.
        await two.mention("hello", ts=first.ts, event_id=first.event_id, retry_num=1)
        await one.wait_for_usage(1)
        await settle(0.5)

    assert len(fake_anthropic.message_requests) == 1
    assert fake_slack.thread_text(CHANNEL, first.ts) == ["Once."]


@pytest.mark.both_databases
async def test_a_question_taken_by_a_process_that_died_is_answered_by_a_live_one(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, recovery_after_seconds=0.6)
    fake_anthropic.enqueue(Reply(text="Answered after all."))
    ts = fake_slack.add_message(CHANNEL, "<@U0BOT> are you there?")
    key = message_claim(TEAM_ID, CHANNEL, ts)
    question = Question(
        TEAM_ID, CHANNEL, ts, USER, "are you there?", ts, ts, claim=key, me=Me("U0BOT", "B0BOT")
    )
    async with start_bot(settings) as bot:
        store = bot.running.store
        # Another process took it (and acknowledged it to Slack), then died before posting.
        assert await store.claim_event(key, TEAM_ID, "message")
        await store.keep_question(key, "a-process-that-died", question_payload(question))
        # One this process is answering itself is never taken from it.
        mine = message_claim(TEAM_ID, CHANNEL, "1.000001")
        assert await store.claim_event(mine, TEAM_ID, "message")
        await store.keep_question(mine, bot.running.recovery.owner, {"surface": "slack"})
        [row] = await bot.wait_for_usage(1)
        await settle(0.5)

    assert fake_slack.thread_text(CHANNEL, ts) == ["Answered after all."]
    assert row.error_kind is None
    assert len(fake_anthropic.message_requests) == 1
