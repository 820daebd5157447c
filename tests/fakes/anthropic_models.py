"""Per-model thinking rules of the fake Anthropic server (PLATFORM.md 0a.1).

A requested model id is first resolved to its base id (:func:`base_model`: a trailing
``-YYYYMMDD`` date or ``-latest`` is dropped), then matched against :data:`THINKING_RULES`
(first row whose regular expression matches the whole base id wins; ``.*`` is the catch-all for
older and unknown ids).

===================================  =======  ========================  =============  =======
base id (regular expression)         thinks   thinking.type             between_tools  enabled
                                     default  "disabled"                               (budget)
===================================  =======  ========================  =============  =======
claude-sonnet-5-5                    yes      400 (use between_tools)   ok             400
claude-opus-5-5                      yes      400                       400            400
claude-haiku-5-5 | claude-opus-5 |   yes      ok at effort low..high;   400            400
claude-sonnet-5                               400 at xhigh / max
claude-fable-.* | claude-mythos-5.*  yes      400                       400            400
other 5.x: claude-[a-z]+-5(-N)?      no       ok                        400            400
claude-opus-4-[789]                  no       ok                        400            400
anything else (4.x, unknown)         no       ok                        400            ok
===================================  =======  ========================  =============  =======

"Default thinks" = the model thinks when the request has no ``thinking``. An explicit
``{"type": "adaptive"}`` thinks on every model; an accepted ``{"type": "enabled",
"budget_tokens": n}`` (n >= 1024 and, on /v1/messages, < max_tokens) thinks; ``disabled`` and
``between_tools`` (this bot sends no tools) never produce a thinking block.

Other 400s (``invalid_request_error``), on /v1/messages and /v1/messages/count_tokens alike: a
``thinking`` that is not an object or has an unknown ``type``; ``output_config`` that is not an
object; ``output_config.effort`` not one of low, medium, high, xhigh, max; ``thinking.display``
not ``summarized`` / ``omitted``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

EFFORTS = ("low", "medium", "high", "xhigh", "max")
THINKING_TYPES = ("adaptive", "enabled", "disabled", "between_tools")
MIN_BUDGET_TOKENS = 1024


@dataclass(frozen=True)
class ThinkingRules:
    """What one model family accepts for `thinking`."""

    thinks_by_default: bool  # no `thinking` in the request means adaptive thinking
    disabled: Literal["ok", "never", "low_effort"]  # low_effort: ok unless effort is xhigh/max
    between_tools: bool
    enabled: bool  # manual extended thinking with budget_tokens


_DEFAULT_ON_ALWAYS = ThinkingRules(True, "never", between_tools=False, enabled=False)
_DEFAULT_ON_SWITCHABLE = ThinkingRules(True, "low_effort", between_tools=False, enabled=False)
_NO_BUDGET = ThinkingRules(False, "ok", between_tools=False, enabled=False)

THINKING_RULES: list[tuple[str, ThinkingRules]] = [
    (r"claude-sonnet-5-5", ThinkingRules(True, "never", between_tools=True, enabled=False)),
    (r"claude-opus-5-5", _DEFAULT_ON_ALWAYS),
    (r"claude-haiku-5-5|claude-opus-5|claude-sonnet-5", _DEFAULT_ON_SWITCHABLE),
    (r"claude-fable-.*|claude-mythos-5.*", _DEFAULT_ON_ALWAYS),
    (r"claude-[a-z]+-5(-\d+)?", _NO_BUDGET),
    (r"claude-opus-4-[789]", _NO_BUDGET),
    (r".*", ThinkingRules(False, "ok", between_tools=False, enabled=True)),
]

_SUFFIX = re.compile(r"-(?:\d{8}|latest)$")


def base_model(model: str) -> str:
    """`claude-haiku-4-5-20251001` -> `claude-haiku-4-5`; `claude-sonnet-5-5-latest` -> ..."""
    return _SUFFIX.sub("", model)


def rules_for(model: str) -> ThinkingRules:
    base = base_model(model)
    for pattern, rules in THINKING_RULES:
        if re.fullmatch(pattern, base):
            return rules
    raise AssertionError("the table ends with a catch-all")  # pragma: no cover


@dataclass(frozen=True)
class ThinkingPlan:
    """How a validated request thinks."""

    thinks: bool
    display: str = "summarized"  # "omitted": the thinking text is empty (signature only)
    effort: str | None = None


def plan_thinking(body: dict[str, Any], *, max_tokens: int | None) -> ThinkingPlan | str:
    """The request's thinking plan, or the message of the 400 the API would answer with.

    `max_tokens` is None on count_tokens (no budget_tokens < max_tokens check there).
    """
    model = str(body["model"])
    rules = rules_for(model)
    config = body.get("output_config")
    effort: str | None = None
    if config is not None:
        if not isinstance(config, dict):
            return "output_config: Input should be an object"
        effort = config.get("effort")
        if effort is not None and effort not in EFFORTS:
            allowed = ", ".join(f"'{e}'" for e in EFFORTS)
            return f"output_config.effort: Input should be one of {allowed}; got {effort!r}"
    thinking = body.get("thinking")
    if thinking is None:
        return ThinkingPlan(rules.thinks_by_default, effort=effort)
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in THINKING_TYPES:
        allowed = ", ".join(f"'{t}'" for t in THINKING_TYPES)
        return f"thinking.type: Input should be one of {allowed}; got {kind!r}"
    display = thinking.get("display") or "summarized"
    if display not in ("summarized", "omitted"):
        return f"thinking.display: Input should be 'summarized' or 'omitted'; got {display!r}"
    if kind == "disabled":
        if rules.disabled == "never":
            hint = (
                'use thinking.type "between_tools" or a lower output_config.effort instead'
                if rules.between_tools
                else "thinking cannot be turned off on this model"
            )
            return f'thinking.type: "disabled" is not supported on {model}; {hint}'
        if rules.disabled == "low_effort" and effort in ("xhigh", "max"):
            return (
                f'thinking.type: "disabled" is not supported with output_config.effort '
                f'"{effort}" on {model}; use effort "high" or lower'
            )
        return ThinkingPlan(False, effort=effort)
    if kind == "between_tools":
        if not rules.between_tools:
            return f'thinking.type: "between_tools" is not supported on {model}'
        return ThinkingPlan(False, effort=effort)
    if kind == "enabled":
        if not rules.enabled:
            return (
                f'thinking.type: "enabled" (budget_tokens) is not supported on {model}; '
                'use {"type": "adaptive"} with output_config.effort'
            )
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            return "thinking.enabled.budget_tokens: Field required"
        if budget < MIN_BUDGET_TOKENS:
            return f"thinking.enabled.budget_tokens: Input should be >= {MIN_BUDGET_TOKENS}"
        if max_tokens is not None and budget >= max_tokens:
            return "max_tokens must be greater than thinking.budget_tokens"
    return ThinkingPlan(True, display=str(display), effort=effort)
