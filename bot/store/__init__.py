"""The store: the database engine, typed models, migrations and every query the bot runs.

Nothing else writes SQL. Conversations and claims (`conversations`), the ledger and its
reports, budgets as stored, process heartbeats with the turns they own (`processes`), and
what is kept of Slack beyond the bot's turns: thread context and uploaded files (`history`).
May import only `bot.config` and `bot.errors`; it knows nothing of Slack, HTTP or Claude.
"""

from bot.store.conversations import Place, Store, TurnRecord
from bot.store.engine import make_engine, make_sessionmaker
from bot.store.history import ThreadMessage, Upload, message_claim, ts_order
from bot.store.ledger import Ledger, Scope, Sums, UsageRow
from bot.store.models import Outcome
from bot.store.processes import Orphan, Peer, Processes

__all__ = [
    "Ledger",
    "Orphan",
    "Outcome",
    "Peer",
    "Place",
    "Processes",
    "Scope",
    "Store",
    "Sums",
    "ThreadMessage",
    "TurnRecord",
    "Upload",
    "UsageRow",
    "make_engine",
    "make_sessionmaker",
    "message_claim",
    "ts_order",
]
