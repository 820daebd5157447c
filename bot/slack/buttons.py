"""The reply's buttons: Stop and Continue, claimed once whichever replica Slack hands the
click to. A Continue is a question: kept with its claim, so a live process carries it out
if this one dies first."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck

from bot.slack.claims import claim_once
from bot.slack.questions import continue_payload
from bot.slack.responder import Responder
from bot.slack.stops import StopResult
from bot.slack.text import CONTINUE_REFUSED, STOP_REFUSED
from bot.slack.views import ContinueTarget
from bot.store import Store


class Buttons:
    def __init__(self, store: Store, responder: Responder) -> None:
        self._store = store
        self._responder = responder

    async def on_stop(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        if not await self._claim_action(body):
            return
        action = (body.get("actions") or [{}])[0]
        user_id = str((body.get("user") or {}).get("id") or "")
        result = await self._responder.stop(str(action.get("value") or ""), user_id)
        if result is StopResult.REFUSED:
            container = body.get("container") or {}
            channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
            await self._responder.tell(channel, user_id, container.get("thread_ts"), STOP_REFUSED)

    async def on_continue(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        self._responder.track()
        await ack()
        key = self._action_key(body)
        if not await claim_once(self._store, key, _team(body), "action"):
            return
        action = (body.get("actions") or [{}])[0]
        target = ContinueTarget.decode(str(action.get("value") or ""))
        user_id = str((body.get("user") or {}).get("id") or "")
        team_id = str((body.get("team") or {}).get("id") or "")
        if target is None:
            return
        if not await self._responder.may_act_for(target.asker, user_id):
            await self._responder.tell(target.channel, user_id, target.thread, CONTINUE_REFUSED)
            return
        message = body.get("message") or {}
        container = body.get("container") or {}
        # One continuation per button: take it away before answering.
        ts = str(container.get("message_ts") or message.get("ts"))
        kept = continue_payload(key, team_id, user_id, str(action.get("value")), ts)
        await self._store.keep_question(key, self._responder.owner, kept)
        await self._responder.remove_controls(target.channel, ts, message)
        await self._responder.carry_on(target, team_id, user_id, after=ts, claim=key)

    async def _claim_action(self, body: dict[str, Any]) -> bool:
        return await claim_once(self._store, self._action_key(body), _team(body), "action")

    @staticmethod
    def _action_key(body: dict[str, Any]) -> str:
        action = (body.get("actions") or [{}])[0]
        return f"action:{body.get('trigger_id')}:{action.get('action_ts') or action.get('value')}"


def _team(body: dict[str, Any]) -> str:
    return str((body.get("team") or {}).get("id") or "")
