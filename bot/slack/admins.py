"""Who is an admin: Slack workspace admins and owners (users.info, cached), plus ADMIN_USER_IDS."""

from __future__ import annotations

import logging
import time

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.scheduler import SLACK_ERRORS

log = logging.getLogger(__name__)

# users.info is Tier 4, but a click or a command should not cost a Slack call each time;
# a few minutes is short enough for a revoked admin to lose the right soon.
CACHE_SECONDS = 300.0
MAX_LIST_PAGES = 10


class Admins:
    def __init__(self, slack: AsyncWebClient, configured: frozenset[str]) -> None:
        self._slack = slack
        self._configured = configured
        self._cache: dict[str, tuple[float, bool]] = {}

    async def is_admin(self, user_id: str) -> bool:
        if user_id in self._configured:
            return True
        cached = self._cache.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            response = await self._slack.users_info(user=user_id)
        except SLACK_ERRORS:
            # Fail closed, and do not cache: the next try may reach Slack.
            log.warning("users.info failed for %s; treating as not an admin", user_id)
            return False
        user = response.get("user") or {}
        admin = not user.get("is_bot") and any(
            bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner")
        )
        self._cache[user_id] = (time.monotonic(), admin)
        return admin

    async def listed(self) -> list[str]:
        """Whom to tell about the workspace's problems: ADMIN_USER_IDS, or else the
        workspace's admins and owners as users.list names them (Tier 2; a few pages)."""
        if self._configured:
            return sorted(self._configured)
        found: list[str] = []
        cursor: str | None = None
        try:
            for _page in range(MAX_LIST_PAGES):
                response = await self._slack.users_list(limit=200, cursor=cursor)
                for user in response.get("members") or []:
                    if user.get("is_bot") or user.get("deleted"):
                        continue
                    if any(user.get(f) for f in ("is_admin", "is_owner", "is_primary_owner")):
                        found.append(str(user["id"]))
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if cursor is None:
                    break
        except SLACK_ERRORS:
            log.warning("users.list failed; the admins found so far get the notice")
        return found
