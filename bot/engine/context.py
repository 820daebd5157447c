"""Assembling what Claude is sent: stored turns, newest first, within the context budget.

Budget = the model's context window − max_tokens (room for the answer) − a safety margin.
Stored token counts are used where known (a reply's output tokens), a conservative estimate
elsewhere; when the estimate comes near the budget, Anthropic's counting endpoint has the
last word. A request over the window is never sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.claude import Attachment, Prompt, Role
from bot.errors import BotError
from bot.store import TurnRecord

# Close to the budget, an estimate is not good enough: ask for the exact count.
COUNT_EXACTLY_ABOVE = 0.8
SAFETY_MARGIN = 0.02
MESSAGE_OVERHEAD_TOKENS = 8
OMITTED_NOTE = (
    "\n\nEarlier turns of this conversation were left out to fit your context window; "
    "if the question depends on them, say so."
)

Counter = Callable[[str, Sequence[Prompt]], Awaitable[int]]


class QuestionTooLong(BotError):
    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(f"question of {tokens} tokens over a budget of {budget}")
        self.tokens = tokens
        self.budget = budget

    @property
    def user_message(self) -> str:  # type: ignore[override]
        return (
            f"Your message is too long for me to read at once: about {self.tokens:,} tokens, "
            f"and I can take about {self.budget:,}. Please shorten it or split it into parts."
        )


@dataclass(frozen=True)
class Context:
    system: str
    prompts: list[Prompt]
    omitted: int
    tokens: int  # input tokens: exact when counted, else the (high) estimate


def estimate_tokens(text: str) -> int:
    # About 4 characters a token in English, 1 in CJK (3 UTF-8 bytes): a byte per third of a
    # token over-counts English a little and never under-counts, which is the safe side.
    return len(text.encode()) // 3 + MESSAGE_OVERHEAD_TOKENS


def budget_for(context_window: int, max_tokens: int) -> int:
    return int(context_window * (1 - SAFETY_MARGIN)) - max_tokens


def prompt_text(turn: TurnRecord) -> str:
    """A user's turn carries who said it: several people may speak in one conversation. A
    thread message read from Slack carries its author's name too, as people see it."""
    if turn.role != "user":
        return turn.text
    if turn.author_name and turn.user_id:
        return f"{turn.author_name} (<@{turn.user_id}>): {turn.text}"
    if turn.author_name:
        return f"{turn.author_name}: {turn.text}"
    if turn.user_id:
        return f"<@{turn.user_id}>: {turn.text}"
    return turn.text


def attachments_of(turn: TurnRecord) -> tuple[tuple[Attachment, ...], str]:
    """A turn's files as Claude gets them: the uploaded (or still in hand) ones as blocks,
    the rest (sent inline once, the bytes not kept) described in words."""
    sent: list[Attachment] = []
    described: list[str] = []
    for item in turn.attachments:
        if isinstance(item, Attachment):
            sent.append(item)
        elif item.get("file_id") and not _expired(item.get("expires_at")):
            sent.append(
                Attachment(
                    kind="document" if item.get("kind") == "document" else "image",
                    name=str(item.get("name") or "file"),
                    media_type=str(item.get("media_type") or ""),
                    file_id=str(item["file_id"]),
                    source_id=str(item.get("source_id") or ""),
                    pages=int(item.get("pages") or 0),
                )
            )
        else:
            described.append(f"[{item.get('name')} was attached here; it is not sent again.]")
    return tuple(sent), "\n".join(described)


def build_prompts(turns: Sequence[TurnRecord]) -> list[Prompt]:
    """Turn stored turns into alternating messages, as the Messages API expects.

    Replies that produced no text are skipped, and consecutive turns of one role (a question
    whose answer failed, then the question asked again) are joined.
    """
    prompts: list[Prompt] = []
    for turn in turns:
        if not turn.text.strip():
            continue
        role: Role = "assistant" if turn.role == "assistant" else "user"
        text = prompt_text(turn)
        files: tuple[Attachment, ...] = ()
        if role == "user":
            files, described = attachments_of(turn)
            text = f"{text}\n\n{described}" if described else text
        if prompts and prompts[-1].role == role:
            last = prompts[-1]
            prompts[-1] = Prompt(role, f"{last.text}\n\n{text}", last.attachments + files)
        else:
            prompts.append(Prompt(role, text, files))
    while prompts and prompts[0].role != "user":
        prompts.pop(0)
    return prompts


# Rough input tokens of a file, for fitting the context (high, so that a conversation with
# files is counted exactly well before the limit): an image is at most ~1,600 tokens, a PDF
# page 1,500-3,000 (text and an image of the page).
IMAGE_TOKENS = 1_600
PDF_PAGE_TOKENS = 3_000


def _cost(turn: TurnRecord) -> int:
    if turn.role == "assistant" and turn.tokens:
        return turn.tokens + MESSAGE_OVERHEAD_TOKENS
    return estimate_tokens(prompt_text(turn)) + sum(_file_tokens(i) for i in turn.attachments)


def _file_tokens(item: Any) -> int:
    kind, pages = (
        (item.kind, item.pages)
        if isinstance(item, Attachment)
        else (item.get("kind"), item.get("pages") or 0)
    )
    if kind == "image":
        return IMAGE_TOKENS
    return PDF_PAGE_TOKENS * (int(pages) or 10)  # unknown: as if ten pages


def _expired(moment: object) -> bool:
    # An uploaded file the Files API has forgotten: described in words, never sent by id.
    if not isinstance(moment, str):
        return False
    try:
        return datetime.fromisoformat(moment) <= datetime.now(UTC)
    except ValueError:
        return False


async def fit(
    turns: Sequence[TurnRecord], *, system: str, budget: int, count: Counter | None
) -> Context:
    """Keep the newest turns that fit; raise QuestionTooLong when even the question does not."""
    turns = [t for t in turns if t.text.strip() or t.attachments]
    costs = [_cost(t) for t in turns]
    room = budget - estimate_tokens(system + OMITTED_NOTE)
    kept = 0
    used = 0
    for cost in reversed(costs):
        if kept and used + cost > room:
            break
        used += cost
        kept += 1
    while True:
        estimate = used + (budget - room)
        context = _context(turns, kept, system, estimate)
        if estimate <= budget * COUNT_EXACTLY_ABOVE or count is None:
            if estimate > budget:
                raise QuestionTooLong(estimate, budget)
            return context
        exact = await count(context.system, context.prompts)
        if exact <= budget:
            return _context(turns, kept, system, exact)
        if kept <= 1:
            raise QuestionTooLong(exact, budget)
        # Drop the oldest kept turns until the estimate falls by at least the overflow.
        overflow = exact - budget
        while kept > 1 and overflow > 0:
            cost = costs[len(turns) - kept]
            overflow -= cost
            used -= cost
            kept -= 1


def _context(turns: Sequence[TurnRecord], kept: int, system: str, tokens: int) -> Context:
    omitted = len(turns) - kept
    return Context(
        system=system + (OMITTED_NOTE if omitted else ""),
        prompts=build_prompts(turns[len(turns) - kept :]),
        omitted=omitted,
        tokens=tokens,
    )
