"""Tests of the fake Anthropic server, driven by the real `anthropic.AsyncAnthropic` client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import httpx2
import pytest
from anthropic.types import Message, MessageParam

from tests.fakes.anthropic import FakeAnthropic, Reply

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
