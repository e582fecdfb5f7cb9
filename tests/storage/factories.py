"""Builders of storage records for tests: channels and messages with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storage.records import Batch, Channel, ForwardHeader, Media, MessageRecord

T0 = datetime(2025, 12, 17, 10, 0, tzinfo=UTC)

MFA = Channel(1001, "MFARussia", "Russian MFA 🇷🇺", 111, watched=True)
EMBASSY = Channel(2002, "rusembc", "Russia in Canada", 222, watched=True)
EMBASSY_UK = Channel(3003, "RussianEmbassyUK", "Russian Embassy UK", 333, watched=True)

STATEMENT = (
    "Statement by Foreign Minister Sergey Lavrov on the new sanctions against Russia "
    "announced by Canada #MFA"
)
STATEMENT_RU = "Заявление МИД России в связи с введением Канадой новых санкций против России #МИД"


def msg(
    channel: Channel, message_id: int, text: str = "", *, minutes: int = 0, **fields: Any
) -> MessageRecord:
    """A message posted `minutes` after T0 in `channel`."""
    return MessageRecord(
        channel_id=channel.id, message_id=message_id, date=T0 + timedelta(minutes=minutes), text=text,
        raw={"_": "Message", "id": message_id, "message": text}, **fields,
    )


def fwd(
    channel: Channel, message_id: int, origin: Channel, origin_id: int, text: str, *,
    minutes: int = 5, origin_minutes: int = 0, with_names: bool = True, **fields: Any,
) -> MessageRecord:
    """A forward in `channel` of `origin`'s message `origin_id`, header as Telegram builds it."""
    header = ForwardHeader(
        from_peer_type="channel", from_peer_id=origin.id, channel_post=origin_id,
        date=T0 + timedelta(minutes=origin_minutes), post_author=fields.pop("origin_author", None),
        origin_username=origin.username if with_names else None,
        origin_title=origin.title if with_names else None,
    )
    return msg(channel, message_id, text, minutes=minutes, forward=header, **fields)


def batch(channel: Channel, *messages: MessageRecord, cursor: int | None = None, **kw: Any) -> Batch:
    """A batch for one channel; cursor defaults to its highest message id."""
    if cursor is None and messages:
        cursor = max(m.message_id for m in messages)
    return Batch(channel=channel, messages=tuple(messages), cursor=cursor, **kw)


PHOTO = Media(kind="photo", extra={"width": 1280, "height": 720})
