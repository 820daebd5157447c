"""Content blocks and the Files API of the fake Anthropic server (PLATFORM.md 0a.5).

Content validation (:func:`check_messages`, on ``/v1/messages`` and ``/v1/messages/count_tokens``):
every message must be an object whose ``content`` is a string or a list of block objects whose
``type`` is one of :data:`BLOCK_TYPES` (the SDK's ``ContentBlockParam`` union). Checked in detail
(400 invalid_request_error, the message starting with the path, e.g.
``messages.0.content.1.source.media_type: ...``):

* ``text``: ``text`` must be a string.
* ``image`` (user messages only): ``source`` is ``{"type": "base64", "media_type": one of
  :data:`IMAGE_MEDIA_TYPES`, "data": <strict base64>}`` with at most :data:`MAX_IMAGE_BYTES`
  (5 MB) decoded ("image exceeds 5 MB maximum: n bytes > 5242880 bytes"), ``{"type": "url",
  "url"}`` or ``{"type": "file", "file_id"}``; the file must be held by the fake ("File not
  found: <id>") and have an image mime type.
* ``document`` (user messages only): ``source`` is ``{"type": "base64", "media_type":
  "application/pdf", "data"}``, ``{"type": "text", "media_type": "text/plain", "data": <str>}``,
  ``{"type": "url", "url"}``, ``{"type": "content", "content": <str or text/image blocks>}`` or
  ``{"type": "file", "file_id"}`` of a held ``application/pdf`` or ``text/plain`` file;
  ``title`` / ``context`` strings or null.
* ``tool_result``: a list ``content`` is checked block by block (text, image, document, ...).
* Other known types pass unchecked; ``cache_control`` is the cache module's business.

Files API (:class:`StoredFile`, :func:`parse_form`, :func:`new_file`): ``POST /v1/files`` takes
``multipart/form-data`` with a ``file`` part (its filename, final path component, else
``unnamed`` plus an extension for its type; its content type, else a guess from the filename)
and an optional ``expires_in_seconds`` (:data:`MIN_EXPIRES_IN`..:data:`MAX_EXPIRES_IN`, else 400).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import mimetypes
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from typing import Any

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
DOCUMENT_FILE_TYPES = ("application/pdf", "text/plain")
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # decoded bytes of one inline (base64) image
MIN_EXPIRES_IN = 3_600
MAX_EXPIRES_IN = 7_776_000
BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "container_upload",
)


@dataclass
class StoredFile:
    """One file held by the fake's Files API."""

    id: str
    filename: str
    mime_type: str
    data: bytes
    created_at: dt.datetime
    expires_at: dt.datetime | None = None

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    def metadata(self) -> dict[str, Any]:
        """The API's FileMetadata JSON."""
        return {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "created_at": _rfc3339(self.created_at),
            "downloadable": False,
            "expires_at": None if self.expires_at is None else _rfc3339(self.expires_at),
        }


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def new_file_id() -> str:
    return f"file_{secrets.token_hex(12)}"


# -- content blocks -------------------------------------------------------------------------------


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _base64_size(data: Any, where: str) -> int | str:
    """Decoded size of strict base64 `data`, or the 400 message."""
    if not isinstance(data, str) or not data:
        return f"{where}: Field required (a base64 string)"
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return f"{where}: The provided data is not valid base64"


def _held_file(
    source: dict[str, Any], where: str, files: Mapping[str, StoredFile]
) -> StoredFile | str:
    """The referenced StoredFile, or the 400 message."""
    file_id = source.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        return f"{where}.file_id: Field required"
    stored = files.get(file_id)
    if stored is None:
        return f"{where}.file_id: File not found: {file_id}"
    return stored


def _check_image(source: Any, where: str, files: Mapping[str, StoredFile]) -> str | None:
    if not isinstance(source, dict):
        return f"{where}: Field required"
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:
            allowed = _quoted(IMAGE_MEDIA_TYPES)
            return f"{where}.media_type: Input should be {allowed}; got {media_type!r}"
        size = _base64_size(source.get("data"), f"{where}.data")
        if isinstance(size, str):
            return size
        if size > MAX_IMAGE_BYTES:
            return (
                f"{where}.data: image exceeds 5 MB maximum: {size} bytes > {MAX_IMAGE_BYTES} bytes"
            )
        return None
    if kind == "url":
        return None if isinstance(source.get("url"), str) else f"{where}.url: Field required"
    if kind == "file":
        stored = _held_file(source, where, files)
        if isinstance(stored, str):
            return stored
        if stored.mime_type not in IMAGE_MEDIA_TYPES:
            return (
                f"{where}.file_id: file {stored.id} has mime type {stored.mime_type!r}; an image "
                f"block needs one of {_quoted(IMAGE_MEDIA_TYPES)}"
            )
        return None
    return f"{where}.type: Input should be 'base64', 'url' or 'file'; got {kind!r}"


def _check_document(source: Any, where: str, files: Mapping[str, StoredFile]) -> str | None:
    if not isinstance(source, dict):
        return f"{where}: Field required"
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") != "application/pdf":
            got = source.get("media_type")
            return f"{where}.media_type: Input should be 'application/pdf'; got {got!r}"
        size = _base64_size(source.get("data"), f"{where}.data")
        return size if isinstance(size, str) else None
    if kind == "text":
        if source.get("media_type") != "text/plain":
            got = source.get("media_type")
            return f"{where}.media_type: Input should be 'text/plain'; got {got!r}"
        data = source.get("data")
        return None if isinstance(data, str) else f"{where}.data: Input should be a string"
    if kind == "url":
        return None if isinstance(source.get("url"), str) else f"{where}.url: Field required"
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return None
        if not isinstance(content, list):
            return f"{where}.content: Input should be a string or a list of blocks"
        for j, nested in enumerate(content):
            nested_where = f"{where}.content.{j}"
            if not isinstance(nested, dict) or nested.get("type") not in ("text", "image"):
                return f"{nested_where}.type: Input should be 'text' or 'image'"
            problem = _check_block(nested, nested_where, "user", files)
            if problem is not None:
                return problem
        return None
    if kind == "file":
        stored = _held_file(source, where, files)
        if isinstance(stored, str):
            return stored
        if stored.mime_type not in DOCUMENT_FILE_TYPES:
            return (
                f"{where}.file_id: file {stored.id} has mime type {stored.mime_type!r}; a "
                f"document block needs one of {_quoted(DOCUMENT_FILE_TYPES)}"
            )
        return None
    allowed = "'base64', 'text', 'url', 'content' or 'file'"
    return f"{where}.type: Input should be {allowed}; got {kind!r}"


def _check_block(block: Any, where: str, role: Any, files: Mapping[str, StoredFile]) -> str | None:
    if not isinstance(block, dict):
        return f"{where}: Input should be an object"
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        return f"{where}.type: unknown content block type {kind!r}; expected one of " + _quoted(
            BLOCK_TYPES
        )
    if kind == "text" and not isinstance(block.get("text"), str):
        return f"{where}.text: Input should be a string"
    if kind in ("image", "document") and role != "user":
        return f"{where}: {kind} blocks are only allowed in user messages (role {role!r})"
    if kind == "image":
        return _check_image(block.get("source"), f"{where}.source", files)
    if kind == "document":
        for name in ("title", "context"):
            if block.get(name) is not None and not isinstance(block[name], str):
                return f"{where}.{name}: Input should be a string"
        return _check_document(block.get("source"), f"{where}.source", files)
    if kind == "tool_result" and isinstance(block.get("content"), list):
        for j, nested in enumerate(block["content"]):
            problem = _check_block(nested, f"{where}.content.{j}", role, files)
            if problem is not None:
                return problem
    return None


def check_messages(messages: list[Any], files: Mapping[str, StoredFile]) -> str | None:
    """The 400 message for the first invalid message or content block, else None."""
    for m, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{m}: Input should be an object"
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            return f"messages.{m}.content: Input should be a string or a list of content blocks"
        for i, block in enumerate(content):
            problem = _check_block(block, f"messages.{m}.content.{i}", message.get("role"), files)
            if problem is not None:
                return problem
    return None


# -- multipart uploads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One part of a multipart/form-data body."""

    name: str
    data: bytes
    filename: str | None = None  # None: a plain field
    content_type: str | None = None  # the part's Content-Type header, if any


def _header_message(text: str) -> Message:
    return HeaderParser().parsestr(text)


def parse_form(raw: bytes, content_type: str) -> dict[str, FormField] | str:
    """The parts of a multipart/form-data body by name, or the 400 message."""
    header = _header_message(f"Content-Type: {content_type}\r\n\r\n")
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        return "Content-Type: expected multipart/form-data with a boundary"
    sections = (b"\r\n" + raw).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(sections) < 2 or not sections[-1].startswith(b"--"):
        return "The multipart/form-data body is malformed (no closing boundary)"
    fields: dict[str, FormField] = {}
    for section in sections[1:-1]:
        head, separator, data = section.partition(b"\r\n\r\n")
        if not separator:
            return "The multipart/form-data body is malformed (a part without headers)"
        part = _header_message(head.decode("utf-8", "replace").strip() + "\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            return "The multipart/form-data body is malformed (a part without a name)"
        filename = part.get_param("filename", header="content-disposition")
        fields[name] = FormField(
            name,
            data,
            filename if isinstance(filename, str) else None,
            part.get("content-type"),
        )
    return fields


def form_record(fields: dict[str, FormField]) -> dict[str, Any]:
    """What to record of a form: plain fields as strings, file parts without their bytes."""
    return {
        name: part.data.decode("utf-8", "replace")
        if part.filename is None
        else {
            "filename": part.filename,
            "content_type": part.content_type,
            "size_bytes": len(part.data),
        }
        for name, part in fields.items()
    }


def new_file(fields: dict[str, FormField], now: dt.datetime) -> StoredFile | str:
    """The uploaded file, or the 400 message."""
    upload = fields.get("file")
    if upload is None:
        return "file: Field required"
    mime_type = (upload.content_type or "").split(";")[0].strip().lower()
    base_name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not mime_type or mime_type == "application/octet-stream":
        mime_type = mimetypes.guess_type(base_name)[0] or "application/octet-stream"
    filename = base_name or "unnamed" + (mimetypes.guess_extension(mime_type) or "")
    expires_at = None
    if "expires_in_seconds" in fields:
        text = fields["expires_in_seconds"].data.decode("utf-8", "replace").strip()
        try:
            seconds: int | None = int(text)
        except ValueError:
            seconds = None
        if seconds is None or not MIN_EXPIRES_IN <= seconds <= MAX_EXPIRES_IN:
            return (
                f"expires_in_seconds: Input should be an integer between {MIN_EXPIRES_IN} and "
                f"{MAX_EXPIRES_IN}; got {text!r}"
            )
        expires_at = now + dt.timedelta(seconds=seconds)
    return StoredFile(new_file_id(), filename, mime_type, upload.data, now, expires_at)
