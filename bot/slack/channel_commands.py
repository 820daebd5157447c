"""`/ask settings` and forgetting: the commands that manage the bot in a channel.

Anyone may read a channel's settings (privately, with who changed what and when); only
admins change them. Slash commands cannot be used in threads, so a thread is forgotten by
mentioning the bot there with `forget`; `/ask forget` forgets a whole channel (admins only)
or, in a DM, the person's own conversation with the bot.
"""

from __future__ import annotations

from datetime import datetime

from bot.engine.channels import (
    ENABLED,
    FOLLOW_UPS,
    INSTRUCTIONS,
    MEMORY,
    MODEL,
    RESET_BY,
    TOOLS,
    TOOLS_SETTING,
    BadSetting,
    ChannelConfig,
    Channels,
)
from bot.slack.admins import Admins
from bot.slack.connect import SharedChannels
from bot.slack.text import ASK_HELP, RESET_DONE
from bot.store import Store

FORGET = "forget"
RESET_ADMINS_ONLY = "In this channel only workspace admins can reset my memory (`/ask settings`)."
ADMINS_ONLY = "Only workspace admins can change this channel's settings; nothing was changed."
FORGET_ADMINS_ONLY = (
    "Only workspace admins can make me forget a whole channel; nothing was deleted."
)
NOT_IN_DM = "Settings are per channel: run `/ask settings` in a channel. DMs use the defaults."
USAGE = (
    "Admins change this channel's settings with:\n"
    "• `/ask settings on` or `off`: answer here, or not at all\n"
    "• `/ask settings model <model-id>` (or `model default`)\n"
    "• `/ask settings instructions <text>` (added to what Claude is told), or `instructions off`\n"
    "• `/ask settings memory on|off`: earlier conversations of the channel as context\n"
    "• `/ask settings followups on|off`: answer replies in my threads without a mention\n"
    f"• `/ask settings tools {','.join(TOOLS)}` or `tools off`: Claude's web tools\n"
    "• `/ask settings reset anyone|admins`: who may use `/ask reset`"
)
LABELS = {
    ENABLED: "On in this channel",
    MODEL: "Model",
    INSTRUCTIONS: "Instructions",
    MEMORY: "Channel memory",
    FOLLOW_UPS: "Follow-ups without a mention",
    TOOLS_SETTING: "Claude's tools",
    RESET_BY: "Who may reset memory",
}
ON_OFF = ("on", "off")


class ChannelCommands:
    def __init__(self, channels: Channels, admins: Admins, store: Store) -> None:
        self._channels = channels
        self._admins = admins
        self._store = store

    async def handle(
        self,
        word: str,
        rest: str,
        team_id: str,
        channel_id: str,
        user_id: str,
        shared: SharedChannels | None = None,
    ) -> str:
        """`/ask settings …`, `/ask forget` and `/ask reset`: the answer for the asker."""
        if word == "settings":
            external = shared is not None and await shared.external(channel_id)
            return await self.settings(team_id, channel_id, user_id, rest, external=external)
        if word == FORGET and not rest.strip():
            return await self.forget(team_id, channel_id, user_id)
        if word == "reset" and not rest.strip():
            if not await self.may_reset(team_id, channel_id, user_id):
                return RESET_ADMINS_ONLY
            await self._store.reset_memory(team_id, channel_id, user_id)
            return RESET_DONE
        return ASK_HELP

    async def settings(
        self, team_id: str, channel_id: str, user_id: str, text: str, *, external: bool = False
    ) -> str:
        """`text` is what follows `settings`; the answer, for the asker alone."""
        if channel_id.startswith("D"):
            return NOT_IN_DM
        words = text.split()
        if not words:
            config = await self._channels.config(team_id, channel_id, external=external)
            return show(config) + "\n\n" + USAGE
        if not await self._admins.is_admin(user_id):
            return ADMINS_ONLY
        try:
            name, value = parse(text)
            await self._channels.change(team_id, channel_id, name, value, user_id)
        except BadSetting as error:
            return f"{error}\n\n{USAGE}"
        config = await self._channels.config(team_id, channel_id, external=external)
        return f"Done: {LABELS[name].lower()} changed.\n\n{show(config)}"

    async def config(
        self, team_id: str, channel_id: str, *, external: bool = False
    ) -> ChannelConfig:
        return await self._channels.config(team_id, channel_id, external=external)

    async def may_reset(self, team_id: str, channel_id: str, user_id: str) -> bool:
        config = await self._channels.config(team_id, channel_id)
        return config.reset_by == "anyone" or await self._admins.is_admin(user_id)

    async def forget(
        self, team_id: str, channel_id: str, user_id: str, thread_ts: str | None = None
    ) -> str:
        """Delete what is stored of a thread (anyone in it), or of a whole channel (admins;
        in a DM, the person whose DM it is)."""
        whole_channel = thread_ts is None and not channel_id.startswith("D")
        if whole_channel and not await self._admins.is_admin(user_id):
            return FORGET_ADMINS_ONLY
        count = await self._store.forget(team_id, channel_id, thread_ts)
        where = "this thread" if thread_ts else "this conversation"
        if not channel_id.startswith("D") and thread_ts is None:
            where = "this channel"
        return (
            f"Done: I deleted what I had stored of {where} ({count} messages). "
            "The usage log keeps only the numbers (tokens and cost)."
        )


def parse(text: str) -> tuple[str, str | None]:
    """A command's words (after `settings`) as a setting and its new value (None: back to
    the default)."""
    word, _, rest = text.strip().partition(" ")
    word, rest = word.lower(), rest.strip()
    if word in ("on", "off") and not rest:
        return ENABLED, word
    if word == "model":
        return MODEL, None if rest.lower() == "default" else (rest or "")
    if word == "instructions":
        return INSTRUCTIONS, None if rest.lower() == "off" else rest
    if word in ("memory", "followups", "follow-ups"):
        if rest.lower() not in ON_OFF:
            raise BadSetting(f"Use `{word} on` or `{word} off`.")
        return (MEMORY if word == "memory" else FOLLOW_UPS), rest.lower()
    if word == "tools":
        return TOOLS_SETTING, "" if rest.lower() in ("off", "none") else rest.replace(" ", "")
    if word == "reset":
        return RESET_BY, rest.lower()
    raise BadSetting(f"There is no setting `{word}`.")


def show(config: ChannelConfig) -> str:
    values = {
        ENABLED: "yes" if config.enabled else "no",
        MODEL: f"`{config.model}`",
        INSTRUCTIONS: f"“{_short(config.instructions)}”" if config.instructions else "none",
        MEMORY: "on" if config.memory else "off",
        FOLLOW_UPS: "on" if config.follow_ups else "off",
        TOOLS_SETTING: ", ".join(f"`{t}`" for t in config.tools) or "off",
        RESET_BY: config.reset_by,
    }
    lines = ["*Claude's settings in this channel*"]
    for name, label in LABELS.items():
        change = config.changes.get(name)
        said = " (default)"
        if change is not None:
            verb = "reset to the default" if change.value is None else "set"
            said = f" ({verb} by <@{change.changed_by}> on {_when(change.changed_at)})"
        lines.append(f"• {label}: {values[name]}{said}")
    if config.external and ENABLED not in config.changes:
        lines.append(
            "This channel is shared with another organisation (Slack Connect): I stay off "
            "here unless an admin turns me on."
        )
    return "\n".join(lines)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
