"""Truth files stay true, start-up errors read well, and tests cannot reach the internet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.slack.listeners import COMMANDS, EVENTS
from tests.netguard import InternetAccessError

ROOT = Path(__file__).resolve().parents[1]
# Well-shaped values for Slack's and Anthropic's own servers.
GOOD = {
    "slack_bot_token": "xoxb-1",
    "slack_signing_secret": "0123456789abcdef" * 2,
    "anthropic_api_key": "sk-ant-fake-key",
}


def test_manifest_declares_every_event_and_command_the_code_registers() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert set(EVENTS) <= events
    assert set(COMMANDS) == commands
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands"} <= scopes
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls += [manifest["settings"]["event_subscriptions"]["request_url"]]
    urls += [manifest["settings"]["interactivity"]["request_url"]]
    assert all(url.endswith("/slack/events") for url in urls)


def test_env_example_and_readme_list_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert re.search(rf"^#? ?{name.upper()}=", example, re.MULTILINE), name
        assert f"`{name.upper()}`" in readme, name


def test_missing_settings_name_each_variable_and_where_to_get_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ANTHROPIC_API_KEY"):
        assert name in message
    assert "api.slack.com/apps" in message
    assert "console.anthropic.com" in message


def test_malformed_settings_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            _env_file=None,
            slack_bot_token="xoxp-user-token",
            slack_signing_secret="s",
            anthropic_api_key=GOOD["anthropic_api_key"],
            port="eighty",
        )
    message = str(caught.value)
    assert "SLACK_BOT_TOKEN is not valid" in message
    assert "SLACK_SIGNING_SECRET is not valid" in message
    assert "PORT is not valid" in message
    assert "ANTHROPIC_API_KEY" not in message


def test_socket_mode_needs_no_signing_secret() -> None:
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-1",
        slack_app_token="xapp-1",
        anthropic_api_key=GOOD["anthropic_api_key"],
    )
    assert settings.socket_mode


def test_empty_values_from_a_copied_env_example_mean_unset(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=env)
    assert "SLACK_BOT_TOKEN is not set" in str(caught.value)
    assert "ANTHROPIC_API_KEY is not set" in str(caught.value)


def _run_bot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in _setting_names()}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", *args],
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def test_start_without_settings_prints_one_message_not_a_traceback(tmp_path: Path) -> None:
    result = _run_bot(env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "SLACK_BOT_TOKEN is not set" in result.stderr


def test_migrate_command_creates_the_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/nested/bot.db"
    result = _run_bot("migrate", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert (tmp_path / "nested" / "bot.db").exists()


def test_migrate_with_a_bad_url_says_so_in_one_line(tmp_path: Path) -> None:
    result = _run_bot("migrate", env={"DATABASE_URL": "nonsense"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "DATABASE_URL" in result.stderr


async def test_reaching_the_internet_fails_loudly(no_internet: list[str]) -> None:
    client = AsyncWebClient(token="xoxb-test")  # the real https://slack.com/api/
    with pytest.raises(InternetAccessError):
        await client.auth_test()
    assert no_internet == ["lookup slack.com"]
    no_internet.clear()  # expected here; any other test with attempts fails at teardown


def test_system_prompt_can_come_from_a_file(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are the release bot.\n", encoding="utf-8")
    settings = load_settings(_env_file=None, system_prompt_file=str(prompt), **GOOD)
    assert settings.system_prompt == "You are the release bot."
    with pytest.raises(ConfigError, match="SYSTEM_PROMPT_FILE cannot be read"):
        load_settings(_env_file=None, system_prompt_file=str(tmp_path / "missing.txt"), **GOOD)


def test_admin_user_ids_accept_commas_and_spaces() -> None:
    settings = load_settings(_env_file=None, admin_user_ids="U1, U2,U3", **GOOD)
    assert settings.admin_user_ids == {"U1", "U2", "U3"}
