"""A synthetic archive for benchmarks: channels, posts in English and Russian, ~30% forwards.

Deterministic (seeded), generated lazily in per-channel batches like a poller would hand them over.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from storage.records import Batch, Channel, ForwardHeader, MessageRecord

EN = (
    "minister foreign sanctions canada arctic statement embassy russia talks cooperation security "
    "council treaty nuclear energy trade agreement president visit delegation meeting press "
    "conference sovereignty dialogue partnership economic strategic international law crisis "
    "negotiations relations bilateral summit consular visa citizens forum culture education"
).split()
RU = (
    "министр иностранных санкции канада арктика заявление посольство россия переговоры "
    "сотрудничество безопасность совет договор ядерный энергетика торговля соглашение президент "
    "визит делегация встреча пресс конференция суверенитет диалог партнёрство экономический "
    "стратегический международное право кризис отношения двусторонний саммит консульский граждане"
).split()
TAGS = ["#MFA", "#Russia", "#Canada", "#Арктика", "#RussiaAfrica", "#МИД"]

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _text(rng: random.Random) -> str:
    vocab = RU if rng.random() < 0.5 else EN
    words = [rng.choice(vocab) for _ in range(rng.randint(12, 60))]
    words[0] = words[0].capitalize()
    if rng.random() < 0.3:
        words.append(rng.choice(TAGS))
    return " ".join(words) + "."


def batches(
    total: int, *, channels: int = 50, origins: int = 5, forward_share: float = 0.3,
    batch_size: int = 100, seed: int = 7,
) -> Iterator[Batch]:
    """Yield batches adding up to `total` messages; the first `origins` channels are forwarded from."""
    rng = random.Random(seed)
    chans = [Channel(10_000 + i, f"chan{i}", f"Channel {i}", i, watched=True) for i in range(channels)]
    next_id = [1] * channels
    published: list[tuple[int, int, str, datetime]] = []  # (origin id, message id, text, date)
    made = 0
    clock = T0
    while made < total:
        ci = rng.randrange(channels)
        channel = chans[ci]
        records = []
        for _ in range(min(batch_size, total - made)):
            clock += timedelta(seconds=rng.randint(1, 30))
            mid = next_id[ci]
            next_id[ci] += 1
            if published and rng.random() < forward_share and ci >= origins:
                origin, omid, text, odate = rng.choice(published[-5000:])
                header = ForwardHeader(from_peer_type="channel", from_peer_id=origin, channel_post=omid,
                                       date=odate)
                records.append(MessageRecord(channel.id, mid, clock, text, forward=header, views=10))
            else:
                text = _text(rng)
                records.append(MessageRecord(channel.id, mid, clock, text, views=10,
                                             raw={"_": "Message", "id": mid}))
                if ci < origins:
                    published.append((channel.id, mid, text, clock))
            made += 1
        yield Batch(channel, tuple(records), cursor=next_id[ci] - 1)
