"""`python -m bot` starts the bot; `migrate` only applies migrations; `usage` prints the costs,
and `usage reconcile` sets them beside Anthropic's cost report.

Every failure a user can cause here ends in one readable message and a non-zero exit code,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import NoReturn

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings, load_admin_settings, load_database_settings, load_settings
from bot.config_base import settings_source
from bot.cost.reconcile import Format as ReconcileFormat
from bot.cost.reconcile import compare
from bot.cost.reconcile import render as render_reconciliation
from bot.cost.report import DEFAULT_PERIOD, UsageArgError, UsageArgs, parse_period
from bot.cost.usage_cli import (
    PERIODS,
    RECONCILE_PERIOD,
    USAGE_DESCRIPTION,
    USAGE_EPILOG,
    Format,
    LedgerUnavailable,
    opened_ledger,
    render,
)
from bot.errors import ClaudeError, ConfigError, StartupError, first_line
from bot.logs import setup_logging
from bot.store.ledger import GroupBy
from bot.store.migrate import upgrade
from bot.store.models import utcnow

MAIN_EPILOG = """\
Settings come from the environment, else from .env in the current directory
(see .env.example). Each command has its own help: python -m bot usage --help.

examples:
  python -m bot                      start the bot (the same as serve)
  python -m bot migrate              create or update the database, then exit
  python -m bot usage --since 7d     what Claude cost in the last 7 days
"""
SERVE_DESCRIPTION = """\
Apply any pending database migrations, then start the bot. The HTTP server listens
on HOST:PORT (default 0.0.0.0:3000) for Slack's events at /slack/events, the probes
/livez, /readyz and /healthz, /metrics with METRICS_TOKEN (else on 127.0.0.1:9464,
METRICS_PORT), and /chat when CHAT_API_TOKEN is set. With SLACK_APP_TOKEN set, Slack's
events come over Socket Mode instead. A token or key Slack or Anthropic refuses stops it
(exit code 2); Ctrl-C or SIGTERM stops it gracefully. No options: settings come from the
environment and .env."""
SERVE_EPILOG = """\
examples:
  python -m bot serve
  python -m bot                          serve is the default command
  PORT=8080 LOG_FORMAT=text python -m bot serve
"""
MIGRATE_DESCRIPTION = """\
Bring the database named by DATABASE_URL to the newest schema, then exit. A SQLite
file that does not exist yet is created, with its folder. serve does this itself at
start-up; run it alone before a first usage report, or ahead of a rollout."""
MIGRATE_EPILOG = """\
examples:
  python -m bot migrate
  DATABASE_URL=sqlite+aiosqlite:///./data/bot.db python -m bot migrate
  DATABASE_URL=postgresql+asyncpg://bot:secret@db.internal/bot python -m bot migrate
"""

log = logging.getLogger("bot")


class Parser(argparse.ArgumentParser):
    """A bad argument gets one line on stderr that says where the help is, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}. See `{self.prog} --help`.\n")


def parser() -> Parser:
    """Every command and option, each with its help and examples (`--help`)."""
    raw = argparse.RawDescriptionHelpFormatter
    top = Parser(
        prog="python -m bot",
        description="Claude in Slack.",
        epilog=MAIN_EPILOG,
        formatter_class=raw,
    )
    commands = top.add_subparsers(dest="command", metavar="{serve,migrate,usage}")
    commands.add_parser(
        "serve",
        help="migrate the database and start the bot (the default)",
        description=SERVE_DESCRIPTION,
        epilog=SERVE_EPILOG,
        formatter_class=raw,
    )
    commands.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description=MIGRATE_DESCRIPTION,
        epilog=MIGRATE_EPILOG,
        formatter_class=raw,
    )
    usage = commands.add_parser(
        "usage",
        help="print usage and cost from the ledger, or reconcile it with Anthropic's report",
        description=USAGE_DESCRIPTION,
        epilog=USAGE_EPILOG,
        formatter_class=raw,
    )
    usage.add_argument(
        "action",
        nargs="?",
        choices=["reconcile"],
        default=None,
        help="reconcile: compare the ledger with Anthropic's cost report (needs "
        "ANTHROPIC_ADMIN_API_KEY)",
    )
    usage.add_argument(
        "--since",
        metavar="PERIOD",
        default=None,
        help=f"the days to report: {PERIODS} (default: {DEFAULT_PERIOD}; {RECONCILE_PERIOD} "
        "for reconcile)",
    )
    usage.add_argument(
        "--by",
        choices=["channel", "user", "model", "day"],
        default=None,
        help="one row per channel, user (person), model or day, with every token kind and the "
        "cost, and a total (default: a summary; day with --format csv)",
    )
    usage.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table: for people (default); csv: for spreadsheets; json: for scripts. csv and "
        "json carry exact integer micro-dollars (cost_micros). reconcile: table or json",
    )
    usage.add_argument(
        "--team",
        metavar="TEAM_ID",
        default=None,
        help="only this Slack workspace, by its team id, e.g. T0123ABCD (default: all)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.command == "usage" and args.action == "reconcile":
        unfit = {
            "--by": args.by is not None,
            "--team (the Admin API reports for the whole organization)": args.team is not None,
            "--format csv": args.format == "csv",
        }
        for option, given in unfit.items():
            if given:
                top.exit(2, f"python -m bot usage: reconcile does not take {option}.\n")
    try:
        if args.command == "migrate":
            return migrate()
        if args.command == "usage" and args.action == "reconcile":
            return asyncio.run(reconcile(args.since or RECONCILE_PERIOD, args.format))
        if args.command == "usage":
            since = args.since or DEFAULT_PERIOD
            return asyncio.run(usage_report(since, args.by, args.format, args.team))
        settings = load_settings()
        setup_logging(settings.log_level, settings.log_format, settings.secrets)
        log.info("settings read from %s", settings_source())
        return asyncio.run(serve(settings))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except LedgerUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as error:
        print(f"The bot could not start: {first_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def migrate() -> int:
    url = load_database_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError) as error:
        print(f"Could not migrate {shown}: {first_line(error)}", file=sys.stderr)
        return 1
    print(f"Database {shown} is up to date.")
    return 0


async def usage_report(since: str, by: GroupBy | None, fmt: Format, team: str | None) -> int:
    try:
        period = parse_period(since, utcnow().date())
    except UsageArgError as error:
        print(f"--since {error}".replace("`", ""), file=sys.stderr)
        return 2
    async with opened_ledger(load_database_settings().database_url) as ledger:
        output = await render(ledger, UsageArgs(period), by=by, fmt=fmt, team_id=team)
    _emit(output)
    return 0


async def reconcile(since: str, fmt: ReconcileFormat) -> int:
    """The ledger's cost per UTC day and model beside Anthropic's cost report."""
    from bot.claude.admin import cost_report  # the Anthropic SDK: only when it is needed

    settings = load_admin_settings()
    try:
        period = parse_period(since, utcnow().date())
    except UsageArgError as error:
        print(f"--since {error}".replace("`", ""), file=sys.stderr)
        return 2
    scope = UsageArgs(period).scope(team_id=None)
    async with opened_ledger(settings.database_url) as ledger:
        ours = await ledger.by_day_and_model(scope)
    try:
        theirs = await cost_report(
            admin_key=settings.anthropic_admin_api_key,
            base_url=settings.anthropic_base_url,
            start=period.start,
            end=period.end,
        )
    except ClaudeError as error:
        print(first_line(error), file=sys.stderr)
        return 1
    _emit(render_reconciliation(compare(period, ours, theirs), fmt))
    return 0


def _emit(output: str) -> None:
    try:
        print(output)
    except BrokenPipeError:  # `python -m bot usage | head`: the reader had enough
        sys.stderr.close()


async def serve(settings: Settings) -> int:
    """Until SIGTERM/SIGINT (exit 0), a refused token or key (2), no port or database (1)."""
    # Imported here: the SDKs take seconds to import, which `usage` and `--help` need not wait.
    from bot.app import running_bot

    stop = asyncio.Event()
    started = False
    main_task = asyncio.current_task()

    def on_signal() -> None:
        # Once serving, stop gracefully; during start-up (migrations, a slow Slack) give up.
        if started:
            stop.set()
        elif main_task is not None:
            main_task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    fatal: str | None = None
    try:
        async with running_bot(settings) as bot:
            started = True
            waits = [asyncio.create_task(event.wait()) for event in (stop, bot.health.failed)]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            if (fatal := bot.health.fatal) is None:
                log.info("shutting down")
    except asyncio.CancelledError:
        log.info("start-up interrupted")
    except (ConfigError, StartupError) as error:  # one line: what to fix
        log.critical("%s", error)
        return 2 if isinstance(error, ConfigError) else 1
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    if fatal is not None:
        log.critical("%s", fatal)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
