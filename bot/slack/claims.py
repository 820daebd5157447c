"""The keys under which Slack deliveries are claimed once in the database."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest

from bot.store import Store, message_claim

log = logging.getLogger(__name__)


def message_key(body: dict[str, Any], event: dict[str, Any]) -> str:
    team_id = str(body.get("team_id") or event.get("team") or "")
    return message_claim(team_id, str(event.get("channel")), str(event.get("ts")))


def event_key(body: dict[str, Any], event: dict[str, Any]) -> str:
    return str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")


async def claim_once(store: Store, key: str, team_id: str, kind: str) -> bool:
    """Commands and clicks are taken once too, keyed on Slack's trigger id."""
    if await store.claim_event(key, team_id, kind):
        return True
    log.info("ignoring a repeated %s %s", kind, key)
    return False


def retry_num(request: AsyncBoltRequest) -> int:
    # Header values are lists; Socket Mode synthesises the header even for attempt 0.
    values = request.headers.get("x-slack-retry-num") or ["0"]
    try:
        return int(values[0])
    except ValueError:
        return 0
