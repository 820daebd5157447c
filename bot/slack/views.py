"""What a reply message shows at each stage, as Slack payloads. Pure.

- queued: the placeholder while the question waits its turn, with its place and a Stop button;
- working: the placeholder while Claude has not written anything yet, with a Stop button;
- interim: mrkdwn of the text so far in a section block, with the Stop button;
- final: the answer as standard Markdown in a `markdown` block, mrkdwn fallback text, no button.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.engine import Source
from bot.slack.mrkdwn import defuse_mass_mentions, to_mrkdwn
from bot.slack.text import (
    FALLBACK_TEXT_LIMIT,
    SECTION_TEXT_LIMIT,
    WORKING_TEXT,
    WRITING_SUFFIX,
)

STOP_ACTION_ID = "stop_reply"
CONTINUE_ACTION_ID = "continue_reply"
# Interim text lives in one section block; keep room for the writing indicator.
INTERIM_LIMIT = SECTION_TEXT_LIMIT - 100
TAIL_MARK = "…\n"


@dataclass(frozen=True)
class View:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ContinueTarget:
    """Where a Continue button resumes: carried in the button itself, so it survives restarts."""

    channel: str
    conversation: str  # the stored conversation's thread ts
    thread: str | None  # where replies are posted (None: a DM's main view)
    asker: str
    kind: str

    def encode(self) -> str:
        return json.dumps([self.channel, self.conversation, self.thread, self.asker, self.kind])

    @classmethod
    def decode(cls, value: str) -> ContinueTarget | None:
        try:
            channel, conversation, thread, asker, kind = json.loads(value)
        except (ValueError, TypeError):
            return None
        return cls(str(channel), str(conversation), thread and str(thread), str(asker), str(kind))


def continue_button(target: ContinueTarget) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "reply_continue",
        "elements": [
            {
                "type": "button",
                "action_id": CONTINUE_ACTION_ID,
                "text": {"type": "plain_text", "text": "Continue", "emoji": True},
                "style": "primary",
                "value": target.encode(),
            }
        ],
    }


def without_controls(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [block for block in blocks if block.get("type") != "actions"]


def stop_button(stop_key: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "reply_controls",
        "elements": [
            {
                "type": "button",
                "action_id": STOP_ACTION_ID,
                "text": {"type": "plain_text", "text": "Stop", "emoji": True},
                "style": "danger",
                "value": stop_key,
            }
        ],
    }


def queued_view(stop_key: str, ahead: int) -> View:
    if ahead <= 0:
        place = "yours is next"
    else:
        place = f"{ahead} question{'s' if ahead != 1 else ''} ahead of yours"
    return _with_controls(f":hourglass: _Many questions at once: {place}._", stop_key)


def working_view(stop_key: str | None) -> View:
    return _with_controls(WORKING_TEXT, stop_key)


def interim_view(markdown: str, stop_key: str | None) -> View:
    shown = tail(to_mrkdwn(markdown), INTERIM_LIMIT - len(WRITING_SUFFIX))
    return _with_controls(shown + WRITING_SUFFIX, stop_key)


def final_view(markdown: str, *, controls: list[dict[str, Any]] | None = None) -> View:
    safe = defuse_mass_mentions(markdown)
    return View(
        text=shorten(to_mrkdwn(safe), FALLBACK_TEXT_LIMIT),
        blocks=[{"type": "markdown", "text": safe}, *(controls or [])],
    )


def _with_controls(mrkdwn: str, stop_key: str | None) -> View:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}]
    if stop_key is not None:
        blocks.append(stop_button(stop_key))
    return View(text=mrkdwn, blocks=blocks)


def tail(mrkdwn: str, limit: int) -> str:
    """The latest part of a long text (what a reader watching the stream looks at).

    Starts at a line if one is near, and reopens a code block the cut landed in.
    """
    if len(mrkdwn) <= limit:
        return mrkdwn
    budget = limit - len(TAIL_MARK) - 4
    start = len(mrkdwn) - budget
    newline = mrkdwn.find("\n", start, start + 400)
    if newline != -1:
        start = newline + 1
    reopen = "```\n" if mrkdwn.count("```", 0, start) % 2 else ""
    return TAIL_MARK + reopen + mrkdwn[start:]


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip() + "…"


def with_activity(markdown: str, activity: str | None) -> str:
    """The answer so far, and what Claude is doing with a tool now (while it streams)."""
    if not activity:
        return markdown
    line = f"_🔎 {activity}…_"
    return f"{markdown}\n\n{line}" if markdown else line


def with_sources(markdown: str, sources: Sequence[Source]) -> str:
    """The answer with the pages it cites or read as links under it (Markdown)."""
    if not sources or not markdown:
        return markdown
    links = " · ".join(f"[{_link_text(s.title or s.url)}]({s.url})" for s in sources)
    return f"{markdown}\n\n**Sources:** {links}"


def _link_text(title: str) -> str:
    return title.replace("[", "(").replace("]", ")").replace("\n", " ")[:100]
