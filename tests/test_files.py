"""Files shared with a question: images and PDFs as blocks (uploaded once to the Files API),
text files as text, limits enforced before any model call, and never a whole oversized
download."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image
from pypdf import PdfWriter

from bot.config import Settings
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import DM, start_bot


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def pdf(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def blocks(fake_anthropic: FakeAnthropic, index: int = -1) -> list[dict[str, Any]]:
    """Every content block the user side of a request carried."""
    found: list[dict[str, Any]] = []
    for message in fake_anthropic.message_requests[index].body["messages"]:
        if message["role"] == "user" and isinstance(message["content"], list):
            found += message["content"]
    return found


async def test_an_image_is_uploaded_once_and_reused_by_later_turns(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    image = fake_slack.add_file("chart.png", png(), mimetype="image/png", filetype="png")
    fake_anthropic.enqueue(Reply(text="A red square."), Reply(text="Still red."))
    async with start_bot(settings) as bot:
        first = await bot.mention("what is in this chart?", files=[image])
        [row] = await bot.wait_for_usage(1)
        await bot.say_in_thread("what colour was it again?", thread_ts=first.ts)
        rows = await bot.wait_for_usage(2)

    [upload] = fake_anthropic.uploads
    assert upload.filename == "chart.png" and upload.mime_type == "image/png"
    by_id = {"type": "image", "source": {"type": "file", "file_id": upload.id}}
    assert by_id in blocks(fake_anthropic, 0)
    assert by_id in blocks(fake_anthropic, 1)  # the later turn refers to it by id
    assert fake_slack.file_downloads[image["id"]] == 1
    # The image's tokens are input tokens (the fake counts 1,000 an image).
    assert row.input_tokens + row.cache_write_5m_tokens + row.cache_read_tokens > 1_000
    assert rows[1].error_kind is None


async def test_pdfs_are_documents_text_files_are_text_and_others_get_a_note(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    files = [
        fake_slack.add_file("spec.pdf", pdf(3), mimetype="application/pdf", filetype="pdf"),
        fake_slack.add_file(
            "main.py", b"print('hi')\n", mimetype="text/x-python", filetype="python"
        ),
        fake_slack.add_file(
            "deck.pptx",
            b"PK\x03\x04 not read",
            mimetype="application/vnd.openxmlformats-officedocument.presentationml.presentation",
            filetype="pptx",
        ),
    ]
    async with start_bot(settings) as bot:
        await bot.mention("review these", files=files)
        await bot.wait_for_usage(1)
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))

    sent = blocks(fake_anthropic)
    [document] = [b for b in sent if b["type"] == "document"]
    assert document["title"] == "spec.pdf"
    assert document["source"]["type"] == "file"
    text = json.dumps(sent)
    assert "main.py" in text and "print('hi')" in text
    assert "deck.pptx" not in text
    assert fake_slack.file_downloads[files[2]["id"]] == 0  # never fetched
    assert "deck.pptx" in fake_slack.ephemerals[0].params["text"]


async def test_a_file_over_a_limit_is_refused_before_any_model_call_and_not_downloaded(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    huge = fake_slack.add_file("huge.png", png(), mimetype="image/png", size=50 * 1024 * 1024)
    # Slack's size can be wrong: this one says 1 KB and is 30 MB.
    liar = fake_slack.add_file(
        "notes.txt", b"x" * (30 * 1024 * 1024), mimetype="text/plain", size=1_000
    )
    async with start_bot(settings) as bot:
        await bot.mention("look", files=[huge])
        await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) == 1)
        await bot.mention("and this", files=[liar])
        await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) == 2)

    assert fake_anthropic.message_requests == []
    assert "huge.png" in fake_slack.ephemerals[0].params["text"]
    assert fake_slack.file_downloads[huge["id"]] == 0
    assert "notes.txt" in fake_slack.ephemerals[1].params["text"]
    assert fake_slack.file_bytes_sent[liar["id"]] < 4 * 1024 * 1024  # stopped early


async def test_a_failing_download_is_told_and_costs_nothing(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    broken = fake_slack.add_file("photo.png", png(), mimetype="image/png")
    fake_slack.fail_file(broken["id"], 500)
    async with start_bot(settings) as bot:
        await bot.mention("what is this?", files=[broken])
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))

    assert fake_anthropic.message_requests == []
    assert "couldn't download `photo.png`" in fake_slack.ephemerals[0].params["text"]


async def test_a_dm_with_only_a_file_is_answered(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    image = fake_slack.add_file("receipt.png", png(), mimetype="image/png")
    fake_anthropic.enqueue(Reply(text="A receipt."))
    async with start_bot(settings) as bot:
        await bot.dm("", files=[image])
        await bot.wait_for_usage(1)

    assert any(b["type"] == "image" for b in blocks(fake_anthropic))
    assert any(m.shown == "A receipt." for m in fake_slack.messages[DM].values())


async def test_without_the_files_api_a_file_goes_inline(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.files_api = False
    image = fake_slack.add_file("chart.png", png(), mimetype="image/png")
    async with start_bot(settings) as bot:
        first = await bot.mention("what is this?", files=[image])
        await bot.wait_for_usage(1)
        await bot.say_in_thread("and now?", thread_ts=first.ts)
        await bot.wait_for_usage(2)

    [inline] = [b for b in blocks(fake_anthropic, 0) if b["type"] == "image"]
    assert inline["source"]["type"] == "base64"
    assert inline["source"]["media_type"] == "image/png"
    # Its bytes are not kept: a later turn says in words that it was there.
    later = json.dumps(fake_anthropic.message_requests[1].body["messages"])
    assert "chart.png was attached here" in later
    assert fake_anthropic.uploads == []


async def test_a_file_shared_again_is_not_uploaded_again(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    image = fake_slack.add_file("logo.png", png(), mimetype="image/png")
    async with start_bot(settings) as bot:
        await bot.mention("what is this?", files=[image])
        await bot.wait_for_usage(1)
        await bot.mention("and this one, in a new thread?", files=[image])
        await bot.wait_for_usage(2)

    [upload] = fake_anthropic.uploads
    by_id = {"type": "image", "source": {"type": "file", "file_id": upload.id}}
    assert by_id in blocks(fake_anthropic, 1)
