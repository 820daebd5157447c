"""Right-sized answers: what kind of task a question is, and so its max_tokens. Pure.

An explicit hint at the start of the question wins (`--short`, `--code`, `--long`); otherwise
a cheap look at the words decides. Mistakes are cheap both ways: a short cap shows a
Continue button, a long one only costs what is actually written.
"""

from __future__ import annotations

import re

HINTS = {"--short": "short", "--code": "code", "--long": "long"}
_CODE = re.compile(
    r"```|`[^`]+`|\b(code|function|class|method|script|regex|sql|query|bug|stack ?trace|"
    r"exception|traceback|compile|refactor|python|javascript|typescript|java|golang|rust|"
    r"bash|shell|dockerfile|yaml|json|api|endpoint|unit test|implement)\b",
    re.IGNORECASE,
)
_LONG = re.compile(
    r"\b(write|draft|compose)\b.*\b(essay|article|blog|post|report|story|document|proposal|"
    r"guide|tutorial|letter|memo|spec|chapter)\b|\b(in detail|in depth|comprehensive|"
    r"step[- ]by[- ]step guide|long form|long-form)\b",
    re.IGNORECASE,
)
_SHORT_START = re.compile(
    r"^(who|what|when|where|which|is|are|was|were|does|do|did|can|could|how many|"
    r"how much|define|name)\b",
    re.IGNORECASE,
)
SHORT_MAX_CHARS = 120


def classify(question: str) -> tuple[str, str]:
    """The task kind (short, code, long or default) and the question without a hint."""
    first, _, rest = question.strip().partition(" ")
    if first.lower() in HINTS:
        return HINTS[first.lower()], rest.strip()
    if _CODE.search(question):
        return "code", question
    if _LONG.search(question):
        return "long", question
    if len(question) <= SHORT_MAX_CHARS and _SHORT_START.match(question.strip()):
        return "short", question
    return "default", question


# A kind's suffix for the continuation of an answer whose thinking used its whole limit:
# the same kind, with more room to think (else Continue would run out the same way).
MORE_ROOM = "+room"
ROOM_FACTOR = 4


def more_room(kind: str) -> str:
    return kind if kind.endswith(MORE_ROOM) else kind + MORE_ROOM


def room_of(kind: str) -> tuple[str, int]:
    """The plain kind, and how many times the usual thinking allowance it gets."""
    if kind.endswith(MORE_ROOM):
        return kind.removesuffix(MORE_ROOM), ROOM_FACTOR
    return kind, 1
