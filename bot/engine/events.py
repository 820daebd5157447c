"""What a surface hands the engine (an `Ask`) and what the engine hands back (events).

A turn's events are `Text` (the whole answer so far; intermediate versions may be skipped,
the latest always arrives) and, last, one `Ended`: how the turn ended, what it used and
cost, and a note safe to show a user when it failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import ClaudeError
from bot.store import UsageRow


@dataclass(frozen=True)
class Ask:
    """A question for Claude, from any surface."""

    surface: str  # "slack" | "api": the label in logs and metrics
    team_id: str
    channel_id: str
    thread: str | None  # the conversation; None: a new one, named when the turn starts
    user_id: str
    text: str
    ts: str | None = None  # the question's own message id, where the surface has one
    kind: str | None = None  # a question kind decided already (a continuation keeps its own)
    channel_memory: bool = True  # other conversations of the channel are context too
    claim: str | None = None  # the delivery this answers: marked done when the turn ends


@dataclass(frozen=True)
class Text:
    text: str  # the whole answer so far


@dataclass(frozen=True)
class Ended:
    text: str
    usage: UsageRow
    error: ClaudeError | None = None  # its user_message is safe to show
    stopped_by: str | None = None
    interrupted: bool = False  # cut short by a shutdown
    cancelled: bool = False  # the surface went away (a /chat client hung up)

    @property
    def stop_reason(self) -> str | None:
        return self.usage.stop_reason

    @property
    def model(self) -> str:
        return self.usage.resolved_model or self.usage.requested_model


Event = Text | Ended
