"""Claude's server tools in the fake Anthropic API: web search and web fetch.

Facts relied on (key as in ../shared/PLATFORM.md; ``[pkg:…]`` = a file of the installed
anthropic 2.15 under site-packages, ground truth for shapes):

* Versions. Web search: ``web_search_20250305`` (basic), ``web_search_20260209`` (adds dynamic
  filtering: Claude runs code over the results; Claude 4.6 and later), ``web_search_20260318``
  (adds response inclusion control) [doc:https://platform.claude.com/docs/en/build-with-claude/tool-use/web-search-tool].
  Web fetch: ``web_fetch_20250910`` (basic), ``web_fetch_20260209`` (dynamic filtering),
  ``web_fetch_20260309`` (and cache bypass, ``use_cache``), ``web_fetch_20260318`` (and response
  inclusion) [doc:https://platform.claude.com/docs/en/agents-and-tools/tool-use/web-fetch-tool].
  All are in the SDK's ``ToolUnionParam`` with ``name`` fixed to ``web_search`` /
  ``web_fetch`` [pkg:anthropic/types/tool_union_param.py, web_*_tool_*_param.py].
* Web fetch needs no beta header any more: the 2025 pages said ``anthropic-beta:
  web-fetch-2025-09-10`` [doc:https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-fetch-tool];
  today's page names none and SDK 2.15 has the fetch tool in the GA ``messages`` types, its
  ``AnthropicBetaParam`` listing no web-fetch beta [pkg:anthropic/types/anthropic_beta_param.py].
* ``max_uses`` caps a tool's uses in one request; a use beyond it gets a result whose content
  is an error with ``error_code: "max_uses_exceeded"`` (no default limit)
  [doc:https://docs.anthropic.com/ja/docs/agents-and-tools/tool-use/web-fetch-tool]. Error
  codes: search ``invalid_tool_input, unavailable, max_uses_exceeded, too_many_requests,
  query_too_long, request_too_large`` [pkg:anthropic/types/web_search_tool_result_error_code.py];
  fetch ``invalid_tool_input, url_too_long, url_not_allowed, url_not_in_prior_context,
  url_not_accessible, unsupported_content_type, too_many_requests, max_uses_exceeded,
  unavailable, content_too_large`` [pkg:anthropic/types/web_fetch_tool_result_error_code.py].
  Claude may fetch only URLs the user gave or earlier search/fetch results held (same doc).
* Blocks: ``server_tool_use`` {id ``srvtoolu_…``, name, input, caller}; its result follows at
  once in the same turn and the caller sends no tool_result; a long server loop may end with
  ``stop_reason: "pause_turn"``, and the paused content sent back as-is continues it
  [doc:https://platform.claude.com/docs/en/agents-and-tools/tool-use/server-tools]. An
  assistant message holding a ``server_tool_use`` without its result is a 400 ("`web_search`
  tool use with id `srvtoolu_…` was found without a corresponding `web_search_tool_result`
  block") [gh:anthropics/anthropic-sdk-python issue 1339]. Shapes
  [pkg:anthropic/types/server_tool_use_block.py, web_search_tool_result_block.py,
  web_search_result_block.py (title, url, encrypted_content, page_age),
  web_fetch_tool_result_block.py, web_fetch_block.py (url, content: a document, retrieved_at),
  web_*_tool_result_error*.py, citations_web_search_result_location.py (url, title,
  cited_text, encrypted_index), server_tool_usage.py, stop_reason.py].
* Streaming: the ``server_tool_use`` block starts with ``input: {}`` and its input comes as
  ``input_json_delta`` pieces; the result block comes whole in its ``content_block_start``; the
  SDK accumulates both and ``citations_delta`` [pkg:anthropic/lib/streaming/_messages.py].
  A citing text block starts as ``{"citations": [], "type": "text", "text": ""}`` and gets its
  ``citations_delta`` events before its text deltas; blocks also carry ``caller: {"type":
  "direct"}`` (third-party stream captures only, e.g. the ``"content_block":{"citations":[]``
  fixtures found in several public repositories: weaker, UNVERIFIED).
* Usage: ``usage.server_tool_use.{web_search_requests, web_fetch_requests}``; PLATFORM.md 0a.4.
  The fake counts successful uses only (errors not billed: UNVERIFIED).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

SERVER_TOOL_TYPES: dict[str, tuple[str, ...]] = {
    "web_search": ("web_search_20250305", "web_search_20260209", "web_search_20260318"),
    "web_fetch": (
        "web_fetch_20250910",
        "web_fetch_20260209",
        "web_fetch_20260309",
        "web_fetch_20260318",
    ),
}
# The SDK's other tool types (ToolUnionParam): accepted, never used by a scripted reply.
OTHER_TOOL_TYPES = (
    "custom",
    "bash_20250124",
    "browser_toolset_20260801",
    "code_execution_20250522",
    "code_execution_20250825",
    "code_execution_20260120",
    "code_execution_20260521",
    "computer_toolset_20260801",
    "memory_20250818",
    "text_editor_20250124",
    "text_editor_20250429",
    "text_editor_20250728",
    "tool_search_tool_bm25_20251119",
    "tool_search_tool_regex_20251119",
)
SEARCH_ERRORS = (
    "invalid_tool_input",
    "unavailable",
    "max_uses_exceeded",
    "too_many_requests",
    "query_too_long",
    "request_too_large",
)
FETCH_ERRORS = (
    "invalid_tool_input",
    "url_too_long",
    "url_not_allowed",
    "url_not_in_prior_context",
    "url_not_accessible",
    "unsupported_content_type",
    "too_many_requests",
    "max_uses_exceeded",
    "unavailable",
    "content_too_large",
)
DIRECT = {"type": "direct"}


@dataclass(frozen=True)
class WebSearch:
    """A scripted search: its query and results (title, url), or an error code instead."""

    query: str
    results: Sequence[tuple[str, str]] = ()
    error: str | None = None  # e.g. "max_uses_exceeded", "unavailable" (SEARCH_ERRORS)
    delay: float = 0.0  # seconds the search takes (between the call and its result)


@dataclass(frozen=True)
class WebFetch:
    """A scripted fetch of `url`: the page's title and text, or an error code instead."""

    url: str
    title: str | None = None
    text: str = "The text of the fetched page."
    error: str | None = None  # e.g. "url_not_accessible" (FETCH_ERRORS)
    delay: float = 0.0


ToolStep = WebSearch | WebFetch


@dataclass(frozen=True)
class ToolCall:
    """One server tool use as sent: the whole `server_tool_use` block, its input as streamed
    (partial JSON pieces), and its result block."""

    use: dict[str, Any]
    input_pieces: tuple[str, ...]
    result: dict[str, Any]
    delay: float


@dataclass(frozen=True)
class ToolPlan:
    """A reply's tool calls as this request gets them, what they count, the text's citations."""

    calls: tuple[ToolCall, ...] = ()
    searches: int = 0
    fetches: int = 0
    citations: tuple[dict[str, Any], ...] = ()


NO_TOOLS = ToolPlan()


def check_script(steps: Sequence[ToolStep], cited: Sequence[str]) -> str | None:
    """Why a Reply's tool script is impossible (a test bug), else None."""
    found = {url for s in steps if isinstance(s, WebSearch) for _, url in s.results}
    for step in steps:
        codes = SEARCH_ERRORS if isinstance(step, WebSearch) else FETCH_ERRORS
        if step.error is not None and step.error not in codes:
            return f"unknown error code {step.error!r}; expected one of {', '.join(codes)}"
    missing = [url for url in cited if url not in found]
    if missing:
        return f"cited URLs must be results of the reply's searches: {missing}"
    return None


def check_tools(tools: object) -> str | None:
    """The 400 message for an invalid `tools` list, else None."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    names: list[str] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            return f"tools.{i}: Input should be a valid dictionary"
        kind = tool.get("type", "custom")
        server = next((n for n, kinds in SERVER_TOOL_TYPES.items() if kind in kinds), None)
        if server is None and kind not in OTHER_TOOL_TYPES:
            tags = ", ".join(repr(t) for t in (*OTHER_TOOL_TYPES, *_all_server_types()))
            return (
                f"tools.{i}: Input tag {kind!r} found using 'type' does not match any of the "
                f"expected tags: {tags}"
            )
        if server is not None and tool.get("name") != server:
            return f"tools.{i}.name: Input should be {server!r}"
        if kind == "custom" and not isinstance(tool.get("input_schema"), dict):
            return f"tools.{i}.input_schema: Field required"
        if not isinstance(tool.get("name"), str):
            return f"tools.{i}.name: Field required"
        uses = tool.get("max_uses")
        if uses is not None and (not isinstance(uses, int) or isinstance(uses, bool) or uses < 1):
            return f"tools.{i}.max_uses: Input should be greater than or equal to 1"
        names.append(tool["name"])
    if len(set(names)) != len(names):
        return "tools: Tool names must be unique."
    return None


def check_tool_pairs(messages: list[Any]) -> str | None:
    """The 400 message for an assistant `server_tool_use` block without its result block."""
    for m, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        answered = {(b.get("type"), b.get("tool_use_id")) for b in blocks}
        for block in blocks:
            if block.get("type") != "server_tool_use" or block.get("name") not in SERVER_TOOL_TYPES:
                continue
            name, use_id = block["name"], block.get("id")
            if (f"{name}_tool_result", use_id) not in answered:
                return (
                    f"messages.{m}: `{name}` tool use with id `{use_id}` was found without a "
                    f"corresponding `{name}_tool_result` block"
                )
    return None


def plan_tools(
    steps: Sequence[ToolStep], cited: Sequence[str], body: dict[str, Any], now: str
) -> ToolPlan | str:
    """The tool calls a scripted reply makes for this request (module docstring), or, when the
    script uses a tool the request does not offer, why the fake cannot answer (a test bug)."""
    if not steps:
        return NO_TOOLS
    offered = {
        t["name"]: t
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("name") in SERVER_TOOL_TYPES
    }
    used = {"web_search": 0, "web_fetch": 0}
    context = json.dumps(body.get("messages"))  # what the conversation holds, URLs included
    known: dict[str, str] = {}  # url -> title of this reply's successful results
    calls: list[ToolCall] = []
    for step in steps:
        name = "web_search" if isinstance(step, WebSearch) else "web_fetch"
        if name not in offered:
            return (
                f"fake script: the scripted reply uses {name}, but the request offers no "
                f"{name} tool (tools: {body.get('tools')!r})"
            )
        error = step.error
        limit = offered[name].get("max_uses")
        if error is None and limit is not None and used[name] >= limit:
            error = "max_uses_exceeded"
        unseen = isinstance(step, WebFetch) and step.url not in context and step.url not in known
        if error is None and unseen:
            error = "url_not_in_prior_context"
        if error is None:
            used[name] += 1
        calls.append(_call(step, error, now, known))
    citations = tuple(_citation(url, known[url]) for url in dict.fromkeys(cited) if url in known)
    return ToolPlan(tuple(calls), used["web_search"], used["web_fetch"], citations)


async def send_call(
    send: Callable[[dict[str, Any]], Awaitable[None]], index: int, call: ToolCall
) -> None:
    """Stream one tool call as blocks `index` (the use) and `index + 1` (its result)."""
    start = {**call.use, "input": {}}
    await send({"type": "content_block_start", "index": index, "content_block": start})
    for piece in call.input_pieces:
        delta = {"type": "input_json_delta", "partial_json": piece}
        await send({"type": "content_block_delta", "index": index, "delta": delta})
    await send({"type": "content_block_stop", "index": index})
    if call.delay:
        await asyncio.sleep(call.delay)
    await send({"type": "content_block_start", "index": index + 1, "content_block": call.result})
    await send({"type": "content_block_stop", "index": index + 1})


def text_block_start(citations: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A text block's `content_block_start` block: a citing one starts with no citations."""
    block: dict[str, Any] = {"type": "text", "text": ""}
    return {"citations": [], **block} if citations else block


def _call(step: ToolStep, error: str | None, now: str, known: dict[str, str]) -> ToolCall:
    use_id = f"srvtoolu_{secrets.token_hex(12)}"
    if isinstance(step, WebSearch):
        name, tool_input = "web_search", {"query": step.query}
        content: Any = [
            {
                "type": "web_search_result",
                "title": title,
                "url": url,
                "encrypted_content": _opaque(),
                "page_age": None,
            }
            for title, url in step.results
        ]
        if error is None:
            known.update({url: title for title, url in step.results})
    else:
        name, tool_input = "web_fetch", {"url": step.url}
        document = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": step.text},
            "title": step.title,
            "citations": None,
        }
        content = {"type": "web_fetch_result", "url": step.url, "content": document}
        content["retrieved_at"] = now
        if error is None:
            known.setdefault(step.url, step.title or step.url)
    if error is not None:
        content = {"type": f"{name}_tool_result_error", "error_code": error}
    use = {"type": "server_tool_use", "id": use_id, "name": name, "input": tool_input}
    result = {"type": f"{name}_tool_result", "tool_use_id": use_id, "content": content}
    raw = json.dumps(tool_input)
    cut = raw.index(":") + 2  # two pieces, as the API streams a key and then its value
    return ToolCall(
        {**use, "caller": DIRECT},
        (raw[:cut], raw[cut:]),
        {**result, "caller": DIRECT},
        step.delay,
    )


def _citation(url: str, title: str) -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "cited_text": title,
        "url": url,
        "title": title,
        "encrypted_index": _opaque(),
    }


def _opaque() -> str:
    return base64.b64encode(secrets.token_bytes(24)).decode()


def _all_server_types() -> list[str]:
    return [kind for kinds in SERVER_TOOL_TYPES.values() for kind in kinds]
