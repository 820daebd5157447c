"""What the HTTP route checks of a request from Slack before Bolt sees it.

The signature over the bytes as sent, then the body's shape: a JSON object, or a form (maybe
with a JSON `payload`). A body that is neither gets a 400 here instead of an error deep
inside Bolt. `SlackBody.kind` tells the route which requests need Bolt's answer and which
(events) need only a 200.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

# A slash command that arrives before Slack's API has ever answered: shown to the asker only.
NOT_CONNECTED = (
    "I can't reach Slack's API right now, so I can't answer yet. Please try again in a minute."
)


@dataclass(frozen=True)
class SlackBody:
    raw: str  # the text Bolt gets
    kind: str  # "event_callback", "url_verification", "command", "ssl_check", "payload", …

    @property
    def needs_identity(self) -> bool:
        """Slack's URL check and SSL check need no authorization; everything else does."""
        return self.kind not in ("url_verification", "ssl_check")

    def not_connected(self) -> web.Response:
        """Slack's API has never answered this process: the bot cannot know who it is, nor
        post. A slash command gets a note for the asker; an event or a click a 503, so
        Slack delivers it again later."""
        if self.kind == "command":
            return web.json_response({"response_type": "ephemeral", "text": NOT_CONNECTED})
        return web.json_response({"error": "Slack's API cannot be reached yet"}, status=503)


def read_body(body: bytes, content_type: str) -> SlackBody | None:
    """The body as Slack sends it, or None for anything else (not UTF-8, not an object)."""
    try:
        raw = body.decode()
        if content_type == "application/json":
            parsed: Any = json.loads(raw)
            if not isinstance(parsed, dict):
                return None
            return SlackBody(raw, str(parsed.get("type") or "event"))
        form = parse_qs(raw, keep_blank_values=True)
        if "payload" in form:
            if not isinstance(json.loads(form["payload"][0]), dict):
                return None
            return SlackBody(raw, "payload")
        if not form:
            return None
        kind = "command" if "command" in form else "ssl_check" if "ssl_check" in form else "form"
        return SlackBody(raw, kind)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


class RawSignatureVerifier(SignatureVerifier):
    """slack_sdk's verifier over the bytes as sent (its own decodes them as UTF-8 first)."""

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str:
        raw = body if isinstance(body, bytes) else body.encode()
        base = b"v0:" + timestamp.encode() + b":" + raw
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    def is_valid_request(self, body: str | bytes, headers: Mapping[str, str]) -> bool:
        try:  # a timestamp that is no number, a signature that is not ASCII: not signed
            return super().is_valid_request(body, headers)
        except (ValueError, TypeError, OverflowError):
            return False
