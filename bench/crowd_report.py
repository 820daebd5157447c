"""The figures of bench/crowd.py, printed beside their goals, and the closing markdown table."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

GOAL_AT = 30  # the ack and completion goals are set for 30 mentions
ACK_P99_GOAL_MS = 25.0
COMPLETION_P99_GOAL_S = 27.0


@dataclass
class Result:
    n: int
    answered: int
    refused: Counter[str]  # what the askers were told instead, by text
    unsettled: Counter[str]  # neither answered nor refused: what their threads show, by text
    ack_errors: Counter[int]  # HTTP status of acks that were not 200
    ratelimited: int
    ratelimited_methods: Counter[str]
    ack_p50: float | None
    ack_p99: float | None
    completion_p50: float | None
    completion_p99: float | None
    floor: float  # for n replies whose streams all end at once
    floor_here: float | None  # p99 for the answered replies' actual stream end times
    queue_found: bool
    queue_p99: float | None
    cpu_ms_per_reply: float | None
    peak_rss_mb: list[float]
    growth_kb_per_reply: float | None
    replicas: int = 1
    ended: str = ""
    wall: float = 0.0  # from sending the mentions to settled
    runtime: float = 0.0  # the whole run, start-up and shutdown included
    logs: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        if self.replicas == 1:
            return "1 process (SQLite)"
        return f"{self.replicas} replicas (PostgreSQL)"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest rank."""
    ordered = sorted(v for v in values if not math.isnan(v))
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else None


def edit_floor(finishes: list[float], burst: float, rate: float) -> float | None:
    """p99 of the least completion each reply could have had: one final edit per stream end,
    in order, through a token bucket (full at the first end), and no other edits at all."""
    tokens, last, waits = burst, min(finishes, default=0.0), []
    for end in sorted(finishes):
        now = max(end, last)
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            now += (1 - tokens) / rate
            tokens = 1.0
        tokens, last = tokens - 1, now
        waits.append(now - end)
    return percentile(waits, 0.99)


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def _ack_ok(r: Result) -> bool | None:
    if r.n != GOAL_AT or r.ack_p99 is None:
        return None
    return r.ack_p99 <= ACK_P99_GOAL_MS


def _completion_ok(r: Result) -> bool | None:
    if r.n != GOAL_AT or r.completion_p99 is None or r.answered != r.n:
        return None
    return r.completion_p99 <= COMPLETION_P99_GOAL_S


def _queue(r: Result) -> str:
    if not r.queue_found:
        return "n/a (no queue_wait_seconds histogram)"
    return _num(r.queue_p99, 2, " s") + ("" if r.queue_p99 is not None else " (no samples)")


def print_result(r: Result) -> None:
    ack_goal = f"p99 ≤ {ACK_P99_GOAL_MS:.0f} ms at {GOAL_AT}"
    completion_goal = f"≤ {COMPLETION_P99_GOAL_S:.0f} s at {GOAL_AT}"
    floor = (
        f"floor {r.floor:.1f} s if {r.n} streams end at once, "
        f"{_num(r.floor_here, 1, ' s')} for the {r.answered} answered as they ended"
    )
    print(f"\n{r.n} simultaneous mentions, {r.where}: {r.ended}")
    print(f"  mentions sent to settled: {r.wall:.1f} s; whole run: {r.runtime:.1f} s")
    lines = [
        ("answered", f"{r.answered}/{r.n}{_mark(r.answered == r.n)}", "all"),
        ("HTTP 429s", f"{r.ratelimited}{_mark(r.ratelimited == 0)}", "0"),
        (
            "ack p50 / p99",
            f"{_num(r.ack_p50)} / {_num(r.ack_p99)} ms{_mark(_ack_ok(r))}",
            ack_goal,
        ),
        (
            "completion after the model finished p99",
            f"{_num(r.completion_p99, 1, ' s')}{_mark(_completion_ok(r))}"
            f" (p50 {_num(r.completion_p50, 1, ' s')})",
            f"{completion_goal}; {floor}",
        ),
        ("queue wait p99", _queue(r), "none set"),
        ("CPU per answered reply", _num(r.cpu_ms_per_reply, 0, " ms"), "none set"),
        (
            "peak RSS per process",
            ", ".join(f"{mb:.0f} MB" for mb in r.peak_rss_mb)
            + f"; growth {_num(r.growth_kb_per_reply, 0, ' kB')} per answered reply",
            "none set",
        ),
    ]
    for name, figure, goal in lines:
        print(f"  {name + ':':<41} {figure}   (goal: {goal})")
    for text, count in r.refused.most_common():
        print(f"  refused {count}×: {text!r}")
    for text, count in r.unsettled.most_common():
        print(f"  neither answered nor refused {count}×, the thread shows: {text!r}")
    if r.ack_errors:
        print(f"  acks not 200: {dict(r.ack_errors)}")
    if r.ratelimited_methods:
        print(f"  429s by method: {dict(r.ratelimited_methods)}")
    for k, summary in enumerate(r.logs):
        print(f"  bot{k} log: {summary}")


def table(results: list[Result], skipped: list[str]) -> str:
    """One markdown table of every run, goals in the header."""
    head = (
        "| mentions | bot | answered (goal: all) | HTTP 429s (goal: 0) "
        f"| ack p50 / p99 ms (goal: p99 ≤ {ACK_P99_GOAL_MS:.0f} at {GOAL_AT}) "
        f"| completion after model p99 s (goal: ≤ {COMPLETION_P99_GOAL_S:.0f} at {GOAL_AT}) "
        "| floor s (all at once / as ended) | queue wait p99 s | CPU ms / reply "
        "| peak RSS MB / process | RSS growth kB / reply | mentions → settled s |"
    )
    rows = [head, "|" + " --- |" * head.count(" |")]
    for r in results:
        cells = [
            str(r.n),
            r.where,
            f"{r.answered}/{r.n}{_mark(r.answered == r.n)}",
            f"{r.ratelimited}{_mark(r.ratelimited == 0)}",
            f"{_num(r.ack_p50)} / {_num(r.ack_p99)}{_mark(_ack_ok(r))}",
            f"{_num(r.completion_p99)}{_mark(_completion_ok(r))}",
            f"{r.floor:.1f} / {_num(r.floor_here)}",
            "n/a" if not r.queue_found else _num(r.queue_p99, 2),
            _num(r.cpu_ms_per_reply, 0),
            ", ".join(f"{mb:.0f}" for mb in r.peak_rss_mb),
            _num(r.growth_kb_per_reply, 0),
            f"{r.wall:.0f}",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    rows += [f"\n{note}" for note in skipped]
    return "\n".join(rows)
