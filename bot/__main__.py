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

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.app import running_bot
from bot.claude.admin import cost_report
from bot.config import Settings, load_admin_settings, load_database_settings, load_settings
from bot.cost.reconcile import Format as ReconcileFormat
from bot.cost.reconcile import compare
from bot.cost.reconcile import render as render_reconciliation
from bot.cost.report import DEFAULT_PERIOD, UsageArgError, UsageArgs, parse_period
from bot.cost.usage_cli import Format, render
from bot.errors import ClaudeError, ConfigError
from bot.logs import setup_logging
from bot.store import Ledger, make_engine, make_sessionmaker
from bot.store.ledger import GroupBy
from bot.store.migrate import upgrade
from bot.store.models import utcnow

RECONCILE_PERIOD = "7d"
PERIOD_HELP_PLAIN = "today, 7d, 30d (default), month or YYYY-MM-DD..YYYY-MM-DD"

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Claude in Slack.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate the database and start the bot (default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    usage = commands.add_parser(
        "usage",
        help="print usage and cost from the database",
        description="Usage and cost from the ledger. `usage reconcile` compares the ledger's "
        "cost per UTC day and model with Anthropic's cost report (needs "
        "ANTHROPIC_ADMIN_API_KEY; the Admin API reports for the whole organization, so "
        "--team does not apply).",
    )
    usage.add_argument(
        "action",
        nargs="?",
        choices=["reconcile"],
        default=None,
        help="reconcile: compare with Anthropic's cost report (per organization)",
    )
    usage.add_argument(
        "--since",
        default=None,
        help=f"period: {PERIOD_HELP_PLAIN} ({RECONCILE_PERIOD} for reconcile)",
    )
    usage.add_argument(
        "--by",
        choices=["channel", "user", "model", "day"],
        default=None,
        help="one row per channel, user, model or day with every token kind and the cost "
        "(default: a summary)",
    )
    usage.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table for people (default), csv or json with exact micro-dollars "
        "(reconcile: table or json)",
    )
    usage.add_argument("--team", default=None, help="one Slack team id (default: all)")
    args = parser.parse_args(argv)
    if args.command == "usage" and args.action == "reconcile":
        unfit = {
            "--by": args.by is not None,
            "--team (the Admin API reports for the whole organization)": args.team is not None,
            "--format csv": args.format == "csv",
        }
        for option, given in unfit.items():
            if given:
                usage.error(f"reconcile does not take {option}")
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
        asyncio.run(serve(settings))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as error:
        print(f"The bot could not start: {_first_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def migrate() -> int:
    url = load_database_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError) as error:
        print(f"Could not migrate {shown}: {_first_line(error)}", file=sys.stderr)
        return 1
    print(f"Database {shown} is up to date.")
    return 0


async def usage_report(since: str, by: GroupBy | None, fmt: Format, team: str | None) -> int:
    try:
        period = parse_period(since, utcnow().date())
    except UsageArgError as error:
        print(f"--since {error}".replace("`", ""), file=sys.stderr)
        return 2
    engine = make_engine(load_database_settings().database_url)
    try:
        output = await render(
            Ledger(make_sessionmaker(engine)), UsageArgs(period), by=by, fmt=fmt, team_id=team
        )
    except SQLAlchemyError as error:
        return _ledger_failed(error)
    finally:
        await engine.dispose()
    _emit(output)
    return 0


async def reconcile(since: str, fmt: ReconcileFormat) -> int:
    """The ledger's cost per UTC day and model beside Anthropic's cost report."""
    settings = load_admin_settings()
    try:
        period = parse_period(since, utcnow().date())
    except UsageArgError as error:
        print(f"--since {error}".replace("`", ""), file=sys.stderr)
        return 2
    scope = UsageArgs(period).scope(team_id=None)
    engine = make_engine(settings.database_url)
    try:
        ours = await Ledger(make_sessionmaker(engine)).by_day_and_model(scope)
    except SQLAlchemyError as error:
        return _ledger_failed(error)
    finally:
        await engine.dispose()
    try:
        theirs = await cost_report(
            admin_key=settings.anthropic_admin_api_key,
            base_url=settings.anthropic_base_url,
            start=period.start,
            end=period.end,
        )
    except ClaudeError as error:
        print(_first_line(error), file=sys.stderr)
        return 1
    _emit(render_reconciliation(compare(period, ours, theirs), fmt))
    return 0


def _ledger_failed(error: SQLAlchemyError) -> int:
    print(
        f"Could not read the ledger (try `python -m bot migrate`): {_first_line(error)}",
        file=sys.stderr,
    )
    return 1


def _emit(output: str) -> None:
    try:
        print(output)
    except BrokenPipeError:  # `python -m bot usage | head`: the reader had enough
        sys.stderr.close()


async def serve(settings: Settings) -> None:
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
    try:
        async with running_bot(settings):
            started = True
            await stop.wait()
            log.info("shutting down")
    except asyncio.CancelledError:
        log.info("start-up interrupted")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


if __name__ == "__main__":
    sys.exit(main())
