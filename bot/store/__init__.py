"""The store: engine, typed models and the queries the bot runs (nothing else touches SQL)."""

from bot.store.engine import make_engine, make_sessionmaker
from bot.store.ledger import Ledger, Scope, Sums, UsageRow
from bot.store.models import Outcome
from bot.store.queries import Place, Store, TurnRecord

__all__ = [
    "Ledger",
    "Outcome",
    "Place",
    "Scope",
    "Store",
    "Sums",
    "TurnRecord",
    "UsageRow",
    "make_engine",
    "make_sessionmaker",
]
