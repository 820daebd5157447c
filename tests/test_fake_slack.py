"""The fake Slack answers the real `AsyncWebClient` the way PLATFORM.md A1-A7 says Slack does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack

CHANNEL = "C0CHAN"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def client_for(fake: FakeSlack, token: str = DEFAULT_TOKEN, **kwargs: object) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url, **kwargs)  # type: ignore[arg-type]


async def test_auth_test_reports_bot_identity_and_scopes(slack: FakeSlack) -> None:
    res = await client_for(slack).auth_test()

    assert res["user_id"] == "U0BOT"
    assert res["bot_id"] == "B0BOT"
    assert res["team_id"] == "T0001"
    assert res["is_enterprise_install"] is False
    assert "chat:write" in res.headers["x-oauth-scopes"].split(",")
    assert slack.calls_to("auth.test")[0].error is None


async def test_auth_test_form_encoded_body_is_accepted(slack: FakeSlack) -> None:
    # The SDK itself sends auth.test as an empty form POST; also send a filled form body.
    async with aiohttp.ClientSession() as session:
        resp = await session.post(
            slack.api_url + "auth.test",
            data={"token": "xoxb-test", "extra": "1"},
        )
        body = await resp.json()

    assert body["ok"] is True
    assert slack.calls_to("auth.test")[0].params == {"extra": "1"}


async def test_bad_or_missing_token_is_refused(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as bad:
        await client_for(slack, token="xoxb-wrong").chat_postMessage(channel=CHANNEL, text="hi")
    async with aiohttp.ClientSession() as session:
        resp = await session.post(slack.api_url + "auth.test")
        missing = await resp.json()

    assert bad.value.response["error"] == "invalid_auth"
    assert missing == {"ok": False, "error": "not_authed"}
    assert slack.messages[CHANNEL] == {}


async def test_post_update_and_thread_view(slack: FakeSlack) -> None:
    client = client_for(slack)
    parent = slack.add_user_message(CHANNEL, "<@U0BOT> hello")

    first = await client.chat_postMessage(channel=CHANNEL, text="thinking…", thread_ts=parent)
    await client.chat_update(channel=CHANNEL, ts=first["ts"], text="Hello there")
    second = await client.chat_postMessage(
        channel=CHANNEL,
        text="more",
        thread_ts=parent,
        blocks=[{"type": "markdown", "text": "**more**"}],
    )
    replies = await client.conversations_replies(channel=CHANNEL, ts=parent)

    assert first["message"]["user"] == "U0BOT"
    assert first["message"]["thread_ts"] == parent
    assert parent < first["ts"] < second["ts"]
    # With blocks, people see the blocks (text is only the fallback).
    assert slack.thread_text(CHANNEL, parent) == ["Hello there", "**more**"]
    assert slack.messages[CHANNEL][first["ts"]].versions == ["thinking…", "Hello there"]
    assert slack.thread(CHANNEL, parent)[1].blocks == [{"type": "markdown", "text": "**more**"}]
    assert [m["ts"] for m in replies["messages"]] == [parent, first["ts"], second["ts"]]
    assert replies["has_more"] is False


async def test_delete_hides_message_from_thread(slack: FakeSlack) -> None:
    client = client_for(slack)
    posted = await client.chat_postMessage(channel=CHANNEL, text="oops", thread_ts="1.000100")

    await client.chat_delete(channel=CHANNEL, ts=posted["ts"])

    assert slack.thread(CHANNEL, "1.000100") == []
    assert slack.messages[CHANNEL][posted["ts"]].deleted is True


async def test_update_limits_and_unknown_message(slack: FakeSlack) -> None:
    client = client_for(slack)
    posted = await client.chat_postMessage(channel=CHANNEL, text="short")

    with pytest.raises(SlackApiError) as too_long:
        await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="x" * 4001)
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="hi")

    assert too_long.value.response.status_code == 200
    assert too_long.value.response["error"] == "msg_too_long"
    assert missing.value.response["error"] == "message_not_found"
    assert slack.messages[CHANNEL][posted["ts"]].versions == ["short"]


async def test_post_truncates_long_text_and_refuses_markdown_conflict(slack: FakeSlack) -> None:
    client = client_for(slack)

    long = await client.chat_postMessage(channel=CHANNEL, text="y" * 40_005)
    with pytest.raises(SlackApiError) as conflict:
        await client.chat_postMessage(channel=CHANNEL, text="a", markdown_text="**a**")

    assert long["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(slack.messages[CHANNEL][long["ts"]].text) == 40_000
    assert conflict.value.response["error"] == "markdown_text_conflict"


async def test_channel_membership_errors(slack: FakeSlack) -> None:
    slack.channels_not_in.add("C0OUT")
    slack.unknown_channels.add("C0GONE")
    client = client_for(slack)

    with pytest.raises(SlackApiError) as not_in:
        await client.chat_postMessage(channel="C0OUT", text="hi")
    with pytest.raises(SlackApiError) as gone:
        await client.chat_postMessage(channel="C0GONE", text="hi")

    assert not_in.value.response["error"] == "not_in_channel"
    assert gone.value.response["error"] == "channel_not_found"


async def test_ratelimited_once_then_retry_handler_succeeds(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", retry_after=1)
    client = client_for(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])

    started = time.monotonic()
    res = await client.chat_postMessage(channel=CHANNEL, text="after retry")

    assert res["ok"] is True
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert slack.ratelimited_count == 1


async def test_ratelimited_without_retry_handler_raises(slack: FakeSlack) -> None:
    slack.fail_next("chat.update", retry_after=7)

    with pytest.raises(SlackApiError) as err:
        await client_for(slack).chat_update(channel=CHANNEL, ts="1.000001", text="x")

    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "7"


async def test_fail_next_other_error_then_recovers(slack: FakeSlack) -> None:
    slack.fail_next("users.info", "fatal_error", status=500, times=2)
    client = client_for(slack)

    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await client.users_info(user="U1")
        assert err.value.response.status_code == 500
        assert err.value.response["error"] == "fatal_error"
    assert (await client.users_info(user="U1"))["ok"] is True


async def test_rate_limits_window_answers_429(slack: FakeSlack) -> None:
    slack.rate_limits["chat.update"] = (2, 60.0)
    client = client_for(slack)
    posted = await client.chat_postMessage(channel=CHANNEL, text="v1")

    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="v2")
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="v3")
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="v4")

    assert err.value.response.status_code == 429
    assert 59 <= int(err.value.response.headers["Retry-After"]) <= 60
    assert slack.messages[CHANNEL][posted["ts"]].versions == ["v1", "v2", "v3"]
    assert slack.ratelimited_count == 1


async def test_post_per_channel_bucket(slack: FakeSlack) -> None:
    slack.post_per_channel_per_second = 1.0
    client = client_for(slack)

    for i in range(3):  # the default burst
        await client.chat_postMessage(channel=CHANNEL, text=f"burst {i}")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=CHANNEL, text="one too many")
    await client.chat_postMessage(channel="C0OTHER", text="other channel has its own bucket")

    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"


async def test_users_info_defaults_and_configured_admin(slack: FakeSlack) -> None:
    slack.users["U0ADMIN"] = {"is_admin": True, "real_name": "Ada"}
    slack.missing_users.add("U0GHOST")
    client = client_for(slack)

    plain = (await client.users_info(user="U0ANY"))["user"]
    admin = (await client.users_info(user="U0ADMIN"))["user"]
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U0GHOST")

    assert plain["id"] == "U0ANY"
    assert plain["is_admin"] is False
    assert plain["is_owner"] is False
    assert plain["is_primary_owner"] is False
    assert admin["is_admin"] is True
    assert admin["real_name"] == "Ada"
    assert err.value.response["error"] == "user_not_found"


async def test_post_ephemeral_is_recorded_separately(slack: FakeSlack) -> None:
    res = await client_for(slack).chat_postEphemeral(channel=CHANNEL, user="U0USER", text="psst")

    assert res["message_ts"]
    assert [(e.params["user"], e.params["text"]) for e in slack.ephemerals] == [("U0USER", "psst")]
    assert slack.messages[CHANNEL] == {}


async def test_response_url_is_recorded(slack: FakeSlack) -> None:
    webhook = AsyncWebhookClient(slack.response_url("cmd1"))

    res = await webhook.send(text="done", response_type="ephemeral")

    assert res.status_code == 200
    assert res.body == "ok"
    assert slack.responses == [("cmd1", {"text": "done", "response_type": "ephemeral"})]


async def test_simple_methods_and_unknown_method(slack: FakeSlack) -> None:
    client = client_for(slack)

    await client.assistant_threads_setStatus(channel_id="D0DM", thread_ts="1.000100", status="…")
    await client.reactions_add(channel=CHANNEL, timestamp="1.000100", name="eyes")
    await client.views_publish(user_id="U0USER", view={"type": "home", "blocks": []})
    with pytest.raises(SlackApiError) as err:
        await client.api_call("no.such.method")

    assert slack.calls_to("reactions.add")[0].params["name"] == "eyes"
    assert slack.calls_to("views.publish")[0].params["view"]["type"] == "home"
    assert err.value.response["error"] == "unknown_method"


async def test_hang_next_delays_and_wait_for_sees_calls(slack: FakeSlack) -> None:
    slack.hang_next("auth.test", 0.3)
    client = client_for(slack)

    started = time.monotonic()
    await client.auth_test()
    await slack.wait_for(lambda: len(slack.calls_to("auth.test")) == 1)
    with pytest.raises(AssertionError, match=r"auth\.test"):
        await slack.wait_for(lambda: False, timeout=0.05)

    assert time.monotonic() - started >= 0.3
