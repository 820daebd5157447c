"""A question's files, uploaded once to Anthropic's Files API and reused after that.

A Slack file shared again (or asked about again) keeps its id, so its upload is found in the
store and not repeated; a stored turn keeps the upload's id for later turns of the same
conversation. Where the Files API is not available, the file goes inline this once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.claude import Attachment, Claude, Prompt
from bot.store import Store, Upload


async def upload_files(
    store: Store, claude: Claude, team_id: str, files: tuple[Attachment, ...]
) -> tuple[Attachment, ...]:
    if not files:
        return ()
    known = await store.uploads(team_id, [f.source_id for f in files if f.source_id])
    ready: list[Attachment] = []
    for file in files:
        found = known.get(file.source_id)
        if found is not None:
            ready.append(
                replace(file, file_id=found.file_id, data=b"", expires_at=_iso(found.expires_at))
            )
            continue
        uploaded = await claude.upload(file)
        if uploaded is None:
            ready.append(file)
            continue
        if file.source_id:
            record = Upload(
                file.source_id, uploaded.file_id, file.name, file.media_type, uploaded.expires_at
            )
            await store.remember_upload(team_id, record)
        ready.append(
            replace(file, file_id=uploaded.file_id, data=b"", expires_at=_iso(uploaded.expires_at))
        )
    return tuple(ready)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.isoformat()


def with_files(
    prompts: list[Prompt], sent: tuple[Attachment, ...], ready: tuple[Attachment, ...]
) -> list[Prompt]:
    """The prompts with the question's files (`sent`, the last ones of the last prompt)
    swapped for their uploaded form."""
    if not sent or not prompts:
        return prompts
    last = prompts[-1]
    kept = last.attachments[: len(last.attachments) - len(sent)]
    return [*prompts[:-1], replace(last, attachments=kept + ready)]
