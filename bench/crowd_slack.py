"""The crowd's side of Slack for bench/crowd.py: signed app_mention deliveries (ack timed) and
what became of each mention in the fake Slack (answered, refused, or what its thread shows)."""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import FakeSlack
from tests.rig import SIGNING_SECRET, TEAM_ID

CHUNKS = 40
PER_CHANNEL = 10
_event_ids = itertools.count(1)


def answer(i: int) -> str:
    return "".join(f"reply{i}-word{j} " for j in range(CHUNKS)).strip()


@dataclass
class Mention:
    channel: str
    user: str
    ts: str
    body: str
    ack_ms: float = math.nan
    status: int = 0


def mentions_for(slack: FakeSlack, n: int) -> list[Mention]:
    """n app_mention deliveries, PER_CHANNEL to a channel, each from another person; the
    messages are stored in the fake Slack first, as people's messages are in Slack."""
    channels = max(1, math.ceil(n / PER_CHANNEL))
    out = []
    for i in range(n):
        channel, user = f"C{i % channels:04d}", f"U{i:05d}"
        text = f"<@{slack.bot_user_id}> question {i}"
        ts = slack.add_message(channel, text, user=user)
        event = {"type": "app_mention", "user": user, "text": text, "ts": ts}
        event.update(team=TEAM_ID, channel=channel, event_ts=ts)
        envelope = {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": f"EvCrowd{next(_event_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": slack.bot_user_id, "is_bot": True}],
        }
        out.append(Mention(channel, user, ts, json.dumps(envelope)))
    return out


def signed(body: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }


async def deliver(
    http: aiohttp.ClientSession, url: str, mention: Mention, headers: dict[str, str]
) -> None:
    started = time.perf_counter()
    async with http.post(f"{url}/slack/events", data=mention.body, headers=headers) as resp:
        await resp.read()
    mention.ack_ms = (time.perf_counter() - started) * 1000
    mention.status = resp.status


@dataclass
class Outcomes:
    answered: dict[int, int] = field(default_factory=dict)  # mention -> scripted answer
    refused: dict[int, str] = field(default_factory=dict)  # mention -> what the asker was told
    other: dict[int, str] = field(default_factory=dict)  # mention -> what its thread shows

    def settled(self, n: int) -> bool:
        return len(self.answered) + len(self.refused) >= n


def outcomes(slack: FakeSlack, mentions: list[Mention], answers: dict[str, int]) -> Outcomes:
    told = {(c.params.get("channel"), c.params.get("user")): c for c in slack.ephemerals}
    found = Outcomes()
    for i, m in enumerate(mentions):
        shown = [answers.get(msg.shown) for msg in slack.thread(m.channel, m.ts)]
        if served := [s for s in shown if s is not None]:
            found.answered[i] = served[0]
        elif (note := told.get((m.channel, m.user))) is not None and note.error is None:
            found.refused[i] = str(note.params.get("text", ""))
        else:
            thread = slack.thread(m.channel, m.ts)
            found.other[i] = thread[-1].shown if thread else "(nothing in its thread)"
    return found
