"""The crowd's side of Slack for bench/crowd.py: signed app_mention deliveries (ack timed) and
what became of each mention in the fake Slack (answered, refused, or what its thread shows)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

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


async def start_sender() -> asyncio.subprocess.Process:
    """Slack's sender (bench/crowd_sender.py), started and past its imports."""
    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("crowd_sender.py")),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert sender.stdout is not None
    await sender.stdout.readline()  # "ready"
    return sender


async def deliver_all(
    sender: asyncio.subprocess.Process, urls: list[str], mentions: list[Mention]
) -> None:
    """Each mention to its bot, all at once, from Slack's sender; each mention's ack time
    and status filled in."""
    assert sender.stdin is not None
    assert sender.stdout is not None
    deliveries = [
        {"url": f"{url}/slack/events", "body": m.body, "headers": signed(m.body)}
        for url, m in zip(urls, mentions, strict=True)
    ]
    sender.stdin.write(json.dumps(deliveries).encode() + b"\n")
    await sender.stdin.drain()
    results = json.loads(await sender.stdout.readline())
    await sender.wait()
    for m, result in zip(mentions, results, strict=True):
        m.ack_ms, m.status = result["ack_ms"], result["status"]


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
