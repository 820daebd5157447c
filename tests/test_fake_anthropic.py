"""Tests of the fake Anthropic server, driven by the real `anthropic.AsyncAnthropic` client."""

from __future__ import annotations

import asyncio
import base64
import datetime
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import httpx2
import pytest
from anthropic.types import Message, MessageParam

from tests.fakes.anthropic import (
    IMAGE_TOKENS,
    MAX_IMAGE_BYTES,
    PDF_TOKENS,
    TOO_LARGE_MESSAGE,
    CostItem,
    FakeAnthropic,
    OrgLimits,
    Reply,
    WebFetch,
    WebSearch,
)
from tests.fakes.anthropic_limits import UNLIMITED_REQUESTS, UNLIMITED_TOKENS

MODEL = "claude-sonnet-4-6"
HELLO: list[MessageParam] = [{"role": "user", "content": "Hello there, Claude!"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url, max_retries=0)
    yield sdk
    await sdk.close()


async def collect_text(client: anthropic.AsyncAnthropic, received: list[str]) -> Message:
    """Stream a reply, appending each text delta to `received`; return the final message."""
    async with client.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        async for text in stream.text_stream:
            received.append(text)
        return await stream.get_final_message()


async def test_stream_text_usage_stop_reason_and_request_id(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(
        Reply(
            text="Hello brave new world",
            stop_reason="max_tokens",
            input_tokens=10,
            output_tokens=42,
            cache_creation_5m=3,
            cache_creation_1h=2,
            cache_read=5,
        )
    )
    received: list[str] = []
    async with client.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        async for text in stream.text_stream:
            received.append(text)
        final = await stream.get_final_message()
        request_id = stream.request_id

    assert received == ["Hello", " brave", " new", " world"]
    assert final.content[0].type == "text"
    assert final.content[0].text == "Hello brave new world"
    assert final.stop_reason == "max_tokens"
    assert final.model == MODEL
    assert final.usage.input_tokens == 10
    assert final.usage.output_tokens == 42
    assert final.usage.cache_creation_input_tokens == 5
    assert final.usage.cache_read_input_tokens == 5
    assert final.usage.cache_creation is not None
    assert final.usage.cache_creation.ephemeral_5m_input_tokens == 3
    assert final.usage.cache_creation.ephemeral_1h_input_tokens == 2
    assert request_id is not None
    assert request_id.startswith("req_")


async def test_stream_defaults_and_explicit_chunks(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(chunks=["Hel", "lo", " !"], model="claude-opus-4-8"))
    received: list[str] = []
    final = await collect_text(client, received)
    assert received == ["Hel", "lo", " !"]
    assert final.model == "claude-opus-4-8"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3  # default: one token per chunk
    assert final.usage.input_tokens == 5  # ceil(len("Hello there, Claude!") / 4)

    # Script exhausted: the default reply answers.
    received.clear()
    final = await collect_text(client, received)
    assert "".join(received) == Reply().text
    assert len(received) > 1


async def test_request_recorded(fake: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    await collect_text(client, [])
    await fake.wait_for_requests(1)
    [recorded] = fake.message_requests
    assert recorded.path == "/v1/messages"
    assert recorded.body["model"] == MODEL
    assert recorded.body["max_tokens"] == 256
    assert recorded.body["messages"] == HELLO
    assert recorded.body["stream"] is True
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert "anthropic-version" in recorded.headers


async def test_non_stream_create(fake: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake.enqueue(Reply(text="Just one answer.", input_tokens=7))
    message = await client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Just one answer."
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 7
    assert message.usage.output_tokens == 3
    assert message.id.startswith("msg_")
    assert message._request_id is not None
    assert "stream" not in fake.message_requests[0].body


async def test_count_tokens(fake: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    count = await client.messages.count_tokens(model=MODEL, system="x" * 40, messages=HELLO)
    assert count.input_tokens == 15  # ceil((40 + 20) / 4)
    assert fake.requests[0].path == "/v1/messages/count_tokens"
    assert fake.message_requests == []  # count_tokens is not a message request


async def test_wrong_key_is_401(fake: FakeAnthropic) -> None:
    wrong = anthropic.AsyncAnthropic(api_key="sk-wrong", base_url=fake.base_url, max_retries=0)
    try:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await wrong.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    finally:
        await wrong.close()
    assert caught.value.status_code == 401
    assert caught.value.type == "authentication_error"
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")
    assert len(fake.requests) == 1
    assert fake.message_requests == []


async def test_overloaded_is_retried_then_succeeds(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(status=529, headers={"retry-after-ms": "1"}), Reply(text="Recovered."))
    sdk = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url, max_retries=2)
    try:
        received: list[str] = []
        final = await collect_text(sdk, received)
    finally:
        await sdk.close()
    assert "".join(received) == "Recovered."
    assert final.stop_reason == "end_turn"
    assert len(fake.message_requests) == 2
    assert [r.headers["x-stainless-retry-count"] for r in fake.message_requests] == ["0", "1"]


async def test_should_retry_false_is_not_retried(fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(status=500, headers={"x-should-retry": "false"}, error_message="boom"))
    sdk = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url, max_retries=2)
    try:
        with pytest.raises(anthropic.InternalServerError) as caught:
            await sdk.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    finally:
        await sdk.close()
    assert caught.value.type == "api_error"
    assert caught.value.api_message == "boom"
    assert len(fake.message_requests) == 1


async def test_midstream_error_raises_api_status_error(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="a b c d", fault="midstream_error", fault_after=2))
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await collect_text(client, received)
    assert received == ["a", " b"]
    assert type(caught.value) is anthropic.APIStatusError  # not OverloadedError
    assert caught.value.status_code == 200
    assert caught.value.type == "overloaded_error"
    assert caught.value.api_message == "Overloaded"


async def test_clean_eof_gives_incomplete_final_message(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="one two three", fault="eof", fault_after=1, input_tokens=9))
    received: list[str] = []
    final = await collect_text(client, received)
    assert received == ["one"]
    assert final.stop_reason is None
    assert final.usage.output_tokens == 1  # still the message_start value
    assert final.usage.input_tokens == 9


async def test_dropped_connection_raises_transport_error(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="one two three", fault="drop", fault_after=2))
    received: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        await collect_text(client, received)
    assert received == ["one", " two"]


async def test_temperature_is_rejected(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model=MODEL, max_tokens=10, messages=HELLO, extra_body={"temperature": 0.5}
        )
    assert caught.value.type == "invalid_request_error"
    assert "temperature" in str(caught.value.api_message)
    assert len(fake.requests) == 1
    assert fake.message_requests == []


async def test_client_disconnect_is_counted(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="a b c d e f g h", delay=0.2))
    async with client.messages.stream(model=MODEL, max_tokens=10, messages=HELLO) as stream:
        async for _text in stream.text_stream:
            break
    assert fake.in_flight == 1
    async with asyncio.timeout(5):
        while fake.disconnects < 1 or fake.in_flight:
            await asyncio.sleep(0.01)


async def test_first_byte_delay(fake: FakeAnthropic, client: anthropic.AsyncAnthropic) -> None:
    fake.enqueue(Reply(text="late", first_byte_delay=0.2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert loop.time() - started >= 0.2


async def test_wait_for_requests_times_out(fake: FakeAnthropic) -> None:
    with pytest.raises(AssertionError, match="expected 1 message requests, got 0"):
        await fake.wait_for_requests(1, timeout=0.05)


EVENT_ORDER = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


async def test_raw_wire_format_with_x_api_key(fake: FakeAnthropic) -> None:
    headers = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO, "stream": True}
    fake.enqueue(Reply(text="Hi you"))
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/v1/messages", json=body, headers=headers) as response,
    ):
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["request-id"].startswith("req_")
        raw = (await response.read()).decode()
    blocks = raw.split("\n\n")
    assert blocks[-1] == ""
    assert [block.split("\n")[0] for block in blocks[:-1]] == [f"event: {e}" for e in EVENT_ORDER]


@pytest.mark.parametrize(
    ("drop_header", "changes", "needle"),
    [
        ("anthropic-version", {}, "anthropic-version"),
        (None, {"top_p": 0.9}, "top_p"),
        (None, {"top_k": 5}, "top_k"),
        (None, {"max_tokens": None}, "max_tokens"),
        (None, {"model": None}, "model"),
        (None, {"messages": []}, "messages"),
        (None, {"messages": [{"role": "assistant", "content": "hi"}]}, "user"),
    ],
)
async def test_invalid_requests_are_400(
    fake: FakeAnthropic, drop_header: str | None, changes: dict[str, Any], needle: str
) -> None:
    headers = {"authorization": "Bearer sk-test", "anthropic-version": "2026-10-21"}
    headers.pop(drop_header or "", None)
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": HELLO, **changes}
    body = {key: value for key, value in body.items() if value is not None}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/v1/messages", json=body, headers=headers) as response,
    ):
        payload = await response.json()
        assert response.status == 400
        assert response.headers["request-id"] == payload["request_id"]
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert needle in payload["error"]["message"]
    assert len(fake.requests) == 1
    assert fake.message_requests == []


# -- prompt caching (PLATFORM.md B10) -------------------------------------------------------------

SYSTEM_TEXT = "S" * 400  # 100 tokens
EPHEMERAL = {"type": "ephemeral"}


def block(text: str, ttl: str | None = None, *, mark: bool = True) -> dict[str, Any]:
    """A text block, marked with `cache_control` unless `mark` is false."""
    if not mark:
        return {"type": "text", "text": text}
    control = EPHEMERAL if ttl is None else {**EPHEMERAL, "ttl": ttl}
    return {"type": "text", "text": text, "cache_control": control}


def numbers(usage: anthropic.types.Usage) -> tuple[int, int, int, int]:
    """(input, 5m writes, 1h writes, reads), checking the totals agree."""
    assert usage.cache_creation is not None
    written = usage.cache_creation
    total = written.ephemeral_5m_input_tokens + written.ephemeral_1h_input_tokens
    assert usage.cache_creation_input_tokens == total
    five, hour = written.ephemeral_5m_input_tokens, written.ephemeral_1h_input_tokens
    return usage.input_tokens, five, hour, usage.cache_read_input_tokens or 0


async def ask(
    client: anthropic.AsyncAnthropic, messages: Any, *, stream: bool = False, **kwargs: Any
) -> anthropic.types.Usage:
    """Send one request (streamed or not) and return the final usage."""
    args: dict[str, Any] = {"model": MODEL, "max_tokens": 50, "messages": messages, **kwargs}
    if not stream:
        return (await client.messages.create(**args)).usage
    async with client.messages.stream(**args) as events:
        return (await events.get_final_message()).usage


@pytest.mark.parametrize("stream", [False, True])
async def test_cached_system_block_is_written_then_read(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, stream: bool
) -> None:
    system = [block(SYSTEM_TEXT)]
    counted = await client.messages.count_tokens(model=MODEL, system=system, messages=HELLO)
    assert counted.input_tokens == 105  # the whole prompt; count_tokens leaves the cache alone

    usage = await ask(client, HELLO, system=system, stream=stream)
    assert usage.cache_creation_input_tokens == 100  # the system block
    assert usage.cache_read_input_tokens == 0
    assert numbers(usage) == (5, 100, 0, 0)
    assert fake.message_requests[0].body["system"][0]["cache_control"] == EPHEMERAL

    usage = await ask(client, HELLO, system=system, stream=stream)
    assert usage.cache_creation_input_tokens == 0
    assert usage.cache_read_input_tokens == 100
    assert numbers(usage) == (5, 0, 0, 100)

    other: list[MessageParam] = [{"role": "user", "content": "Something else entirely"}]
    assert numbers(await ask(client, other, system=system, stream=stream)) == (6, 0, 0, 100)
    # The key is the exact prefix and the model.
    changed = [block(SYSTEM_TEXT + "!")]
    assert numbers(await ask(client, HELLO, system=changed, stream=stream)) == (5, 101, 0, 0)
    opus = {"model": "claude-opus-4-8", "system": system, "stream": stream}
    assert numbers(await ask(client, HELLO, **opus)) == (5, 100, 0, 0)


async def test_second_turn_reads_earlier_prefix_and_writes_the_new_one(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    system = [block(SYSTEM_TEXT)]
    turn1: list[Any] = [{"role": "user", "content": [block("a" * 80), block("d" * 8, mark=False)]}]
    # 100 (system) + 20 (first block) written, the unmarked tail (2) is plain input.
    assert numbers(await ask(client, turn1, system=system)) == (2, 120, 0, 0)

    turn2 = [
        *turn1,
        {"role": "assistant", "content": "b" * 40},
        {"role": "user", "content": [block("c" * 40)]},
    ]
    # Longest cached breakpoint prefix (120) is read; 2 + 10 + 10 more tokens are written.
    assert numbers(await ask(client, turn2, system=system, stream=True)) == (0, 22, 0, 120)
    marks = [
        b.get("cache_control") for b in fake.message_requests[1].body["messages"][0]["content"]
    ]
    assert marks == [EPHEMERAL, None]


async def test_ttl_1h_is_billed_as_ephemeral_1h(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    messages = [{"role": "user", "content": [block("a" * 80, "5m")]}]
    system = [block(SYSTEM_TEXT, "1h")]
    assert numbers(await ask(client, messages, system=system)) == (0, 20, 100, 0)
    assert numbers(await ask(client, messages, system=system)) == (0, 0, 0, 120)


@pytest.mark.parametrize(("lookback", "turn2"), [(20, (0, 20, 0, 105)), (1, (0, 125, 0, 0))])
async def test_top_level_cache_control_moves_with_the_conversation(
    lookback: int, turn2: tuple[int, int, int, int]
) -> None:
    async with FakeAnthropic(cache_lookback_blocks=lookback) as fake:
        client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url)
        try:
            auto: Any = {"system": SYSTEM_TEXT, "cache_control": {"type": "ephemeral"}}
            # The breakpoint goes on the last block: the whole prompt (100 + 5) is written.
            assert numbers(await ask(client, HELLO, **auto)) == (0, 105, 0, 0)
            more = [
                *HELLO,
                {"role": "assistant", "content": "b" * 40},
                {"role": "user", "content": "c" * 40},
            ]
            # With the lookback the previous turn's prefix is found 2 blocks back.
            assert numbers(await ask(client, more, stream=True, **auto)) == turn2
        finally:
            await client.close()
    assert fake.message_requests[0].body["cache_control"] == {"type": "ephemeral"}


async def test_top_level_mark_on_an_already_marked_block_is_one_breakpoint(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    messages = [{"role": "user", "content": [block("x" * 40, "1h")]}]
    system = [block("s" * 40), block("t" * 40), block("u" * 40)]
    usage = await ask(client, messages, system=system, cache_control={"type": "ephemeral"})
    assert numbers(usage) == (0, 30, 10, 0)  # the block's own ttl wins


async def test_below_min_cache_tokens_nothing_is_cached() -> None:
    async with FakeAnthropic(min_cache_tokens=110) as fake:
        client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url)
        try:
            small = [block(SYSTEM_TEXT)]  # 100 tokens < 110: no error, no cache
            assert numbers(await ask(client, HELLO, system=small)) == (105, 0, 0, 0)
            assert numbers(await ask(client, HELLO, system=small)) == (105, 0, 0, 0)
            # A short breakpoint is skipped; its tokens go into the next breakpoint's write.
            messages = [{"role": "user", "content": [block("a" * 80, "1h")]}]
            assert numbers(await ask(client, messages, system=small)) == (0, 0, 120, 0)
            assert numbers(await ask(client, messages, system=small)) == (0, 0, 0, 120)
        finally:
            await client.close()


async def test_more_than_four_marks_is_400(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="kept for later"))
    four = [block(f"{n}" * 40) for n in range(4)]
    maximum = "A maximum of 4 blocks with cache_control may be provided"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"system": [*four, block("5" * 40)]}, maximum),
        ({"system": four, "cache_control": EPHEMERAL}, maximum),  # 4 + automatic
        ({"system": [block("x", "2h")]}, "ttl"),
    ]
    for extra, needle in cases:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO, **extra)
        assert caught.value.type == "invalid_request_error"
        assert needle in str(caught.value.api_message)
    assert fake.message_requests == []
    # Four marks are fine, and the rejected requests did not use up the scripted reply.
    message = await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO, system=four)
    assert message.content[0].type == "text"
    assert message.content[0].text == "kept for later"


async def test_explicit_reply_cache_numbers_override(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    system = [block(SYSTEM_TEXT)]
    fake.enqueue(Reply(cache_read=7, cache_creation_1h=3), Reply(input_tokens=42))
    assert numbers(await ask(client, HELLO, system=system)) == (105, 0, 3, 7)
    # A scripted input_tokens alone also makes the usage explicit: no cache numbers.
    assert numbers(await ask(client, HELLO, system=system, stream=True)) == (42, 0, 0, 0)
    # The simulated write still happened behind the scripted numbers.
    assert numbers(await ask(client, HELLO, system=system)) == (5, 0, 0, 100)


async def test_failed_request_writes_nothing(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(status=529))
    with pytest.raises(anthropic.APIStatusError):
        await ask(client, HELLO, system=[block(SYSTEM_TEXT)])
    assert numbers(await ask(client, HELLO, system=[block(SYSTEM_TEXT)])) == (5, 100, 0, 0)


# -- thinking (PLATFORM.md 0a.1) -------------------------------------------------------------------

SONNET_55 = "claude-sonnet-5-5"
HIGH = {"effort": "high"}
THOUGHT = "Weigh the options first"  # 4 word-sized thinking deltas


async def raw_events(client: anthropic.AsyncAnthropic, **kwargs: Any) -> list[dict[str, Any]]:
    """Every event of a `stream=True` request, as the JSON the SDK parsed."""
    args: dict[str, Any] = {"max_tokens": 256, "messages": HELLO, **kwargs}
    stream = await client.messages.create(stream=True, **args)
    return [event.to_dict() async for event in stream]


async def test_a_default_thinker_streams_thinking_then_text_at_index_1(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="Hi you", thinking_tokens=40, thinking_text=THOUGHT))
    events = await raw_events(client, model=SONNET_55)
    shape = [(e["type"], e.get("index"), e.get("delta", {}).get("type")) for e in events]
    assert shape == [
        ("message_start", None, None),
        ("content_block_start", 0, None),
        *[("content_block_delta", 0, "thinking_delta")] * 4,
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert "".join(e["delta"]["thinking"] for e in events[2:6]) == THOUGHT
    assert events[6]["delta"]["signature"]
    assert events[8]["content_block"] == {"type": "text", "text": ""}

    fake.enqueue(Reply(text="Hi you", thinking_tokens=40, thinking_text=THOUGHT))
    received: list[str] = []
    async with client.messages.stream(model=SONNET_55, max_tokens=256, messages=HELLO) as stream:
        async for piece in stream.text_stream:
            received.append(piece)
        final = await stream.get_final_message()
    assert received == ["Hi", " you"]  # thinking is not in the text stream
    thinking, answer = final.content
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT and thinking.signature
    assert answer.type == "text" and answer.text == "Hi you"
    assert final.usage.output_tokens == 42
    assert final.usage.output_tokens_details is not None
    assert final.usage.output_tokens_details.thinking_tokens == 40


async def test_a_non_streamed_thinking_answer_has_both_blocks(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="Just one answer.", thinking_tokens=7, thinking_text=THOUGHT))
    message = await client.messages.create(model="claude-opus-5-5", max_tokens=100, messages=HELLO)
    thinking, answer = (part.to_dict() for part in message.content)
    assert thinking == {"type": "thinking", "thinking": THOUGHT, "signature": thinking["signature"]}
    assert isinstance(thinking["signature"], str) and thinking["signature"]
    assert answer == {"type": "text", "text": "Just one answer."}
    assert message.stop_reason == "end_turn"
    assert message.stop_details is None
    assert message.usage.output_tokens == 10
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 7


def thinking_of(message: Message) -> list[str]:
    return [block.type for block in message.content]


@pytest.mark.parametrize(
    ("model", "extra", "thinks"),
    [
        ("claude-sonnet-5-5", {}, True),
        ("claude-sonnet-5-5-latest", {}, True),
        ("claude-opus-5-5", {"thinking": {"type": "adaptive"}}, True),
        ("claude-haiku-5-5", {}, True),
        ("claude-opus-5", {}, True),
        ("claude-sonnet-5-20260101", {}, True),
        ("claude-fable-5-2", {}, True),
        ("claude-mythos-5-1", {}, True),
        ("claude-sonnet-5-5", {"thinking": {"type": "between_tools"}}, False),
        ("claude-haiku-5-5", {"thinking": {"type": "disabled"}}, False),
        (
            "claude-opus-5",
            {"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}},
            False,
        ),
        ("claude-sonnet-4-6", {}, False),
        ("claude-haiku-4-5-20251001", {}, False),
        ("claude-opus-4-8", {}, False),
        ("claude-opus-4-8", {"thinking": {"type": "adaptive"}}, True),
        ("claude-sonnet-4-6", {"thinking": {"type": "enabled", "budget_tokens": 1024}}, True),
        ("claude-sonnet-4-6", {"thinking": {"type": "disabled"}}, False),
        ("claude-haiku-4-5", {"thinking": {"type": "enabled", "budget_tokens": 1024}}, True),
        ("claude-haiku-5", {}, False),  # a 5.x id not in the table: no default thinking
        ("claude-opus-4-6-20260101", {}, False),
    ],
)
async def test_who_thinks(
    fake: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    model: str,
    extra: dict[str, Any],
    thinks: bool,
) -> None:
    fake.enqueue(Reply(text="Answer.", thinking_tokens=30))
    message = await client.messages.create(
        model=model, max_tokens=2048, messages=HELLO, extra_body=extra
    )
    assert thinking_of(message) == (["thinking", "text"] if thinks else ["text"])
    assert message.usage.output_tokens == (31 if thinks else 1)
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == (30 if thinks else 0)
    assert {k: fake.message_requests[0].body[k] for k in extra} == extra  # recorded as sent


async def test_thinking_tokens_0_means_no_thinking_block_even_on_a_thinker(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    message = await client.messages.create(model=SONNET_55, max_tokens=100, messages=HELLO)
    assert thinking_of(message) == ["text"]
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 0


@pytest.mark.parametrize(
    ("model", "thinking", "effort", "needles"),
    [
        ("claude-sonnet-5-5", {"type": "disabled"}, None, ["thinking.type", "between_tools"]),
        ("claude-sonnet-5-5-20261001", {"type": "disabled"}, None, ["between_tools"]),
        ("claude-opus-5-5", {"type": "disabled"}, None, ["thinking.type", "disabled"]),
        ("claude-fable-5", {"type": "disabled"}, None, ["thinking.type", "disabled"]),
        ("claude-mythos-5-2", {"type": "disabled"}, None, ["thinking.type", "disabled"]),
        ("claude-haiku-5-5", {"type": "disabled"}, "xhigh", ["output_config.effort", "xhigh"]),
        ("claude-opus-5", {"type": "disabled"}, "max", ["output_config.effort", "max"]),
        ("claude-sonnet-5", {"type": "disabled"}, "max", ["output_config.effort", "max"]),
        ("claude-opus-5-5", {"type": "between_tools"}, None, ["thinking.type", "between_tools"]),
        ("claude-sonnet-4-6", {"type": "between_tools"}, None, ["between_tools"]),
        ("claude-haiku-5-5", {"type": "between_tools"}, None, ["between_tools"]),
        ("claude-opus-4-7", {"type": "enabled", "budget_tokens": 2048}, None, ["enabled"]),
        ("claude-opus-4-8", {"type": "enabled", "budget_tokens": 2048}, None, ["enabled"]),
        ("claude-sonnet-5-5", {"type": "enabled", "budget_tokens": 2048}, None, ["enabled"]),
        ("claude-fable-5-1", {"type": "enabled", "budget_tokens": 2048}, None, ["enabled"]),
        ("claude-haiku-5", {"type": "enabled", "budget_tokens": 2048}, None, ["enabled"]),
        ("claude-sonnet-4-6", {"type": "enabled", "budget_tokens": 512}, None, ["budget_tokens"]),
        ("claude-sonnet-4-6", {"type": "enabled", "budget_tokens": 4096}, None, ["max_tokens"]),
        ("claude-sonnet-4-6", {"type": "enabled"}, None, ["budget_tokens"]),
        ("claude-sonnet-5-5", {"type": "sometimes"}, None, ["thinking.type"]),
        ("claude-sonnet-5-5", "adaptive", None, ["thinking.type"]),
        ("claude-sonnet-5-5", None, "extreme", ["output_config.effort"]),
        ("claude-sonnet-4-6", {"type": "adaptive", "display": "full"}, None, ["thinking.display"]),
    ],
)
async def test_thinking_settings_a_model_rejects_are_400(
    fake: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    model: str,
    thinking: Any,
    effort: str | None,
    needles: list[str],
) -> None:
    fake.enqueue(Reply(text="kept for later"))
    extra: dict[str, Any] = {} if thinking is None else {"thinking": thinking}
    if effort is not None:
        extra["output_config"] = {"effort": effort}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model=model, max_tokens=4096, messages=HELLO, extra_body=extra)
    assert caught.value.type == "invalid_request_error"
    for needle in needles:
        assert needle in str(caught.value.api_message)
    assert fake.message_requests == []
    if isinstance(thinking, dict) and thinking.get("budget_tokens") != 4096:
        # count_tokens validates the same field (no max_tokens there).
        with pytest.raises(anthropic.BadRequestError) as counted:
            await client.messages.count_tokens(model=model, messages=HELLO, extra_body=extra)
        assert str(counted.value.api_message) == str(caught.value.api_message)


async def test_count_tokens_accepts_what_the_model_accepts(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    count = await client.messages.count_tokens(
        model=SONNET_55,
        messages=HELLO,
        thinking={"type": "between_tools"},
        output_config={"effort": "low"},
    )
    assert count.input_tokens == 5
    assert fake.requests[0].body["output_config"] == {"effort": "low"}


async def test_effort_is_recorded_and_does_not_change_the_count(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    for effort in ("low", "max"):
        fake.enqueue(Reply(text="Same.", thinking_tokens=12))
        message = await client.messages.create(
            model="claude-opus-5-5",
            max_tokens=100,
            messages=HELLO,
            output_config={"effort": effort},
        )
        assert message.usage.output_tokens == 13
    efforts = [r.body["output_config"]["effort"] for r in fake.message_requests]
    assert efforts == ["low", "max"]


async def test_display_omitted_sends_a_signature_but_no_thinking_text(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="Ok.", thinking_tokens=5, thinking_text=THOUGHT))
    thinking = {"type": "adaptive", "display": "omitted"}
    events = await raw_events(client, model=SONNET_55, extra_body={"thinking": thinking})
    deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == ["signature_delta", "text_delta"]


async def test_delay_applies_between_thinking_deltas_too(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="a", thinking_tokens=3, thinking_text="x y z", delay=0.05))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await raw_events(client, model=SONNET_55)
    assert loop.time() - started >= 0.15  # x, y, z, a: three gaps


# -- max_tokens ------------------------------------------------------------------------------------


async def test_thinking_that_reaches_max_tokens_leaves_no_text_block(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="never sent", thinking_tokens=500, thinking_text=THOUGHT))
    events = await raw_events(client, model=SONNET_55, max_tokens=300)
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking"]
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 300
    assert delta["usage"]["output_tokens_details"] == {"thinking_tokens": 300}

    fake.enqueue(Reply(text="never sent", thinking_tokens=300))
    message = await client.messages.create(model=SONNET_55, max_tokens=300, messages=HELLO)
    assert thinking_of(message) == ["thinking"]
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 300


@pytest.mark.parametrize("stream", [False, True])
async def test_text_is_cut_after_what_thinking_leaves_of_max_tokens(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, stream: bool
) -> None:
    fake.enqueue(Reply(chunks=list("abcdefghij"), thinking_tokens=6))
    args: dict[str, Any] = {"model": SONNET_55, "max_tokens": 10, "messages": HELLO}
    if stream:
        async with client.messages.stream(**args) as events:
            message = await events.get_final_message()
    else:
        message = await client.messages.create(**args)
    assert message.content[1].type == "text"
    assert message.content[1].text == "abcd"
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 10
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 6


async def test_max_tokens_cuts_text_without_thinking_and_output_tokens_still_overrides(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(
        Reply(text="one two three four", output_tokens=99),
        Reply(text="one two three four", stop_reason="stop_sequence"),
    )
    received: list[str] = []
    async with client.messages.stream(model=MODEL, max_tokens=2, messages=HELLO) as stream:
        async for text in stream.text_stream:
            received.append(text)
        final = await stream.get_final_message()
    assert received == ["one", " two"]
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 99  # scripted: reported as is

    exact = await client.messages.create(model=MODEL, max_tokens=4, messages=HELLO)
    assert exact.stop_reason == "stop_sequence"  # not cut: the scripted stop reason
    assert exact.usage.output_tokens == 4


async def test_max_tokens_0_gives_no_content(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(thinking_tokens=10))
    message = await client.messages.create(model=SONNET_55, max_tokens=0, messages=HELLO)
    assert message.content == []
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 0


# -- usage fields ----------------------------------------------------------------------------------


async def test_usage_carries_details_server_tools_geo_speed_and_tier(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(
        Reply(text="a b", thinking_tokens=4, web_search_requests=2, web_fetch_requests=1),
    )
    events = await raw_events(client, model=SONNET_55)
    start = events[0]["message"]["usage"]
    assert start["output_tokens"] == 1
    assert start["output_tokens_details"] == {"thinking_tokens": 0}
    assert start["server_tool_use"] == {"web_search_requests": 2, "web_fetch_requests": 1}
    assert (start["inference_geo"], start["speed"], start["service_tier"]) == (
        "global",
        "standard",
        "standard",
    )
    [delta] = [e for e in events if e["type"] == "message_delta"]
    assert delta["usage"] == {
        "input_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 6,
        "output_tokens_details": {"thinking_tokens": 4},
        "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1},
        "inference_geo": "global",
        "speed": "standard",
        "service_tier": "standard",
    }


async def test_inference_geo_and_speed_follow_the_request_unless_scripted(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(), Reply(inference_geo="eu", speed="standard"))
    asked: dict[str, Any] = {"inference_geo": "us", "speed": "fast"}
    for geo, speed in (("us", "fast"), ("eu", "standard")):
        async with client.messages.stream(
            model=SONNET_55, max_tokens=100, messages=HELLO, **asked
        ) as stream:
            usage = (await stream.get_final_message()).usage
        assert (usage.inference_geo, usage.speed, usage.service_tier) == (geo, speed, "standard")
    assert fake.message_requests[0].body["inference_geo"] == "us"


# -- refusals (0a.2) -------------------------------------------------------------------------------


async def test_a_refusal_ends_normally_with_stop_details(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(text="I can't help", stop_reason="refusal", refusal_category="cyber"))
    events = await raw_events(client, model=SONNET_55)
    [delta] = [e for e in events if e["type"] == "message_delta"]
    details = delta["delta"]["stop_details"]
    assert delta["delta"]["stop_reason"] == "refusal"
    assert delta["delta"]["stop_sequence"] is None
    assert details["type"] == "refusal" and details["category"] == "cyber"
    assert isinstance(details["explanation"], str) and details["explanation"]
    assert events[-1]["type"] == "message_stop"

    fake.enqueue(Reply(chunks=[], stop_reason="refusal"))
    received: list[str] = []
    async with client.messages.stream(model=SONNET_55, max_tokens=100, messages=HELLO) as stream:
        async for text in stream.text_stream:
            received.append(text)
        final = await stream.get_final_message()
    assert received == []
    assert final.stop_reason == "refusal"
    assert final.stop_details is not None
    assert final.stop_details.category is None

    fake.enqueue(Reply(text="No.", stop_reason="refusal", refusal_category="bio"))
    message = await client.messages.create(model=SONNET_55, max_tokens=100, messages=HELLO)
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None
    assert (message.stop_details.type, message.stop_details.category) == ("refusal", "bio")


# -- error codes and spend caps (0a.3) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        ("enforced_spend_limit_reached", anthropic.EnforcedSpendLimitReachedError),
        ("contract_spend_limit_reached", anthropic.ContractSpendLimitReachedError),
        ("ramp_limit_exceeded", anthropic.RampLimitExceededError),
    ],
)
async def test_spend_caps_are_429s_with_an_error_code_and_no_retry_after(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, code: str, error_class: type
) -> None:
    fake.enqueue(Reply(status=429, error_code=code))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model=SONNET_55, max_tokens=10, messages=HELLO)
    error = caught.value
    assert type(error) is error_class
    assert error.error_code == code
    assert error.type == "rate_limit_error"
    assert error.api_message
    assert error.body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": error.api_message,
            "details": {"error_code": code},
        },
        "request_id": error.request_id,
    }
    assert error.request_id is not None
    headers = {name.lower() for name in error.response.headers}
    assert "retry-after" not in headers and "retry-after-ms" not in headers


async def test_the_sdk_still_retries_a_spend_cap_429(fake: FakeAnthropic) -> None:
    capped = Reply(status=429, error_code="enforced_spend_limit_reached")
    fake.enqueue(capped, Reply(text="Back."))
    sdk = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url, max_retries=1)
    try:
        message = await sdk.messages.create(model=SONNET_55, max_tokens=10, messages=HELLO)
    finally:
        await sdk.close()
    assert message.content[0].type == "text" and message.content[0].text == "Back."
    assert len(fake.message_requests) == 2


async def test_an_error_code_goes_into_the_details_for_any_status(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(Reply(status=400, error_code="image_dimensions_too_large", error_message="Big."))
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model=SONNET_55, max_tokens=10, messages=HELLO)
    assert caught.value.error_code == "image_dimensions_too_large"
    assert caught.value.api_message == "Big."


# -- admin cost report (0a.8) ----------------------------------------------------------------------

ADMIN_KEY = "sk-ant-admin-test"
COST_REPORT = "/v1/organizations/cost_report"
NOV30 = datetime.date(2026, 11, 30)


@pytest.fixture
async def admin(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(api_key=ADMIN_KEY, base_url=fake.base_url, max_retries=0)
    yield sdk
    await sdk.close()


async def cost_report(sdk: anthropic.AsyncAnthropic, **params: Any) -> Any:
    return await sdk.get(COST_REPORT, cast_to=object, options={"params": params})


def day_of(offset: int) -> datetime.date:
    return NOV30 + datetime.timedelta(days=offset)


async def test_cost_report_needs_the_admin_key_and_the_admin_key_is_no_api_key(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, admin: anthropic.AsyncAnthropic
) -> None:
    assert fake.admin_key == ADMIN_KEY
    with pytest.raises(anthropic.AuthenticationError):
        await cost_report(client, starting_at="2026-11-30T00:00:00Z")
    with pytest.raises(anthropic.AuthenticationError):
        await admin.messages.create(model=SONNET_55, max_tokens=10, messages=HELLO)
    assert fake.message_requests == []
    headers = {"x-api-key": ADMIN_KEY}
    params = {"starting_at": "2026-11-30T00:00:00Z", "ending_at": "2026-12-01T00:00:00Z"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{fake.base_url}{COST_REPORT}", params=params, headers=headers) as response,
    ):
        assert response.status == 200
        assert response.headers["request-id"].startswith("req_")
        assert (await response.json())["data"][0]["results"] == []
    async with FakeAnthropic(admin_key="sk-ant-admin-other") as other:
        wrong = anthropic.AsyncAnthropic(api_key=ADMIN_KEY, base_url=other.base_url, max_retries=0)
        try:
            with pytest.raises(anthropic.AuthenticationError):
                await cost_report(wrong, starting_at="2026-11-30T00:00:00Z")
        finally:
            await wrong.close()


async def test_cost_report_buckets_sums_and_pages(
    fake: FakeAnthropic, admin: anthropic.AsyncAnthropic
) -> None:
    fake.costs = [
        CostItem(day_of(0), "claude-sonnet-5-5", "0.1", token_type="uncached_input_tokens"),
        CostItem(day_of(0), "claude-sonnet-5-5", "0.2"),
        CostItem(day_of(0), "claude-haiku-5-5-20261001", "123.45", workspace_id="wrkspc_a"),
        CostItem(day_of(2), "claude-opus-5-5", "0.00001"),
        CostItem(day_of(2), "claude-opus-5-5", "0.00001"),
    ]
    report = await cost_report(
        admin, starting_at="2026-11-30T09:30:00+00:00", ending_at="2026-12-03T00:00:00Z", limit=2
    )
    assert report["has_more"] is True
    assert [b["starting_at"] for b in report["data"]] == [
        "2026-11-30T00:00:00Z",
        "2026-12-01T00:00:00Z",
    ]
    assert report["data"][0]["ending_at"] == "2026-12-01T00:00:00Z"
    assert report["data"][0]["results"] == [
        {
            "currency": "USD",
            "amount": "123.75",  # 0.1 + 0.2 + 123.45, exactly
            "workspace_id": None,
            "description": None,
            "cost_type": None,
            "context_window": None,
            "model": None,
            "service_tier": None,
            "token_type": None,
        }
    ]
    assert report["data"][1]["results"] == []  # a day without costs

    page = report["next_page"]
    rest = await cost_report(
        admin, starting_at="2026-11-30T00:00:00Z", ending_at="2026-12-03T00:00:00Z", page=page
    )
    assert (rest["has_more"], rest["next_page"]) == (False, None)
    [dec2] = rest["data"]
    assert dec2["starting_at"] == "2026-12-02T00:00:00Z"
    assert [r["amount"] for r in dec2["results"]] == ["0.00002"]

    recorded = [r for r in fake.requests if r.path == COST_REPORT]
    assert len(recorded) == 2
    assert recorded[0].method == "GET"
    assert recorded[0].query["limit"] == ["2"]
    assert recorded[1].query["page"] == [page]
    assert recorded[0].headers["authorization"] == f"Bearer {ADMIN_KEY}"


async def test_cost_report_grouped_by_description_and_workspace(
    fake: FakeAnthropic, admin: anthropic.AsyncAnthropic
) -> None:
    fake.costs = [
        CostItem(NOV30, "claude-sonnet-5-5", "1.5"),
        CostItem(NOV30, "claude-sonnet-5-5", "2.25"),
        CostItem(NOV30, "claude-sonnet-5-5", "0.5", token_type="cache_read_input_tokens"),
        CostItem(NOV30, "claude-sonnet-5-5", "7", workspace_id="wrkspc_b"),
        CostItem(NOV30, "claude-opus-5-5", "10", cost_type="web_search", token_type=None),
    ]
    window = {"starting_at": "2026-11-30T00:00:00Z", "ending_at": "2026-12-01T00:00:00Z"}
    [bucket] = (await cost_report(admin, group_by=["description"], **window))["data"]
    by_description = {r["description"]: r for r in bucket["results"]}
    assert set(by_description) == {
        "Claude Sonnet 5.5 Usage - Output Tokens",
        "Claude Sonnet 5.5 Usage - Cache Read Input Tokens",
        "Claude Opus 5.5 Usage - Web Search",
    }
    output = by_description["Claude Sonnet 5.5 Usage - Output Tokens"]
    assert output == {
        "currency": "USD",
        "amount": "10.75",  # 1.5 + 2.25 + 7 (workspace not grouped)
        "workspace_id": None,
        "description": "Claude Sonnet 5.5 Usage - Output Tokens",
        "cost_type": "tokens",
        "context_window": "0-200k",
        "model": "claude-sonnet-5-5",
        "service_tier": "standard",
        "token_type": "output_tokens",
    }
    assert by_description["Claude Opus 5.5 Usage - Web Search"]["token_type"] is None

    # `group_by` without brackets is accepted too.
    query = "&".join(f"{k}={v}" for k, v in window.items())
    raw = await admin.get(f"{COST_REPORT}?{query}&group_by=workspace_id", cast_to=object)
    results = raw["data"][0]["results"]  # type: ignore[index]
    assert [(r["workspace_id"], r["amount"], r["model"]) for r in results] == [
        (None, "14.25", None),
        ("wrkspc_b", "7", None),
    ]
    fake.costs.append(CostItem(NOV30, "claude-sonnet-5-5", "1", description="Custom line"))
    [bucket] = (await cost_report(admin, group_by=["description", "workspace_id"], **window))[
        "data"
    ]
    lines = {(r["workspace_id"], r["description"], r["amount"]) for r in bucket["results"]}
    assert (None, "Claude Sonnet 5.5 Usage - Output Tokens", "3.75") in lines
    assert ("wrkspc_b", "Claude Sonnet 5.5 Usage - Output Tokens", "7") in lines
    assert (None, "Custom line", "1") in lines


async def test_cost_report_ending_at_defaults_to_now_and_limit_defaults_to_7(
    fake: FakeAnthropic, admin: anthropic.AsyncAnthropic
) -> None:
    fake.now = lambda: datetime.datetime(2026, 12, 10, 15, 0, tzinfo=datetime.UTC)
    report = await cost_report(admin, starting_at="2026-12-01T00:00:00Z")
    assert len(report["data"]) == 7
    assert report["has_more"] is True
    rest = await cost_report(admin, starting_at="2026-12-01T00:00:00Z", page=report["next_page"])
    assert [b["starting_at"][:10] for b in rest["data"]] == [
        "2026-12-08",
        "2026-12-09",
        "2026-12-10",
    ]
    assert rest["has_more"] is False


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "starting_at"),
        ({"starting_at": "yesterday"}, "starting_at"),
        ({"starting_at": "2026-11-30T00:00:00"}, "timezone"),
        ({"starting_at": "2026-11-30T00:00:00Z", "ending_at": "2026-11-29T00:00:00Z"}, "ending_at"),
        ({"starting_at": "2026-11-30T00:00:00Z", "bucket_width": "1h"}, "bucket_width"),
        ({"starting_at": "2026-11-30T00:00:00Z", "group_by": ["model"]}, "group_by"),
        ({"starting_at": "2026-11-30T00:00:00Z", "limit": 0}, "limit"),
        ({"starting_at": "2026-11-30T00:00:00Z", "limit": 32}, "limit"),
        ({"starting_at": "2026-11-30T00:00:00Z", "page": "not-a-token"}, "page"),
    ],
)
async def test_cost_report_bad_queries_are_400(
    fake: FakeAnthropic, admin: anthropic.AsyncAnthropic, params: dict[str, Any], needle: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await cost_report(admin, **params)
    assert caught.value.type == "invalid_request_error"
    assert needle in str(caught.value.api_message)


# -- content blocks, token sizes and the Files API (PLATFORM.md 0a.5) -----------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PDF = b"%PDF-1.7\n" + b"0" * 300
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image(data: bytes = PNG, media_type: str = "image/png", **extra: Any) -> dict[str, Any]:
    source = {"type": "base64", "media_type": media_type, "data": b64(data)}
    return {"type": "image", "source": source, **extra}


def pdf(data: bytes = PDF, **extra: Any) -> dict[str, Any]:
    source = {"type": "base64", "media_type": "application/pdf", "data": b64(data)}
    return {"type": "document", "source": source, **extra}


def from_file(kind: str, file_id: str) -> dict[str, Any]:
    return {"type": kind, "source": {"type": "file", "file_id": file_id}}


def user(*blocks: Any) -> Any:
    return [{"role": "user", "content": list(blocks)}]


async def count(client: anthropic.AsyncAnthropic, messages: Any, **kwargs: Any) -> int:
    result = await client.messages.count_tokens(model=MODEL, messages=messages, **kwargs)
    return result.input_tokens


async def test_blocks_are_accepted_and_sized_alike_by_count_tokens_and_usage(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    text_doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "d" * 30},
        "title": "Notes",
        "context": "From Slack",
    }
    url_image = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    messages = user(
        {"type": "text", "text": "t" * 11},
        image(),
        image(media_type="image/webp"),
        url_image,
        pdf(title="Report"),
        text_doc,
    )
    expected = 11 + 3 * IMAGE_TOKENS + PDF_TOKENS  # ceil((11 + 30) / 4) = 11
    assert (IMAGE_TOKENS, PDF_TOKENS) == (1_000, 2_000)
    assert await count(client, messages) == expected
    message = await client.messages.create(model=MODEL, max_tokens=20, messages=messages)
    assert message.usage.input_tokens == expected
    assert fake.message_requests[0].body["messages"] == messages


async def test_an_image_of_exactly_5_mb_is_accepted(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    assert MAX_IMAGE_BYTES == 5 * 1024 * 1024
    assert await count(client, user(image(b"\0" * MAX_IMAGE_BYTES))) == IMAGE_TOKENS


TOO_BIG_IMAGE = image(b"\0" * (MAX_IMAGE_BYTES + 1), media_type="image/jpeg")


@pytest.mark.parametrize(
    ("messages", "prefix", "needle"),
    [
        (user({"type": "video", "x": 1}), "messages.0.content.0.type:", "unknown content block"),
        (user("not a block"), "messages.0.content.0:", "object"),
        ([{"role": "user", "content": 5}], "messages.0.content:", "string or a list"),
        (user({"type": "text"}), "messages.0.content.0.text:", "string"),
        (
            user({"type": "text", "text": "hi"}, image(media_type="image/bmp")),
            "messages.0.content.1.source.media_type:",
            "image/bmp",
        ),
        (
            user({**image(), "source": {**image()["source"], "data": "@@not base64@@"}}),
            "messages.0.content.0.source.data:",
            "base64",
        ),
        (user(TOO_BIG_IMAGE), "messages.0.content.0.source.data:", "image exceeds 5 MB maximum"),
        (
            user({"type": "image", "source": {"type": "path", "path": "x.png"}}),
            "messages.0.content.0.source.type:",
            "'base64', 'url' or 'file'",
        ),
        (
            user({**pdf(), "source": {**pdf()["source"], "media_type": "application/zip"}}),
            "messages.0.content.0.source.media_type:",
            "application/pdf",
        ),
        (
            user({**pdf(), "source": {"type": "text", "media_type": "text/html", "data": "x"}}),
            "messages.0.content.0.source.media_type:",
            "text/plain",
        ),
        (user(pdf(title=7)), "messages.0.content.0.title:", "string"),
        (
            user(from_file("image", "file_nope")),
            "messages.0.content.0.source.file_id:",
            "File not found: file_nope",
        ),
        (
            user(from_file("document", "file_gone")),
            "messages.0.content.0.source.file_id:",
            "File not found: file_gone",
        ),
        (
            [*HELLO, {"role": "assistant", "content": [image()]}],
            "messages.1.content.0:",
            "only allowed in user messages",
        ),
        (
            user({"type": "tool_result", "tool_use_id": "t1", "content": [TOO_BIG_IMAGE]}),
            "messages.0.content.0.content.0.source.data:",
            "5 MB",
        ),
    ],
)
@pytest.mark.parametrize("endpoint", ["create", "count_tokens"])
async def test_invalid_content_blocks_are_400_naming_the_path(
    fake: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    messages: Any,
    prefix: str,
    needle: str,
    endpoint: str,
) -> None:
    fake.enqueue(Reply(text="kept for the next request"))
    send = (
        client.messages.create(model=MODEL, max_tokens=10, messages=messages)
        if endpoint == "create"
        else count(client, messages)
    )
    with pytest.raises(anthropic.BadRequestError) as caught:
        await send
    assert caught.value.type == "invalid_request_error"
    message = str(caught.value.api_message)
    assert message.startswith(prefix)
    assert needle in message
    assert fake.message_requests == []
    reply = await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "kept for the next request"  # the 400 used no reply


async def test_a_body_over_32_mb_is_a_plain_413(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    huge: Any = [{"role": "user", "content": "x" * (32 * 1024 * 1024)}]
    fake.enqueue(Reply(text="unused"))
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        await client.messages.create(model=MODEL, max_tokens=10, messages=huge)
    assert caught.value.status_code == 413
    error = {"type": "request_too_large", "message": TOO_LARGE_MESSAGE}
    assert caught.value.body == {"type": "error", "error": error}  # no request_id
    assert caught.value.request_id is None  # the edge answers, not the API
    [recorded] = fake.requests
    assert recorded.size > 32 * 1024 * 1024
    assert recorded.body == {}
    assert fake.message_requests == []
    reply = await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "unused"


async def test_the_request_limit_can_be_lowered_and_applies_to_count_tokens(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.max_request_bytes = 4096
    assert await count(client, user(image(b"\0" * 1000))) == IMAGE_TOKENS
    with pytest.raises(anthropic.ContentTooLargeError):
        await count(client, user(image(b"\0" * 4096)))
    wrong = anthropic.AsyncAnthropic(api_key="sk-no", base_url=fake.base_url, max_retries=0)
    try:
        with pytest.raises(anthropic.ContentTooLargeError):  # before auth, as at the edge
            await wrong.messages.create(model=MODEL, max_tokens=5, messages=user(pdf(PDF * 20)))
    finally:
        await wrong.close()


async def test_a_cached_image_is_written_then_read_and_makes_the_prefix_cacheable() -> None:
    async with FakeAnthropic(min_cache_tokens=1024) as fake:
        sdk = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url, max_retries=0)
        try:
            messages = user(image(cache_control=EPHEMERAL), {"type": "text", "text": "Q" * 12})
            # system 100 tokens + image 1,000 = a 1,100-token prefix; the question is 3 more.
            first = numbers(await ask(sdk, messages, system=SYSTEM_TEXT))
            second = numbers(await ask(sdk, messages, system=SYSTEM_TEXT, stream=True))
            total = await count(sdk, messages, system=SYSTEM_TEXT)
        finally:
            await sdk.close()
    assert first == (3, 1100, 0, 0)
    assert second == (3, 0, 0, 1100)
    assert total == 1103


async def test_upload_metadata_use_and_delete(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.now = lambda: NOW
    photo = await client.files.upload(
        file=("shots/photo.png", PNG, "image/png"), expires_in_seconds=3600
    )
    assert photo.id.startswith("file_")
    assert photo.type == "file"
    assert (photo.filename, photo.mime_type, photo.size_bytes) == ("photo.png", "image/png", 264)
    assert photo.created_at == NOW
    assert photo.expires_at == NOW + datetime.timedelta(hours=1)
    assert photo.downloadable is False
    report = await client.files.upload(file=("report.pdf", PDF, "application/pdf"))
    assert report.expires_at is None

    stored = fake.files[photo.id]
    assert (stored.filename, stored.mime_type, stored.data) == ("photo.png", "image/png", PNG)
    assert [f.id for f in fake.uploads] == [photo.id, report.id]
    upload = fake.requests[0]
    assert upload.path == "/v1/files"
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert "anthropic-beta" not in upload.headers  # GA: no beta header
    assert upload.body == {
        "expires_in_seconds": "3600",
        "file": {"filename": "shots/photo.png", "content_type": "image/png", "size_bytes": 264},
    }
    assert upload.size > 264
    assert fake.message_requests == []

    again = await client.files.retrieve_metadata(photo.id)
    assert again == photo
    messages = user(from_file("image", photo.id), from_file("document", report.id))
    assert await count(client, messages) == IMAGE_TOKENS + PDF_TOKENS
    message = await client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert message.usage.input_tokens == IMAGE_TOKENS + PDF_TOKENS

    deleted = await client.files.delete(photo.id)
    assert (deleted.id, deleted.type) == (photo.id, "file_deleted")
    assert photo.id not in fake.files
    assert len(fake.uploads) == 2
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.files.retrieve_metadata(photo.id)
    assert caught.value.type == "not_found_error"
    assert caught.value.api_message == f"File not found: {photo.id}"
    with pytest.raises(anthropic.NotFoundError):
        await client.files.delete(photo.id)
    with pytest.raises(anthropic.BadRequestError, match=f"File not found: {photo.id}"):
        await count(client, messages)


async def test_a_text_file_document_counts_its_text_and_names_are_filled_in(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    text = ("é" * 41).encode()
    notes = await client.files.upload(file=("notes.txt", text))  # type guessed by name
    assert (notes.mime_type, notes.size_bytes) == ("text/plain", 82)
    assert await count(client, user(from_file("document", notes.id))) == 11  # ceil(41 / 4)
    nameless = await client.files.upload(file=("", PNG, "image/png"))
    assert nameless.filename == "unnamed.png"
    seeded = fake.add_file(b"plain words", "seed.txt", "text/plain")
    assert seeded.id in fake.files
    assert len(fake.uploads) == 2  # add_file is no upload
    assert await count(client, user(from_file("document", seeded.id))) == 3  # ceil(11 / 4)


@pytest.mark.parametrize(
    ("kind", "filename", "mime_type", "needle"),
    [
        ("image", "report.pdf", "application/pdf", "an image block needs"),
        ("image", "notes.txt", "text/plain", "an image block needs"),
        ("document", "photo.png", "image/png", "a document block needs"),
        ("document", "data.zip", "application/zip", "a document block needs"),
    ],
)
async def test_a_file_whose_type_does_not_fit_the_block_is_400(
    fake: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    kind: str,
    filename: str,
    mime_type: str,
    needle: str,
) -> None:
    uploaded = await client.files.upload(file=(filename, b"bytes", mime_type))
    assert uploaded.mime_type == mime_type
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model=MODEL, max_tokens=10, messages=user(from_file(kind, uploaded.id))
        )
    message = str(caught.value.api_message)
    assert message.startswith("messages.0.content.0.source.file_id:")
    assert needle in message
    assert mime_type in message


@pytest.mark.parametrize("seconds", [3599, 7_776_001, 0])
async def test_expires_in_seconds_out_of_range_is_400(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, seconds: int
) -> None:
    with pytest.raises(anthropic.BadRequestError, match="expires_in_seconds"):
        await client.files.upload(file=("a.png", PNG, "image/png"), expires_in_seconds=seconds)
    assert fake.files == {}
    assert fake.uploads == []
    assert fake.requests[0].body["expires_in_seconds"] == str(seconds)  # still recorded
    limit = await client.files.upload(
        file=("a.png", PNG, "image/png"), expires_in_seconds=7_776_000
    )
    assert limit.expires_at is not None


async def test_without_the_files_api_every_files_call_is_404(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.files_api = False
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.files.upload(file=("a.png", PNG, "image/png"))
    assert caught.value.type == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        await client.files.retrieve_metadata("file_abc")
    with pytest.raises(anthropic.NotFoundError):
        await client.files.delete("file_abc")
    assert fake.files == {}
    assert fake.uploads == []
    assert fake.requests[0].body["file"]["filename"] == "a.png"  # recorded all the same
    # The inline fallback still works.
    assert await count(client, user(image(), pdf())) == IMAGE_TOKENS + PDF_TOKENS


async def test_files_api_needs_the_api_key_and_a_file_part(fake: FakeAnthropic) -> None:
    for key in ("sk-wrong", fake.admin_key):
        other = anthropic.AsyncAnthropic(api_key=key, base_url=fake.base_url, max_retries=0)
        try:
            with pytest.raises(anthropic.AuthenticationError):
                await other.files.upload(file=("a.png", PNG, "image/png"))
        finally:
            await other.close()
    headers = {"x-api-key": "sk-test", "anthropic-version": "2026-10-21"}
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("expires_in_seconds", "3600")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/v1/files", data=form, headers=headers) as response,
    ):
        payload = await response.json()
        assert response.status == 400
    assert payload["error"]["message"] == "file: Field required"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/v1/files", json={"file": "x"}, headers=headers) as response,
    ):
        payload = await response.json()
        assert response.status == 400
    assert "multipart/form-data" in payload["error"]["message"]
    assert fake.files == {}


async def test_an_upload_over_the_upload_limit_is_413(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    assert fake.max_upload_bytes == 500 * 1024 * 1024
    fake.max_upload_bytes = 200
    with pytest.raises(anthropic.ContentTooLargeError):
        await client.files.upload(file=("a.png", PNG, "image/png"))
    assert fake.files == {}
    assert fake.requests[0].body == {}
    fake.max_upload_bytes = 1024
    assert (await client.files.upload(file=("a.png", PNG, "image/png"))).size_bytes == 264


# -- organisation rate limits (tests/fakes/anthropic_limits.py) ------------------------------------

RL = "anthropic-ratelimit-"
LIMIT_KINDS = ("requests", "input-tokens", "output-tokens", "tokens")


def limit_headers(headers: Any) -> dict[str, str]:
    """The rate-limit headers of a response (names lower-cased)."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(RL)}


def parse_reset(value: str) -> datetime.datetime:
    assert value.endswith("Z"), value  # RFC 3339, UTC
    return datetime.datetime.fromisoformat(value)


class Clock:
    """A hand-driven monotonic clock for the fake's buckets."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_headers_are_sent_even_without_limits(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    assert fake.org_limits is None
    fake.limiter.clock = Clock()  # no refill between the request and the assertions
    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=HELLO)
    got = limit_headers(raw.headers)
    parts = ("limit", "remaining", "reset")
    assert set(got) == {f"{RL}{kind}-{part}" for kind in LIMIT_KINDS for part in parts}
    assert int(got[f"{RL}requests-limit"]) == UNLIMITED_REQUESTS
    assert int(got[f"{RL}requests-remaining"]) == UNLIMITED_REQUESTS - 1
    assert int(got[f"{RL}input-tokens-limit"]) == UNLIMITED_TOKENS
    assert int(got[f"{RL}tokens-limit"]) == 2 * UNLIMITED_TOKENS
    for kind in LIMIT_KINDS:
        parse_reset(got[f"{RL}{kind}-reset"])
    # count_tokens has its own limits in the real API; the fake neither limits nor reports them
    counted = await client.messages.with_raw_response.count_tokens(model=MODEL, messages=HELLO)
    assert limit_headers(counted.headers) == {}


async def test_headers_decrease_with_each_request_streamed_or_not(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.limiter.clock = Clock()  # no refill while the test looks
    fake.now = lambda: datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)
    fake.org_limits = OrgLimits(
        requests_per_minute=10,
        input_tokens_per_minute=100_000,
        output_tokens_per_minute=50_000,
        token_rounding=1,
    )
    prompt: list[MessageParam] = [{"role": "user", "content": "x" * 4000}]  # 1,000 tokens
    fake.enqueue(Reply(text="a b c"), Reply(text="d e"))
    first = await client.messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=prompt
    )
    one = limit_headers(first.headers)
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=prompt) as stream:
        two = limit_headers(stream.response.headers)
        await stream.get_final_message()

    assert one[f"{RL}requests-limit"] == two[f"{RL}requests-limit"] == "10"
    assert (one[f"{RL}requests-remaining"], two[f"{RL}requests-remaining"]) == ("9", "8")
    assert one[f"{RL}input-tokens-limit"] == "100000"
    assert int(one[f"{RL}input-tokens-remaining"]) == 99_000
    assert int(two[f"{RL}input-tokens-remaining"]) == 98_000
    # JSON: the answer's 3 output tokens are settled before the headers; a stream's headers go
    # out as it starts, while max_tokens (100) is still held as the estimate.
    assert int(one[f"{RL}output-tokens-remaining"]) == 50_000 - 3
    assert int(two[f"{RL}output-tokens-remaining"]) == 50_000 - 3 - 100
    assert one[f"{RL}tokens-limit"] == "150000"
    assert int(one[f"{RL}tokens-remaining"]) == 99_000 + 50_000 - 3
    # full again in: 2 of 10 requests, 12 s; 2,000 of 100,000 input tokens, 1.2 s (rounded up);
    # 103 of 50,000 output tokens, 0.12 s; input and output together: the later of the two
    assert two[f"{RL}requests-reset"] == "2026-12-01T12:00:12Z"
    assert two[f"{RL}input-tokens-reset"] == "2026-12-01T12:00:02Z"
    assert two[f"{RL}output-tokens-reset"] == "2026-12-01T12:00:01Z"
    assert two[f"{RL}tokens-reset"] == "2026-12-01T12:00:02Z"
    parse_reset(two[f"{RL}tokens-reset"])


async def test_token_remaining_is_rounded_to_the_nearest_thousand(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.org_limits = OrgLimits(input_tokens_per_minute=10_000, output_tokens_per_minute=5_000)
    fake.enqueue(Reply(input_tokens=1_400, output_tokens=600))
    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=HELLO)
    got = limit_headers(raw.headers)
    assert got[f"{RL}input-tokens-remaining"] == "9000"  # 8,600
    assert got[f"{RL}output-tokens-remaining"] == "4000"  # 4,400
    assert got[f"{RL}tokens-remaining"] == "13000"  # 13,000


async def test_past_the_rpm_limit_is_a_429_with_retry_after_and_the_headers(
    fake: FakeAnthropic,
) -> None:
    fake.org_limits = OrgLimits(requests_per_minute=2)
    fake.enqueue(Reply(text="one"), Reply(text="two"), Reply(text="three"))
    headers = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    statuses, payload, got = [], {}, {}
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(
                f"{fake.base_url}/v1/messages", json=body, headers=headers
            ) as response:
                statuses.append(response.status)
                payload = await response.json()
                got = {k.lower(): v for k, v in response.headers.items()}
    assert statuses == [200, 200, 429]
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "rate_limit_error"
    assert "2 requests per minute" in payload["error"]["message"]
    assert payload["request_id"] == got["request-id"]
    # the bucket refills 2 per minute: one request takes 30 s (just under, rounded up)
    assert got["retry-after"] in ("29", "30")
    assert got[f"{RL}requests-limit"] == "2"
    assert got[f"{RL}requests-remaining"] == "0"
    assert fake.rate_limited_count == 1
    assert len(fake.message_requests) == 3  # every attempt is recorded
    assert fake._script == [Reply(text="three")]  # the 429 used up no scripted reply


async def test_the_sdk_raises_rate_limit_error_with_the_headers(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    clock = Clock()
    fake.limiter.clock = clock
    fake.now = lambda: datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)
    fake.org_limits = OrgLimits(requests_per_minute=1)
    await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    clock.now += 20.5  # a third of the request is back; 39.5 s to go
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    error = caught.value
    assert error.status_code == 429
    assert error.type == "rate_limit_error"
    assert "1 requests per minute" in str(error.api_message)
    got = error.response.headers
    assert got["retry-after"] == "40"
    assert got[f"{RL}requests-limit"] == "1"
    assert got[f"{RL}requests-remaining"] == "0"
    assert got[f"{RL}requests-reset"] == "2026-12-01T12:00:40Z"  # 39.5 s, rounded up
    assert got[f"{RL}input-tokens-reset"] == "2026-12-01T12:00:00Z"  # untouched: already full
    assert fake.rate_limited_count == 1

    clock.now += 39.5  # the bucket is full again
    assert await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert fake.rate_limited_count == 1


async def test_itpm_counts_uncached_input_and_cache_writes_but_not_reads(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    clock = Clock()
    fake.limiter.clock = clock
    fake.org_limits = OrgLimits(input_tokens_per_minute=6_000, token_rounding=1)
    fake.enqueue(Reply(input_tokens=1_000, cache_creation_5m=2_000, cache_read=50_000))
    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert raw.headers[f"{RL}input-tokens-remaining"] == "3000"
    fake.enqueue(Reply(input_tokens=4_000), Reply(text="fits"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert "6,000 input tokens per minute" in str(caught.value.api_message)
    assert caught.value.response.headers["retry-after"] == "10"  # 1,000 more at 100 per second
    clock.now += 10
    message = await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert message.usage.input_tokens == 4_000  # the scripted reply waited for its turn


async def test_otpm_holds_max_tokens_until_the_answer_ends(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.org_limits = OrgLimits(output_tokens_per_minute=1_000, token_rounding=1)
    fake.enqueue(Reply(text="a b c d", delay=0.05))
    async with client.messages.stream(model=MODEL, max_tokens=600, messages=HELLO) as stream:
        assert stream.response.headers[f"{RL}output-tokens-remaining"] == "400"
        with pytest.raises(anthropic.RateLimitError) as caught:  # 600 more do not fit
            await client.messages.create(model=MODEL, max_tokens=600, messages=HELLO)
        assert "1,000 output tokens per minute" in str(caught.value.api_message)
        assert (await stream.get_final_message()).usage.output_tokens == 4
    raw = await client.messages.with_raw_response.create(
        model=MODEL, max_tokens=600, messages=HELLO
    )
    remaining = int(raw.headers[f"{RL}output-tokens-remaining"])
    assert 1_000 - 4 - 5 <= remaining <= 1_000  # settled to 4 + this answer's 5 (plus refill)


async def test_max_in_flight_counts_concurrent_streams(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    assert fake.max_in_flight == 0
    fake.enqueue(*(Reply(text="a b c d", delay=0.05) for _ in range(3)))
    results = await asyncio.gather(*(collect_text(client, []) for _ in range(3)))
    assert [m.stop_reason for m in results] == ["end_turn"] * 3
    assert fake.max_in_flight == 3
    assert fake.limiter.serving == 0 and fake.in_flight == 0
    fake.max_in_flight = 0
    await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert fake.max_in_flight == 1
    assert fake.rate_limited_count == 0


async def test_the_concurrent_knob_refuses_one_request_too_many(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.org_limits = OrgLimits(concurrent=2)
    fake.enqueue(Reply(text="slow", first_byte_delay=0.3), Reply(text="a b c", delay=0.1))
    slow = asyncio.create_task(client.messages.create(model=MODEL, max_tokens=10, messages=HELLO))
    streamed = asyncio.create_task(collect_text(client, []))
    await fake.wait_for_requests(2)
    await asyncio.sleep(0.05)
    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert "concurrent connections" in str(caught.value.api_message)
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.response.headers[f"{RL}requests-remaining"]
    await slow
    await streamed
    assert fake.max_in_flight == 2
    assert fake.rate_limited_count == 1
    assert await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)


async def test_scripted_errors_and_400s_carry_the_headers_too(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.org_limits = OrgLimits(requests_per_minute=5)
    fake.enqueue(Reply(status=529, headers={f"{RL}requests-limit": "77"}))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert overloaded.value.response.headers[f"{RL}requests-remaining"] == "4"
    assert overloaded.value.response.headers[f"{RL}requests-limit"] == "77"  # the reply's wins
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(model=MODEL, max_tokens=10, messages=[])
    assert bad.value.response.headers[f"{RL}requests-remaining"] == "4"  # a 400 spends nothing
    assert fake.rate_limited_count == 0


def test_org_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        OrgLimits(requests_per_minute=0)
    with pytest.raises(ValueError, match="concurrent"):
        OrgLimits(concurrent=0)


# -- server tools: web search and web fetch ------------------------------------------------------

SEARCH_TOOL: dict[str, Any] = {"type": "web_search_20250305", "name": "web_search"}
FETCH_TOOL: dict[str, Any] = {"type": "web_fetch_20250910", "name": "web_fetch"}
PY = ("Python versions", "https://www.python.org/doc/versions/")
NEWS = ("What's new", "https://docs.python.org/3/whatsnew/")


def search_reply(**kwargs: Any) -> Reply:
    step = WebSearch("current python version", results=[PY, NEWS])
    return Reply(tool_steps=[step], text="It is 3.14.", cited=[PY[1]], **kwargs)


async def test_a_search_streams_the_call_its_results_then_cited_text(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(search_reply())
    events = await raw_events(client, model=MODEL, tools=[SEARCH_TOOL])
    shape = [(e["type"], e.get("index"), e.get("delta", {}).get("type")) for e in events]
    assert shape == [
        ("message_start", None, None),
        ("content_block_start", 0, None),
        ("content_block_delta", 0, "input_json_delta"),
        ("content_block_delta", 0, "input_json_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, None),
        ("content_block_delta", 2, "citations_delta"),
        ("content_block_delta", 2, "text_delta"),
        ("content_block_delta", 2, "text_delta"),
        ("content_block_delta", 2, "text_delta"),
        ("content_block_stop", 2, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    use = events[1]["content_block"]
    assert (use["type"], use["name"], use["input"]) == ("server_tool_use", "web_search", {})
    assert use["id"].startswith("srvtoolu_")
    pieces = "".join(e["delta"]["partial_json"] for e in events[2:4])
    assert pieces == '{"query": "current python version"}'
    result = events[5]["content_block"]
    assert (result["type"], result["tool_use_id"]) == ("web_search_tool_result", use["id"])
    assert [(r["title"], r["url"]) for r in result["content"]] == [PY, NEWS]
    assert all(r["encrypted_content"] for r in result["content"])
    assert {r["type"] for r in result["content"]} == {"web_search_result"}
    assert events[7]["content_block"] == {"citations": [], "type": "text", "text": ""}
    citation = events[8]["delta"]["citation"]
    assert citation["type"] == "web_search_result_location"
    assert (citation["url"], citation["title"]) == (PY[1], PY[0])
    assert citation["encrypted_index"] and citation["cited_text"]
    assert events[0]["message"]["usage"]["server_tool_use"]["web_search_requests"] == 0
    totals = events[-2]["usage"]["server_tool_use"]
    assert totals == {"web_search_requests": 1, "web_fetch_requests": 0}


async def test_the_sdk_accumulates_a_searching_answer_streamed_or_not(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(search_reply(), search_reply())
    tools: Any = [SEARCH_TOOL]
    async with client.messages.stream(
        model=MODEL, max_tokens=256, messages=HELLO, tools=tools
    ) as stream:
        streamed = await stream.get_final_message()
    whole = await client.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=tools)
    for message in (streamed, whole):
        use, result, text = message.content
        assert use.type == "server_tool_use" and use.input == {"query": "current python version"}
        assert result.type == "web_search_tool_result" and isinstance(result.content, list)
        assert result.tool_use_id == use.id
        assert text.type == "text" and text.text == "It is 3.14."
        [cited] = text.citations or []
        assert cited.type == "web_search_result_location" and cited.url == PY[1]
        assert message.usage.server_tool_use is not None
        assert message.usage.server_tool_use.web_search_requests == 1


async def test_a_fetch_of_a_url_in_the_question_returns_the_page(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    url = "https://example.com/post"
    question: list[MessageParam] = [{"role": "user", "content": f"Summarise {url}"}]
    fake.enqueue(
        Reply(tool_steps=[WebFetch(url, title="A post", text="Body text.")], text="A summary."),
        Reply(tool_steps=[WebFetch("https://elsewhere.org/")], text="Could not."),
    )
    tools: Any = [FETCH_TOOL]
    message = await client.messages.create(
        model=MODEL, max_tokens=256, messages=question, tools=tools
    )
    use, result, _ = message.content
    assert use.type == "server_tool_use" and use.input == {"url": url}
    assert result.type == "web_fetch_tool_result"
    assert result.content.type == "web_fetch_result"
    assert result.content.url == url
    assert result.content.content.title == "A post"
    assert result.content.content.source.data == "Body text."
    assert result.content.retrieved_at
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_fetch_requests == 1

    refused = await client.messages.create(
        model=MODEL, max_tokens=256, messages=question, tools=tools
    )
    error = refused.content[1]
    assert error.type == "web_fetch_tool_result"
    assert error.content.type == "web_fetch_tool_result_error"
    assert error.content.error_code == "url_not_in_prior_context"
    assert refused.usage.server_tool_use is not None
    assert refused.usage.server_tool_use.web_fetch_requests == 0


async def test_uses_beyond_max_uses_and_scripted_errors_are_error_results(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    steps = [
        WebSearch("one", results=[PY]),
        WebSearch("two", error="unavailable"),
        WebSearch("three", results=[NEWS]),
    ]
    fake.enqueue(Reply(tool_steps=steps, text="Done.", cited=[PY[1], NEWS[1]]))
    tools: Any = [{**SEARCH_TOOL, "max_uses": 1}]
    message = await client.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=tools)
    results = [b for b in message.content if b.type == "web_search_tool_result"]
    assert isinstance(results[0].content, list)
    codes = [getattr(r.content, "error_code", None) for r in results[1:]]
    assert codes == ["unavailable", "max_uses_exceeded"]
    text = message.content[-1]
    assert text.type == "text"
    assert [c.url for c in text.citations or []] == [PY[1]]  # an errored search cites nothing
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ([{"type": "web_search_20990101", "name": "web_search"}], "Input tag 'web_search_2099"),
        ([{"type": "web_fetch_20250910", "name": "fetch"}], "tools.0.name: Input should be"),
        ([{**SEARCH_TOOL, "max_uses": 0}], "tools.0.max_uses"),
        ([SEARCH_TOOL, SEARCH_TOOL], "Tool names must be unique"),
        ([{"name": "lookup"}], "tools.0.input_schema: Field required"),
        ("web_search", "tools: Input should be a valid list"),
    ],
)
async def test_invalid_tools_are_a_400_on_both_endpoints(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic, tools: Any, message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as created:
        await client.messages.create(model=MODEL, max_tokens=16, messages=HELLO, tools=tools)
    with pytest.raises(anthropic.BadRequestError) as counted:
        await client.messages.count_tokens(model=MODEL, messages=HELLO, tools=tools)
    assert message in created.value.message
    assert message in counted.value.message
    assert fake.message_requests == []


async def test_known_tool_versions_and_custom_tools_are_accepted(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    tools: Any = [
        {"type": "web_search_20260318", "name": "web_search", "max_uses": 3},
        {"type": "web_fetch_20260309", "name": "web_fetch", "use_cache": False},
        {"name": "lookup", "input_schema": {"type": "object"}},
    ]
    fake.enqueue(search_reply())
    message = await client.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=tools)
    assert message.content[0].type == "server_tool_use"
    assert fake.message_requests[0].body["tools"] == tools


async def test_a_step_whose_tool_was_not_offered_is_a_script_error(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(search_reply())
    with pytest.raises(anthropic.BadRequestError, match=r"fake script: .* web_search"):
        await client.messages.create(model=MODEL, max_tokens=256, messages=HELLO)
    tools: Any = [SEARCH_TOOL]
    message = await client.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=tools)
    assert message.content[0].type == "server_tool_use"  # the reply was kept


def test_a_reply_can_cite_only_its_own_search_results() -> None:
    with pytest.raises(ValueError, match="cited URLs"):
        Reply(tool_steps=[WebSearch("q", results=[PY])], cited=[NEWS[1]])
    with pytest.raises(ValueError, match="unknown error code"):
        Reply(tool_steps=[WebFetch("https://a.example", error="gone")])


async def test_a_paused_turn_ends_with_its_calls_and_continues_when_sent_back(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    paused = Reply(tool_steps=[WebSearch("q", results=[PY])], text="", stop_reason="pause_turn")
    fake.enqueue(paused, Reply(text="Finished."))
    tools: Any = [SEARCH_TOOL]
    first = await client.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=tools)
    assert first.stop_reason == "pause_turn"
    assert [b.type for b in first.content] == ["server_tool_use", "web_search_tool_result"]
    unpaired: list[MessageParam] = [*HELLO, {"role": "assistant", "content": first.content[:1]}]
    with pytest.raises(anthropic.BadRequestError, match="without a corresponding"):
        await client.messages.create(model=MODEL, max_tokens=256, messages=unpaired, tools=tools)
    resumed: list[MessageParam] = [*HELLO, {"role": "assistant", "content": first.content}]
    second = await client.messages.create(
        model=MODEL, max_tokens=256, messages=resumed, tools=tools
    )
    assert second.stop_reason == "end_turn"
    sent = fake.message_requests[-1].body["messages"][-1]["content"]
    assert [b["type"] for b in sent] == ["server_tool_use", "web_search_tool_result"]


async def test_thinking_comes_before_the_tool_calls(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.enqueue(search_reply(thinking_tokens=20, thinking_text=THOUGHT))
    events = await raw_events(client, model=SONNET_55, tools=[SEARCH_TOOL])
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "server_tool_use", "web_search_tool_result", "text"]
