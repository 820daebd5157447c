"""Migrations are the schema: they apply from empty, match the models, and pin the columns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.store import Place, Store, make_engine, make_sessionmaker
from bot.store.migrate import alembic_config, compare_type, upgrade
from bot.store.models import Base

LEDGER_COLUMNS = {
    "id", "team_id", "channel_id", "thread_ts", "user_id", "turn_id", "requested_model",
    "resolved_model", "input_tokens", "output_tokens", "cache_write_5m_tokens",
    "cache_write_1h_tokens", "cache_read_tokens", "stop_reason", "request_id", "ttft_ms",
    "latency_ms", "outcome", "error_kind", "cost_micros", "cache_savings_micros",
    "price_version", "day", "created_at", "thinking_tokens", "inference_geo", "speed",
    "web_search_requests", "web_fetch_requests", "estimate_micros", "stop_detail",
}  # fmt: skip


async def test_migrations_build_the_schema_the_models_describe(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'bot.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": compare_type}),
                Base.metadata,
            )
        )
        tables = await conn.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
        ledger = await conn.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("usage_ledger")}
        )
        mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar()
        fks = (await conn.execute(sa.text("PRAGMA foreign_keys"))).scalar()
        busy = (await conn.execute(sa.text("PRAGMA busy_timeout"))).scalar()
    await engine.dispose()
    assert diff == []
    assert {
        "slack_events", "turns", "usage_ledger", "alembic_version", "memory_resets",
        "usage_daily_channel", "usage_daily_user", "budgets", "budget_refusals", "budget_warnings",
    } <= tables  # fmt: skip
    assert ledger == LEDGER_COLUMNS
    assert (mode, fks, busy) == ("wal", 1, 5000)


async def test_migrations_downgrade_to_empty_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await asyncio.to_thread(upgrade, url)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    store = Store(make_sessionmaker(engine))
    assert await store.claim_event("Ev1", "T1", "app_mention") is True
    assert await store.claim_event("Ev1", "T1", "app_mention") is False
    turn = await store.open_turn(
        Place("T1", "C1", "1.0"),
        question="hi",
        user_id="U1",
        ts="1.0",
        tokens=9,
        reply_ts="1.1",
        owner="p1",
        progress={},
    )
    assert turn > 0
    await engine.dispose()
