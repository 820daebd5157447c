"""How the bot's Slack clients are built: Slack's own retry handlers, counted in the metrics."""

from __future__ import annotations

from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

from bot.metrics import Metrics


class CountedRateLimitRetries(AsyncRateLimitErrorRetryHandler):
    """Slack's own 429 handling, counted in the metrics."""

    def __init__(self, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics

    async def _can_retry_async(self, **kwargs: Any) -> bool:
        response = kwargs.get("response")
        if response is not None and response.status_code == 429:
            method = kwargs["request"].url.rsplit("/", 1)[-1]
            self._metrics.slack_rate_limited.labels(method).inc()
        return await super()._can_retry_async(**kwargs)
