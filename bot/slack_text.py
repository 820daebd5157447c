"""Slack text handling, pure functions only: limits, mention stripping, escaping, splitting.

Limits are named with the reason beside them, so nobody "tidies" a number into a 4xx.
"""

from __future__ import annotations

import re

# chat.update rejects `text` over 4,000 characters with msg_too_long; keep a margin for the
# working indicator appended to interim edits.
UPDATE_TEXT_LIMIT = 4000
MESSAGE_CHUNK_LIMIT = 3800

WORKING_TEXT = ":hourglass_flowing_sand: _Thinking…_"
WRITING_SUFFIX = " :writing_hand:"
EMPTY_ANSWER_TEXT = "_Claude returned an empty answer. Try rephrasing the question._"
EMPTY_MENTION_TEXT = (
    "Hi! Mention me with a question, for example `@Claude summarise this thread`, "
    "and I'll answer here."
)

_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
# Slack's own markup we keep as is: user and channel mentions, links. Everything else with
# `<` `>` is escaped, which also defuses <!channel>, <!here> and <!everyone>.
_SLACK_MARKUP = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#C[A-Z0-9]+(?:\|[^<>]*)?|(?:https?|mailto):[^<>\s]+)>"
)


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove the bot's own mention(s) from a question, keep mentions of other people."""

    def replace(match: re.Match[str]) -> str:
        return "" if bot_user_id is None or match.group(1) == bot_user_id else match.group(0)

    return re.sub(r"[ \t]{2,}", " ", _USER_MENTION.sub(replace, text)).strip()


def escape_mrkdwn(text: str) -> str:
    """Escape &, < and > (Slack's control characters) except in Slack's own markup."""
    out: list[str] = []
    position = 0
    for match in _SLACK_MARKUP.finditer(text):
        out.append(_escape(text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(_escape(text[position:]))
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_message(text: str, limit: int = MESSAGE_CHUNK_LIMIT) -> list[str]:
    """Split text into pieces of at most `limit` characters, at the best boundary available.

    Paragraph breaks beat line breaks beat sentence ends beat spaces; a hard cut is the last
    resort and never lands inside an HTML entity such as `&amp;`.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _best_cut(rest, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    pieces.append(rest)
    return pieces


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
