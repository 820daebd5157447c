"""Slack's ways of saying the bot may not post in a conversation."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError


def is_refusal(error: SlackApiError) -> bool:
    """Slack will not let the bot post here (not a member, or no such conversation for it)."""
    code = str(error.response.get("error", ""))
    return code in {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "ekm_access_denied",
        "team_access_not_granted",
        "cannot_reply_to_message",
    }
