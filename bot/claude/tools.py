"""Claude's server tools, web search and web fetch: what a request offers, and what the stream
says of them while Claude uses them.

Facts relied on (API version 2026-10-21, anthropic 2.15; addresses in
tests/fakes/anthropic_tools.py, whose fake follows the same facts):

* A server tool is offered in the request's `tools` and run by Anthropic during the request;
  the caller returns no tool_result. Versions today: `web_search_20250305` (basic),
  `web_search_20260209` (dynamic filtering), `web_search_20260318` (and response inclusion
  control); `web_fetch_20250910` (basic), `web_fetch_20260209`, `web_fetch_20260309`,
  `web_fetch_20260318`. We offer the basic versions: the dynamic-filtering ones have Claude
  write and run code over the results (code-execution blocks in the answer, its own billing,
  not eligible for zero data retention, and only the basic ones run on every cloud platform).
  Both are GA in SDK 2.15 (in `ToolUnionParam`, no `anthropic-beta` value): no beta header.
* `max_uses` caps a tool's uses per request; a use beyond it gets a result block whose
  content is an error (`web_search_tool_result_error` / `web_fetch_tool_result_error` with
  `error_code: "max_uses_exceeded"`) and the answer goes on (errors unbilled: UNVERIFIED).
* Streaming: a `server_tool_use` block starts with `input: {}` and its input arrives as
  `input_json_delta` pieces (the SDK parses them; the block's stop event carries the whole
  input); its result block (`web_search_tool_result`: a list of `web_search_result` {title,
  url, encrypted_content, page_age}; `web_fetch_tool_result`: a `web_fetch_result` {url,
  content: a document with a title, retrieved_at}) then arrives whole in its
  `content_block_start`. A text block that cites starts with `citations: []` and gets
  `citations_delta` events (`web_search_result_location`: url, title, cited_text,
  encrypted_index) before its text (that order is seen only in third-party captures). Fetched
  pages are cited only when the fetch tool enables `citations` (off by default, SDK
  docstring), so a fetched page counts as a source when it is fetched.
* `usage.server_tool_use` counts `web_search_requests` and `web_fetch_requests`.
* A long server-side tool loop may end a response with `stop_reason: "pause_turn"`: sending
  the paused content back as the last assistant message (same tools) lets Claude go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from anthropic.lib.streaming import ParsedMessageStreamEvent
from anthropic.types import ToolUnionParam, WebFetchTool20250910Param, WebSearchTool20250305Param

from bot.claude.thinking import ThinkingPlan
from bot.claude.types import Source

TOOL_NAMES = ("web_search", "web_fetch")
WEB_SEARCH_TYPE: Final = "web_search_20250305"
WEB_FETCH_TYPE: Final = "web_fetch_20250910"
# Uses per request: enough for a question that needs a few searches and a few pages, while
# bounding what one answer can spend (a search costs money, a fetched page input tokens).
MAX_USES = {"web_search": 5, "web_fetch": 5}
# A paused turn is sent back at most this many times before the answer ends as it is.
MAX_CONTINUATIONS = 3
# Seconds of silence allowed while a server tool is at work (the stream sends nothing between
# a tool call and its result, and a slow page takes a while), if the stall deadline is shorter.
TOOL_STALL = 90.0


def tool_definitions(names: Sequence[str]) -> list[ToolUnionParam]:
    """The `tools` of a request offering these server tools (ValueError for an unknown one)."""
    tools: list[ToolUnionParam] = []
    for name in dict.fromkeys(names):
        if name == "web_search":
            search: WebSearchTool20250305Param = {"type": WEB_SEARCH_TYPE, "name": "web_search"}
            search["max_uses"] = MAX_USES[name]
            tools.append(search)
        elif name == "web_fetch":
            fetch: WebFetchTool20250910Param = {"type": WEB_FETCH_TYPE, "name": "web_fetch"}
            fetch["max_uses"] = MAX_USES[name]
            tools.append(fetch)
        else:
            raise ValueError(f"unknown tool {name!r}; expected one of {', '.join(TOOL_NAMES)}")
    return tools


def request_options(plan: ThinkingPlan, tools: Sequence[str]) -> dict[str, Any]:
    """What a request sends besides its prompt: thinking, effort and tools (only when set)."""
    options: dict[str, Any] = {}
    if plan.thinking is not None:
        options["thinking"] = plan.thinking
    if plan.output_config is not None:
        options["output_config"] = plan.output_config
    if tools:
        options["tools"] = tool_definitions(tools)
    return options


class ToolWatch:
    """Follows the content blocks of one answer: what Claude is doing with its tools right now
    (`activity`), the pages it used (`sources`, in order of first use, each once) and the tool
    errors Anthropic reported (`errors`, e.g. "web_search: max_uses_exceeded")."""

    def __init__(self) -> None:
        self.activity: str | None = None
        self.sources: list[Source] = []
        self.errors: list[str] = []

    def see(self, event: ParsedMessageStreamEvent[Any]) -> bool:
        """Take in a content block event; True when `activity` changed."""
        before = self.activity
        if event.type == "content_block_start":
            block = event.content_block
            if block.type == "server_tool_use":
                self.activity = _starting(block.name)
            elif block.type == "web_search_tool_result":
                # Results alone are no source (a search returns ~10, most unused): only what
                # the answer cites is.
                if not isinstance(block.content, list):
                    self.errors.append(f"web_search: {block.content.error_code}")
            elif block.type == "web_fetch_tool_result":
                if block.content.type == "web_fetch_result":
                    self._source(block.content.content.title, block.content.url)
                else:
                    self.errors.append(f"web_fetch: {block.content.error_code}")
        elif event.type == "content_block_stop" and event.content_block.type == "server_tool_use":
            block_stop = event.content_block
            self.activity = _doing(block_stop.name, block_stop.input)
        elif event.type == "content_block_delta" and event.delta.type == "citations_delta":
            cited = event.delta.citation
            if cited.type == "web_search_result_location":
                self._source(cited.title, cited.url)
        return self.activity != before

    def idle(self) -> None:
        """No tool is at work: Claude writes again, or the stream ended."""
        self.activity = None

    def _source(self, title: str | None, url: str) -> None:
        if url and all(s.url != url for s in self.sources):
            self.sources.append(Source(title=(title or "").strip() or _host(url), url=url))


def _starting(name: str) -> str:
    if name == "web_search":
        return "searching the web"
    if name == "web_fetch":
        return "reading a web page"
    return f"using {name.replace('_', ' ')}"


def _doing(name: str, tool_input: dict[str, object]) -> str:
    query, url = tool_input.get("query"), tool_input.get("url")
    if name == "web_search" and isinstance(query, str) and query:
        shown = query if len(query) <= 80 else query[:79].rstrip() + "…"
        return f'searching the web for "{shown}"'
    if name == "web_fetch" and isinstance(url, str) and url:
        return f"reading {_host(url)}"
    return _starting(name)


def _host(url: str) -> str:
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")
