"""A reply Slack's API could not take at all (the network, a 5xx, a 429 that outlasted the
retries): the question was acknowledged to Slack, which will not deliver it again, so it is
handed back with its claim and tried again by the next recovery sweep (of this process or any
other) until a post gets through or QUESTION_RETRY_SECONDS pass (bot.engine.recovery)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from slack_sdk.errors import SlackApiError

from bot.engine import Turn
from bot.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")


class SlackUnreachable(Exception):
    """The reply's first post did not reach Slack, for a reason that may pass."""


def passing(error: BaseException) -> bool:
    """Whether trying again later may succeed: not a refusal (channel_not_found, …)."""
    if isinstance(error, SlackApiError):
        status = int(error.response.status_code)
        return status >= 500 or status == 429
    return True  # the network: refused, reset, timed out


async def kept_if_unreachable(
    turn: Turn, store: Store, answer: Callable[[], Awaitable[T]]
) -> T | None:
    """Run `answer` in the turn; if Slack could not be reached, hand the question back."""
    try:
        async with turn:
            return await answer()
    except SlackUnreachable:
        claim = turn.ask.claim
        if claim is not None:
            log.warning("Slack could not take the reply to %s; it will be tried again", claim)
            await store.hand_back_question(claim)
        return None
