"""The fake Slack answers the real `AsyncWebClient` the way PLATFORM.md A1-A7 says Slack does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.app import RunningBot
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack, running_fake
from tests.rig import SIGNING_SECRET, BotUnderTest

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


# ----- thread history: conversations.replies over everything said in the thread


async def test_replies_hold_people_other_bots_and_the_bot_oldest_first(slack: FakeSlack) -> None:
    client = client_for(slack)
    report = slack.add_file("report.pdf", b"%PDF-1.7", mimetype="application/pdf")
    parent = slack.add_message(CHANNEL, "Shall we ship?", user="U0ADA")
    asked = slack.add_message(CHANNEL, "see this", user="U0BOB", thread_ts=parent, files=[report])
    other = slack.add_message(
        CHANNEL,
        "Build green",
        thread_ts=parent,
        bot_id="B0CI",
        bot_name="ci",
        subtype="bot_message",
    )
    mine = await client.chat_postMessage(channel=CHANNEL, text="Looks good.", thread_ts=parent)

    res = await client.conversations_replies(channel=CHANNEL, ts=parent)

    first, bob, ci, bot = res["messages"]
    assert [m["ts"] for m in res["messages"]] == [parent, asked, other, mine["ts"]]
    assert parent < asked < other < mine["ts"]
    assert (first["user"], first["text"], first["type"]) == ("U0ADA", "Shall we ship?", "message")
    assert first["thread_ts"] == parent
    assert first["reply_count"] == 3
    assert first["latest_reply"] == mine["ts"]
    assert bob["files"] == [report]
    assert bob["subtype"] == "file_share"
    assert bob["thread_ts"] == parent
    assert bob["parent_user_id"] == "U0ADA"
    assert "user" not in ci
    assert ci["subtype"] == "bot_message"
    assert ci["bot_profile"] == {"id": "B0CI", "name": "ci", "app_id": "A0CI"}
    assert (bot["user"], bot["bot_id"]) == ("U0BOT", "B0BOT")
    assert bot["bot_profile"]["id"] == "B0BOT"
    assert res["has_more"] is False
    assert res["response_metadata"]["next_cursor"] == ""


async def test_replies_pages_by_limit_and_opaque_cursor(slack: FakeSlack) -> None:
    client = client_for(slack)
    parent, replies = slack.add_thread(CHANNEL, 249, users=["U0ADA", "U0BOB"])

    pages, cursor = [], None
    while True:
        res = await client.conversations_replies(
            channel=CHANNEL, ts=parent, limit=100, cursor=cursor
        )
        pages.append(res)
        cursor = res["response_metadata"]["next_cursor"]
        if not res["has_more"]:
            break
    seen = [m["ts"] for page in pages for m in page["messages"]]
    with pytest.raises(SlackApiError) as junk:
        await client.conversations_replies(channel=CHANNEL, ts=parent, cursor="not-a-cursor")

    assert [len(p["messages"]) for p in pages] == [100, 100, 50]
    assert seen == [parent, *replies]
    assert all(parent not in p["response_metadata"]["next_cursor"] for p in pages)
    assert pages[-1]["response_metadata"]["next_cursor"] == ""
    assert [m["user"] for m in pages[0]["messages"][:3]] == ["U0ADA", "U0BOB", "U0ADA"]
    assert pages[0]["messages"][1]["text"] == "message 1"
    assert junk.value.response["error"] == "invalid_cursor"


async def test_replies_limit_defaults_to_1000_and_is_capped_there(slack: FakeSlack) -> None:
    client = client_for(slack)
    parent, _ = slack.add_thread(CHANNEL, 1100)

    default = await client.conversations_replies(channel=CHANNEL, ts=parent)
    asked_more = await client.conversations_replies(channel=CHANNEL, ts=parent, limit=5000)
    rest = await client.conversations_replies(
        channel=CHANNEL, ts=parent, cursor=default["response_metadata"]["next_cursor"]
    )

    assert len(default["messages"]) == len(asked_more["messages"]) == 1000
    assert default["has_more"] is True
    assert len(rest["messages"]) == 101
    assert rest["has_more"] is False


async def test_replies_oldest_and_latest_are_exclusive_unless_inclusive(slack: FakeSlack) -> None:
    client = client_for(slack)
    parent, r = slack.add_thread(CHANNEL, 5)

    def stamps(res: object) -> list[str]:
        return [m["ts"] for m in res["messages"]]  # type: ignore[index]

    exclusive = await client.conversations_replies(
        channel=CHANNEL, ts=parent, oldest=r[0], latest=r[3]
    )
    inclusive = await client.conversations_replies(
        channel=CHANNEL, ts=parent, oldest=r[0], latest=r[3], inclusive=True
    )
    as_text = await client.api_call(
        "conversations.replies",
        http_verb="GET",
        params={"channel": CHANNEL, "ts": parent, "oldest": parent, "inclusive": "true"},
    )
    after_parent = await client.conversations_replies(channel=CHANNEL, ts=parent, oldest=parent)

    assert stamps(exclusive) == [r[1], r[2]]
    assert stamps(inclusive) == [r[0], r[1], r[2], r[3]]
    assert slack.calls_to("conversations.replies")[1].params["inclusive"] == "1"
    assert stamps(as_text) == [parent, *r]
    assert stamps(after_parent) == r


async def test_replies_unknown_thread_and_a_reply_ts(slack: FakeSlack) -> None:
    client = client_for(slack)
    parent, replies = slack.add_thread(CHANNEL, 2)

    with pytest.raises(SlackApiError) as unknown:
        await client.conversations_replies(channel=CHANNEL, ts="1600000000.000100")
    with pytest.raises(SlackApiError) as elsewhere:
        await client.conversations_replies(channel="C0OTHER", ts=parent)
    from_reply = await client.conversations_replies(channel=CHANNEL, ts=replies[1])

    assert unknown.value.response["error"] == "thread_not_found"
    assert elsewhere.value.response["error"] == "thread_not_found"
    assert [m["ts"] for m in from_reply["messages"]] == [parent, *replies]


async def test_replies_distribution_mode_limits_calls_and_messages(slack: FakeSlack) -> None:
    slack.replies_limits = (1, 15)
    client = client_for(slack)
    parent, _ = slack.add_thread(CHANNEL, 40)

    first = await client.conversations_replies(channel=CHANNEL, ts=parent, limit=200)
    with pytest.raises(SlackApiError) as refused:
        await client.conversations_replies(channel=CHANNEL, ts=parent)

    assert len(first["messages"]) == 15
    assert first["has_more"] is True
    assert refused.value.response.status_code == 429
    assert refused.value.response["error"] == "ratelimited"
    assert refused.value.response.headers["Retry-After"] == "60"
    assert slack.call_counts["conversations.replies"] == 2
    assert [c.params.get("limit") for c in slack.calls_to("conversations.replies")] == ["200", None]
    assert [c.status for c in slack.calls_to("conversations.replies")] == [200, 429]


async def test_edits_deletions_and_the_bot_only_thread_view(slack: FakeSlack) -> None:
    client = client_for(slack)
    parent = slack.add_user_message(CHANNEL, "question")  # the old positional form still works
    said = slack.add_user_message(CHANNEL, "typo", "U0ADA", parent)
    gone = slack.add_message(CHANNEL, "never mind", user="U0ADA", thread_ts=parent)
    await client.chat_postMessage(channel=CHANNEL, text="answer", thread_ts=parent)

    previous, now = slack.edit_message(CHANNEL, said, "fixed")
    slack.delete_message(CHANNEL, gone)
    res = await client.conversations_replies(channel=CHANNEL, ts=parent)

    assert previous["text"] == "typo"
    assert now["edited"] == {"user": "U0ADA", "ts": now["edited"]["ts"]}
    assert now["edited"]["ts"] > gone
    assert slack.message(CHANNEL, said).versions == ["typo", "fixed"]
    assert [(m["text"], "edited" in m) for m in res["messages"][1:]] == [
        ("fixed", True),
        ("answer", False),
    ]
    assert slack.thread_text(CHANNEL, parent) == ["answer"]
    assert slack.thread_text(CHANNEL, parent, everyone=True) == ["fixed", "answer"]


# ----- users.info profiles


async def test_users_info_profile_defaults_and_merges(slack: FakeSlack) -> None:
    slack.users["U0ADA"] = {"is_admin": True, "profile": {"display_name": "ada", "title": "CTO"}}
    slack.users["U0GRACE"] = {"real_name": "Grace Hopper"}
    client = client_for(slack)

    plain = (await client.users_info(user="U0ANY"))["user"]
    ada = (await client.users_info(user="U0ADA"))["user"]
    grace = (await client.users_info(user="U0GRACE"))["user"]
    me = (await client.users_info(user="U0BOT"))["user"]
    listed = (await client.users_list())["members"]

    assert plain["profile"]["display_name"] == ""
    assert plain["profile"]["real_name"] == plain["real_name"] == "U0any"
    assert ada["is_admin"] is True
    assert ada["profile"]["display_name"] == "ada"
    assert ada["profile"]["title"] == "CTO"
    assert ada["profile"]["real_name"] == "U0ada"
    assert grace["profile"]["real_name"] == grace["real_name"] == "Grace Hopper"
    assert me["is_bot"] is True
    assert me["profile"]["bot_id"] == "B0BOT"
    assert [m["profile"]["display_name"] for m in listed] == ["ada", ""]


# ----- files: private URLs behind the bot token


async def test_file_download_needs_the_bot_token(slack: FakeSlack) -> None:
    data = bytes(range(256)) * 1000
    file = slack.add_file("chart.png", data, mimetype="image/png")
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}

    async with aiohttp.ClientSession() as session:
        async with session.get(file["url_private_download"], headers=headers) as resp:
            body, kind, length = await resp.read(), resp.content_type, resp.content_length
        async with session.get(file["url_private"], headers=headers) as resp:
            assert await resp.read() == data
        async with session.get(file["url_private"], allow_redirects=False) as bare:
            location = bare.headers["Location"]
        wrong = {"Authorization": "Bearer xoxb-someone-else"}
        async with session.get(file["url_private_download"], headers=wrong) as followed:
            page, page_kind, page_status = (
                await followed.text(),
                followed.content_type,
                followed.status,
            )
        info = await client_for(slack).files_info(file=file["id"])

    assert file["id"].startswith("F")
    assert (file["name"], file["title"], file["mimetype"]) == (
        "chart.png",
        "chart.png",
        "image/png",
    )
    assert (file["filetype"], file["size"], file["mode"]) == ("png", len(data), "hosted")
    assert file["url_private"].startswith(slack.api_url.removesuffix("api/") + "files-pri/T0001-")
    assert body == data
    assert (kind, length) == ("image/png", len(data))
    assert bare.status == 302
    assert "/signin" in location
    assert (page_status, page_kind) == (200, "text/html")
    assert "Sign in" in page
    assert slack.file_downloads[file["id"]] == 2
    assert slack.file_signin_redirects[file["id"]] == 2
    assert slack.file_bytes_sent[file["id"]] == 2 * len(data)
    assert info["file"] == file


async def test_file_bytes_sent_shows_a_download_stopped_early(slack: FakeSlack) -> None:
    big = b"x" * (32 * 1024 * 1024)
    file = slack.add_file("dump.txt", big, mimetype="text/plain", size=1000)
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}

    async with aiohttp.ClientSession() as session:
        async with session.get(file["url_private_download"], headers=headers) as resp:
            start = await resp.content.readexactly(64 * 1024)
            resp.close()  # stop reading: the connection goes
        await slack.wait_for(lambda: slack.file_bytes_sent[file["id"]] > 0)
        await asyncio.sleep(0.1)  # the server notices the hang-up

    assert file["size"] == 1000  # as the test said, not the truth
    assert file["filetype"] == "text"
    assert start == b"x" * 64 * 1024
    assert 64 * 1024 <= slack.file_bytes_sent[file["id"]] < len(big) // 2
    assert slack.file_bytes_sent[file["id"]] % (64 * 1024) == 0


async def test_file_chunked_without_length_and_failing_files(slack: FakeSlack) -> None:
    slack.file_send_length = False
    good = slack.add_file("a.csv", b"a,b\n" * 50_000, mimetype="text/csv")
    bad = slack.add_file("b.csv", b"a,b\n", mimetype="text/csv")
    slack.fail_file(bad["id"])
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}

    async with aiohttp.ClientSession() as session:
        async with session.get(good["url_private"], headers=headers) as resp:
            body, length, coding = await resp.read(), resp.content_length, resp.headers
        async with session.get(bad["url_private"], headers=headers) as failed:
            status = failed.status
        missing = good["url_private"].replace(good["id"], "F0NOPE")
        async with session.get(missing, headers=headers) as unknown:
            unknown_status = unknown.status

    assert len(body) == 200_000
    assert length is None
    assert coding["Transfer-Encoding"] == "chunked"
    assert status == 500
    assert unknown_status == 404
    assert slack.file_downloads[bad["id"]] == 1
    assert slack.file_bytes_sent[bad["id"]] == 0


# ----- the rig's Slack events, as a recording app sees them


@pytest.fixture
async def events_app() -> AsyncIterator[tuple[list[dict[str, Any]], int]]:
    """A stand-in for the bot: records every correctly signed Events API body."""
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        raw = await request.text()
        stamp = request.headers["X-Slack-Request-Timestamp"]
        signature = request.headers["X-Slack-Signature"]
        if not SignatureVerifier(SIGNING_SECRET).is_valid(raw, stamp, signature):
            return web.Response(status=401)
        received.append(json.loads(raw))
        return web.Response()

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield received, runner.addresses[0][1]
    await runner.cleanup()


@contextlib.asynccontextmanager
async def rig_for(port: int) -> AsyncIterator[BotUnderTest]:
    async with aiohttp.ClientSession() as http:
        yield BotUnderTest(cast(RunningBot, SimpleNamespace(port=port)), http, "U0BOT")


def events(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [body["event"] for body in received]


async def test_rig_mention_is_stored_and_twice_sends_the_message_event_too(
    slack: FakeSlack, events_app: tuple[list[dict[str, Any]], int]
) -> None:
    received, port = events_app
    file = slack.add_file("notes.txt", b"hello", mimetype="text/plain")
    async with rig_for(port) as bot:
        first = await bot.mention("hi")
        second = await bot.mention("look", thread_ts=first.ts, files=[file], twice=True)
    replies = await client_for(slack).conversations_replies(channel=CHANNEL, ts=first.ts)

    assert running_fake() is slack
    assert bot.slack is slack
    assert first.delivery.status == second.delivery.status == 200
    assert first.ts < second.ts
    assert [m["text"] for m in replies["messages"]] == ["<@U0BOT> hi", "<@U0BOT> look"]
    assert len(received) == 3
    mention = next(e for e in events(received[1:]) if e["type"] == "app_mention")
    message = next(e for e in events(received[1:]) if e["type"] == "message")
    assert received[1]["event_id"] != received[2]["event_id"]
    assert second.event_id in {received[1]["event_id"], received[2]["event_id"]}
    for field in ("ts", "channel", "text", "thread_ts", "user", "client_msg_id", "files"):
        assert mention[field] == message[field], field
    assert mention["ts"] == second.ts
    assert mention["files"] == [file]
    assert message["channel_type"] == "channel"
    assert message["subtype"] == "file_share"


async def test_rig_say_in_thread_is_stored_and_delivered_without_a_mention(
    slack: FakeSlack, events_app: tuple[list[dict[str, Any]], int]
) -> None:
    received, port = events_app
    file = slack.add_file("a.png", b"png", mimetype="image/png")
    async with rig_for(port) as bot:
        asked = await bot.mention("start")
        ts = await bot.say_in_thread("and also", thread_ts=asked.ts, user="U0ADA")
        with_file = await bot.say_in_thread("", thread_ts=asked.ts, files=[file])
    replies = await client_for(slack).conversations_replies(channel=CHANNEL, ts=asked.ts)

    said, shared = events(received)[1:]
    assert [m["ts"] for m in replies["messages"]] == [asked.ts, ts, with_file]
    assert said["type"] == "message"
    assert "subtype" not in said
    assert (said["channel_type"], said["thread_ts"], said["user"]) == ("channel", asked.ts, "U0ADA")
    assert said["text"] == "and also"
    assert said["parent_user_id"] == "U0USER"
    assert (shared["subtype"], shared["files"], shared["text"]) == ("file_share", [file], "")
    assert slack.thread_text(CHANNEL, asked.ts, everyone=True) == ["and also", ""]


async def test_rig_bot_message_plain_and_mentioning(
    slack: FakeSlack, events_app: tuple[list[dict[str, Any]], int]
) -> None:
    received, port = events_app
    async with rig_for(port) as bot:
        plain = await bot.bot_message("deploy done")
        called = await bot.bot_message("summarise", thread_ts=plain, mention=True, user=None)

    posted, mentioned = events(received)
    profile = {"id": "B0OTHER", "name": "otherbot", "app_id": "A0OTHER"}
    assert posted["type"] == "message"
    assert (posted["subtype"], posted["bot_id"], posted["bot_profile"]) == (
        "bot_message",
        "B0OTHER",
        profile,
    )
    assert posted["user"] == "U0OTHERBOT"
    assert "client_msg_id" not in posted
    assert mentioned["type"] == "app_mention"
    assert mentioned["text"] == "<@U0BOT> summarise"
    assert (mentioned["bot_id"], mentioned["bot_profile"]) == ("B0OTHER", profile)
    assert "user" not in mentioned
    assert (mentioned["ts"], mentioned["thread_ts"]) == (called, plain)
    assert slack.message(CHANNEL, called).subtype == "bot_message"


async def test_rig_dm_with_files_is_a_file_share(
    slack: FakeSlack, events_app: tuple[list[dict[str, Any]], int]
) -> None:
    received, port = events_app
    file = slack.add_file("scan.pdf", b"%PDF", mimetype="application/pdf")
    async with rig_for(port) as bot:
        plain = await bot.dm("hello")
        shared = await bot.dm("", files=[file])

    hello, upload = events(received)
    assert (hello["channel_type"], hello["channel"], hello["ts"]) == ("im", "D0DM", plain)
    assert "subtype" not in hello
    assert (upload["subtype"], upload["files"], upload["text"]) == ("file_share", [file], "")
    assert upload["ts"] == shared
    assert slack.message("D0DM", shared).files == [file]


async def test_rig_event_in_channel_edits_joins_and_deletes(
    slack: FakeSlack, events_app: tuple[list[dict[str, Any]], int]
) -> None:
    received, port = events_app
    async with rig_for(port) as bot:
        asked = await bot.mention("first version")
        await bot.event_in_channel("message_changed", ts=asked.ts, text="<@U0BOT> second")
        await bot.event_in_channel("channel_join", user="U0NEW")
        await bot.event_in_channel("message_deleted", ts=asked.ts)
        await bot.event_in_channel("channel_topic", topic="Launch", user="U0ADA")

    changed, joined, deleted, topic = events(received)[1:]
    assert changed["subtype"] == "message_changed"
    assert changed["hidden"] is True
    assert changed["message"]["ts"] == asked.ts
    assert changed["message"]["text"] == "<@U0BOT> second"
    assert changed["message"]["edited"]["user"] == "U0USER"
    assert changed["previous_message"]["text"] == "<@U0BOT> first version"
    assert changed["ts"] > asked.ts
    assert (joined["subtype"], joined["user"]) == ("channel_join", "U0NEW")
    assert joined["text"] == "<@U0NEW> has joined the channel"
    assert (deleted["subtype"], deleted["deleted_ts"]) == ("message_deleted", asked.ts)
    assert deleted["previous_message"]["text"] == "<@U0BOT> second"
    assert (topic["subtype"], topic["topic"], topic["user"]) == ("channel_topic", "Launch", "U0ADA")
    assert all(e["channel_type"] == "channel" for e in (changed, joined, deleted, topic))
    assert slack.message(CHANNEL, asked.ts).deleted is True
    with pytest.raises(SlackApiError):
        await client_for(slack).conversations_replies(channel=CHANNEL, ts=asked.ts)


async def test_rig_without_one_fake_delivers_as_before_or_uses_the_chosen_fake(
    events_app: tuple[list[dict[str, Any]], int],
) -> None:
    received, port = events_app
    async with rig_for(port) as bot:
        assert running_fake() is None
        asked = await bot.mention("hi", twice=True)
        await bot.dm("", files=[{"id": "F0X", "name": "x.txt"}])
        with pytest.raises(AssertionError, match="use_slack"):
            await bot.say_in_thread("no store", thread_ts=asked.ts)
        async with FakeSlack() as one, FakeSlack() as two:
            assert running_fake() is None
            bot.use_slack(two)
            stored = await bot.say_in_thread("stored", thread_ts=asked.ts)

    mention, message = sorted(events(received)[:2], key=lambda e: str(e["type"]))
    dm = events(received)[2]
    assert mention["ts"] == message["ts"] == asked.ts
    assert message["channel_type"] == "channel"
    assert (dm["subtype"], dm["files"]) == ("file_share", [{"id": "F0X", "name": "x.txt"}])
    assert one.messages == {}
    assert two.message(CHANNEL, stored).thread_ts == asked.ts


# ----- the App Home: views.publish / open / update, uploads, image blocks


def png_bytes(size: tuple[int, int] = (8, 4)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (74, 123, 208)).save(out, format="PNG")
    return out.getvalue()


def section(text: str, **fields: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **fields}


def modal(callback_id: str = "settings", **fields: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": "Channel settings"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "instructions",
                "label": {"type": "plain_text", "text": "Instructions"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
        **fields,
    }


async def test_views_publish_keeps_each_users_home_tab_with_id_and_hash(slack: FakeSlack) -> None:
    client = client_for(slack)
    home = {"type": "home", "blocks": [section("Hello"), {"type": "divider"}]}

    first = await client.views_publish(user_id="U0ADA", view=home)
    again = await client.views_publish(
        user_id="U0ADA", view={**home, "blocks": [section("Hi again", block_id="greeting")]}
    )
    other = await client.views_publish(user_id="U0BOB", view=home)

    view = again["view"]
    assert view["id"] == first["view"]["id"] != other["view"]["id"]
    assert view["hash"] and view["hash"] != first["view"]["hash"]
    assert (view["type"], view["team_id"], view["app_id"], view["bot_id"]) == (
        "home",
        "T0001",
        "A0001",
        "B0BOT",
    )
    assert view["state"] == {"values": {}}
    assert view["root_view_id"] == view["id"]
    assert [b["block_id"] for b in view["blocks"]] == ["greeting"]
    assert all(b["block_id"] for b in first["view"]["blocks"])  # Slack fills them in
    assert slack.home_views["U0ADA"] == view
    assert slack.home_views["U0BOB"]["blocks"][0]["text"]["text"] == "Hello"
    assert slack.views[view["id"]] == view


async def test_views_publish_refuses_what_slack_refuses(slack: FakeSlack) -> None:
    client = client_for(slack)
    published = await client.views_publish(user_id="U0ADA", view={"type": "home", "blocks": []})

    async def error(**kwargs: Any) -> SlackApiError:
        with pytest.raises(SlackApiError) as refused:
            await client.views_publish(**{"user_id": "U0ADA", **kwargs})
        return refused.value

    too_many = await error(view={"type": "home", "blocks": [{"type": "divider"}] * 101})
    as_modal = await error(view=modal())
    long_text = await error(view={"type": "home", "blocks": [section("x" * 3001)]})
    unknown = await error(view={"type": "home", "blocks": [{"type": "carousel_of_dreams"}]})
    stale = await error(view={"type": "home", "blocks": []}, hash="1.stale")
    huge = await error(view={"type": "home", "blocks": [section("x" * 2900)] * 90})
    slack.home_tab_enabled = False
    off = await error(view={"type": "home", "blocks": []})

    assert too_many.response["error"] == "invalid_arguments"
    assert too_many.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
    ]
    assert as_modal.response["error"] == "invalid_arguments"
    assert "/view/type" in as_modal.response["response_metadata"]["messages"][0]
    assert "/view/blocks/0/text/text" in long_text.response["response_metadata"]["messages"][0]
    assert unknown.response["error"] == "invalid_arguments"
    assert stale.response["error"] == "hash_conflict"
    assert huge.response["error"] == "view_too_large"
    assert off.response["error"] == "not_enabled"
    # With the current hash it goes through, and nothing refused changed the tab.
    assert slack.home_views["U0ADA"] == published["view"]
    slack.home_tab_enabled = True
    ok = await client.views_publish(
        user_id="U0ADA", view={"type": "home", "blocks": []}, hash=published["view"]["hash"]
    )
    assert ok["view"]["id"] == published["view"]["id"]


async def test_views_open_needs_a_fresh_trigger_and_a_modal(slack: FakeSlack) -> None:
    client = client_for(slack)
    trigger = slack.new_trigger_id()

    opened = await client.views_open(trigger_id=trigger, view=modal())
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger, view=modal())
    with pytest.raises(SlackApiError) as missing:
        await client.api_call("views.open", json={"view": modal()})
    with pytest.raises(SlackApiError) as untitled:
        await client.views_open(trigger_id=slack.new_trigger_id(), view=modal(title=None))
    with pytest.raises(SlackApiError) as as_home:
        await client.views_open(
            trigger_id=slack.new_trigger_id(), view={"type": "home", "blocks": []}
        )
    slack.trigger_ttl = 0.05
    late = slack.new_trigger_id()
    await asyncio.sleep(0.1)
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id=late, view=modal())

    view = opened["view"]
    assert (view["type"], view["callback_id"]) == ("modal", "settings")
    assert view["id"].startswith("V") and view["hash"]
    assert view["title"]["text"] == "Channel settings"
    assert slack.opened_views == [view]
    assert reused.value.response["error"] == "exchanged_trigger_id"
    assert missing.value.response["error"] == "invalid_arguments"
    assert "/view/title" in untitled.value.response["response_metadata"]["messages"][0]
    assert as_home.value.response["error"] == "invalid_arguments"
    assert expired.value.response["error"] == "expired_trigger_id"


async def test_views_update_by_id_or_external_id_with_the_hash(slack: FakeSlack) -> None:
    client = client_for(slack)
    opened = (
        await client.views_open(trigger_id="1.2.abc", view=modal(external_id="settings-C0CHAN"))
    )["view"]
    home = (await client.views_publish(user_id="U0ADA", view={"type": "home", "blocks": []}))[
        "view"
    ]

    by_id = await client.views_update(
        view_id=opened["id"], hash=opened["hash"], view=modal(private_metadata="C0CHAN")
    )
    by_external = await client.views_update(
        external_id="settings-C0CHAN", view=modal(title={"type": "plain_text", "text": "Saved"})
    )
    home_now = await client.views_update(
        view_id=home["id"], view={"type": "home", "blocks": [section("Updated")]}
    )
    with pytest.raises(SlackApiError) as stale:
        await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal())
    with pytest.raises(SlackApiError) as unknown:
        await client.views_update(view_id="V0NOPE", view=modal())
    with pytest.raises(SlackApiError) as taken:
        await client.views_open(trigger_id="3.4.def", view=modal(external_id="settings-C0CHAN"))

    assert by_id["view"]["id"] == by_external["view"]["id"] == opened["id"]
    assert by_id["view"]["private_metadata"] == "C0CHAN"
    assert by_id["view"]["hash"] != opened["hash"]
    assert slack.views[opened["id"]]["title"]["text"] == "Saved"
    assert slack.opened_views == [opened]  # as views.open answered; `views` has the latest
    assert slack.home_views["U0ADA"] == home_now["view"]
    assert home_now["view"]["id"] == home["id"]
    assert stale.value.response["error"] == "hash_conflict"
    assert unknown.value.response["error"] == "not_found"
    assert taken.value.response["error"] == "duplicate_external_id"


async def test_files_upload_v2_keeps_a_private_file_for_an_image_block(slack: FakeSlack) -> None:
    client = client_for(slack)
    data = png_bytes()

    uploaded = await client.files_upload_v2(
        filename="spend.png", content=data, title="Daily spend", alt_txt="Bars"
    )
    file = uploaded["file"]
    info = await client.files_info(file=file["id"])
    async with aiohttp.ClientSession() as session:
        got = await session.get(file["url_private"], headers={"Authorization": "Bearer xoxb-test"})
        downloaded = await got.read()
    image = {"type": "image", "slack_file": {"id": file["id"]}, "alt_text": "Daily spend"}
    by_url = {**image, "slack_file": {"url": file["url_private"]}}
    home = await client.views_publish(
        user_id="U0ADA", view={"type": "home", "blocks": [image, by_url]}
    )

    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "files.info",
        "views.publish",
    ]
    assert slack.uploaded_files[file["id"]].data == data == downloaded
    assert slack.uploaded_files[file["id"]].title == "Daily spend"
    assert (file["title"], file["filetype"], file["mimetype"]) == (
        "Daily spend",
        "png",
        "image/png",
    )
    assert (file["size"], file["original_w"], file["original_h"]) == (len(data), 8, 4)
    assert (file["channels"], file["is_public"], file["user"]) == ([], False, "U0BOT")
    assert file["alt_txt"] == "Bars"
    assert info["file"]["id"] == file["id"]
    assert home["view"]["blocks"][0]["slack_file"] == {"id": file["id"]}
    assert slack.messages == {}  # private: shared nowhere


async def test_upload_steps_on_the_wire(slack: FakeSlack) -> None:
    client = client_for(slack)
    url = await client.files_getUploadURLExternal(filename="chart.png", length=4)
    short = await client.files_getUploadURLExternal(filename="short.png", length=10)
    async with aiohttp.ClientSession() as session:
        form = aiohttp.FormData()
        form.add_field("filename", b"\x89PNG", filename="chart.png")
        sent = await session.post(url["upload_url"], data=form)
        sent_text = await sent.text()
        mismatch = await session.post(short["upload_url"], data=b"12345")
    with pytest.raises(SlackApiError) as not_uploaded:
        await client.files_completeUploadExternal(files=[{"id": short["file_id"]}])
    with pytest.raises(SlackApiError) as zero:
        await client.files_getUploadURLExternal(filename="empty.png", length=0)
    done = await client.files_completeUploadExternal(
        files=[{"id": url["file_id"], "title": "Chart"}],
        channel_id=CHANNEL,
        initial_comment="This month",
    )

    assert url["upload_url"].startswith(slack.api_url.removesuffix("api/"))
    assert (sent.status, sent_text, sent.content_type) == (200, "OK - 4", "text/plain")
    assert mismatch.status == 400
    assert not_uploaded.value.response["error"] == "file_not_found"
    assert zero.value.response["error"] == "missing_argument"
    assert done["files"][0]["channels"] == [CHANNEL]
    assert slack.uploaded_files[url["file_id"]].channels == [CHANNEL]
    assert short["file_id"] not in slack.uploaded_files
    (shared,) = slack.messages[CHANNEL].values()
    assert (shared.text, shared.user, shared.files) == ("This month", "U0BOT", done["files"])


async def test_image_blocks_need_alt_text_and_a_known_image(slack: FakeSlack) -> None:
    client = client_for(slack)
    text_file = (await client.files_upload_v2(filename="notes.txt", content="hi"))["file"]
    picture = (await client.files_upload_v2(filename="a.png", content=png_bytes()))["file"]

    async def refused(block: dict[str, Any]) -> list[str]:
        with pytest.raises(SlackApiError) as err:
            await client.views_publish(user_id="U0ADA", view={"type": "home", "blocks": [block]})
        assert err.value.response["error"] == "invalid_arguments"
        return cast(list[str], err.value.response["response_metadata"]["messages"])

    image = {"type": "image", "alt_text": "Chart"}
    no_alt = await refused({"type": "image", "slack_file": {"id": picture["id"]}})
    unknown = await refused({**image, "slack_file": {"id": "F0NOPE"}})
    not_image = await refused({**image, "slack_file": {"id": text_file["id"]}})
    both = await refused({**image, "slack_file": {"id": picture["id"]}, "image_url": "https://x"})
    neither = await refused(image)
    id_and_url = await refused(
        {**image, "slack_file": {"id": picture["id"], "url": picture["url_private"]}}
    )
    ok = await client.views_publish(
        user_id="U0ADA",
        view={"type": "home", "blocks": [{**image, "image_url": "https://example.com/c.png"}]},
    )

    assert "/view/blocks/0/alt_text" in no_alt[0]
    assert all("slack_file" in m[0] for m in (unknown, not_image, id_and_url))
    assert all("exactly one of image_url, slack_file" in m[0] for m in (both, neither))
    assert ok["ok"] is True


@pytest.mark.parametrize("error", ["missing_scope", "not_allowed_token_type"])
async def test_upload_error_switch_makes_uploads_fail(slack: FakeSlack, error: str) -> None:
    client = client_for(slack)
    slack.upload_error = error

    with pytest.raises(SlackApiError) as refused:
        await client.files_upload_v2(filename="spend.png", content=png_bytes())
    scopes = (await client.auth_test()).headers["x-oauth-scopes"].split(",")

    assert refused.value.response["error"] == error
    assert slack.uploaded_files == {}
    if error == "missing_scope":
        assert refused.value.response["needed"] == "files:write"
        assert "files:write" not in refused.value.response["provided"].split(",")
        assert "files:write" not in scopes
    else:
        assert "files:write" in scopes
    slack.upload_error = None
    assert (await client.files_upload_v2(filename="spend.png", content=png_bytes()))["ok"]


# ----- the rig's App Home helpers, seen by a real Bolt app


@pytest.fixture
async def home_app(
    slack: FakeSlack,
) -> AsyncIterator[tuple[list[dict[str, Any]], int]]:
    """A small Bolt app with a Home tab, a settings button, a modal and a chart image; it
    records every body Bolt gave its listeners."""
    seen: list[dict[str, Any]] = []
    bolt = AsyncApp(client=client_for(slack), signing_secret=SIGNING_SECRET)

    @bolt.event("app_home_opened")
    async def opened(body: dict[str, Any], client: AsyncWebClient) -> None:
        seen.append(body)
        chart = await client.files_upload_v2(filename="spend.png", content=png_bytes())
        blocks = [
            section("Welcome"),
            {"type": "image", "slack_file": {"id": chart["file"]["id"]}, "alt_text": "Spend"},
            {
                "type": "actions",
                "block_id": "channel-C0CHAN",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "open_settings",
                        "text": {"type": "plain_text", "text": "Settings"},
                        "value": "C0CHAN",
                    }
                ],
            },
        ]
        user = body["event"]["user"]
        await client.views_publish(user_id=user, view={"type": "home", "blocks": blocks})

    @bolt.action("open_settings")
    async def settings(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.views_open(trigger_id=body["trigger_id"], view=modal())

    @bolt.view("settings")
    async def submitted(ack: Any, body: dict[str, Any]) -> None:
        seen.append(body)
        text = body["view"]["state"]["values"]["instructions"]["text"]["value"]
        if not text:
            await ack(response_action="errors", errors={"instructions": "Say something"})
        else:
            await ack()

    async def handle(request: web.Request) -> web.Response:
        req = AsyncBoltRequest(body=await request.text(), headers=dict(request.headers))
        return await to_aiohttp_response(await bolt.async_dispatch(req))

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield seen, runner.addresses[0][1]
    await runner.cleanup()


async def test_rig_home_tab_click_and_modal_submission_reach_bolt(
    slack: FakeSlack, home_app: tuple[list[dict[str, Any]], int]
) -> None:
    seen, port = home_app
    async with rig_for(port) as bot:
        first = await bot.app_home_opened(user="U0ADA")
        await slack.wait_for(lambda: "U0ADA" in slack.home_views)
        again = await bot.app_home_opened(user="U0ADA")
        await slack.wait_for(lambda: len(slack.calls_to("views.publish")) == 2)
        messages_tab = await bot.app_home_opened(user="U0ADA", tab="messages")
        clicked = await bot.click_in_view("open_settings", user="U0ADA")
        await slack.wait_for(lambda: len(slack.opened_views) == 1)
        empty = await bot.view_submission({"text": ""}, user="U0ADA")
        saved = await bot.view_submission({"text": "Be brief"}, user="U0ADA")
        with pytest.raises(AssertionError, match="no element 'nope'"):
            await bot.click_in_view("nope", user="U0ADA")
        with pytest.raises(AssertionError, match="no input"):
            await bot.view_submission({"nope": "x"}, user="U0ADA")

    opened_events = [b for b in seen if b.get("type") == "event_callback"]
    assert [b["event_id"] for b in opened_events] == [first, again, messages_tab]
    event, second, messages = (b["event"] for b in opened_events)
    assert (event["type"], event["user"], event["tab"]) == ("app_home_opened", "U0ADA", "home")
    assert "view" not in event  # nothing published yet
    assert second["view"]["id"] == slack.home_views["U0ADA"]["id"]
    assert messages["tab"] == "messages" and "view" not in messages
    action = next(b for b in seen if b.get("type") == "block_actions")
    assert clicked.status == 200
    assert action["container"] == {"type": "view", "view_id": slack.home_views["U0ADA"]["id"]}
    assert action["view"]["type"] == "home"
    assert "channel" not in action and "message" not in action and "response_url" not in action
    assert action["actions"][0]["value"] == "C0CHAN"
    assert action["actions"][0]["block_id"] == "channel-C0CHAN"
    submissions = [b for b in seen if b.get("type") == "view_submission"]
    assert [s["view"]["state"]["values"] for s in submissions] == [
        {"instructions": {"text": {"type": "plain_text_input", "value": ""}}},
        {"instructions": {"text": {"type": "plain_text_input", "value": "Be brief"}}},
    ]
    assert submissions[0]["view"]["id"] == slack.opened_views[0]["id"]
    assert json.loads(empty.body) == {
        "response_action": "errors",
        "errors": {"instructions": "Say something"},
    }
    assert (saved.status, saved.body) == (200, "")
