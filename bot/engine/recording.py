"""Recording a finished Claude request: the ledger row (priced), the metrics, one log line."""

from __future__ import annotations

import asyncio
import logging

from bot.claude import Finished
from bot.cost.prices import PriceTable, Tokens
from bot.metrics import Metrics
from bot.store import Ledger, Outcome, Place, UsageRow

log = logging.getLogger("bot.requests")
RECORD_ATTEMPTS = 3


class Recorder:
    def __init__(self, *, ledger: Ledger, prices: PriceTable, metrics: Metrics, model: str) -> None:
        self._ledger = ledger
        self._prices = prices
        self._metrics = metrics
        self._model = model
        self._unpriced: set[str] = set()

    def usage_row(
        self,
        finished: Finished,
        *,
        text: str,
        stopped: bool,
        interrupted: bool = False,
        model: str | None = None,
    ) -> UsageRow:
        """The ledger row of a request to `model` (default: CLAUDE_MODEL)."""
        requested = model or self._model
        if finished.stop_reason == "refusal":
            outcome = Outcome.REFUSED  # a normal end, but not an answer: told apart
        elif finished.error is None and not (stopped or interrupted or finished.cancelled):
            outcome = Outcome.COMPLETE
        elif text or stopped:
            outcome = Outcome.PARTIAL
        else:
            outcome = Outcome.ERROR
        if interrupted:
            error_kind: str | None = "interrupted"
        elif stopped:
            error_kind = "stopped"
        elif finished.error is not None:
            error_kind = finished.error.failure.value
        else:
            error_kind = "cancelled" if finished.cancelled else None
        usage = finished.usage
        model = finished.model or requested
        tokens = Tokens(
            input=usage.input_tokens,
            output=usage.output_tokens,
            cache_write_5m=usage.cache_write_5m,
            cache_write_1h=usage.cache_write_1h,
            cache_read=usage.cache_read,
        )
        cost = self._prices.cost(
            model,
            tokens,
            inference_geo=usage.inference_geo,
            speed=usage.speed,
            web_searches=usage.web_search_requests,
            web_fetches=usage.web_fetch_requests,
        )
        if cost.estimated and model not in self._unpriced:
            self._unpriced.add(model)  # once per model, not once per request
            log.warning(
                "no complete price for model %s in price table %s: its requests count at a "
                "conservative estimate (set PRICING_FILE to price it)",
                model,
                self._prices.version,
            )
        return UsageRow(
            requested_model=requested,
            resolved_model=finished.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_5m_tokens=usage.cache_write_5m,
            cache_write_1h_tokens=usage.cache_write_1h,
            cache_read_tokens=usage.cache_read,
            stop_reason=finished.stop_reason,
            request_id=finished.request_id,
            ttft_ms=finished.ttft_ms,
            latency_ms=finished.latency_ms,
            outcome=outcome,
            error_kind=error_kind,
            cost_micros=cost.micros,
            cache_savings_micros=self._prices.cache_savings_micros(model, tokens),
            price_version=self._prices.version,
            thinking_tokens=usage.thinking_tokens,
            inference_geo=usage.inference_geo,
            speed=usage.speed,
            web_search_requests=usage.web_search_requests,
            web_fetch_requests=usage.web_fetch_requests,
            estimate_micros=cost.estimate_micros,
            stop_detail=finished.stop_detail,
        )

    async def record_surely(
        self,
        place: Place,
        *,
        surface: str,
        turn_id: int | None,
        text: str,
        user_id: str | None,
        usage: UsageRow,
    ) -> bool:
        """`record`, tried again after a failure (a database restarting): the ledger must
        not lose a request that was paid for. False when every attempt failed."""
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                await self.record(
                    place, surface=surface, turn_id=turn_id, text=text, user_id=user_id, usage=usage
                )
            except Exception:
                log.exception("could not record turn %s (attempt %d)", turn_id, attempt)
                if attempt < RECORD_ATTEMPTS:
                    await asyncio.sleep(attempt / 2)
            else:
                return True
        return False

    async def record(
        self,
        place: Place,
        *,
        surface: str,
        turn_id: int | None,
        text: str,
        user_id: str | None,
        usage: UsageRow,
    ) -> None:
        await self._ledger.finish_reply(
            place, turn_id=turn_id, text=text, user_id=user_id, usage=usage
        )
        self._metrics.observe(surface, usage)
        log.info(
            "claude request finished",
            extra={
                "surface": surface,
                "request_id": usage.request_id,
                "team": place.team_id,
                "channel": place.channel_id,
                "thread_ts": place.thread_ts,
                "user": user_id,
                "model": usage.resolved_model or usage.requested_model,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "thinking_tokens": usage.thinking_tokens,
                "cache_write_5m_tokens": usage.cache_write_5m_tokens,
                "cache_write_1h_tokens": usage.cache_write_1h_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "cost_micros": usage.cost_micros,
                "estimate_micros": usage.estimate_micros,
                "ttft_ms": usage.ttft_ms,
                "latency_ms": usage.latency_ms,
                "outcome": usage.outcome.value,
                "error": usage.error_kind,
                "stop_reason": usage.stop_reason,
            },
        )
