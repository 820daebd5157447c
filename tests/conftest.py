"""Shared fixtures: the network guard, the fake servers and settings that point at them.

Every test that touches the store (its fixtures reach `database_url`) runs twice, on SQLite
and on a throwaway PostgreSQL server (tests/postgres.py) with a fresh database of its own.
TEST_DATABASES=sqlite runs without PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.netguard import no_internet  # noqa: F401 - an autouse fixture
from tests.postgres import PostgresServer, PostgresUnavailable, wanted_backends
from tests.rig import make_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come only from what a test passes: no developer .env, no stray variables."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as fake:
        yield fake


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that touches the store (its fixtures reach `database_url`) runs on SQLite
    and on PostgreSQL: database_url is parametrized, ids sqlite and postgresql.
    `@pytest.mark.both_databases` says so for a test that asks for it by name."""
    if "database_url" not in metafunc.fixturenames:
        return
    try:
        backends = wanted_backends()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    metafunc.parametrize("database_url", backends, ids=backends, indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Started by the first test that needs it, stopped when the session ends."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {error}", pytrace=False)
        pytest.skip(str(error))
    yield server
    server.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite, or PostgreSQL in a test's postgresql run."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def settings(fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str) -> Settings:
    return make_settings(fake_slack, fake_anthropic, database_url)
