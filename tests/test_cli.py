"""`python -m bot` as an operator meets it, run as a real process: a usage report that never
creates a database, an empty ledger that says $0 in every format, help that documents every
option with an example, and one line on stderr (never a traceback) for every bad input."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from bot.__main__ import parser
from bot.config import sqlite_file

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "sk-ant-admin-test"


def bot(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in its own process, on `database_url`."""
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", *args],
        env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed on stderr (and nothing on stdout)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


async def table_names(database_url: str) -> list[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("command", [["usage"], ["usage", "reconcile"]], ids=["usage", "reconcile"])
async def test_usage_on_a_never_migrated_database_creates_nothing(
    database_url: str, command: list[str]
) -> None:
    result = bot(database_url, *command, ANTHROPIC_ADMIN_API_KEY=ADMIN_KEY)

    line = one_line_failure(result)
    assert "python -m bot migrate" in line
    path = sqlite_file(database_url)
    if path is not None:
        assert not path.parent.exists()  # neither the file nor its folder
        assert line.startswith(f"No database at {path}")
    else:
        assert "has no tables yet" in line
        assert "secret" not in line  # the password is not shown
        assert await table_names(database_url) == []


def test_usage_on_an_empty_sqlite_file_leaves_it_untouched(tmp_path: Path) -> None:
    """A file that is not the bot's (or an empty one left by an older version) is refused
    without a write: opened as the bot opens it, it would become a WAL database."""
    path = tmp_path / "bot.db"
    path.touch()

    line = one_line_failure(bot(f"sqlite+aiosqlite:///{path}", "usage"))

    assert line.startswith(f"{path} has none of the bot's tables")
    assert "python -m bot migrate" in line
    assert [p.name for p in tmp_path.iterdir()] == ["bot.db"]
    assert path.stat().st_size == 0


async def test_an_empty_ledger_costs_zero_in_the_table_and_in_json(database_url: str) -> None:
    migrated = bot(database_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr

    def run(*args: str) -> str:
        result = bot(database_url, "usage", *args)
        assert (result.returncode, result.stderr) == (0, "")
        return result.stdout

    assert "Cost          $0.00" in run()
    totals = json.loads(run("--format", "json"))["totals"]
    assert (totals["requests"], totals["cost_micros"], totals["cost_usd"]) == (0, 0, "0.000000")
    assert run("--by", "model").splitlines()[-1].split()[-1] == "$0.00"  # the TOTAL row
    assert json.loads(run("--by", "model", "--format", "json")) == []
    assert list(csv.DictReader(io.StringIO(run("--format", "csv")))) == []


@pytest.mark.parametrize(
    ("since", "title"),
    [
        ("1d", "Claude usage, the last day ("),
        ("today", "Claude usage, today ("),
        ("2026-10-01..2026-10-31", "Claude usage, 2026-10-01 to 2026-10-31 (UTC)"),
        ("2026-10-01..2026-10-01", "Claude usage, 2026-10-01 (UTC)"),
    ],
)
async def test_the_title_says_the_period_once(database_url: str, since: str, title: str) -> None:
    assert bot(database_url, "migrate").returncode == 0
    result = bot(database_url, "usage", "--since", since)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(title)
    assert first.count("2026-10-01") <= 1


def subcommands() -> dict[str, argparse.ArgumentParser]:
    top = parser()
    [commands] = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    return {"": top, **commands.choices}


@pytest.mark.parametrize("name", ["", "serve", "migrate", "usage"])
def test_help_documents_every_option_with_an_example(tmp_path: Path, name: str) -> None:
    result = bot(f"sqlite+aiosqlite:///{tmp_path}/bot.db", *name.split(), "--help")

    assert (result.returncode, result.stderr) == (0, "")
    text = result.stdout
    examples = text.split("\nexamples:\n", 1)[1]
    assert f"python -m bot {name}".strip() in examples
    for action in subcommands()[name]._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        assert action.help, f"{action.dest} has no help"
        for word in action.option_strings or list(action.choices or []):
            assert word in text
            assert word in examples, f"no example of {word}"
        for choice in action.choices or []:
            assert choice in text
    assert not list((tmp_path).iterdir())  # --help opens no database


def test_the_period_help_names_every_form() -> None:
    text = subcommands()["usage"].format_help()
    for form in ("today", "7d", "30d", "90d", "366d", "month", "YYYY-MM-DD..YYYY-MM-DD"):
        assert form in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["usage", "--since", "yesterday"], "--since yesterday is not a period"),
        (["usage", "--since", "0d"], "from 1 to 366"),
        (["usage", "--since", "2026-02-30..2026-03-01"], "not a range of real dates"),
        (["usage", "--by", "team"], "invalid choice: 'team'"),
        (["usage", "--format", "xml"], "invalid choice: 'xml'"),
        (["usage", "--team"], "expected one argument"),
        (["usage", "--verbose"], "unrecognized arguments: --verbose"),
        (["usage", "reconcile", "--by", "day"], "reconcile does not take --by"),
        (["usage", "reconcile", "--format", "csv"], "reconcile does not take --format csv"),
        (["report"], "invalid choice: 'report'"),
    ],
)
def test_a_bad_argument_gets_one_line_and_a_non_zero_exit(
    tmp_path: Path, args: list[str], says: str
) -> None:
    line = one_line_failure(bot(f"sqlite+aiosqlite:///{tmp_path}/data/bot.db", *args))
    assert says in line
    assert not list(tmp_path.iterdir())


def test_a_malformed_database_url_gets_one_line(tmp_path: Path) -> None:
    line = one_line_failure(bot("mysql://localhost/bot", "usage"))
    assert line.startswith("DATABASE_URL ")
