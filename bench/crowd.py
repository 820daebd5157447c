"""A crowd at once: 30, 100 and 300 simultaneous mentions, on one process and on two replicas.

The bot runs as real child processes (`python -m bot`): one on SQLite, or replicas sharing one
throwaway PostgreSQL (tests/postgres.py), mentions sent to them round-robin as a load balancer
would. This process serves the fakes: Slack at its documented tiers (chat.update 50 a minute
per workspace after a burst of 10, chat.postMessage 1 a second per channel; 429 beyond) and
Anthropic streaming each answer for 4 s. All mentions are sent at once, ten per channel, each
from its own person. Measured, each beside its goal (issue 12, item 5):

- answered: replies whose final text in Slack is the model's whole answer (goal: all)
- HTTP 429s the fake Slack answered (goal 0)
- ack: each POST /slack/events' response time, p50 and p99, timed in a process of its own as
  Slack's own senders are (goal p99 ≤ 25 ms at 30)
- completion after the model finished: a reply's last chat.update minus the end of its stream,
  p99 (goal ≤ 27 s at 30; the floor is N final edits at 50 a minute after a burst of 10 when
  all N streams end together; also printed: the floor for the streams' actual end times)
- queue wait p99 from the replicas' `queue_wait_seconds` histograms (GET /metrics), if any
- CPU ms per answered reply (utime + stime from ready to the end), peak RSS (VmHWM) per process
  and its growth from ready to the end per answered reply

    PYTHONPATH=. .venv/bin/python bench/crowd.py [--sizes 30,100,300] [--replicas 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench.crowd_procs import BotProcess, Sample, bot_env, histogram_p99, keep_logs, migrate
from bench.crowd_report import Result, edit_floor, percentile, print_result, table
from bench.crowd_slack import (
    CHUNKS,
    Mention,
    Outcomes,
    answer,
    deliver_all,
    mentions_for,
    outcomes,
    start_sender,
)
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.postgres import PostgresServer, PostgresUnavailable

STREAM_SECONDS = 4.0
UPDATE_BURST, UPDATES_PER_SECOND = 10, 50 / 60
QUIET_SECONDS = 30.0  # nothing streams and Slack hears nothing for this long: settled


def floor_seconds(n: int) -> float:
    """The last of n final edits can land no sooner after the models finish than this."""
    return max(0, n - UPDATE_BURST) / UPDATES_PER_SECOND


async def settle(
    slack: FakeSlack, claude: FakeAnthropic, mentions: list[Mention], give_up_s: float
) -> tuple[Outcomes, str]:
    """Wait until every mention is answered or refused, nothing has happened for
    QUIET_SECONDS, or `give_up_s`; returns the outcomes and how the wait ended."""
    answers = {answer(i): i for i in range(len(mentions))}
    deadline = time.monotonic() + give_up_s
    while True:
        found = outcomes(slack, mentions, answers)
        if found.settled(len(mentions)):
            return found, "all settled"
        last = slack.calls[-1].at if slack.calls else 0.0
        if claude.in_flight == 0 and time.monotonic() - last > QUIET_SECONDS:
            return found, f"quiet for {QUIET_SECONDS:.0f} s with mentions unsettled"
        if time.monotonic() > deadline:
            return found, f"timed out after {give_up_s:.0f} s"
        await asyncio.sleep(0.25)


async def run(n: int, replicas: int, database_url: str, folder: Path) -> Result:
    began = time.monotonic()
    async with FakeSlack() as slack, FakeAnthropic() as claude:
        slack.buckets = {"chat.update": (UPDATE_BURST, UPDATES_PER_SECOND)}
        slack.post_per_channel_per_second = 1.0
        slack.post_burst = 1.0
        for i in range(n):
            chunks = [word + " " for word in answer(i).split(" ")]
            chunks[-1] = chunks[-1].strip()
            claude.enqueue(Reply(chunks=chunks, delay=STREAM_SECONDS / CHUNKS))
        env = bot_env(slack.api_url, claude.base_url, database_url)
        await migrate(env, folder)
        bots: list[BotProcess] = []
        connector = aiohttp.TCPConnector(limit=0)  # all at once: no client-side queue
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                for k in range(replicas):
                    bots.append(BotProcess(env, folder, folder / f"bot{k}.log"))
                await asyncio.gather(*(b.ready(http) for b in bots))
                at_ready = [b.sample() for b in bots]
                mentions = mentions_for(slack, n)
                sender = await start_sender()
                started = time.monotonic()
                await deliver_all(sender, [bots[i % replicas].url for i in range(n)], mentions)
                found, ended = await settle(slack, claude, mentions, floor_seconds(n) + 120)
                wall = time.monotonic() - started
                exposition = [await b.metrics(http) for b in bots]
                at_end = [b.sample() for b in bots]
        except BaseException:  # a failure or a signal: no graceful shutdown
            for b in bots:
                b.kill()
            raise
        finally:
            await asyncio.gather(*(b.stop() for b in bots), return_exceptions=True)
        result = measure(slack, claude, mentions, found, (at_ready, at_end), exposition)
        result.replicas, result.ended, result.wall = replicas, ended, wall
        result.logs = [b.log_summary() for b in bots]
        result.runtime = time.monotonic() - began
        return result


def measure(
    slack: FakeSlack,
    claude: FakeAnthropic,
    mentions: list[Mention],
    found: Outcomes,
    samples: tuple[list[Sample], list[Sample]],
    exposition: list[str],
) -> Result:
    """The figures of one run from what the fakes saw and the processes' samples."""
    final_at: dict[str, float] = {}
    for call in slack.calls_to("chat.update"):
        if call.error is None and call.status == 200:
            ts = str(call.params.get("ts"))
            final_at[ts] = max(final_at.get(ts, 0.0), call.at)
    requests = claude.message_requests
    completion, finishes = [], []
    for i, served in found.answered.items():
        m = mentions[i]
        reply = next(msg for msg in slack.thread(m.channel, m.ts) if msg.shown == answer(served))
        if reply.ts in final_at and requests[served].sent:
            finishes.append(requests[served].sent[-1][0])
            completion.append(final_at[reply.ts] - finishes[-1])
    answered = len(found.answered)
    ticks = os.sysconf("SC_CLK_TCK")
    at_ready, at_end = samples
    cpu_ticks = sum(e.cpu_ticks - r.cpu_ticks for r, e in zip(at_ready, at_end, strict=True))
    growth_kb = sum(e.hwm_kb - r.hwm_kb for r, e in zip(at_ready, at_end, strict=True))
    acks = [m.ack_ms for m in mentions]
    queue_found, queue_p99 = histogram_p99(exposition, "queue_wait_seconds")
    n = len(mentions)
    return Result(
        n=n,
        answered=answered,
        refused=Counter(text[:90] for text in found.refused.values()),
        unsettled=Counter(text[:90] for text in found.other.values()),
        ack_errors=Counter(m.status for m in mentions if m.status != 200),
        ratelimited=slack.ratelimited_count,
        ratelimited_methods=Counter(c.method for c in slack.calls if c.status == 429),
        ack_p50=percentile(acks, 0.5),
        ack_p99=percentile(acks, 0.99),
        completion_p50=statistics.median(completion) if completion else None,
        completion_p99=percentile(completion, 0.99),
        floor=floor_seconds(n),
        floor_here=edit_floor(finishes, UPDATE_BURST, UPDATES_PER_SECOND),
        queue_found=queue_found,
        queue_p99=queue_p99,
        cpu_ms_per_reply=cpu_ticks * 1000 / ticks / answered if answered else None,
        peak_rss_mb=[e.hwm_kb / 1024 for e in at_end],
        growth_kb_per_reply=growth_kb / answered if answered else None,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="30,100,300", help="mentions per run")
    parser.add_argument("--replicas", default="1,2", help="1: SQLite; 2 or more: PostgreSQL")
    parser.add_argument("--logs", type=Path, help="keep the bots' logs in this folder")
    args = parser.parse_args()
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    counts = [int(r) for r in args.replicas.split(",")]
    results: list[Result] = []
    notes: list[str] = []
    postgres: PostgresServer | None = None
    if any(r > 1 for r in counts):
        try:
            postgres = await asyncio.to_thread(PostgresServer.start)
        except (PostgresUnavailable, RuntimeError, OSError) as error:
            notes.append(f"Replica rows skipped: no PostgreSQL server could start ({error}).")
            print(notes[-1])
    try:
        for replicas, n in itertools.product(counts, map(int, args.sizes.split(","))):
            if replicas > 1 and postgres is None:
                continue
            folder = Path(tempfile.mkdtemp(prefix="crowd-"))
            try:
                url = f"sqlite+aiosqlite:///{folder / 'bot.db'}"
                if postgres is not None and replicas > 1:
                    url = postgres.url(postgres.create_database())
                results.append(await run(n, replicas, url, folder))
                print_result(results[-1])
            except (RuntimeError, OSError, aiohttp.ClientError) as error:
                notes.append(f"{n} mentions on {replicas} process(es) failed: {error}")
                print(notes[-1])
            finally:
                keep_logs(folder, args.logs, f"{n}-mentions-{replicas}-")
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if postgres is not None:
            postgres.stop()
    print()
    print(table(results, notes))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):  # SIGTERM, Ctrl-C
        sys.exit("crowd: interrupted; its bots were stopped and its folders deleted")
