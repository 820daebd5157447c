"""Whether a channel is a Slack Connect channel (shared with another organisation).

Events say so themselves (`is_ext_shared_channel`); a slash command does not, so for `/ask`
the bot asks conversations.info (channels:read / groups:read), cached, since a channel
rarely changes. If Slack cannot say (a missing scope, an outage), the channel counts as
not shared, and that is logged once.
"""

from __future__ import annotations

import logging
import time

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.scheduler import SLACK_ERRORS

log = logging.getLogger(__name__)

CACHE_SECONDS = 600.0


class SharedChannels:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._known: dict[str, tuple[float, bool]] = {}
        self._warned = False

    async def external(self, channel_id: str) -> bool:
        if not channel_id.startswith(("C", "G")):
            return False  # a DM or a group DM is never shared with another organisation
        known = self._known.get(channel_id)
        if known is not None and time.monotonic() - known[0] < CACHE_SECONDS:
            return known[1]
        try:
            response = await self._client.conversations_info(channel=channel_id)
        except SLACK_ERRORS:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot tell whether channels are Slack Connect channels "
                    "(conversations.info failed; needs channels:read and groups:read): "
                    "/ask treats them as not shared",
                    exc_info=True,
                )
            return False
        channel = response.get("channel") or {}
        shared = bool(channel.get("is_ext_shared"))
        self._known[channel_id] = (time.monotonic(), shared)
        return shared
