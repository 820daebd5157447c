"""POST /chat: JSON or a text stream, under the same ledger, budgets and limits as Slack."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from bot.store import Place
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import conversation, eventually, make_settings, start_bot

TOKEN = "chat-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api_settings(fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str) -> Any:
    return make_settings(fake_slack, fake_anthropic, database_url, chat_api_token=TOKEN)


async def test_json_reply_with_usage_and_cost(
    api_settings: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Four.", input_tokens=1000, output_tokens=2))
    async with start_bot(api_settings) as bot:
        async with bot.http.post(f"{bot.url}/chat", json={"message": "2+2?"}, headers=AUTH) as r:
            assert r.status == 200
            body = await r.json()
        [row] = await bot.usage()

    assert body["reply"] == "Four."
    assert body["model"] == "claude-sonnet-5-5"
    assert body["usage"]["input_tokens"] == 1000
    assert body["usage"]["output_tokens"] == 2
    # $2 per million input, $10 output, plus the system prompt written to the cache.
    assert body["usage"]["cost_micros"] == row.cost_micros
    assert body["usage"]["cost_usd"] == f"{row.cost_micros / 1e6:.6f}"
    assert (row.team_id, row.channel_id, row.user_id) == ("api", "api", "api")
    assert row.outcome == "complete"


async def test_streaming_sends_text_before_the_model_finishes(
    api_settings: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["one ", "two ", "three"], delay=0.4))
    async with start_bot(api_settings) as bot:
        started = time.monotonic()
        body = {"message": "count", "stream": True}
        async with bot.http.post(f"{bot.url}/chat", json=body, headers=AUTH) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            first = await r.content.readany()
            first_at = time.monotonic() - started
            rest = await r.read()
        total = time.monotonic() - started

    assert first.decode() == "one "
    assert first_at < 0.4 < total  # the first words came before the second was even written
    assert (first + rest).decode() == "one two three"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ("{}", "invalid_message"),
        ('{"message": ""}', "invalid_message"),
        ('{"message": "   "}', "invalid_message"),
        ('{"message": 5}', "invalid_message"),
        ('{"message": "hi", "stream": "yes"}', "invalid_stream"),
        ('{"message": "hi", "conversation_id": "no spaces allowed"}', "invalid_conversation_id"),
        (json.dumps({"message": "x" * 100_001}), "message_too_long"),
    ],
)
async def test_bad_requests_get_400_with_a_reason(
    api_settings: Any, fake_anthropic: FakeAnthropic, raw: str, code: str
) -> None:
    async with start_bot(api_settings) as bot:
        async with bot.http.post(f"{bot.url}/chat", data=raw, headers=AUTH) as r:
            assert r.status == 400
            body = await r.json()

    assert body["error"] == code
    assert body["message"]
    assert fake_anthropic.requests == []


async def test_bad_token_is_401_and_no_token_setting_is_404(
    api_settings: Any, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    async with start_bot(api_settings) as bot:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            async with bot.http.post(
                f"{bot.url}/chat", json={"message": "hi"}, headers=headers
            ) as r:
                assert r.status == 401
                assert (await r.json())["error"] == "unauthorized"
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        async with bot.http.post(f"{bot.url}/chat", json={"message": "hi"}, headers=AUTH) as r:
            assert r.status == 404
    assert fake_anthropic.requests == []


async def test_a_client_that_disconnects_cancels_the_claude_request(
    api_settings: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=[f"w{i} " for i in range(100)], delay=0.05))
    async with start_bot(api_settings) as bot:
        async with aiohttp.ClientSession() as client:
            body = {"message": "talk", "stream": True}
            async with client.post(f"{bot.url}/chat", json=body, headers=AUTH) as r:
                await r.content.readany()
                # Leaving the block early closes the connection mid-answer.
        await eventually(lambda: fake_anthropic.disconnects == 1, what="disconnect", timeout=3)
        [row] = await bot.wait_for_usage(1)

    assert row.outcome == "partial"
    assert row.error_kind == "cancelled"
    assert row.latency_ms < 4000


async def test_conversation_id_keeps_the_turns(
    api_settings: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Hi Ada."), Reply(text="Ada."))
    async with start_bot(api_settings) as bot:
        for message in ("I'm Ada.", "Who am I?"):
            body = {"message": message, "conversation_id": "c-42"}
            async with bot.http.post(f"{bot.url}/chat", json=body, headers=AUTH) as r:
                assert r.status == 200

    assert conversation(fake_anthropic.message_requests[1].body) == [
        {"role": "user", "content": "<@api>: I'm Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "<@api>: Who am I?"},
    ]


async def test_http_only_deployment_needs_no_slack(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        chat_api_token=TOKEN,
        slack_bot_token="",
        slack_signing_secret="",
    )
    async with start_bot(settings) as bot:
        async with bot.http.get(f"{bot.url}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["slack"] == "off"
        async with bot.http.post(f"{bot.url}/chat", json={"message": "hi"}, headers=AUTH) as r:
            assert r.status == 200
        async with bot.http.post(f"{bot.url}/slack/events", data="{}") as r:
            assert r.status == 503  # nothing listens for Slack in this deployment

    assert fake_slack.calls == []


async def test_the_api_is_rate_limited_too(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, chat_api_token=TOKEN, user_requests_per_minute=2
    )
    async with start_bot(settings) as bot:
        statuses = []
        for _ in range(3):
            async with bot.http.post(f"{bot.url}/chat", json={"message": "hi"}, headers=AUTH) as r:
                statuses.append(r.status)
                last = await r.json()
                retry_after = r.headers.get("Retry-After")

    assert statuses == [200, 200, 429]
    assert last["error"] == "rate_limited"
    assert "try again in" in last["message"]
    assert retry_after is not None
    assert 1 <= int(retry_after) <= 60
    assert len(fake_anthropic.message_requests) == 2


async def test_callers_named_in_the_body_have_their_own_limits(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, chat_api_token=TOKEN, user_requests_per_minute=1
    )
    async with start_bot(settings) as bot:
        statuses = []
        for user in ("alice", "bob", "alice"):
            body = {"message": "hi", "user": user}
            async with bot.http.post(f"{bot.url}/chat", json=body, headers=AUTH) as r:
                statuses.append(r.status)
        async with bot.http.post(
            f"{bot.url}/chat", json={"message": "hi", "user": "no spaces"}, headers=AUTH
        ) as r:
            assert (await r.json())["error"] == "invalid_user"
        rows = await bot.usage()

    assert statuses == [200, 200, 429]
    assert [row.user_id for row in rows] == ["alice", "bob"]


async def chat(bot: Any, **body: Any) -> tuple[int, dict[str, Any]]:
    async with bot.http.post(f"{bot.url}/chat", json=body, headers=AUTH) as r:
        return r.status, await r.json()


async def test_memory_is_per_caller_and_conversation_and_absent_without_an_id(
    api_settings: Any, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(api_settings) as bot:
        await chat(bot, message="My bank PIN is 4321.", user="alice", conversation_id="c1")
        await chat(bot, message="And my dog is Rex.", user="alice")  # no id: no memory kept
        await chat(bot, message="What do you know?", user="bob")
        await chat(bot, message="What do you know?", user="bob", conversation_id="c1")
        await chat(bot, message="What is my PIN?", user="alice", conversation_id="c1")
        turns = await bot.running.store.thread_turns(Place("api", "api", "alice/c1"))

    sent = [conversation(r.body) for r in fake_anthropic.message_requests]
    # Nobody else's words reach another caller, and a call without an id starts from nothing.
    for request in sent[1:4]:
        assert not any("4321" in m["content"] for m in request)
    assert [m["content"] for m in sent[1]] == ["<@alice>: And my dog is Rex."]
    assert [m["content"] for m in sent[2]] == ["<@bob>: What do you know?"]
    assert [m["content"] for m in sent[3]] == ["<@bob>: What do you know?"]
    # The caller's own conversation is remembered, and its turns are theirs.
    assert sent[4][0]["content"] == "<@alice>: My bank PIN is 4321."
    assert [t.user_id for t in turns if t.role == "user"] == ["alice", "alice"]


@pytest.mark.both_databases
async def test_ids_of_100_characters_work_and_longer_ones_get_400(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, chat_api_token=TOKEN)
    longest = "c" * 100
    async with start_bot(settings) as bot:
        ok, body = await chat(bot, message="hi", conversation_id=longest, user="u" * 100)
        again, _ = await chat(bot, message="hi again", conversation_id=longest, user="u" * 100)
        too_long, error = await chat(bot, message="hi", conversation_id="c" * 101)
        user_too_long, user_error = await chat(bot, message="hi", user="u" * 101)
        [first, second] = await bot.usage()

    assert (ok, again) == (200, 200), body
    assert second.user_id == "u" * 100
    assert len(conversation(fake_anthropic.message_requests[1].body)) == 3
    assert (too_long, error["error"]) == (400, "invalid_conversation_id")
    assert "the most is 100" in error["message"]
    assert (user_too_long, user_error["error"]) == (400, "invalid_user")
    assert first.thread_ts == second.thread_ts


async def test_a_non_ascii_bearer_token_is_401(api_settings: Any) -> None:
    async with start_bot(api_settings) as bot:
        headers = {"Authorization": "Bearer tökén-ünïcode"}
        async with bot.http.post(f"{bot.url}/chat", json={"message": "hi"}, headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unauthorized"
