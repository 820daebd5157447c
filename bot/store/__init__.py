"""The store: engine, typed models and the queries the bot runs (nothing else touches SQL)."""

from bot.store.engine import make_engine, make_sessionmaker
from bot.store.models import Outcome
from bot.store.queries import Place, Store, TurnRecord, UsageRow

__all__ = [
    "Outcome",
    "Place",
    "Store",
    "TurnRecord",
    "UsageRow",
    "make_engine",
    "make_sessionmaker",
]
