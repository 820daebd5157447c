"""The files of a Slack message, turned into what Claude is sent.

Images and PDFs become attachments with their bytes, text and code files become text, other
files become a note, and a file that breaks a limit or cannot be downloaded refuses the whole
question before any model call, with a message naming the file, the limit and its size. No
bad file raises: every outcome is in `Files`.

Downloads stream and stop once more than a limit has arrived, because Slack's `size` can be
wrong; redirects are not followed, because a redirect is Slack refusing the token (PLATFORM.md
0a Slack 6).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.engine import Attachment
from bot.slack.file_kinds import (
    FileKind,
    FileProblem,
    Kind,
    check_pdf,
    classify,
    file_name,
    image_media_type,
    looks_like_html,
    text_piece,
)

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30)
_MB = 1024 * 1024
_A_KIND = {"image": "an image", "document": "a PDF", "text": "a text file"}


@dataclass(frozen=True)
class FileLimits:
    per_message: int = 5  # FILES_PER_MESSAGE setting
    image_bytes: int = 5 * _MB  # Anthropic: 5 MB per image, counted base64-encoded
    image_pixels: int = 8000  # longest side (Anthropic: image_dimensions_too_large)
    pdf_bytes: int = 32 * _MB  # a request is at most 32 MB
    pdf_pages: int = 100
    text_bytes: int = 200 * 1024  # text/code files are sent as text; more is refused
    request_bytes: int = 32 * _MB  # everything of one message together, as sent

    def raw_limit(self, kind: Kind) -> int:
        """The most bytes a file of this kind may have as Slack stores it."""
        if kind == "text":
            return self.text_bytes
        # Attachments travel base64-encoded, and Anthropic's limits count the encoded size.
        encoded = self.image_bytes if kind == "image" else min(self.pdf_bytes, self.request_bytes)
        return encoded * 3 // 4


@dataclass(frozen=True)
class Files:
    attachments: tuple[Attachment, ...] = ()  # images and PDFs, with their bytes
    texts: tuple[str, ...] = ()  # text/code files, fenced: "📄 name.py\n```\n…\n```"
    notes: tuple[str, ...] = ()  # files skipped, in plain words
    refusal: str | None = None  # the whole question is refused with this message


class _TooMuch(Exception):
    """More bytes arrived than the download was allowed."""


def encoded_size(kind: Kind, size: int) -> int:
    """What a file adds to a request: base64 makes 4 bytes of every 3."""
    return size if kind == "text" else 4 * ((size + 2) // 3)


def show_size(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    if size < _MB:
        return f"{size / 1024:,.0f} KB"
    return f"{size / _MB:,.2f}".rstrip("0").rstrip(".") + " MB"


async def read_files(
    files: list[dict[str, Any]],
    *,
    http: aiohttp.ClientSession,
    token: str,
    limits: FileLimits,
) -> Files:
    """Read a message's files for Claude; see the module docstring for what becomes what."""
    if len(files) > limits.per_message:
        return Files(
            refusal=f"You attached {len(files)} files, and I can read at most "
            f"{limits.per_message} in one message. Please send them in smaller groups."
        )
    notes: list[str] = []
    wanted: list[tuple[dict[str, Any], FileKind]] = []
    for file in files:
        found = classify(file)
        if isinstance(found, str):
            notes.append(found)
        else:
            wanted.append((file, found))
    try:
        _check_reported_sizes(wanted, limits)
        attachments, texts = await _read_all(wanted, http, token, limits)
    except FileProblem as problem:
        return Files(notes=tuple(notes), refusal=str(problem))
    return Files(tuple(attachments), tuple(texts), tuple(notes))


class FileReader:
    """`read_files` with the session, token and limits bound, for the responder."""

    def __init__(
        self, http: aiohttp.ClientSession, token: str, limits: FileLimits | None = None
    ) -> None:
        self._http = http
        self._token = token
        self.limits = limits or FileLimits()

    async def read(self, files: list[dict[str, Any]]) -> Files:
        return await read_files(files, http=self._http, token=self._token, limits=self.limits)


def _check_reported_sizes(
    wanted: list[tuple[dict[str, Any], FileKind]], limits: FileLimits
) -> None:
    """Refuse on Slack's word, before a single byte is downloaded."""
    total = 0
    for file, found in wanted:
        size = file.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            continue  # unknown: the download enforces the limit instead
        limit = limits.raw_limit(found.kind)
        if size > limit:
            raise FileProblem(
                f"I can't read `{file_name(file)}`: it is {show_size(size)}, and "
                f"{_A_KIND[found.kind]} can be at most {show_size(limit)}."
            )
        total += encoded_size(found.kind, size)
    if total > limits.request_bytes:
        raise FileProblem(_too_much_together(f"come to {show_size(total)}", limits))


def _too_much_together(amount: str, limits: FileLimits) -> str:
    return (
        f"I can't read these files together: they {amount} as sent to Claude, and one message "
        f"can carry at most {show_size(limits.request_bytes)}. Please send fewer or smaller files."
    )


async def _read_all(
    wanted: list[tuple[dict[str, Any], FileKind]],
    http: aiohttp.ClientSession,
    token: str,
    limits: FileLimits,
) -> tuple[list[Attachment], list[str]]:
    attachments: list[Attachment] = []
    texts: list[str] = []
    used = 0
    # One at a time: the request budget left caps each download, so memory stays bounded.
    for file, found in wanted:
        name = file_name(file)
        room = limits.request_bytes - used
        room_raw = room if found.kind == "text" else room * 3 // 4
        limit = limits.raw_limit(found.kind)
        over_total = _too_much_together(
            f"come to more than {show_size(limits.request_bytes)}", limits
        )
        try:
            data = await _download(file, name, found, http, token, min(limit, room_raw))
        except _TooMuch:
            if room_raw < limit:
                raise FileProblem(over_total) from None
            raise FileProblem(
                f"I can't read `{name}`: it is larger than {show_size(limit)}, the most "
                f"{_A_KIND[found.kind]} can be."
            ) from None
        if found.kind == "text":
            piece = text_piece(name, data)
            used += len(piece.encode())
            if used > limits.request_bytes:
                raise FileProblem(over_total)
            texts.append(piece)
            continue
        media_type = found.media_type
        pages = 0
        if looks_like_html(data):
            raise FileProblem(_no_permission(name))
        if found.kind == "image":
            media_type = image_media_type(name, data, limits.image_pixels)
        else:
            # Counting pages parses the whole PDF: keep the event loop free meanwhile.
            pages = await asyncio.to_thread(check_pdf, name, data, limits.pdf_pages)
        used += encoded_size(found.kind, len(data))
        if used > limits.request_bytes:  # base64 rounding can pass the cap by a few bytes
            raise FileProblem(over_total)
        attachments.append(
            Attachment(
                kind=found.kind,
                name=name,
                media_type=media_type,
                data=data,
                source_id=str(file.get("id") or ""),
                pages=pages,
            )
        )
    return attachments, texts


def _no_permission(name: str) -> str:
    return (
        f"I couldn't download `{name}` from Slack "
        "(the app may be missing the files:read permission)."
    )


async def _download(
    file: dict[str, Any],
    name: str,
    found: FileKind,
    http: aiohttp.ClientSession,
    token: str,
    limit: int,
) -> bytes:
    """The file's bytes; `_TooMuch` once more than `limit` arrive (holding ≤ limit + CHUNK)."""
    url = str(file.get("url_private_download") or file.get("url_private"))
    file_id = file.get("id")
    try_again = f"I couldn't download `{name}` from Slack; please try again."
    try:
        async with http.get(
            url,
            headers={"Authorization": f"Bearer {token}"},
            allow_redirects=False,
            timeout=DOWNLOAD_TIMEOUT,
        ) as response:
            if 300 <= response.status < 400:
                log.warning("Slack redirected the download of file %s: token refused", file_id)
                raise FileProblem(_no_permission(name))
            if response.status != 200:
                log.warning("Slack answered HTTP %d for file %s", response.status, file_id)
                raise FileProblem(try_again)
            if response.content_type == "text/html" and found.media_type != "text/html":
                log.warning("Slack sent a web page instead of file %s: token refused", file_id)
                raise FileProblem(_no_permission(name))
            if response.content_length is not None and response.content_length > limit:
                raise _TooMuch
            received = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK):
                received += chunk
                if len(received) > limit:
                    response.close()  # drop the connection rather than drain the rest
                    raise _TooMuch
            return bytes(received)
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("could not download Slack file %s: %r", file_id, error)
        raise FileProblem(try_again) from None
