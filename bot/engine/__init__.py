"""The conversation engine: a turn's whole life, the same for every surface.

It owns admission (rate limits, context fit, budget hold), storing the question, streaming
Claude's answer, saving progress while it streams, recording the turn and its ledger row,
and closing the turns of processes that died. Surfaces (`bot.slack`, `bot.http`) hand it a
question and render the events it yields; they never write turns or ledger rows.

May import: `bot.cost`, `bot.claude`, `bot.store`, and the top-level `bot.errors`,
`bot.metrics`. Never a surface.
"""

from bot.claude import Attachment, Source
from bot.engine.admission import Refused, ReplySettings
from bot.engine.engine import Engine, EngineParts
from bot.engine.events import Ask, Ended, Event, Text
from bot.engine.inflight import InFlight
from bot.engine.queue import Waited
from bot.engine.turns import Turn

__all__ = [
    "Ask",
    "Attachment",
    "Ended",
    "Engine",
    "EngineParts",
    "Event",
    "InFlight",
    "Refused",
    "ReplySettings",
    "Source",
    "Text",
    "Turn",
    "Waited",
]
