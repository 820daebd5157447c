"""The files of a Slack message, read for Claude: kinds, limits, and Slack's download quirks.

A small file server on 127.0.0.1 plays Slack's private file URLs: it answers only the right
bearer token (302 to a sign-in page otherwise, as Slack does), writes bodies in 64 KiB
pieces through a small socket buffer and counts what it wrote, so a capped download shows.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from pypdf import PdfWriter

from bot.slack.files import FileLimits, FileReader, Files, read_files

TOKEN = "xoxb-files-test"
CHUNK = 64 * 1024


@dataclass
class Served:
    data: bytes
    content_type: str
    status: int = 200
    send_length: bool = True


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.written: Counter[str] = Counter()  # body bytes the server managed to write
        self.requests: Counter[str] = Counter()
        self.finished: dict[str, asyncio.Event] = {}
        self.base = ""

    async def __aenter__(self) -> FileServer:
        app = web.Application()
        app.router.add_get("/files-pri/{key}/{name}", self._serve)
        app.router.add_get("/signin", self._signin)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Small buffers, so what the server has written stays close to what the client read.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    def add(
        self,
        name: str,
        data: bytes,
        mimetype: str,
        *,
        filetype: str = "",
        size: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        key = f"F{len(self.files) + 1:04d}"
        self.files[key] = Served(data, mimetype)
        self.finished[key] = asyncio.Event()
        return {
            "id": key,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype or name.rsplit(".", 1)[-1],
            "size": len(data) if size is None else size,
            "mode": "hosted",
            "url_private": f"{self.base}/files-pri/{key}/{name}",
            "url_private_download": f"{self.base}/files-pri/{key}/{name}?download=1",
        } | extra

    async def _signin(self, request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html>Sign in</html>", content_type="text/html")

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        self.requests[key] += 1
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPFound(f"{self.base}/signin")
        served = self.files[key]
        if served.status != 200:
            return web.Response(status=served.status, text="oops")
        response = web.StreamResponse(headers={"Content-Type": served.content_type})
        if served.send_length:
            response.content_length = len(served.data)
        await response.prepare(request)
        try:
            for start in range(0, len(served.data), CHUNK):
                piece = served.data[start : start + CHUNK]
                await response.write(piece)
                self.written[key] += len(piece)
        except ConnectionError:
            pass  # the client stopped reading
        finally:
            self.finished[key].set()
        return response


@pytest.fixture
async def server() -> AsyncIterator[FileServer]:
    async with FileServer() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def image(fmt: str, size: tuple[int, int] = (40, 30), *, noise: bool = False) -> bytes:
    if noise:  # random pixels do not compress: a file of a known, large size
        pixels = random.Random(7).randbytes(size[0] * size[1] * 3)
        picture = Image.frombytes("RGB", size, pixels)
    else:
        picture = Image.new("RGB", size, (200, 80, 40))
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


def pdf(pages: int, *, password: str | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    if password is not None:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def read(http: aiohttp.ClientSession, files: list[dict[str, Any]], **limits: int) -> Files:
    return await read_files(files, http=http, token=TOKEN, limits=FileLimits(**limits))


async def test_images_pdfs_and_text_are_read(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    images = {fmt: image(fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP")}
    files = [
        server.add("a.png", images["PNG"], "image/png"),
        server.add("b.jpg", images["JPEG"], "image/jpeg"),
        server.add("c.gif", images["GIF"], "image/gif"),
        server.add("d.webp", images["WEBP"], "image/webp"),
        server.add("report.pdf", pdf(3), "application/pdf"),
    ]
    found = await read(http, files, per_message=6)
    assert found.refusal is None
    assert found.notes == ()
    assert [(a.kind, a.media_type, a.name) for a in found.attachments] == [
        ("image", "image/png", "a.png"),
        ("image", "image/jpeg", "b.jpg"),
        ("image", "image/gif", "c.gif"),
        ("image", "image/webp", "d.webp"),
        ("document", "application/pdf", "report.pdf"),
    ]
    assert found.attachments[0].data == images["PNG"]
    assert [a.source_id for a in found.attachments] == [f["id"] for f in files]

    code = server.add("main.py", b"print('hi')\n", "text/x-python", filetype="python")
    found = await read(http, [code])
    assert found.texts == ("📄 main.py\n```\nprint('hi')\n```",)
    assert found.attachments == ()


async def test_image_type_comes_from_its_bytes(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    found = await read(http, [server.add("photo.png", image("JPEG"), "image/png")])
    assert found.attachments[0].media_type == "image/jpeg"


async def test_text_fence_is_longer_than_any_backticks_inside(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    content = b"Use ```python blocks``` or even ````` five.\n"
    found = await read(http, [server.add("notes.md", content, "text/markdown")])
    assert found.texts == (
        "📄 notes.md\n``````\nUse ```python blocks``` or even ````` five.\n``````",
    )


async def test_snippets_and_vaguely_labelled_code_are_text(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    snippet = server.add("Untitled", b"SELECT 1;", "text/plain", filetype="sql", mode="snippet")
    vague = server.add("lib.rs", b"fn main() {}", "application/octet-stream", filetype="binary")
    bad_utf8 = server.add("log.txt", b"caf\xe9", "text/plain")
    found = await read(http, [snippet, vague, bad_utf8])
    assert found.texts == (
        "📄 Untitled\n```\nSELECT 1;\n```",
        "📄 lib.rs\n```\nfn main() {}\n```",
        "📄 log.txt\n```\ncaf\ufffd\n```",
    )


async def test_unsupported_files_are_noted_and_never_downloaded(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    word = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    files = [
        server.add("plan.docx", b"PK..", word),
        server.add("photo.heic", b"....", "image/heic"),
        server.add("a.zip", b"PK..", "application/zip"),
        server.add("sheet", b"", "application/vnd.google-apps.spreadsheet", filetype="gsheet")
        | {"mode": "external", "external_type": "gdrive"},
        server.add("gone.txt", b"", "text/plain") | {"mode": "tombstone"},
        server.add("ok.txt", b"fine", "text/plain"),
    ]
    found = await read(http, files, per_message=6)
    assert found.refusal is None
    assert found.notes == (
        "I can't read `plan.docx` (Word documents are not supported); I'll answer without it.",
        "I can't read `photo.heic` (only PNG, JPEG, GIF and WebP images are supported); "
        "I'll answer without it.",
        "I can't read `a.zip` (archives are not supported); I'll answer without it.",
        "I can't read `sheet` (it is stored outside Slack, in gdrive); I'll answer without it.",
        "I can't read `gone.txt` (it was deleted); I'll answer without it.",
    )
    assert len(found.texts) == 1
    assert sum(server.requests.values()) == 1


async def test_too_many_files_are_refused_before_any_download(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    files = [server.add(f"{n}.txt", b"x", "text/plain") for n in range(6)]
    found = await read(http, files)
    assert found.refusal == (
        "You attached 6 files, and I can read at most 5 in one message. "
        "Please send them in smaller groups."
    )
    assert server.requests == Counter()


async def test_slack_size_over_a_limit_is_refused_before_any_download(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    small = server.add("small.txt", b"x", "text/plain")
    big = server.add("big.png", image("PNG"), "image/png", size=6 * 1024 * 1024)
    found = await read(http, [small, big])
    assert found.refusal == (
        "I can't read `big.png`: it is 6 MB, and an image can be at most 3.75 MB."
    )
    assert found.attachments == found.texts == ()
    assert server.requests == Counter()
    assert sum(server.written.values()) == 0


async def test_a_lying_size_stops_the_download_early(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    huge = 32 * 1024 * 1024
    file = server.add("notes.txt", b"a" * huge, "text/plain", size=100)
    server.files[file["id"]].send_length = False  # nothing but the body tells the truth
    found = await read(http, [file])
    assert found.refusal == (
        "I can't read `notes.txt`: it is larger than 200 KB, the most a text file can be."
    )
    await asyncio.wait_for(server.finished[file["id"]].wait(), 10)
    assert server.written[file["id"]] < 4 * 1024 * 1024, server.written  # of 32 MB


async def test_a_content_length_over_the_limit_stops_before_the_body(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    file = server.add("scan.pdf", pdf(3) + b"\0" * 2_000_000, "application/pdf", size=10)
    found = await read(http, [file], pdf_bytes=1_000_000)
    assert found.refusal == (
        "I can't read `scan.pdf`: it is larger than 732 KB, the most a PDF can be."
    )
    await asyncio.wait_for(server.finished[file["id"]].wait(), 10)
    assert server.written[file["id"]] < 1_000_000  # the body was not read


async def test_a_redirect_means_slack_refused_the_token(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    file = server.add("a.png", image("PNG"), "image/png")
    found = await read_files([file], http=http, token="xoxb-wrong", limits=FileLimits())
    assert found.refusal == (
        "I couldn't download `a.png` from Slack (the app may be missing the files:read permission)."
    )
    assert server.written == Counter()


async def test_a_web_page_instead_of_the_file_is_a_permission_problem(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    page = b"<!DOCTYPE html><html>Sign in to Acme</html>"
    as_html = server.add("a.png", page, "image/png")
    server.files[as_html["id"]].content_type = "text/html"
    mislabelled = server.add("b.pdf", page, "application/pdf")
    for file in (as_html, mislabelled):
        found = await read(http, [file])
        assert found.refusal is not None
        assert "files:read permission" in found.refusal


async def test_server_errors_ask_to_try_again_and_log_no_token(
    server: FileServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    file = server.add("data.csv", b"a,b\n1,2\n", "text/csv")
    server.files[file["id"]].status = 500
    with caplog.at_level(logging.WARNING, logger="bot.slack.files"):
        found = await read(http, [file])
    assert found.refusal == "I couldn't download `data.csv` from Slack; please try again."
    assert "500" in caplog.text
    assert TOKEN not in caplog.text


async def test_a_connection_failure_asks_to_try_again(http: aiohttp.ClientSession) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    file = {"id": "F1", "name": "a.txt", "mimetype": "text/plain", "size": 3, "mode": "hosted"}
    file["url_private"] = f"http://127.0.0.1:{port}/a.txt"  # no download URL: the fallback
    found = await read(http, [file])
    assert found.refusal == "I couldn't download `a.txt` from Slack; please try again."


async def test_images_over_the_pixel_limit_or_undecodable_are_refused(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    wide = server.add("wide.png", image("PNG", (9000, 10)), "image/png")
    found = await read(http, [wide])
    assert found.refusal == (
        "I can't read `wide.png`: images can be at most 8,000 pixels on a side, and it is 9,000×10."
    )
    broken = server.add("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")
    found = await read(http, [broken])
    assert (
        found.refusal
        == "I can't read `broken.png`: it is not a valid PNG, JPEG, GIF or WebP image."
    )


async def test_pdfs_over_the_page_limit_encrypted_or_corrupt_are_refused(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    cases = {
        "long.pdf": (pdf(101), "it has 101 pages, and a PDF can have at most 100."),
        "secret.pdf": (
            pdf(2, password="s3cret"),
            "it is password-protected. Please send an unprotected copy.",
        ),
        "corrupt.pdf": (b"%PDF-1.7\n" + b"\0garbage" * 100, "it is not a valid PDF."),
    }
    for name, (data, why) in cases.items():
        found = await read(http, [server.add(name, data, "application/pdf")])
        assert found.refusal == f"I can't read `{name}`: {why}"


async def test_text_over_its_limit_is_refused(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    found = await read(http, [server.add("dump.sql", b"-- x\n" * 60_000, "text/plain")])
    assert (
        found.refusal
        == "I can't read `dump.sql`: it is 293 KB, and a text file can be at most 200 KB."
    )


async def test_the_request_total_counts_base64(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    photos = [image("PNG", (150, 150), noise=True) for _ in range(2)]
    raw = sum(map(len, photos))
    limit = raw + 1000  # both fit raw, not once encoded
    files = [server.add(f"{n}.png", data, "image/png") for n, data in enumerate(photos)]
    found = await read(http, files, request_bytes=limit)
    assert found.refusal is not None
    encoded = sum(4 * ((len(data) + 2) // 3) for data in photos)
    assert found.refusal == (
        f"I can't read these files together: they come to {encoded / 1024:.0f} KB as sent to "
        f"Claude, and one message can carry at most {limit / 1024:.0f} KB. "
        "Please send fewer or smaller files."
    )
    assert server.requests == Counter()  # Slack's sizes already told

    for file in files:
        file["size"] = 10  # Slack under-reports: the downloads find out
    found = await read(http, files, request_bytes=limit)
    assert found.refusal is not None
    assert found.refusal.startswith("I can't read these files together: they come to more than")
    assert found.attachments == ()

    found = await read(http, files, request_bytes=raw * 4 // 3 + 16)
    assert found.refusal is None
    assert len(found.attachments) == 2


async def test_the_file_reader_binds_session_token_and_limits(
    server: FileServer, http: aiohttp.ClientSession
) -> None:
    reader = FileReader(http, TOKEN, FileLimits(per_message=1))
    found = await reader.read([server.add("a.txt", b"hi", "text/plain")])
    assert found.texts == ("📄 a.txt\n```\nhi\n```",)
