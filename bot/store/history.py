"""What the store keeps of Slack beyond the bot's own turns: thread messages read as context,
and files uploaded to Anthropic. A mixin of `Store`; each method is one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.files_table import ThreadRead, UploadedFile
from bot.store.models import Outcome, SlackEvent, Turn, utcnow


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

    async def read_mark(self, team_id: str, channel_id: str, thread_ts: str) -> str | None:
        """How far the thread has been read from Slack (a message ts), if at all."""
        async with self._sessions() as session:
            row = await session.get(ThreadRead, (team_id, channel_id, thread_ts))
        return row.read_to if row else None

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
        self,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        messages: Sequence[ThreadMessage],
        *,
        read_to: str | None,
    ) -> int:
        """Store thread messages as context turns and move the thread's read mark to
        `read_to`, in one transaction; the number of messages added.

        Skipped: messages the store has (two reads at once), and messages that are questions
        being answered (claimed, their own turn not written yet): never stored twice.
        """
        where = (
            Turn.team_id == team_id,
            Turn.channel_id == channel_id,
            Turn.thread_ts == thread_ts,
        )
        stamps = [m.ts for m in messages]
        claims = {message_claim(team_id, channel_id, ts): ts for ts in stamps}
        async with self._sessions() as session, session.begin():
            known = set(
                (await session.scalars(select(Turn.ts).where(*where, Turn.ts.in_(stamps)))).all()
            )
            asked = (
                await session.scalars(
                    select(SlackEvent.event_id).where(SlackEvent.event_id.in_(list(claims)))
                )
            ).all()
            known.update(claims[key] for key in asked)
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
            if read_to is not None:
                await _move_mark(session, team_id, channel_id, thread_ts, read_to)
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
            if row.expires_at is None or aware(row.expires_at) > now
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


async def _move_mark(
    session: AsyncSession, team_id: str, channel_id: str, thread_ts: str, read_to: str
) -> None:
    # An upsert both SQLite and PostgreSQL run: two reads at once both move the mark, and it
    # only ever moves forward (Slack timestamps of one era compare as text).
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ThreadRead).values(
        team_id=team_id, channel_id=channel_id, thread_ts=thread_ts, read_to=read_to
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["team_id", "channel_id", "thread_ts"],
            set_={"read_to": statement.excluded.read_to},
            where=ThreadRead.read_to < statement.excluded.read_to,
        )
    )


def message_claim(team_id: str, channel_id: str, ts: str) -> str:
    """The claim of a Slack message being answered (whichever event brought it)."""
    return f"message:{team_id}:{channel_id}:{ts}"


def ts_order(ts: str) -> tuple[int, ...]:
    """Slack timestamps in order (as numbers: as text, "9.1" would sort after "10.1")."""
    try:
        return tuple(int(part) for part in ts.split("."))
    except ValueError:
        return (0,)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
