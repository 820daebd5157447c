"""Shared fixtures: the network guard, the fake servers and settings that point at them."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.rig import SIGNING_SECRET

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


class InternetAccessError(AssertionError):
    """A test tried to leave this machine."""


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail loudly on any connection or DNS lookup beyond loopback.

    Attempts are also collected, so a test whose code swallowed the error still fails.
    """
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            attempts.append(f"lookup {host}")
            raise InternetAccessError(f"tests may not reach the internet (lookup of {host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            attempts.append(f"connect {address}")
            raise InternetAccessError(f"tests may not reach the internet (connect to {address})")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield attempts
    if attempts:
        pytest.fail(f"the test tried to reach the internet: {attempts}")


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


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"


def make_settings(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake_slack.api_url,
        "anthropic_api_key": "sk-test",
        "anthropic_base_url": fake_anthropic.base_url,
        "anthropic_max_retries": 2,
        "database_url": database_url,
        "host": "127.0.0.1",
        "port": 0,
        "stream_edit_interval": 0.2,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str) -> Settings:
    return make_settings(fake_slack, fake_anthropic, database_url)
