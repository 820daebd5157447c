"""/slack/events checks Slack's signature over the raw bytes before anything reads the body.

A forged request gets a 401 whatever its body; only a correctly signed body is decoded and
parsed, and one that is not UTF-8, JSON or a form gets a 400, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from bot.config import Settings
from bot.slack.requests import RawSignatureVerifier
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, SIGNING_SECRET, BotUnderTest, settle, start_bot

FORM = "application/x-www-form-urlencoded"
NOT_UTF8 = b"command=/ask&text=\xff\xfe"


def sign(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature over the raw bytes (slack_sdk's helper wants UTF-8 text)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


async def post_bytes(
    bot: BotUnderTest,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    secret: str = SIGNING_SECRET,
) -> tuple[int, str]:
    """POST raw bytes, signed with `secret` unless `headers` says otherwise."""
    stamp = str(int(time.time()))
    sent = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, stamp, secret),
    }
    if headers is not None:
        sent = {"Content-Type": content_type, **headers}
    async with bot.http.post(f"{bot.url}/slack/events", data=body, headers=sent) as resp:
        return resp.status, await resp.text()


async def test_signed_body_that_is_not_utf8_is_400_not_500(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        form = await post_bytes(bot, NOT_UTF8, content_type=FORM)
        as_json = await post_bytes(bot, b'{"type": "\xff"}')
        await settle()
        assert await bot.usage() == []

    assert form[0] == 400
    assert json.loads(form[1]) == {"error": "malformed body"}
    assert as_json[0] == 400
    assert fake_anthropic.requests == []
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_wrong_or_missing_signature_is_401_whatever_the_body(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    stamp = str(int(time.time()))
    async with start_bot(settings) as bot:
        # Forged bodies that would be a 400 (or a 500) if anything parsed them first.
        forged_bytes = await post_bytes(bot, NOT_UTF8, content_type=FORM, secret="wrong")
        forged_json = await post_bytes(bot, b"{not json", secret="wrong")
        forged_mention = await bot.mention("hello", secret="not-the-secret")
        unsigned = await post_bytes(bot, b"{}", headers={})
        no_stamp = await post_bytes(bot, b"{}", headers={"X-Slack-Signature": sign(b"{}", stamp)})
        bad_stamp = await post_bytes(
            bot,
            b"{}",
            headers={"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
        )
        stale = str(int(time.time()) - 600)
        replayed = await post_bytes(
            bot,
            b"{}",
            headers={"X-Slack-Request-Timestamp": stale, "X-Slack-Signature": sign(b"{}", stale)},
        )
        await settle()
        assert await bot.usage() == []

    refused = [forged_bytes, forged_json, unsigned, no_stamp, bad_stamp, replayed]
    assert [status for status, _body in refused] == [401] * len(refused)
    assert all("error" in json.loads(body) for _status, body in refused)
    assert forged_mention.delivery.status == 401
    assert fake_anthropic.requests == []
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_signed_malformed_json_is_still_400(settings: Settings) -> None:
    async with start_bot(settings) as bot:
        bad_json = await bot.post_signed("{not json")
        not_an_object = await bot.post_signed("[1, 2]")
        bad_payload = await bot.post_signed("payload=%7Bbad", content_type=FORM)

    assert (bad_json.status, not_an_object.status, bad_payload.status) == (400, 400, 400)
    assert json.loads(bad_json.body) == {"error": "malformed body"}


async def test_signed_mention_is_still_answered(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        mention = await bot.mention("are you there? 🎉")
        await bot.wait_for_usage(1)

    assert mention.delivery.status == 200
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Hello from the fake Claude."]
    assert len(fake_anthropic.message_requests) == 1


def test_garbled_signature_headers_are_refused_not_raised() -> None:
    verifier = RawSignatureVerifier(SIGNING_SECRET)
    now = str(int(time.time()))
    good = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign(NOT_UTF8, now)}
    assert verifier.is_valid_request(NOT_UTF8, good)
    assert not verifier.is_valid_request(NOT_UTF8 + b"!", good)
    for headers in (
        {},
        {"X-Slack-Signature": sign(NOT_UTF8, now)},
        {"X-Slack-Request-Timestamp": now},
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=é"},
        {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "\udcff", "X-Slack-Signature": "v0=00"},
    ):
        assert not verifier.is_valid_request(NOT_UTF8, headers), headers
