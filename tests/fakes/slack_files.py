"""Files on the fake Slack: Slack file objects and their private download URLs.

`url_private` / `url_private_download` answer only with `Authorization: Bearer <bot token>`;
without it, or with another token, they redirect (302) to a sign-in page that answers 200 HTML,
as Slack does (PLATFORM.md 0a Slack 6). Bodies go out in 64 KiB writes and `bytes_sent` counts
what was written before the client stopped reading, so a test can prove a capped download.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

CHUNK = 64 * 1024
SEND_BUFFER = 64 * 1024  # a small socket buffer, so bytes_sent stays close to bytes read
SIGNIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Acme</body></html>"
)
FILETYPES = {
    "png": "png",
    "jpg": "jpg",
    "jpeg": "jpg",
    "gif": "gif",
    "webp": "webp",
    "pdf": "pdf",
    "txt": "text",
    "md": "markdown",
    "py": "python",
    "csv": "csv",
    "json": "json",
    "html": "html",
    "zip": "zip",
}


@dataclass
class HostedFile:
    obj: dict[str, Any]  # the Slack file object handed to tests and events
    data: bytes
    fail_status: int | None = None


class FileHost:
    """The files a test added and the counts of what their downloads did."""

    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        self.files: dict[str, HostedFile] = {}
        self.bytes_sent: Counter[str] = Counter()  # file id -> body bytes written, all downloads
        self.downloads: Counter[str] = Counter()  # file id -> authorised GETs (failed ones too)
        self.signin_redirects: Counter[str] = Counter()  # file id -> GETs sent to sign in
        self.send_length = True  # False: no Content-Length, chunked transfer encoding
        self._ids = itertools.count(1)

    def routes(self, app: web.Application, token: Any) -> None:
        """Serve the files; `token()` gives the bot token a download must carry."""
        self._token = token
        app.router.add_get("/files-pri/{key}/{tail:.*}", self._download)
        app.router.add_get("/signin", self._signin)

    def add(
        self,
        base: str,
        name: str,
        data: bytes,
        *,
        mimetype: str,
        filetype: str | None,
        size: int | None,
    ) -> dict[str, Any]:
        file_id = f"F0FILE{next(self._ids):05d}"
        key = f"{self.team_id}-{file_id}"
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        obj: dict[str, Any] = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype or FILETYPES.get(extension, extension or "binary"),
            "pretty_type": (filetype or extension or "binary").upper(),
            "size": len(data) if size is None else size,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "url_private": f"{base}/files-pri/{key}/{quote(name)}",
            "url_private_download": f"{base}/files-pri/{key}/download/{quote(name)}",
            "permalink": f"https://acme.slack.com/files/U0USER/{file_id}/{quote(name)}",
        }
        self.files[file_id] = HostedFile(obj, data)
        return obj

    def fail(self, file_id: str, status: int) -> None:
        self.files[file_id].fail_status = status

    async def _download(self, request: web.Request) -> web.StreamResponse:
        team, _, file_id = request.match_info["key"].partition("-")
        hosted = self.files.get(file_id) if team == self.team_id else None
        if hosted is None:
            return web.Response(status=404, text="file not found", content_type="text/html")
        if request.headers.get("Authorization", "") != f"Bearer {self._token()}":
            self.signin_redirects[file_id] += 1
            signin = request.url.with_path("/signin").with_query({"redir": request.path})
            raise web.HTTPFound(str(signin))
        self.downloads[file_id] += 1
        if hosted.fail_status is not None:
            return web.Response(status=hosted.fail_status, text="internal error")
        return await self._send(request, file_id, hosted)

    async def _send(
        self, request: web.Request, file_id: str, hosted: HostedFile
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": hosted.obj["mimetype"]})
        if self.send_length:
            response.content_length = len(hosted.data)
        else:
            response.enable_chunked_encoding()
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        await response.prepare(request)
        for start in range(0, len(hosted.data), CHUNK):
            chunk = hosted.data[start : start + CHUNK]
            try:
                await response.write(chunk)
            except ConnectionError:  # the client stopped reading and hung up
                return response
            self.bytes_sent[file_id] += len(chunk)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _signin(self, _: web.Request) -> web.Response:
        return web.Response(text=SIGNIN_PAGE, content_type="text/html")
