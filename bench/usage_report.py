"""How long the default /usage report takes on a big ledger (goal: under 200 ms on SQLite).

Fills a fresh SQLite database (migrated with the real migrations) with 1,000,000 ledger rows
spread over 90 days, 200 channels, 2,000 users and 5 models, plus the daily sums the bot keeps
beside the ledger, then times the report code the bot runs for `/usage` (30 days, whole
workspace) and for one channel and one person.

    PYTHONPATH=. .venv/bin/python bench/usage_report.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.cost.prices import Tokens, load_price_table
from bot.cost.report import build_report, parse_usage_args
from bot.store import Ledger, make_engine, make_sessionmaker
from bot.store.migrate import upgrade

TEAM = "T0BENCH"
MODELS = [
    "claude-sonnet-5-5",
    "claude-opus-5-5",
    "claude-haiku-5-5",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
]
DAYS = 90
CHANNELS = [f"C{i:08d}" for i in range(200)]
USERS = [f"U{i:08d}" for i in range(2000)]
RUNS = 7

SUMS = (
    "requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, "
    "cache_read_tokens, cost_micros, unknown_cost_requests, cache_savings_micros, "
    "partial_requests, error_requests, stopped_requests"
)
SUM_OF = (
    "count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_5m_tokens), "
    "sum(cache_write_1h_tokens), sum(cache_read_tokens), coalesce(sum(cost_micros), 0), "
    "sum(CASE WHEN cost_micros IS NULL THEN 1 ELSE 0 END), "
    "coalesce(sum(cache_savings_micros), 0), "
    "sum(CASE WHEN outcome = 'partial' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN error_kind = 'stopped' THEN 1 ELSE 0 END)"
)


def fill(path: Path, rows: int) -> None:
    prices = load_price_table()
    rng = random.Random(7)
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    batch: list[tuple[object, ...]] = []
    insert = (
        "INSERT INTO usage_ledger (team_id, channel_id, thread_ts, user_id, requested_model, "
        "resolved_model, input_tokens, output_tokens, cache_write_5m_tokens, "
        "cache_write_1h_tokens, cache_read_tokens, stop_reason, request_id, ttft_ms, "
        "latency_ms, outcome, error_kind, cost_micros, cache_savings_micros, price_version, "
        "day, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    for i in range(rows):
        model = rng.choice(MODELS)
        moment = today - timedelta(days=rng.randrange(DAYS), seconds=rng.randrange(86_400))
        tokens = Tokens(
            input=rng.randrange(50, 5000),
            output=rng.randrange(10, 2000),
            cache_write_5m=rng.choice((0, 0, 1500)),
            cache_write_1h=rng.choice((0, 0, 0, 1200)),
            cache_read=rng.choice((0, 3000, 8000)),
        )
        roll = rng.random()
        outcome, kind = ("complete", None)
        if roll < 0.02:
            outcome, kind = "error", "overloaded"
        elif roll < 0.04:
            outcome, kind = "partial", "stopped"
        batch.append(
            (
                TEAM,
                rng.choice(CHANNELS),
                f"{1_700_000_000 + i}.000100",
                rng.choice(USERS),
                model,
                model,
                tokens.input,
                tokens.output,
                tokens.cache_write_5m,
                tokens.cache_write_1h,
                tokens.cache_read,
                "end_turn",
                f"req_{i}",
                300,
                2000,
                outcome,
                kind,
                prices.cost_micros(model, tokens),
                prices.cache_savings_micros(model, tokens),
                prices.version,
                moment.date().isoformat(),
                moment.isoformat(sep=" "),
            )
        )
        if len(batch) == 50_000:
            db.executemany(insert, batch)
            batch.clear()
    db.executemany(insert, batch)
    # The daily sums, exactly as the bot's writes would have left them.
    db.execute(
        f"INSERT INTO usage_daily_channel (team_id, day, channel_id, model, {SUMS}) "  # noqa: S608
        f"SELECT team_id, day, channel_id, resolved_model, {SUM_OF} FROM usage_ledger "
        "GROUP BY team_id, day, channel_id, resolved_model"
    )
    db.execute(
        f"INSERT INTO usage_daily_user (team_id, day, user_id, {SUMS}) "  # noqa: S608
        f"SELECT team_id, day, user_id, {SUM_OF} FROM usage_ledger "
        "GROUP BY team_id, day, user_id"
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


async def timed(ledger: Ledger, text: str) -> tuple[float, float]:
    args = parse_usage_args(text, datetime.now(UTC).date())
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await build_report(ledger, args, team_id=TEAM)
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times[1:])


async def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(upgrade, url)
        started = time.perf_counter()
        await asyncio.to_thread(fill, path, rows)
        took = time.perf_counter() - started
        print(
            f"filled {rows:,} ledger rows ({DAYS} days, {len(CHANNELS)} channels, "
            f"{len(USERS):,} users, {len(MODELS)} models) in {took:.1f} s; "
            f"database {path.stat().st_size / 1e6:.0f} MB"
        )
        engine = make_engine(url)
        ledger = Ledger(make_sessionmaker(engine))
        for label, text in (
            ("default report (/usage: 30 days, whole workspace)", ""),
            ("one channel, 30 days (/usage #channel)", f"<#{CHANNELS[3]}>"),
            ("one person, 30 days (/usage @person)", f"<@{USERS[5]}>"),
            ("90 days, whole workspace (/usage 90d)", "90d"),
        ):
            first, median = await timed(ledger, text)
            print(f"{label}: first {first:.0f} ms, median of next {RUNS - 1}: {median:.0f} ms")
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().rows))
