"""Prometheus metrics, served at GET /metrics. One registry per running bot (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.store import UsageRow

LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
TOKEN_KINDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_write_5m": "cache_write_5m_tokens",
    "cache_write_1h": "cache_write_1h_tokens",
    "cache_read": "cache_read_tokens",
    "thinking": "thinking_tokens",  # a part of output, billed as output
}

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "claude_requests",
            "Claude requests by surface and outcome",
            ["surface", "outcome"],
            registry=r,
        )
        self.tokens = Counter("claude_tokens", "Tokens by kind", ["kind"], registry=r)
        self.cost = Counter("claude_cost_usd", "Cost of priced requests, in US dollars", registry=r)
        self.unpriced = Counter(
            "claude_unpriced_requests", "Requests whose cost is unknown", registry=r
        )
        self.ttft = Histogram(
            "claude_time_to_first_token_seconds",
            "Time to first token",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "claude_request_duration_seconds",
            "Total request time",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "claude_streams_in_flight", "Claude streams being relayed", registry=r
        )
        self.slack_errors = Counter(
            "slack_api_errors", "Slack Web API errors", ["method", "error"], registry=r
        )
        self.slack_rate_limited = Counter(
            "slack_rate_limited",
            "Slack 429 responses (waited out and retried)",
            ["method"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "budget_refusals", "Requests refused by a budget", ["scope"], registry=r
        )
        self.rate_limited = Counter(
            "rate_limit_refusals", "Requests refused by a rate limit", ["reason"], registry=r
        )
        self.queue_wait = Histogram(
            "queue_wait_seconds",
            "Time a question waited for its turn in the fair queue (0: none)",
            buckets=(0.0, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.queue_outcomes = Counter(
            "queue_waits", "Questions that had to wait, by how the wait ended", ["end"], registry=r
        )

    def observe(self, surface: str, usage: UsageRow) -> None:
        self.requests.labels(surface, usage.outcome).inc()
        for kind, name in TOKEN_KINDS.items():
            self.tokens.labels(kind).inc(getattr(usage, name))
        if usage.cost_micros is None:
            self.unpriced.inc()
        else:
            self.cost.inc(usage.cost_micros / 1_000_000)
        if usage.ttft_ms is not None:
            self.ttft.observe(usage.ttft_ms / 1000)
        self.latency.observe(usage.latency_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)
