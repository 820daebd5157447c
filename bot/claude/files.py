"""Files for Claude: the content blocks of images and PDFs, and uploads to the Files API."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anthropic
import httpx2

from bot.claude.types import Attachment

log = logging.getLogger(__name__)

# Uploaded files live 90 days (the API's longest): a conversation that goes on after that
# describes its old files in words instead.
EXPIRES_IN_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True)
class Uploaded:
    file_id: str
    expires_at: datetime | None


def file_block(attachment: Attachment) -> dict[str, Any]:
    """An image or document block: by Files API id once uploaded, else inline base64."""
    if attachment.file_id:
        source: dict[str, Any] = {"type": "file", "file_id": attachment.file_id}
    else:
        data = base64.b64encode(attachment.data).decode("ascii")
        source = {"type": "base64", "media_type": attachment.media_type, "data": data}
    if attachment.kind == "document":
        return {"type": "document", "source": source, "title": attachment.name}
    return {"type": "image", "source": source}


async def upload(
    client: anthropic.AsyncAnthropic, attachment: Attachment
) -> tuple[Uploaded | None, bool]:
    """(the upload or None, whether the Files API is there at all)."""
    try:
        meta = await client.files.upload(
            file=(attachment.name, attachment.data, attachment.media_type),
            expires_in_seconds=EXPIRES_IN_SECONDS,
        )
    except (anthropic.NotFoundError, anthropic.PermissionDeniedError) as error:
        # A platform or gateway without the Files API: inline from now on.
        log.warning("the Files API is not available (%s); files are sent inline", error)
        return None, False
    except (anthropic.APIError, httpx2.HTTPError):
        log.warning("could not upload %s; it is sent inline", attachment.name, exc_info=True)
        return None, True
    expires = meta.expires_at or (meta.created_at + timedelta(seconds=EXPIRES_IN_SECONDS))
    return Uploaded(meta.id, expires), True
