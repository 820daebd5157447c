"""Strict settings: every value of the wrong shape, and every answer length the model cannot
give, stops start-up with one line that names the variable, says what is wrong and where to
get a good value, and where the bad one was set; the message says which .env was read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SECRET = "0123456789abcdef" * 2  # Slack's shape: 32 hexadecimal characters
GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-fake-bot-token",
    "SLACK_SIGNING_SECRET": SECRET,
    "ANTHROPIC_API_KEY": "sk-ant-fake-api-key",
}


def env_file(folder: Path, **values: str) -> Path:
    path = folder / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in {**GOOD, **values}.items()))
    return path


def problem(folder: Path, **values: str) -> str:
    path = env_file(folder, **values)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=path)
    return str(caught.value)


BAD = [
    ("SLACK_BOT_TOKEN", "xoxp-fake-user-token", "that is a user token", "OAuth & Permissions"),
    ("SLACK_BOT_TOKEN", "xoxb-fake token", "has spaces, quotes", "OAuth & Permissions"),
    ("SLACK_BOT_TOKEN", "bot-token", "must start with xoxb-", "Bot User OAuth Token"),
    ("SLACK_APP_TOKEN", "xoxb-123", "that is the bot token", "App-Level Tokens"),
    ("SLACK_APP_TOKEN", "socket-1", "must start with xapp-", "App-Level Tokens"),
    ("SLACK_SIGNING_SECRET", "short", "32 hexadecimal characters; this one has 5", "Basic"),
    ("SLACK_SIGNING_SECRET", "z" * 32, "this one is not hexadecimal", "Signing Secret"),
    ("SLACK_SIGNING_SECRET", "xoxb-1", "that is a token, not the signing secret", "Basic"),
    ("ANTHROPIC_API_KEY", "not-a-key", "Anthropic's API keys start with sk-ant-", "API Keys"),
    ("ANTHROPIC_API_KEY", "sk-ant-admin-fake-key", "that is an Admin API key", "API Keys"),
    ("ANTHROPIC_API_KEY", "sk-ant-fake key", "has spaces or quotes", "console.anthropic.com"),
    ("CLAUDE_MAX_TOKENS", "500000", "500,000 is over the 128,000 tokens", "1024"),
    ("METRICS_TOKEN", "short", "at least 16 characters", "openssl rand"),
    ("METRICS_PORT", "metrics", "valid integer", "127.0.0.1"),
    ("LOG_FORMAT", "yaml", "'auto', 'json' or 'text'", "auto (text on a terminal"),
]


@pytest.mark.parametrize(("name", "value", "why", "hint"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_each_bad_value_gets_one_line_naming_it_and_where_to_get_it(
    tmp_path: Path, name: str, value: str, why: str, hint: str
) -> None:
    message = problem(tmp_path, **{name: value})

    assert "\n" not in message
    assert message.startswith(f"{name} (set in {tmp_path / '.env'}) is not valid (")
    assert why in message
    assert hint in message
    assert message.endswith(f"(settings come from the environment and {tmp_path / '.env'})")
    assert value not in message or name in ("CLAUDE_MAX_TOKENS", "METRICS_PORT", "LOG_FORMAT")


def test_good_shapes_start(tmp_path: Path) -> None:
    settings = load_settings(_env_file=env_file(tmp_path, SLACK_APP_TOKEN="xapp-fake-app-token"))
    assert settings.slack_signing_secret == SECRET
    assert settings.log_format == "auto"
    assert settings.metrics_local_port == 9464


def test_several_problems_are_listed_under_the_file_read(tmp_path: Path) -> None:
    message = problem(tmp_path, SLACK_SIGNING_SECRET="short", ANTHROPIC_API_KEY="not-a-key")
    header, *lines = message.splitlines()

    assert header == (
        f"Settings need attention (they come from the environment and {tmp_path / '.env'}):"
    )
    assert [line.split()[0] for line in lines] == ["SLACK_SIGNING_SECRET", "ANTHROPIC_API_KEY"]


def test_a_value_in_the_environment_wins_and_the_message_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "from-the-shell")
    message = problem(tmp_path)  # the .env file's secret is good

    assert message.startswith("SLACK_SIGNING_SECRET (set in the environment) is not valid")


def test_the_message_says_when_there_is_no_env_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=tmp_path / ".env")

    assert f"(there is no {tmp_path / '.env'})" in str(caught.value)


def test_a_gateway_or_test_server_may_issue_keys_and_secrets_of_its_own() -> None:
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-test",
        slack_api_url="http://127.0.0.1:9/api/",
        slack_signing_secret="test-signing-secret",
        anthropic_base_url="https://llm-gateway.example.com",
        anthropic_api_key="gw-key-123",
    )
    assert settings.anthropic_api_key == "gw-key-123"
    with pytest.raises(ConfigError, match="at least 16 characters without spaces"):
        load_settings(
            _env_file=None,
            slack_bot_token="xoxb-test",
            slack_api_url="http://127.0.0.1:9/api/",
            slack_signing_secret="short",
            anthropic_api_key=GOOD["ANTHROPIC_API_KEY"],
        )
    # Anthropic's own host, however it is written: its keys' shape.
    with pytest.raises(ConfigError, match="start with sk-ant-"):
        load_settings(
            _env_file=None,
            chat_api_token="c" * 16,
            anthropic_base_url="https://api.anthropic.com",
            anthropic_api_key="gw-key-123",
        )


@pytest.mark.parametrize(
    ("values", "named", "why"),
    [
        # Code questions think at high effort: 2,000 + 16,384 tokens of a 13,000 window.
        ({"CLAUDE_CONTEXT_WINDOW": "13000"}, "MAX_TOKENS_CODE", "leaves 0 of"),
        # Long ones at medium effort: 4,000 + 8,192.
        ({"CLAUDE_CONTEXT_WINDOW": "13000"}, "MAX_TOKENS_LONG", "leaves 808 of"),
        ({"MAX_TOKENS_LONG": "190000"}, "MAX_TOKENS_LONG", "190,000 is over the 128,000"),
        (
            {"MAX_TOKENS_LONG": "120000", "CLAUDE_CONTEXT_WINDOW": "128500"},
            "MAX_TOKENS_LONG",
            "up to 128,000 tokens, which leaves 500 of CLAUDE_CONTEXT_WINDOW=128,500",
        ),
    ],
    ids=["window-too-small", "window-too-small-too", "over-the-output-limit", "no-room-left"],
)
def test_answer_lengths_must_fit_the_model(
    tmp_path: Path, values: dict[str, str], named: str, why: str
) -> None:
    message = problem(tmp_path, **values)
    [line] = [line.strip() for line in message.splitlines() if line.strip().startswith(named)]

    assert line.startswith(named)
    assert why in line
    assert (f"(set in {tmp_path / '.env'})" in line) == (named in values)


def test_a_legacy_model_without_thinking_has_the_room_to_spare(tmp_path: Path) -> None:
    path = env_file(tmp_path, CLAUDE_MODEL="claude-sonnet-4-5", CLAUDE_CONTEXT_WINDOW="13000")
    assert load_settings(_env_file=path).claude_context_window == 13_000


def test_start_up_with_a_bad_env_file_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    env_file(tmp_path, ANTHROPIC_API_KEY="not-a-key")
    names = {name.upper() for name in Settings.model_fields}
    clean = {k: v for k, v in os.environ.items() if k.upper() not in names}
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        env={**clean, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"ANTHROPIC_API_KEY (set in {tmp_path / '.env'})")
    assert "Traceback" not in result.stderr
