"""`python -m bot` starts the bot; `python -m bot migrate` only applies migrations.

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
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.app import running_bot
from bot.config import DatabaseSettings, Settings, load_settings
from bot.errors import ConfigError
from bot.logs import setup_logging
from bot.store.migrate import upgrade

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Claude in Slack.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate the database and start the bot (default)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            return migrate()
        settings = load_settings()
        setup_logging(settings.log_level)
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
    url = DatabaseSettings().database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        print(f"DATABASE_URL is not a valid database URL: {url!r}", file=sys.stderr)
        return 2
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError) as error:
        print(f"Could not migrate {shown}: {_first_line(error)}", file=sys.stderr)
        return 1
    print(f"Database {shown} is up to date.")
    return 0


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running_bot(settings):
        await stop.wait()
        log.info("shutting down")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


if __name__ == "__main__":
    sys.exit(main())
