"""Claude's server tools through `bot.claude`: the real SDK client against the fake Anthropic
API, a web search or fetch streamed as it happens, sources, tool errors and usage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import pytest

from bot.claude import AnswerStream, Claude, Deadlines, Prompt, Source
from bot.claude.thinking import plan
from bot.claude.tools import MAX_USES, tool_definitions
from tests.fakes.anthropic import FakeAnthropic, Reply, WebFetch, WebSearch

MODEL = "claude-sonnet-4-6"  # no thinking unless asked
PY = ("Python versions", "https://www.python.org/doc/versions/")
NEWS = ("What's new in Python", "https://docs.python.org/3/whatsnew/")
ARTICLE = "https://www.example.com/articles/42"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def claude(fake: FakeAnthropic) -> AsyncIterator[Claude]:
    client = Claude(anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url))
    yield client
    await client.close()


def ask(
    claude: Claude,
    question: str,
    tools: tuple[str, ...],
    model: str = MODEL,
    deadlines: Deadlines | None = None,
) -> AnswerStream:
    return claude.stream(
        model=model,
        system="Be brief.",
        prompts=[Prompt("user", question)],
        plan=plan(model, "default", 512),
        deadlines=deadlines,
        tools=tools,
    )


async def run(answer: AnswerStream) -> tuple[str, list[str | None]]:
    """The answer's text, and `activity` each time the stream woke its reader without text."""
    text, seen = "", []
    async for piece in answer:
        text += piece
        if not piece:
            seen.append(answer.activity)
    return text, seen


async def test_a_search_shows_while_it_runs_then_the_cited_answer_and_its_sources(
    fake: FakeAnthropic, claude: Claude
) -> None:
    search = WebSearch("latest python release", results=[PY, NEWS], delay=0.05)
    fake.enqueue(Reply(tool_steps=[search], text="Python 3.14 is current.", cited=[PY[1]]))
    answer = ask(claude, "Which Python is current?", ("web_search", "web_fetch"))
    text, seen = await run(answer)

    assert text == "Python 3.14 is current."
    assert seen == ["searching the web", 'searching the web for "latest python release"']
    assert answer.activity is None
    done = answer.finished
    assert done.error is None and done.stop_reason == "end_turn"
    assert done.sources == [Source(*PY)]  # cited only: the uncited result is no source
    assert (done.usage.web_search_requests, done.usage.web_fetch_requests) == (1, 0)
    assert done.tool_errors == []
    [request] = fake.message_requests
    assert request.body["tools"] == [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": MAX_USES["web_search"]},
        {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": MAX_USES["web_fetch"]},
    ]


async def test_a_fetched_page_is_a_source_and_shows_its_host(
    fake: FakeAnthropic, claude: Claude
) -> None:
    fetch = WebFetch(ARTICLE, title="The answer is 42", text="Forty-two.")
    fake.enqueue(Reply(tool_steps=[fetch], text="It says 42."))
    answer = ask(claude, f"What does {ARTICLE} say?", ("web_fetch",))
    text, seen = await run(answer)

    assert text == "It says 42."
    assert seen == ["reading a web page", "reading example.com"]
    assert answer.finished.sources == [Source("The answer is 42", ARTICLE)]
    assert answer.finished.usage.web_fetch_requests == 1
    assert [t["name"] for t in fake.message_requests[0].body["tools"]] == ["web_fetch"]


async def test_sources_are_in_order_of_first_use_each_once(
    fake: FakeAnthropic, claude: Claude
) -> None:
    steps = [WebSearch("python", results=[PY, NEWS]), WebFetch(NEWS[1], title="News page")]
    fake.enqueue(Reply(tool_steps=steps, text="Both.", cited=[NEWS[1], PY[1]]))
    answer = ask(claude, "python?", ("web_search", "web_fetch"))
    await run(answer)
    # The fetch (its title) comes before the text that cites both pages.
    assert answer.finished.sources == [Source("News page", NEWS[1]), Source(*PY)]


async def test_a_tool_error_is_reported_and_the_answer_goes_on(
    fake: FakeAnthropic, claude: Claude
) -> None:
    steps = [WebSearch(f"query {i}", results=[PY]) for i in range(MAX_USES["web_search"] + 1)]
    fake.enqueue(Reply(tool_steps=steps, text="Found enough."))
    answer = ask(claude, "search a lot", ("web_search",))
    text, seen = await run(answer)

    assert text == "Found enough."
    done = answer.finished
    assert done.error is None
    assert done.tool_errors == ["web_search: max_uses_exceeded"]
    assert done.usage.web_search_requests == MAX_USES["web_search"]  # errors are not counted
    assert seen[-1] == f'searching the web for "query {MAX_USES["web_search"]}"'
    assert done.sources == []  # nothing cited


async def test_no_tools_no_tools_key(fake: FakeAnthropic, claude: Claude) -> None:
    fake.enqueue(Reply(text="Plain."))
    answer = ask(claude, "hi", ())
    assert await run(answer) == ("Plain.", [])
    assert "tools" not in fake.message_requests[0].body
    assert answer.finished.sources == [] and answer.activity is None


def test_an_unknown_tool_is_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="code_execution"):
        tool_definitions(["web_search", "code_execution"])
    assert [t["name"] for t in tool_definitions(["web_fetch", "web_fetch"])] == ["web_fetch"]


async def test_a_paused_turn_is_continued_and_its_usage_added_up(
    fake: FakeAnthropic, claude: Claude
) -> None:
    paused = Reply(
        tool_steps=[WebSearch("first", results=[PY])],
        text="",
        stop_reason="pause_turn",
        input_tokens=100,
        output_tokens=10,
    )
    rest = Reply(
        tool_steps=[WebSearch("second", results=[NEWS])],
        text="All done.",
        cited=[NEWS[1]],
        input_tokens=150,
        output_tokens=20,
    )
    fake.enqueue(paused, rest)
    answer = ask(claude, "dig deep", ("web_search",))
    text, seen = await run(answer)

    assert text == "All done."
    assert 'searching the web for "first"' in seen and 'searching the web for "second"' in seen
    done = answer.finished
    assert done.error is None and done.stop_reason == "end_turn"
    usage = done.usage
    assert (usage.input_tokens, usage.output_tokens, usage.web_search_requests) == (250, 30, 2)
    first, second = fake.message_requests
    sent_back = second.body["messages"][-1]
    assert sent_back["role"] == "assistant"
    assert [b["type"] for b in sent_back["content"]] == [
        "server_tool_use",
        "web_search_tool_result",
    ]
    assert second.body["messages"][:-1] == first.body["messages"]
    assert second.body["tools"] == first.body["tools"]
    assert done.sources == [Source(*NEWS)]


async def test_a_turn_paused_again_and_again_ends_as_it_is(
    fake: FakeAnthropic, claude: Claude
) -> None:
    def paused(i: int) -> Reply:
        step = WebSearch(f"q{i}", results=[(f"r{i}", f"https://r{i}.example")])
        return Reply(tool_steps=[step], text=f"part {i}. ", stop_reason="pause_turn")

    fake.enqueue(*[paused(i) for i in range(10)])
    answer = ask(claude, "endless", ("web_search",))
    text, _ = await run(answer)
    assert answer.finished.stop_reason == "pause_turn"
    assert len(fake.message_requests) == 4  # the first request and MAX_CONTINUATIONS more
    assert text == "part 0. part 1. part 2. part 3. "
    last = fake.message_requests[-1].body["messages"][-1]["content"]
    assert [b["type"] for b in last].count("server_tool_use") == 3  # all paused content


async def test_thinking_then_a_search_keeps_thinking_out_of_the_text(
    fake: FakeAnthropic, claude: Claude
) -> None:
    reply = Reply(
        tool_steps=[WebSearch("q", results=[PY])],
        text="Answer.",
        cited=[PY[1]],
        thinking_tokens=30,
        thinking_text="SECRET plan",
    )
    fake.enqueue(reply)
    answer = ask(claude, "think and search", ("web_search",), model="claude-sonnet-5-5")
    text, seen = await run(answer)
    assert text == "Answer."
    assert seen == ["searching the web", 'searching the web for "q"']
    assert answer.finished.usage.thinking_tokens == 30
    assert answer.finished.sources == [Source(*PY)]


async def test_a_stream_cut_during_a_search_keeps_what_it_knows(
    fake: FakeAnthropic, claude: Claude
) -> None:
    reply = Reply(tool_steps=[WebSearch("q", results=[PY])], text="never", fault="drop")
    fake.enqueue(reply)
    answer = ask(claude, "q", ("web_search",))
    text, seen = await run(answer)
    assert text == ""
    assert seen and answer.activity is None
    assert answer.finished.error is not None


async def test_a_search_slower_than_the_stall_deadline_is_no_stall(
    fake: FakeAnthropic, claude: Claude
) -> None:
    slow = WebSearch("q", results=[PY], delay=0.6)
    fake.enqueue(
        Reply(tool_steps=[slow], text="Slow but fine."), Reply(chunks=["a", "b"], delay=0.6)
    )
    deadlines = Deadlines(total=10, first_token=5, stall=0.3)
    answer = ask(claude, "q", ("web_search",), deadlines=deadlines)
    assert (await run(answer))[0] == "Slow but fine."
    assert answer.finished.error is None
    silent = ask(claude, "q", ("web_search",), deadlines=deadlines)  # no tool at work: a stall
    await run(silent)
    assert silent.finished.error is not None
    assert "stalled for 0.3 s" in str(silent.finished.error)
