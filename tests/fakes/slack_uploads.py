"""Uploads to the fake Slack, the way `files_upload_v2` makes them: three steps.

1. `files.getUploadURLExternal` (filename, length; optional alt_txt, snippet_type) answers
   `upload_url` (on the fake itself) and `file_id`. `length` must be a positive integer.
2. A POST to `upload_url` with the bytes, raw or as a multipart form (its first file part).
   Answers 200 "OK - <length>" as text/plain, as Slack does; a body whose size differs from
   `length` is refused with 400 and the file stays unuploaded.
3. `files.completeUploadExternal` (files=[{"id", "title"}] as a JSON string; optional
   channel_id, channels, thread_ts, initial_comment) answers `files`: full Slack file objects.
   Without a channel the file is private to the app (`channels: []`), yet the app can show it
   in an image block as `slack_file: {"id": …}`. A file never uploaded is `file_not_found`.

Completed files are kept in `uploads` (file id -> `Uploaded`) and also served like any hosted
file (`files.info`, `url_private` with the bot token), so a test can read back what was sent.
`error` (e.g. "missing_scope", "not_allowed_token_type") makes steps 1 and 3 fail with it.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from .slack_files import FILETYPES, FileHost, HostedFile
from .slack_store import SlackError

IMAGE_TYPES = ("png", "jpg", "gif")  # what an image block's slack_file may show
MIMETYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "text": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
}


class DetailedError(SlackError):
    """A Slack error whose answer carries more fields (e.g. missing_scope's `needed`)."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.extra = extra


@dataclass
class Uploaded:
    """One file uploaded by the app: what it said, what it sent, and what Slack made of it."""

    id: str
    filename: str
    length: int  # announced in step 1
    alt_txt: str | None = None
    data: bytes | None = None  # the bytes of step 2, None until uploaded
    completed: bool = False
    title: str = ""
    channels: list[str] = field(default_factory=list)
    obj: dict[str, Any] = field(default_factory=dict)  # the file object, once completed

    @property
    def filetype(self) -> str:
        extension = self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else ""
        return FILETYPES.get(extension, extension or "binary")

    @property
    def is_image(self) -> bool:
        return self.filetype in IMAGE_TYPES


class UploadHost:
    """The uploads in progress and done. `FakeSlack` routes the three steps here."""

    def __init__(self, files: FileHost, bot_user_id: str) -> None:
        self.files = files
        self.bot_user_id = bot_user_id
        self.uploads: dict[str, Uploaded] = {}
        self.error: str | None = None
        self.scopes = ""  # what a missing_scope answer says the token has
        self._keys: dict[str, str] = {}  # upload URL key -> file id
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/upload/v1/{key}", self._receive)

    @property
    def completed(self) -> dict[str, Uploaded]:
        return {k: u for k, u in self.uploads.items() if u.completed}

    def _refuse(self) -> None:
        if self.error == "missing_scope":
            raise DetailedError("missing_scope", needed="files:write", provided=self.scopes)
        if self.error:
            raise SlackError(self.error)

    # ----- step 1

    def get_upload_url(self, p: dict[str, Any], base: str) -> dict[str, Any]:
        self._refuse()
        filename = str(p.get("filename") or "")
        try:
            length = int(p.get("length") or 0)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        if not filename:
            raise SlackError("invalid_arguments")
        if length <= 0:
            raise SlackError("missing_argument")  # "typically only when length is 0"
        alt = p.get("alt_txt")
        if alt is not None and len(str(alt)) > 1000:
            raise SlackError("alt_txt_too_large")
        n = next(self._ids)
        file_id, key = f"F0UPL{n:05d}", f"CwABAAR{n:08d}"
        self.uploads[file_id] = Uploaded(file_id, filename, length, alt)
        self._keys[key] = file_id
        return {"ok": True, "upload_url": f"{base}/upload/v1/{key}", "file_id": file_id}

    # ----- step 2

    async def _receive(self, request: web.Request) -> web.Response:
        file_id = self._keys.get(request.match_info["key"], "")
        upload = self.uploads.get(file_id)
        if upload is None or upload.completed:
            return web.Response(status=404, text="not found", content_type="text/plain")
        data = await _body(request)
        if len(data) != upload.length:
            return web.Response(
                status=400,
                text=f"length mismatch: expected {upload.length}, got {len(data)}",
                content_type="text/plain",
            )
        upload.data = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ----- step 3

    def complete(self, p: dict[str, Any], base: str) -> tuple[list[Uploaded], list[str]]:
        """Complete the files; returns them and the channels they were shared to."""
        self._refuse()
        wanted = p.get("files")
        if isinstance(wanted, str):
            try:
                wanted = json.loads(wanted)
            except json.JSONDecodeError:
                raise SlackError("invalid_arguments") from None
        if not isinstance(wanted, list) or not wanted:
            raise SlackError("invalid_arguments")
        chosen: list[tuple[Uploaded, str]] = []
        for item in wanted:
            upload = self.uploads.get(str(item.get("id", ""))) if isinstance(item, dict) else None
            if upload is None or upload.data is None:
                raise SlackError("file_not_found")
            chosen.append((upload, str(item.get("title") or upload.filename)))
        channels = [c for c in str(p.get("channels") or "").split(",") if c]
        if p.get("channel_id"):
            channels.insert(0, str(p["channel_id"]))
        for upload, title in chosen:
            upload.title, upload.completed = title, True
            upload.channels = list(dict.fromkeys([*upload.channels, *channels]))
            upload.obj = self._file_object(upload, base)
            assert upload.data is not None
            self.files.files[upload.id] = HostedFile(upload.obj, upload.data)
        return [u for u, _ in chosen], channels

    def _file_object(self, upload: Uploaded, base: str) -> dict[str, Any]:
        now = int(time.time())
        name = upload.filename
        key = f"{self.files.team_id}-{upload.id}"
        public = [c for c in upload.channels if c.startswith("C")]
        obj: dict[str, Any] = {
            "id": upload.id,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": upload.title,
            "mimetype": MIMETYPES.get(upload.filetype, "application/octet-stream"),
            "filetype": upload.filetype,
            "pretty_type": upload.filetype.upper(),
            "user": self.bot_user_id,
            "user_team": self.files.team_id,
            "editable": False,
            "size": upload.length,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(public),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{base}/files-pri/{key}/{quote(name)}",
            "url_private_download": f"{base}/files-pri/{key}/download/{quote(name)}",
            "permalink": f"https://acme.slack.com/files/{self.bot_user_id}/{upload.id}/{quote(name)}",
            "comments_count": 0,
            "is_starred": False,
            "shares": {},
            "channels": public,
            "groups": [c for c in upload.channels if c.startswith("G")],
            "ims": [c for c in upload.channels if c.startswith("D")],
            "has_more_shares": False,
            "has_rich_preview": False,
            "file_access": "visible",
        }
        if upload.alt_txt:
            obj["alt_txt"] = upload.alt_txt
        if upload.is_image and upload.data:
            obj.update(_image_size(upload.data))
        return obj


async def _body(request: web.Request) -> bytes:
    """The uploaded bytes: the raw body, or the first file part of a multipart form."""
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.filename is not None:
            return bytes(await part.read(decode=False))
    return b""


def _image_size(data: bytes) -> dict[str, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError):
        return {}
    return {"original_w": width, "original_h": height}
