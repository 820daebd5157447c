"""`python -m bot` starts the bot; `migrate` only applies migrations; `usage` prints the costs.

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
from bot.config import Settings, load_database_settings, load_settings
from bot.cost.report import DEFAULT_PERIOD, UsageArgError, UsageArgs, parse_period
from bot.cost.usage_cli import Format, render
from bot.errors import ConfigError
from bot.logs import setup_logging
from bot.store import Ledger, make_engine, make_sessionmaker
from bot.store.ledger import GroupBy
from bot.store.migrate import upgrade
from bot.store.models import utcnow

PERIOD_HELP_PLAIN = "today, 7d, 30d (default), month or YYYY-MM-DD..YYYY-MM-DD"

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Claude in Slack.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate the database and start the bot (default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    usage = commands.add_parser("usage", help="print usage and cost from the database")
    usage.add_argument("--since", default=DEFAULT_PERIOD, help=f"period: {PERIOD_HELP_PLAIN}")
    usage.add_argument("--by", choices=["channel", "user", "model", "day"], default=None)
    usage.add_argument("--format", choices=["table", "csv", "json"], default="table")
    usage.add_argument("--team", default=None, help="one Slack team id (default: all)")
    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            return migrate()
        if args.command == "usage":
            return asyncio.run(usage_report(args.since, args.by, args.format, args.team))
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
        print(
            f"Could not read the ledger (try `python -m bot migrate`): {_first_line(error)}",
            file=sys.stderr,
        )
        return 1
    finally:
        await engine.dispose()
    try:
        print(output)
    except BrokenPipeError:  # `python -m bot usage | head`: the reader had enough
        sys.stderr.close()
    return 0


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
