"""What a streaming turn has shown and used so far, saved as it goes (for crash recovery).

`shown` is the surface's own record of where the answer is visible (Slack: the thread and
the messages' ts); the engine keeps it without reading it, and hands it back to the
surface's closer if the turn's process dies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bot.claude import Finished, Usage


@dataclass
class Progress:
    surface: str
    user: str | None
    claim: str | None
    shown: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    request_id: str | None = None
    # input, output (a lower bound until the stream ends), cache write 5m / 1h, cache read
    usage: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])

    def update(self, finished: Finished) -> None:
        u = finished.usage
        self.model = finished.model
        self.request_id = finished.request_id
        self.usage = [
            u.input_tokens,
            u.output_tokens,
            u.cache_write_5m,
            u.cache_write_1h,
            u.cache_read,
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        progress = cls(**{"surface": "slack", "user": None, "claim": None, **known})
        if "event" in data and progress.claim is None:  # saved by a version before the engine
            progress.claim = data["event"]
        if "message_ts" in data and not progress.shown:
            progress.shown = {"thread_ts": data.get("thread"), "message_ts": data["message_ts"]}
        return progress

    def finished(self) -> Finished:
        i, o, w5, w1, r = (list(self.usage) + [0] * 5)[:5]
        usage = Usage(
            input_tokens=i, output_tokens=o, cache_write_5m=w5, cache_write_1h=w1, cache_read=r
        )
        return Finished(usage=usage, model=self.model, request_id=self.request_id, cancelled=True)
