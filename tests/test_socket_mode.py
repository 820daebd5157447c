"""Socket Mode: events arrive over the fake's websocket, are acknowledged, and are answered."""

from __future__ import annotations

import time

from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, eventually, make_settings, start_bot


def mention(event_id: str, ts: str) -> dict[str, object]:
    return {
        "type": "event_callback",
        "team_id": TEAM_ID,
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "app_mention",
            "user": "U0USER",
            "text": "<@U0BOT> hello over the socket",
            "ts": ts,
            "channel": CHANNEL,
        },
    }


async def test_socket_mode_answers_and_ignores_a_redelivery(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        slack_app_token=fake_slack.app_token,
        slack_signing_secret="",
    )
    fake_anthropic.enqueue(Reply(text="Hi from the socket."))
    async with start_bot(settings) as bot:
        await eventually(lambda: bool(fake_slack.sockets), what="a socket connection")
        first = await fake_slack.push_event(mention("EvSock1", "1690000099.000100"))
        again = await fake_slack.push_event(
            mention("EvSock1", "1690000099.000100"), retry_attempt=1
        )
        await bot.wait_for_usage(1)
        await eventually(lambda: {first, again} <= set(fake_slack.acks), what="acks")
        # /slack/events is not served in Socket Mode; /healthz is.
        async with bot.http.get(f"{bot.url}/healthz") as response:
            assert response.status == 200
        async with bot.http.post(f"{bot.url}/slack/events", data="{}") as response:
            assert response.status == 404

    assert fake_slack.thread_text(CHANNEL, "1690000099.000100") == ["Hi from the socket."]
    assert len(fake_anthropic.message_requests) == 1
