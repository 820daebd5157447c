"""The modal in which an admin changes a channel's settings from the App Home. Pure: a
channel's settings in, a Block Kit modal out; a submitted modal in, the settings out."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from bot.engine.channels import (
    ENABLED,
    FOLLOW_UPS,
    INSTRUCTIONS,
    INSTRUCTIONS_LIMIT,
    MEMORY,
    MODEL,
    RESET_BY,
    TOOLS,
    TOOLS_SETTING,
    ChannelConfig,
)

CALLBACK_ID = "channel_settings"
CHANNEL = "channel"
MAX_OPTIONS = 100  # a static select holds at most 100


def settings_modal(
    channel_id: str | None, config: ChannelConfig, models: Collection[str]
) -> dict[str, Any]:
    picker: dict[str, Any] = {
        "type": "conversations_select",
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if channel_id:
        picker["initial_conversation"] = channel_id
    on_off = ("on", "off")
    instructions: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": True,
        "max_length": INSTRUCTIONS_LIMIT,
    }
    if config.instructions:
        instructions["initial_value"] = config.instructions
    tools: dict[str, Any] = {
        "type": "checkboxes",
        "options": [_option(t) for t in TOOLS],
    }
    if config.tools:
        tools["initial_options"] = [_option(t) for t in config.tools]
    blocks = [
        _input(CHANNEL, "Channel", picker),
        _input(ENABLED, "Answer in this channel", _select(on_off, _flag(config.enabled))),
        _input(MODEL, "Model", _select(sorted(models)[:MAX_OPTIONS], config.model)),
        _input(INSTRUCTIONS, "Instructions added for this channel", instructions, optional=True),
        _input(MEMORY, "Channel memory", _radio(on_off, _flag(config.memory))),
        _input(
            FOLLOW_UPS, "Follow-ups without a mention", _radio(on_off, _flag(config.follow_ups))
        ),
        _input(TOOLS_SETTING, "Claude's web tools", tools, optional=True),
        _input(RESET_BY, "Who may reset memory", _radio(("anyone", "admins"), config.reset_by)),
    ]
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": {"type": "plain_text", "text": "Channel settings"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def submitted(view: dict[str, Any]) -> tuple[str, dict[str, str | None]]:
    """The channel and each setting's value as `ChannelCommands` stores it."""
    values = (view.get("state") or {}).get("values") or {}

    def field(block: str) -> dict[str, Any]:
        found: dict[str, Any] = (values.get(block) or {}).get(block) or {}
        return found

    def chosen(block: str) -> str | None:
        option = field(block).get("selected_option") or {}
        return option.get("value")

    channel = str(field(CHANNEL).get("selected_conversation") or "")
    text = str(field(INSTRUCTIONS).get("value") or "").strip()
    tools = [str(o.get("value")) for o in field(TOOLS_SETTING).get("selected_options") or []]
    return channel, {
        ENABLED: chosen(ENABLED),
        MODEL: chosen(MODEL),
        INSTRUCTIONS: text or None,
        MEMORY: chosen(MEMORY),
        FOLLOW_UPS: chosen(FOLLOW_UPS),
        TOOLS_SETTING: ",".join(tools),
        RESET_BY: chosen(RESET_BY),
    }


def current(config: ChannelConfig) -> dict[str, str | None]:
    """A channel's settings in the same form as `submitted`, to change only what differs."""
    return {
        ENABLED: _flag(config.enabled),
        MODEL: config.model,
        INSTRUCTIONS: config.instructions,
        MEMORY: _flag(config.memory),
        FOLLOW_UPS: _flag(config.follow_ups),
        TOOLS_SETTING: ",".join(config.tools),
        RESET_BY: config.reset_by,
    }


def _flag(value: bool) -> str:
    return "on" if value else "off"


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value}, "value": value}


def _select(values: Collection[str], initial: str) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "static_select",
        "options": [_option(v) for v in values],
    }
    if initial in values:
        element["initial_option"] = _option(initial)
    return element


def _radio(values: Collection[str], initial: str) -> dict[str, Any]:
    element = _select(values, initial)
    element["type"] = "radio_buttons"
    return element


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False
) -> dict[str, Any]:
    element["action_id"] = block_id  # unique in the view: the state is read by it
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
        "optional": optional,
    }
