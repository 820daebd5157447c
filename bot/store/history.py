"""What the store keeps of Slack beyond the bot's own turns: thread messages read as context,
and files uploaded to Anthropic. A mixin of `Store`; each method is one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.files_table import UploadedFile
from bot.store.models import Outcome, Turn, utcnow


@dataclass(frozen=True)
class ThreadMessage:
    """A person's (or another bot's) message in a Slack thread, read as context."""

    ts: str
    user_id: str | None
    author_name: str
    text: str
    tokens: int


@dataclass(frozen=True)
class Upload:
    source_id: str
    file_id: str
    name: str
    media_type: str
    expires_at: datetime | None


class HistoryStore:
    _sessions: async_sessionmaker[AsyncSession]

    async def thread_latest_ts(self, team_id: str, channel_id: str, thread_ts: str) -> str | None:
        """The newest Slack message of the thread the store holds (a question, a reply, or
        a message read as context): a later read starts after it."""
        async with self._sessions() as session:
            latest = await session.scalar(
                select(func.max(Turn.ts)).where(
                    Turn.team_id == team_id,
                    Turn.channel_id == channel_id,
                    Turn.thread_ts == thread_ts,
                )
            )
        return str(latest) if latest else None

    async def has_answered(self, team_id: str, channel_id: str, thread_ts: str) -> bool:
        """Whether the bot has replied in this thread (follow-ups need no mention there)."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(Turn.id)
                .where(
                    Turn.team_id == team_id,
                    Turn.channel_id == channel_id,
                    Turn.thread_ts == thread_ts,
                    Turn.role == "assistant",
                )
                .limit(1)
            )
        return found is not None

    async def add_context(
        self, team_id: str, channel_id: str, thread_ts: str, messages: Sequence[ThreadMessage]
    ) -> int:
        """Store thread messages as context turns, skipping any the store has already (two
        mentions reading the same history at once); the number added."""
        if not messages:
            return 0
        where = (
            Turn.team_id == team_id,
            Turn.channel_id == channel_id,
            Turn.thread_ts == thread_ts,
        )
        async with self._sessions() as session, session.begin():
            known = set(
                (
                    await session.scalars(
                        select(Turn.ts).where(*where, Turn.ts.in_([m.ts for m in messages]))
                    )
                ).all()
            )
            fresh = [m for m in messages if m.ts not in known]
            session.add_all(
                Turn(
                    team_id=team_id,
                    channel_id=channel_id,
                    thread_ts=thread_ts,
                    ts=m.ts,
                    role="user",
                    user_id=m.user_id,
                    author_name=m.author_name,
                    text=m.text,
                    tokens=m.tokens,
                    outcome=Outcome.COMPLETE,
                )
                for m in fresh
            )
        return len(fresh)

    async def uploads(self, team_id: str, source_ids: Sequence[str]) -> dict[str, Upload]:
        """Files uploaded before and not yet expired, by the surface's file id."""
        if not source_ids:
            return {}
        now = utcnow()
        query = select(UploadedFile).where(
            UploadedFile.team_id == team_id, UploadedFile.source_id.in_(list(source_ids))
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return {
            row.source_id: Upload(
                row.source_id, row.file_id, row.name, row.media_type, row.expires_at
            )
            for row in rows
            if row.expires_at is None or _aware(row.expires_at) > now
        }

    async def remember_upload(self, team_id: str, upload: Upload) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.scalar(
                select(UploadedFile).where(
                    UploadedFile.team_id == team_id, UploadedFile.source_id == upload.source_id
                )
            )
            if row is None:
                row = UploadedFile(team_id=team_id, source_id=upload.source_id)
                session.add(row)
            row.file_id, row.name, row.media_type = upload.file_id, upload.name, upload.media_type
            row.expires_at = upload.expires_at


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
