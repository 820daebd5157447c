"""Model ids as the price table spells them.

The same model reaches the ledger under several names: a dated snapshot
(`claude-haiku-4-5-20251001`), a `-latest` alias, a Bedrock id
(`us.anthropic.claude-opus-5-5-v1:0`) or a Vertex id (`claude-sonnet-5-5@20260928`).
The table keeps one row per model, under the plain alias.
"""

from __future__ import annotations

import re

FAMILIES = ("opus", "sonnet", "haiku", "fable", "mythos")

# Bedrock: an optional routing prefix (us., eu., apac., global., …), then the provider.
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2,8}\.)?anthropic\.")
# Bedrock's model version, after the date if there is one: `-v1:0`, `-v2`.
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")
# Vertex pins a snapshot or alias after an `@`.
_VERTEX_VERSION = re.compile(r"@[\w.-]*$")
_SNAPSHOT = re.compile(r"-(?:\d{8}|latest)$")
# Both orders: `claude-opus-5-5` and the older `claude-3-5-sonnet`.
_FAMILY = re.compile(r"^claude-(?:[\d.]+-)*(" + "|".join(FAMILIES) + r")(?:-|$)")


def canonical_model(model_id: str) -> str:
    """The id the price table uses for `model_id`; anything not a Claude id is unchanged."""
    model = model_id.strip()
    model = _BEDROCK_PREFIX.sub("", model)
    model = _VERTEX_VERSION.sub("", model)
    model = _BEDROCK_VERSION.sub("", model)
    model = _SNAPSHOT.sub("", model)
    # Only Claude ids are rewritten: another provider's `-latest` or `-v1` may be a
    # different model, and its name must reach the log as it was sent.
    return model if model.startswith("claude-") else model_id


def model_family(model_id: str) -> str | None:
    """opus, sonnet, haiku, fable or mythos; None for an id that is none of these."""
    match = _FAMILY.match(canonical_model(model_id))
    return match.group(1) if match else None
