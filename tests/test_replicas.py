"""Two replicas on one database act as one bot: a Stop clicked on either reaches the reply
whichever replica streams it; a message is answered once whichever replica Slack hands it."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.slack.history import Me
from bot.slack.questions import Question, ask_payload, continue_payload, question_payload
from bot.slack.responder import CONTINUE_PROMPT
from bot.slack.text import STOP_REFUSED
from bot.slack.views import STOP_ACTION_ID, ContinueTarget
from bot.store import message_claim
from bot.store.models import utcnow
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, USER, conversation, make_settings, settle, start_bot
from tests.test_faults import assert_within_edit_budget, edit_budget_settings
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


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read().decode(errors="replace")


async def test_redeliveries_and_twins_leave_no_error_in_postgresqls_log(
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    # Every mention in a channel the app reads comes twice (app_mention and message), and
    # Slack retries: claims that are taken already are the normal case, not an error that
    # PostgreSQL would log with its statement, once per mention.
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's own log")
    log: Path = request.getfixturevalue("postgres_server").log
    before = log.stat().st_size  # noqa: ASYNC240 (a test's one stat)
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    async with start_bot(settings) as bot:
        first = await bot.mention("hello", twice=True)
        await bot.mention("hello", ts=first.ts, event_id=first.event_id, retry_num=1)
        await bot.wait_for_usage(1)
        await settle(0.5)
    during = _read_from(log, before)

    assert len(fake_anthropic.message_requests) == 1
    assert "ERROR" not in during, during


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


@pytest.mark.both_databases
async def test_a_question_no_reply_could_reach_for_a_quarter_hour_is_given_up(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, recovery_after_seconds=0.6)
    ts = fake_slack.add_message(CHANNEL, "<@U0BOT> still there?")
    key = message_claim(TEAM_ID, CHANNEL, ts)
    question = Question(
        TEAM_ID, CHANNEL, ts, USER, "still there?", ts, ts, claim=key, me=Me("U0BOT", "B0BOT")
    )
    fresh_ts = fake_slack.add_message(CHANNEL, "<@U0BOT> and now?")
    fresh_key = message_claim(TEAM_ID, CHANNEL, fresh_ts)
    fresh = Question(
        TEAM_ID, CHANNEL, fresh_ts, USER, "and now?", fresh_ts, fresh_ts, claim=fresh_key
    )
    async with start_bot(settings) as bot:
        store = bot.running.store
        # Slack took no reply to this one for 16 minutes (each try was handed back)...
        long_ago = utcnow() - timedelta(minutes=16)
        assert await store.claim_event(key, TEAM_ID, "message", now=long_ago)
        await store.keep_question(key, bot.running.recovery.owner, question_payload(question))
        await store.hand_back_question(key)
        # ...and to this one for a moment: it is still answered.
        assert await store.claim_event(fresh_key, TEAM_ID, "message")
        await store.keep_question(fresh_key, bot.running.recovery.owner, question_payload(fresh))
        await store.hand_back_question(fresh_key)
        await bot.wait_for_usage(1)
        await settle(1.0)
        retaken = await store.claim_event(key, TEAM_ID, "message")

    assert fake_slack.thread_text(CHANNEL, ts) == []
    assert fake_slack.thread_text(CHANNEL, fresh_ts) == ["Hello from the fake Claude."]
    assert len(fake_anthropic.message_requests) == 1
    assert retaken is False  # done: a redelivery would not answer it either


@pytest.mark.both_databases
async def test_two_replicas_share_one_slack_write_budget_and_draw_no_429s(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # The load one process carries without a 429 (tests/test_faults.py), split across two
    # replicas: each alone would spend the whole budget; together they must not pass it.
    settings = edit_budget_settings(fake_slack, fake_anthropic, database_url)
    words = [[f"r{k}-{i} " for i in range(15)] for k in range(6)]
    fake_anthropic.enqueue(*(Reply(chunks=w, delay=0.1) for w in words))
    async with start_bot(settings) as one, start_bot(settings) as two:
        mentions = [await (one, two)[k % 2].mention("go", channel=f"C1{k}") for k in range(6)]
        await one.wait_for_usage(6, timeout=60)

    assert fake_slack.ratelimited_count == 0
    assert_within_edit_budget(fake_slack)
    shown = sorted(fake_slack.thread(m.channel, m.ts)[0].shown for m in mentions)
    assert shown == sorted("".join(w).strip() for w in words)  # every reply whole


@pytest.mark.both_databases
async def test_an_ask_command_and_a_continue_click_taken_by_a_process_that_died_are_answered(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, recovery_after_seconds=0.6)
    fake_anthropic.enqueue(Reply(text="Asked and answered."), Reply(text="And continued."))
    thread = fake_slack.add_message(CHANNEL, "an earlier answer")
    target = ContinueTarget(CHANNEL, thread, thread, USER, "long")
    async with start_bot(settings) as bot:
        store = bot.running.store
        # Another process acknowledged both to Slack, then died before posting anything.
        for key, kept in (
            ("command:T0DEAD", ask_payload("command:T0DEAD", TEAM_ID, CHANNEL, USER, "why?")),
            (
                "action:T0DEAD2:1",
                continue_payload("action:T0DEAD2:1", TEAM_ID, USER, target.encode(), thread),
            ),
        ):
            assert await store.claim_event(key, TEAM_ID, "command")
            await store.keep_question(key, "a-process-that-died", kept)
        rows = await bot.wait_for_usage(2)
        await settle(0.5)

    assert len(rows) == 2
    [post] = [
        c for c in fake_slack.calls_to("chat.postMessage") if "asked: why?" in c.params["text"]
    ]
    assert post.params["text"] == f"<@{USER}> asked: why?"
    [asked] = [m for m in fake_slack.messages[CHANNEL].values() if m.text == post.params["text"]]
    # Both answered, each in its own thread (which got which script depends on timing).
    shown = fake_slack.thread_text(CHANNEL, asked.ts) + fake_slack.thread_text(CHANNEL, thread)
    assert sorted(shown) == ["And continued.", "Asked and answered."]
    prompts = [conversation(r.body)[-1]["content"] for r in fake_anthropic.message_requests]
    assert any(p.endswith("why?") for p in prompts)
    assert any(p.endswith(CONTINUE_PROMPT) for p in prompts)
