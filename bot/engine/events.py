"""What a surface hands the engine (an `Ask`) and what the engine hands back (events).

A turn's events are `Text` (the whole answer so far; intermediate versions may be skipped,
the latest always arrives; Claude's thinking never shows) and, last, one `Ended`: how the
turn ended, what it used and cost, and a note safe to show a user when it failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.claude import Attachment, Source
from bot.engine.channels import ChannelConfig
from bot.errors import ClaudeError
from bot.store import UsageRow

STOP_NOTES = {
    "max_tokens": "The answer reached its length limit and stops here.",
    "refusal": "Claude declined to answer this.",
    "model_context_window_exceeded": "The conversation filled Claude's context window here.",
}


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
    attachments: tuple[Attachment, ...] = ()  # images and PDFs sent with the question
    # The channel's settings, when the surface read them already (else the engine reads them).
    config: ChannelConfig | None = None


@dataclass(frozen=True)
class Text:
    text: str  # the whole answer so far
    # What Claude is doing with a tool now, e.g. `searching the web for "…"` (None: writing).
    activity: str | None = None


@dataclass(frozen=True)
class Ended:
    text: str
    usage: UsageRow
    error: ClaudeError | None = None  # its user_message is safe to show
    stopped_by: str | None = None
    interrupted: bool = False  # cut short by a shutdown
    cancelled: bool = False  # the surface went away (a /chat client hung up)
    sources: tuple[Source, ...] = ()  # pages the answer cites or read (Claude's web tools)

    @property
    def stop_reason(self) -> str | None:
        return self.usage.stop_reason

    @property
    def thought_out(self) -> bool:
        """Thinking used the whole length limit: no answer was written."""
        return (
            self.stop_reason == "max_tokens"
            and not self.text.strip()
            and self.usage.thinking_tokens > 0
        )

    @property
    def stop_note(self) -> str | None:
        """Plain words for an answer that ended on purpose but not by finishing."""
        reason = self.stop_reason
        if self.thought_out:
            return "Claude spent its whole length limit thinking and wrote no answer yet."
        if reason == "max_tokens" and not self.text.strip():
            return "The answer reached its length limit before any text."
        return STOP_NOTES.get(reason or "")

    @property
    def model(self) -> str:
        return self.usage.resolved_model or self.usage.requested_model


Event = Text | Ended
