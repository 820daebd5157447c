"""The vocabulary of a Claude request, free of the SDK: prompts, usage, the end of a stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.errors import ClaudeError

Role = Literal["user", "assistant"]


AttachmentKind = Literal["image", "document"]


@dataclass(frozen=True)
class Attachment:
    """A file sent with a question: an image or a PDF (text files travel as text).

    `data` holds the bytes while the question is new; `file_id` is its id in Anthropic's
    Files API once uploaded, which is all a later turn needs. A stored attachment with
    neither (the Files API was unavailable) is described to Claude in words instead.
    """

    kind: AttachmentKind
    name: str
    media_type: str
    data: bytes = b""
    file_id: str | None = None
    source_id: str = ""  # the surface's own id of the file (Slack's F…), for the mapping
    expires_at: str | None = None  # when the Files API forgets it (ISO 8601, UTC)
    pages: int = 0  # a PDF's pages (its tokens grow with them)

    def stored(self) -> dict[str, str | int | None]:
        """What a turn keeps of it (never the bytes)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "media_type": self.media_type,
            "file_id": self.file_id,
            "source_id": self.source_id,
            "expires_at": self.expires_at,
            "pages": self.pages,
        }


@dataclass(frozen=True)
class Prompt:
    """One message of the conversation sent to Claude."""

    role: Role
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass
class Usage:
    """Tokens by kind, as Anthropic reports them (`input_tokens` excludes cache tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0
    thinking_tokens: int = 0  # part of output_tokens, billed as output
    inference_geo: str | None = None  # where it ran ("us" costs more)
    speed: str | None = None  # "standard" | "fast"
    web_search_requests: int = 0
    web_fetch_requests: int = 0


@dataclass(frozen=True)
class Source:
    """A web page an answer used: one it cites from a web search, or one it fetched."""

    title: str
    url: str


@dataclass
class Finished:
    """The end of every stream, successful or not."""

    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    stop_detail: str | None = None  # a refusal's category, when Anthropic names one
    model: str | None = None
    request_id: str | None = None
    ttft_ms: int | None = None
    latency_ms: int = 0
    error: ClaudeError | None = None
    cancelled: bool = False
    # Web pages the answer used, in order of first use, each once (filled as it streams).
    sources: list[Source] = field(default_factory=list)
    tool_errors: list[str] = field(default_factory=list)  # e.g. "web_search: max_uses_exceeded"


@dataclass(frozen=True)
class Deadlines:
    """Seconds: for the whole request, for the first text, and of silence between events."""

    total: float = 300.0
    first_token: float = 60.0
    stall: float = 30.0
