"""How much Claude thinks before it answers, chosen on purpose per model and kind of question.

Today's models think by default, and thinking tokens count toward `max_tokens`: a request
sized for the answer alone can spend it all on thinking and show nothing. So every request
says what it wants, in a form the model accepts (../shared/PLATFORM.md 0a, Anthropic's
"thinking troubleshooting" table of 2026-11):

| model                                   | thinking off            | default effort |
|-----------------------------------------|-------------------------|----------------|
| claude-sonnet-5-5                       | `between_tools` only    | high           |
| claude-haiku-5-5, claude-opus-5, sonnet-5*| `disabled` (effort ≤ high) | medium (Haiku), high |
| claude-opus-5-5, fable-*, mythos-5*     | cannot be turned off    | medium (Opus 5.5), high |
| claude-*-4-* and older                  | off unless asked        | (not sent)     |

(*) Sonnet 5 is taken to behave like Haiku 5.5 and Opus 5 (thinking on by default, `disabled`
accepted): only third-party pages say so; PLATFORM.md 0a names the other two.

A quick factual question gets no up-front thinking where the model allows it, and the lowest
effort where it does not; other questions get adaptive thinking at an effort that suits them.
`max_tokens` is the answer's own budget plus an allowance for thinking at that effort, so
thinking cannot starve the answer (and a reply that still runs out says so and offers Continue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Effort = Literal["low", "medium", "high", "xhigh", "max"]
Style = Literal["between_tools", "can_disable", "always", "legacy", "unknown"]

# Tokens of thinking allowed on top of the answer, by effort: roughly what adaptive thinking
# spends on a chat question at that effort, with room to spare.
THINKING_ALLOWANCE: dict[str, int] = {"low": 2_048, "medium": 8_192, "high": 16_384}
MAX_OUTPUT = 128_000  # every 5.x model's output limit

# Effort per kind of question (bot.engine.kinds) when the model thinks.
EFFORT_BY_KIND: dict[str, Effort] = {
    "short": "low",
    "default": "medium",
    "long": "medium",
    "code": "high",
}

_ID = re.compile(r"claude-(opus|sonnet|haiku|fable|mythos)-(\d+)(?:-(\d{1,2}))?(?![\d])")


@dataclass(frozen=True)
class ThinkingPlan:
    """What a request sends: `thinking` and `output_config` (None: not sent), `max_tokens`."""

    thinking: dict[str, Any] | None
    effort: Effort | None
    max_tokens: int
    answer_tokens: int

    @property
    def output_config(self) -> dict[str, Any] | None:
        return {"effort": self.effort} if self.effort else None

    @property
    def may_think(self) -> bool:
        return self.max_tokens > self.answer_tokens


def style_of(model: str) -> Style:
    """How a model id (alias, dated, Bedrock or Vertex form) takes thinking settings."""
    match = _ID.search(model)
    if match is None:
        return "unknown"
    family, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if major < 5:
        return "legacy"
    if family == "sonnet" and (major, minor) == (5, 5):
        return "between_tools"
    if family in ("fable", "mythos") or (family == "opus" and (major, minor) >= (5, 5)):
        return "always"
    if (major, minor) <= (5, 5):
        return "can_disable"  # Haiku 5.5, Opus 5, Sonnet 5
    return "unknown"  # a model newer than this table: send nothing it might reject


def plan(model: str, kind: str, answer_tokens: int, room: int = 1) -> ThinkingPlan:
    """`room` multiplies the thinking allowance (a continuation of an answer whose thinking
    used its whole limit gets more)."""
    style = style_of(model)
    effort = EFFORT_BY_KIND.get(kind, "medium")
    quick = kind == "short"
    if style == "legacy":
        return ThinkingPlan(None, None, answer_tokens, answer_tokens)
    if style == "unknown":
        # It may think by default, at its default effort (high on most models): leave the
        # settings to it but keep room for that.
        return _sized(None, None, answer_tokens, "high", room)
    if quick and style == "between_tools":
        return ThinkingPlan({"type": "between_tools"}, "low", answer_tokens, answer_tokens)
    if quick and style == "can_disable":
        return ThinkingPlan({"type": "disabled"}, "low", answer_tokens, answer_tokens)
    return _sized({"type": "adaptive"}, effort, answer_tokens, effort, room)


def _sized(
    thinking: dict[str, Any] | None,
    effort: Effort | None,
    answer_tokens: int,
    allowance: str,
    room: int,
) -> ThinkingPlan:
    total = min(MAX_OUTPUT, answer_tokens + THINKING_ALLOWANCE[allowance] * room)
    return ThinkingPlan(thinking, effort, max(total, answer_tokens), answer_tokens)
