"""Slack text handling, pure functions only: limits, mention stripping, escaping, splitting.

Limits are named with the reason beside them, so nobody "tidies" a number into a 4xx.
"""

from __future__ import annotations

import re

# chat.update rejects `text` over 4,000 characters (msg_too_long); fallback text stays below.
FALLBACK_TEXT_LIMIT = 3900
# Markdown blocks hold at most 12,000 characters per message, counted across all of them.
MARKDOWN_BLOCK_LIMIT = 12000
# A section block's text is capped at 3,000 characters (invalid_blocks beyond).
SECTION_TEXT_LIMIT = 3000

WORKING_TEXT = ":hourglass_flowing_sand: _Thinking…_"
WRITING_SUFFIX = " :writing_hand:"
EMPTY_ANSWER_TEXT = "Claude returned an empty answer. Try rephrasing the question."
EMPTY_MENTION_TEXT = (
    "Hi! Mention me with a question, for example `@Claude summarise this thread`, "
    "and I'll answer here."
)

_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
# Slack's own markup we keep as is: user mentions (<@U…>, <@W…>) and channel references
# (<#C…>, <#G…>), each with or without a |label, and links. Everything else with `<` `>` is
# escaped, which also defuses <!channel>, <!here>, <!everyone> and <!subteam^…>.
SLACK_MARKUP = re.compile(r"<(?:(?:@[UW]|#[CG])[A-Z0-9]+(?:\|[^<>]*)?|(?:https?|mailto):[^<>\s]+)>")


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove the bot's own mention(s) from a question, keep mentions of other people."""

    def replace(match: re.Match[str]) -> str:
        return "" if bot_user_id is None or match.group(1) == bot_user_id else match.group(0)

    return re.sub(r"[ \t]{2,}", " ", _USER_MENTION.sub(replace, text)).strip()


def escape_mrkdwn(text: str) -> str:
    """Escape &, < and > (Slack's control characters) except in Slack's own markup."""
    out: list[str] = []
    position = 0
    for match in SLACK_MARKUP.finditer(text):
        out.append(_escape(text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(_escape(text[position:]))
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _best_cut(text: str, limit: int) -> int:
    window = text[:limit]
    floor = limit // 2  # never make a tiny first piece to honour a boundary
    for boundary in ("\n\n", "\n", ". ", "! ", "? ", " "):
        index = window.rfind(boundary)
        if index >= floor:
            return index + len(boundary)
    amp = window.rfind("&", limit - 6)
    if amp != -1 and ";" not in window[amp:]:
        return amp
    return limit


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def split_markdown(text: str, limit: int = MARKDOWN_BLOCK_LIMIT) -> list[str]:
    """Split Markdown into pieces of at most `limit` characters, never inside a code fence.

    A cut prefers a boundary before a fence; a code block longer than a piece is closed at a
    line end and reopened, with its language, at the top of the next piece. Earlier pieces
    depend only on the text before their end, so they never change as more text streams in.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        head, rest = _cut_markdown(rest, limit)
        pieces.append(head)
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces


def _cut_markdown(text: str, limit: int) -> tuple[str, str]:
    room = limit - 4  # space to close a fence with "\n```"
    cut = _best_cut(text, room)
    opener = _open_fence(text[:cut])
    if opener is None:
        return text[:cut].rstrip(), text[cut:].lstrip("\n")
    start, line = opener
    if start >= limit // 4:  # enough text before the fence: cut there instead
        return text[:start].rstrip(), text[start:]
    body_start = start + len(line) + 1
    end = text.rfind("\n", body_start, room)
    end = end if end != -1 else room
    marker = _FENCE.match(line)
    close = marker.group(1) if marker else "```"
    return f"{text[:end]}\n{close}", f"{line}\n{text[end:].lstrip(chr(10))}"


def _open_fence(text: str) -> tuple[int, str] | None:
    """Where the fence still open at the end of `text` starts, and its opening line."""
    opened: tuple[int, str, str] | None = None
    position = 0
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)
            if opened is None:
                opened = (position, line, marker)
            elif (
                marker[0] == opened[2][0]
                and len(marker) >= len(opened[2])
                and not line[match.end() :].strip()
            ):
                opened = None
        position += len(line) + 1
    return (opened[0], opened[1]) if opened else None


# What the listeners say.
ASK_HELP = (
    "*Ask Claude*\n"
    "• `/ask <your question>`: I post your question here and answer in its thread, "
    "remembering this channel's recent conversations.\n"
    "• `/ask reset`: start fresh. I stop using this channel's earlier conversations "
    "(they stay in the usage log).\n"
    "• `/ask help`: this message.\n"
    "You can also mention me in a channel I'm in, or send me a direct message."
)
RESET_DONE = "Done: I'll start fresh in this channel. Earlier conversations are no longer sent."
CANNOT_POST = (
    "I can't post in this conversation. Invite me first (`/invite @Claude` in the channel) "
    "and ask again. In a direct message between other people I can't answer at all: "
    "message me directly instead."
)
# A new message a person wrote (a file shared is one too; a reply also sent to the channel).
NEW_MESSAGE_SUBTYPES = (None, "file_share", "thread_broadcast")
STOP_REFUSED = "Only the person who asked, or a workspace admin, can stop this answer."
CONTINUE_REFUSED = "Only the person who asked, or a workspace admin, can continue this answer."
HISTORY_FAILED = (
    "I couldn't read this thread's earlier messages from Slack, so I answered from what I "
    "already knew of it."
)
HISTORY_LIMITED = (
    "Slack lets me read a thread's history only once a minute, so I answered from what I "
    "already knew of this thread."
)
