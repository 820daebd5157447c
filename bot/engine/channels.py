"""Per-channel settings as the engine applies them: each channel's own values over the
workspace's defaults, read from the database for every question (so a change is in force at
once on every replica), and the rules for what a value may be.

Slack Connect channels (shared with other organisations) are off unless an admin turned the
bot on there: their members' questions would go to Claude under this workspace's account.
A DM is always on, with the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from bot.store.channel_settings import ChannelSettingsStore, Stored

TOOLS = ("web_search", "web_fetch")
RESETTERS = ("anyone", "admins")
# Setting names as stored; the command's words map onto them (bot.slack.settings_command).
ENABLED, MODEL, INSTRUCTIONS, MEMORY, FOLLOW_UPS, TOOLS_SETTING, RESET_BY = (
    "enabled",
    "model",
    "instructions",
    "memory",
    "follow_ups",
    "tools",
    "reset_by",
)
INSTRUCTIONS_LIMIT = 4000


class BadSetting(ValueError):
    """A value a setting cannot take; the message says what would be valid."""


@dataclass(frozen=True)
class ChannelDefaults:
    enabled: bool  # CHANNELS_DEFAULT
    model: str  # CLAUDE_MODEL
    follow_ups: bool  # FOLLOW_UPS
    memory: bool = True
    tools: tuple[str, ...] = ()
    reset_by: str = "anyone"


@dataclass(frozen=True)
class ChannelConfig:
    enabled: bool
    model: str
    instructions: str | None
    memory: bool
    follow_ups: bool
    tools: tuple[str, ...]
    reset_by: str
    external: bool = False
    changes: dict[str, Stored] = field(default_factory=dict)  # who set what, and when


class Channels:
    def __init__(
        self,
        store: ChannelSettingsStore,
        defaults: ChannelDefaults,
        *,
        models: Collection[str],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self.defaults = defaults
        self.models = frozenset(models)
        self._clock = clock

    async def config(
        self, team_id: str, channel_id: str, *, external: bool = False
    ) -> ChannelConfig:
        d = self.defaults
        if channel_id.startswith("D") or not team_id:  # a DM, or the HTTP API
            return ChannelConfig(True, d.model, None, d.memory, d.follow_ups, d.tools, d.reset_by)
        stored = await self._store.read(team_id, channel_id)

        def value(name: str) -> str | None:
            row = stored.get(name)
            return row.value if row is not None else None

        enabled = _flag(value(ENABLED), default=d.enabled and not external)
        tools = value(TOOLS_SETTING)
        return ChannelConfig(
            enabled=enabled,
            model=value(MODEL) or d.model,
            instructions=value(INSTRUCTIONS) or None,
            memory=_flag(value(MEMORY), default=d.memory),
            follow_ups=_flag(value(FOLLOW_UPS), default=d.follow_ups),
            tools=d.tools if tools is None else tuple(t for t in tools.split(",") if t),
            reset_by=value(RESET_BY) or d.reset_by,
            external=external,
            changes={k: v for k, v in stored.items()},
        )

    async def change(
        self, team_id: str, channel_id: str, name: str, value: str | None, user_id: str
    ) -> None:
        """Set (or with None, clear) one setting; BadSetting when the value is not valid."""
        await self._store.write(
            team_id,
            channel_id,
            name,
            self.check(name, value),
            user_id=user_id,
            now=self._clock(),
        )

    def check(self, name: str, value: str | None) -> str | None:
        if value is None:
            return None
        if name in (ENABLED, MEMORY, FOLLOW_UPS):
            if value not in ("on", "off"):
                raise BadSetting("Use `on` or `off`.")
            return value
        if name == MODEL:
            if value not in self.models:
                listed = ", ".join(f"`{m}`" for m in sorted(self.models))
                raise BadSetting(f"`{value}` is not a model I know. Valid models: {listed}.")
            return value
        if name == INSTRUCTIONS:
            text = value.strip()
            if not text:
                raise BadSetting("Write the instructions after `instructions`, or `off`.")
            if len(text) > INSTRUCTIONS_LIMIT:
                raise BadSetting(
                    f"Instructions can be at most {INSTRUCTIONS_LIMIT:,} characters "
                    f"(these are {len(text):,})."
                )
            return text
        if name == TOOLS_SETTING:
            if value == "":
                return ""  # off, whatever the default
            names = [t.strip() for t in value.split(",") if t.strip()]
            unknown = [t for t in names if t not in TOOLS]
            if unknown or not names:
                valid = ", ".join(f"`{t}`" for t in TOOLS)
                raise BadSetting(f"Valid tools: {valid} (comma-separated), or `off`.")
            return ",".join(dict.fromkeys(names))
        if name == RESET_BY:
            if value not in RESETTERS:
                raise BadSetting("Use `anyone` or `admins`.")
            return value
        raise BadSetting(f"There is no setting `{name}`.")


def _flag(value: str | None, *, default: bool) -> bool:
    return default if value is None else value == "on"


def system_prompt(base: str, instructions: str | None) -> str:
    """The system prompt with a channel's own instructions after it."""
    if not instructions:
        return base
    return f"{base}\n\nInstructions for this channel, from its admins:\n{instructions}"
