"""A Slack question as the responder takes it, and as JSON kept with its claim: what a
live process needs to answer it if the one that took it dies."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bot.slack.history import Me

SURFACE = "slack"


@dataclass(frozen=True)
class Question:
    team_id: str
    channel_id: str
    thread_ts: str  # the conversation: the thread's ts (a DM's main view: the message's own)
    user_id: str
    text: str
    ts: str
    # Where the reply goes: a thread's ts, or None for the channel itself (a DM's main view).
    reply_thread_ts: str | None
    kind: str | None = None  # a question kind decided already (a continuation keeps its own)
    claim: str | None = None  # the Slack event, command or click this answers
    files: tuple[dict[str, Any], ...] = ()  # Slack file objects shared with the question
    me: Me | None = None  # the bot, to tell its own messages in the thread's history
    external: bool = False  # asked in a Slack Connect channel (shared with another org)


def question_payload(q: Question) -> dict[str, Any]:
    """A question as JSON, kept with its claim: what a live process needs to answer it."""
    return {"surface": SURFACE, **asdict(q)}


def question_from(payload: dict[str, Any]) -> Question:
    fields = {k: v for k, v in payload.items() if k not in ("surface", "command", "placeholder")}
    me = fields.pop("me", None)
    files = tuple(fields.pop("files", None) or ())
    return Question(**fields, files=files, me=Me(**me) if me else None)


def ask_payload(
    claim: str, team_id: str, channel_id: str, user_id: str, text: str
) -> dict[str, Any]:
    """An `/ask` command, kept with its claim like a question."""
    return {
        "surface": SURFACE,
        "command": "ask",
        "claim": claim,
        "team_id": team_id,
        "channel_id": channel_id,
        "user_id": user_id,
        "text": text,
    }


def continue_payload(
    claim: str, team_id: str, user_id: str, target: str, after: str | None
) -> dict[str, Any]:
    """A Continue click (`target`: the button's value), kept with its claim."""
    return {
        "surface": SURFACE,
        "command": "continue",
        "claim": claim,
        "team_id": team_id,
        "user_id": user_id,
        "target": target,
        "after": after,
    }
