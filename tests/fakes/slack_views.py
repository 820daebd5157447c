"""Views on the fake Slack: the App Home tab (`views.publish`) and modals (`views.open`,
`views.update`), checked the way Slack checks them and kept as Slack returns them.

A view comes back as a full view object: `id` (a Home tab keeps its id from one publish to
the next), `team_id`, `hash` (new on every change), `state: {"values": {}}`, `root_view_id`,
`app_id`, `bot_id`, and every block with a `block_id` (generated when missing). What fails:

- a bad view: `invalid_arguments` with `response_metadata.messages` naming the field by
  json-pointer, as Slack answers (more than 100 blocks, a wrong `type` for the method, an
  unknown block type, a section text over 3,000 characters, a header over 150, an image
  without `alt_text` or without exactly one of `image_url` / `slack_file`, a `slack_file`
  that is not an image file the app can see (png, jpg, gif: uploaded by the app or hosted),
  a modal without a title, repeated block ids);
- over 250 KB of JSON: `view_too_large`; Home tab off (`home_tab_enabled = False`):
  `not_enabled`; an `external_id` used by another view: `duplicate_external_id`;
- `views.open`: no trigger → `invalid_arguments`; a trigger used before →
  `exchanged_trigger_id`; one from `new_trigger_id()` older than `trigger_ttl` (3 s) →
  `expired_trigger_id` (triggers the fake did not issue are taken as fresh);
- `views.update` and `views.publish`: a `hash` that is not the view's current one →
  `hash_conflict`; `views.update` of an unknown `view_id` / `external_id` → `not_found`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from .slack_store import SECTION_TEXT_MAX, SlackError
from .slack_uploads import DetailedError

MAX_VIEW_BLOCKS = 100
MAX_VIEW_BYTES = 250 * 1000  # "greater than 250kb" → view_too_large
HEADER_TEXT_MAX = 150
ALT_TEXT_MAX = 2000
IMAGE_URL_MAX = 3000
TITLE_MAX = 24  # a modal's title, submit and close texts
TRIGGER_TTL = 3.0
IMAGE_FILETYPES = ("png", "jpg", "gif")
VIEW_BLOCK_TYPES = (
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "video",
)
FileLookup = Callable[[], dict[str, dict[str, Any]]]


class ViewHost:
    """Every view by id, each user's Home tab, and the modals opened."""

    def __init__(self, team_id: str, app_id: str, bot_id: str, files: FileLookup) -> None:
        self.team_id, self.app_id, self.bot_id = team_id, app_id, bot_id
        self.files = files  # file id -> file object, of the files the app may show
        self.views: dict[str, dict[str, Any]] = {}  # view id -> the view as it is now
        self.home_views: dict[str, dict[str, Any]] = {}  # user id -> their Home tab now
        self.opened_views: list[dict[str, Any]] = []  # modals as views.open answered them
        self.home_tab_enabled = True
        self.trigger_ttl = TRIGGER_TTL
        self._issued: dict[str, float] = {}  # trigger id -> monotonic time issued
        self._exchanged: set[str] = set()
        self._ids = itertools.count(1)

    def new_trigger_id(self) -> str:
        """A trigger id as Slack sends in interactions, valid for `trigger_ttl` seconds."""
        n = next(self._ids)
        trigger = f"{7_000_000_000_000 + n}.{255_442_617_559}.{secrets.token_hex(16)}"
        self._issued[trigger] = time.monotonic()
        return trigger

    # ----- methods

    def publish(self, p: dict[str, Any]) -> dict[str, Any]:
        user, view = str(p["user_id"]), p["view"]
        if not user or not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        if not self.home_tab_enabled:
            raise SlackError("not_enabled")
        current = self.home_views.get(user)
        _check_hash(p, current)
        self._check(view, "home", current)
        shown = self._render(view, current["id"] if current else None)
        self.home_views[user] = shown
        return {"ok": True, "view": shown}

    def open(self, p: dict[str, Any]) -> dict[str, Any]:
        trigger = str(p.get("trigger_id") or p.get("interactivity_pointer") or "")
        view = p["view"]
        if not trigger or not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        if trigger in self._exchanged:
            raise SlackError("exchanged_trigger_id")
        issued = self._issued.get(trigger)
        if issued is not None and time.monotonic() - issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        self._check(view, "modal", None)
        self._exchanged.add(trigger)
        shown = self._render(view, None)
        self.opened_views.append(shown)
        return {"ok": True, "view": shown}

    def update(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p["view"]
        if not isinstance(view, dict) or not (p.get("view_id") or p.get("external_id")):
            raise SlackError("invalid_arguments")
        current = self.views.get(str(p.get("view_id") or "")) or self._external(
            str(p.get("external_id") or "")
        )
        if current is None:
            raise SlackError("not_found")
        _check_hash(p, current)
        self._check(view, str(current["type"]), current)
        # A view id's external_id stays unless the new view names another (not documented).
        kept = {"external_id": current["external_id"]} if current["external_id"] else {}
        shown = self._render({**kept, **view}, current["id"])
        for user, home in self.home_views.items():
            if home["id"] == shown["id"]:
                self.home_views[user] = shown
        return {"ok": True, "view": shown}

    # ----- checks

    def _check(self, view: dict[str, Any], kind: str, current: dict[str, Any] | None) -> None:
        if len(json.dumps(view)) > MAX_VIEW_BYTES:
            raise SlackError("view_too_large")
        external = str(view.get("external_id") or "")
        held = self._external(external)
        if held is not None and (current is None or held["id"] != current["id"]):
            raise SlackError("duplicate_external_id")
        if problems := self.problems(view, kind):
            raise DetailedError("invalid_arguments", response_metadata={"messages": problems})

    def problems(self, view: dict[str, Any], kind: str) -> list[str]:
        """What Slack would say is wrong with this view of type `kind` (empty: nothing)."""
        out: list[str] = []
        if view.get("type") != kind:
            out.append(_error(f"must be {kind}", "/view/type"))
        if kind == "modal":
            out += _plain("title", view.get("title"), TITLE_MAX, required=True)
            out += _plain("submit", view.get("submit"), TITLE_MAX, required=False)
            out += _plain("close", view.get("close"), TITLE_MAX, required=False)
        if len(str(view.get("private_metadata") or "")) > 3000:
            out.append(_error("must be less than 3001 characters", "/view/private_metadata"))
        blocks = view.get("blocks")
        if not isinstance(blocks, list):
            return [*out, _error("must provide an array", "/view/blocks")]
        if len(blocks) > MAX_VIEW_BLOCKS:
            out.append(_error("no more than 100 items allowed", "/view/blocks"))
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            where = f"/view/blocks/{i}"
            if not isinstance(block, dict) or block.get("type") not in VIEW_BLOCK_TYPES:
                out.append(_error("unsupported type", f"{where}/type"))
                continue
            if (block_id := block.get("block_id")) is not None:
                if block_id in seen:
                    out.append(_error(f"duplicate block_id {block_id!r}", f"{where}/block_id"))
                seen.add(block_id)
            out += self._block(block, where)
        return out

    def _block(self, block: dict[str, Any], where: str) -> list[str]:
        kind = block["type"]
        text = str((block.get("text") or {}).get("text", ""))
        if kind == "section" and len(text) > SECTION_TEXT_MAX:
            return [_error("must be less than 3001 characters", f"{where}/text/text")]
        if kind == "section" and not text and not block.get("fields"):
            return [_error("must provide text or fields", where)]
        if kind == "header" and not 0 < len(text) <= HEADER_TEXT_MAX:
            return [_error("must be 1 to 150 characters", f"{where}/text/text")]
        if kind == "image":
            return self._image(block, where)
        return []

    def _image(self, block: dict[str, Any], where: str) -> list[str]:
        out: list[str] = []
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not alt or len(alt) > ALT_TEXT_MAX:
            out.append(_error("must provide alt_text (1 to 2000 characters)", f"{where}/alt_text"))
        url, slack_file = block.get("image_url"), block.get("slack_file")
        if (url is None) == (slack_file is None):
            return [*out, _error("must provide exactly one of image_url, slack_file", where)]
        if url is not None:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                out.append(_error("must be a URL", f"{where}/image_url"))
            elif len(url) > IMAGE_URL_MAX:
                out.append(_error("must be less than 3001 characters", f"{where}/image_url"))
            return out
        if not self._image_file(slack_file):
            out.append(_error("invalid slack_file: not an image file the app can see", where))
        return out

    def _image_file(self, slack_file: Any) -> bool:
        if not isinstance(slack_file, dict) or ("id" in slack_file) == ("url" in slack_file):
            return False  # exactly one of id and url
        files = self.files()
        if "id" in slack_file:
            found = files.get(str(slack_file["id"]))
        else:
            urls = ("url_private", "permalink")
            found = next(
                (f for f in files.values() if slack_file["url"] in (f.get(u) for u in urls)),
                None,
            )
        return found is not None and found.get("filetype") in IMAGE_FILETYPES

    # ----- rendering

    def _render(self, view: dict[str, Any], view_id: str | None) -> dict[str, Any]:
        view_id = view_id or f"V0VIEW{next(self._ids):05d}"
        blocks = [
            {**b, "block_id": b.get("block_id") or secrets.token_urlsafe(4)[:5]}
            for b in view.get("blocks", [])
        ]
        title = view.get("title") or {"type": "plain_text", "text": "View Title"}
        shown: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_urlsafe(6)}",
            "title": title,
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self.views[view_id] = shown
        return shown

    def _external(self, external_id: str) -> dict[str, Any] | None:
        if not external_id:
            return None
        return next((v for v in self.views.values() if v["external_id"] == external_id), None)


def _check_hash(p: dict[str, Any], current: dict[str, Any] | None) -> None:
    if p.get("hash") and current is not None and p["hash"] != current["hash"]:
        raise SlackError("hash_conflict")


def _plain(name: str, value: Any, limit: int, *, required: bool) -> list[str]:
    if value is None:
        return [_error("must provide an object", f"/view/{name}")] if required else []
    if not isinstance(value, dict) or value.get("type") != "plain_text":
        return [_error("must be a plain_text object", f"/view/{name}")]
    if not 0 < len(str(value.get("text", ""))) <= limit:
        return [_error(f"must be 1 to {limit} characters", f"/view/{name}/text")]
    return []


def _error(what: str, pointer: str) -> str:
    return f"[ERROR] {what} [json-pointer:{pointer}]"


# ----- what a person does with a view (the rig builds interaction payloads with these)

SINGLE_CHOICE = ("static_select", "external_select", "radio_buttons")
MULTI_CHOICE = ("multi_static_select", "multi_external_select", "checkboxes")
PICKED = {  # element type -> the state field holding what was picked
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
}


def find_element(view: dict[str, Any], action_id: str) -> tuple[dict[str, Any], str]:
    """The interactive element with this action_id in the view, and its block's id;
    AssertionError when the view shows no such element (a person could not press it)."""
    for block in view.get("blocks", []):
        candidates = [*block.get("elements", []), block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element, str(block.get("block_id", ""))
    shown = [
        e.get("action_id")
        for b in view.get("blocks", [])
        for e in [*b.get("elements", []), b.get("accessory"), b.get("element")]
        if isinstance(e, dict) and e.get("action_id")
    ]
    raise AssertionError(f"view {view.get('id')} has no element {action_id!r}; it has {shown}")


def view_state(view: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """`state.values` of a submitted view, from `inputs`: action_id -> what the person entered
    (text), chose (an option's value; a list of them for multi-selects and checkboxes) or
    picked (a user, channel or date). Input blocks left out of `inputs` are sent empty, as
    Slack does; an action_id the view's input blocks lack is an AssertionError."""
    values: dict[str, Any] = {}
    unused = set(inputs)
    for block in view.get("blocks", []):
        element = block.get("element") if block.get("type") == "input" else None
        if not isinstance(element, dict):
            continue
        action_id, kind = str(element.get("action_id")), str(element.get("type"))
        unused.discard(action_id)
        # What the person left untouched is submitted as the view showed it: its initial
        # option(s), text, user or channel.
        given = inputs[action_id] if action_id in inputs else _initial(element, kind)
        values.setdefault(str(block.get("block_id")), {})[action_id] = {
            "type": kind,
            **_state_of(element, kind, given),
        }
    if unused:
        raise AssertionError(f"view {view.get('id')} has no input {sorted(unused)}")
    return values


def _initial(element: dict[str, Any], kind: str) -> Any:
    if kind in SINGLE_CHOICE:
        option = element.get("initial_option")
        return option.get("value") if isinstance(option, dict) else None
    if kind in MULTI_CHOICE:
        return [o.get("value") for o in element.get("initial_options") or []]
    for key in ("initial_conversation", "initial_channel", "initial_user", "initial_date"):
        if key in element:
            return element[key]
    return element.get("initial_value")


def _state_of(element: dict[str, Any], kind: str, given: Any) -> dict[str, Any]:
    options = [
        *element.get("options", []),
        *(o for g in element.get("option_groups", []) for o in g.get("options", [])),
    ]
    by_value = {str(o.get("value")): o for o in options}
    if kind in SINGLE_CHOICE:
        return {"selected_option": by_value[str(given)] if given is not None else None}
    if kind in MULTI_CHOICE:
        return {"selected_options": [by_value[str(v)] for v in given or []]}
    if kind in PICKED:
        return {PICKED[kind]: given}
    if kind == "rich_text_input":
        text = {"type": "text", "text": str(given or "")}
        section = {"type": "rich_text_section", "elements": [text]}
        return {"rich_text_value": {"type": "rich_text", "elements": [section]}}
    return {"value": given}
