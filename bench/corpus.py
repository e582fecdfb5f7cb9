"""A synthetic archive for benchmarks: channels, posts in English and Russian, ~30% forwards.

Deterministic (seeded), generated lazily in per-channel batches like a poller would hand them over.
"""

from __future__ import annotations

import heapq
import itertools
import math
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


def amplification_batches(
    total: int, *, origins: int = 2, amplifiers: int = 20, days: int = 365, batch_size: int = 100,
    seed: int = 11,
) -> Iterator[Batch]:
    """Yield batches adding up to exactly `total` messages shaped like a ministry and its embassies.

    `origins` channels (`mfa0`, ...) post statements; `amplifiers` channels (`amp00`, ...) each carry
    a share of every origin's posts (5-60% of the first origin's, a third of that for the others), as
    forwards or, for every fifth amplifier, mostly as copies without attribution, after a log-normal
    delay (medians from two minutes to six hours, copies within two days so they stay copies), and post
    their own texts too. Origins edit 3% and delete 1% of their posts some hours later. Day by day
    over `days` days from T0, each channel's messages in date order (ids rising), as a poller would;
    edits and deletions come as their own batches. Deterministic (seeded).
    """
    rng = random.Random(seed)
    origin_chans = [Channel(20_000 + i, f"mfa{i}", f"Ministry {i}", i, watched=True) for i in range(origins)]
    amp_chans = [Channel(30_000 + i, f"amp{i:02d}", f"Embassy {i}", 100 + i, watched=True)
                 for i in range(amplifiers)]
    carry = [[rng.uniform(0.05, 0.6) * (1 if o == 0 else 0.3) for _ in amp_chans] for o in range(origins)]
    copy_share = [rng.uniform(0.5, 0.9) if i % 5 == 4 else rng.uniform(0.0, 0.05) for i in range(amplifiers)]
    median_delay = [math.exp(rng.uniform(math.log(120), math.log(6 * 3600))) for _ in amp_chans]
    # messages per origin post: itself and its carriers; the rest of `total` is the amplifiers' own posts
    weight = [1.0] if origins == 1 else [0.7, *[0.3 / (origins - 1)] * (origins - 1)]  # of origin posts
    per_post = 1 + sum(w * sum(row) for w, row in zip(weight, carry, strict=True))
    # 3% over: the draws fall short of their means as often as not, and the last day is cut at `total`
    origin_posts_per_day = 1.03 * 0.65 * total / per_post / days
    own_per_day = 1.03 * 0.35 * total / days / amplifiers
    next_id = {c.id: 1 for c in (*origin_chans, *amp_chans)}
    pending: list[tuple[datetime, int, str, tuple]] = []  # (date, tie-breaker, kind, payload) heap
    order = itertools.count()
    made = 0
    for day in range(days * 10):  # stop at `total`, going on past `days` if the draws fell short
        start = T0 + timedelta(days=day)
        if day < days or made < total:
            for o, origin in enumerate(origin_chans):
                for when in sorted(start + timedelta(seconds=rng.uniform(0, 86400))
                                   for _ in range(_count(rng, origin_posts_per_day * weight[o]))):
                    text, mid = _text(rng), next_id[origin.id]  # an origin posts only these, in order
                    next_id[origin.id] += 1
                    heapq.heappush(pending, (when, next(order), "post", (origin, text, mid)))
                    for i, amp in enumerate(amp_chans):
                        if rng.random() >= carry[o][i]:
                            continue
                        copied = rng.random() < copy_share[i]
                        delay = min(rng.lognormvariate(math.log(median_delay[i]), 1.3),
                                    2 * 86400 if copied else 10 * 86400)
                        kind = "copy" if copied else "forward"
                        heapq.heappush(pending, (when + timedelta(seconds=max(delay, 5)), next(order), kind,
                                                 (amp, origin, mid, text, when)))
                    if rng.random() < 0.03:
                        heapq.heappush(pending, (when + timedelta(hours=rng.uniform(1, 48)), next(order),
                                                 "edit", (origin, mid, text + " (updated)", when)))
                    if rng.random() < 0.01:
                        heapq.heappush(pending, (when + timedelta(hours=rng.uniform(6, 120)), next(order),
                                                 "delete", (origin, mid)))
            for amp in amp_chans:
                for _ in range(_count(rng, own_per_day)):
                    heapq.heappush(pending, (start + timedelta(seconds=rng.uniform(0, 86400)), next(order),
                                             "own", (amp,)))
        end = start + timedelta(days=1)
        today: dict[int, list[MessageRecord]] = {}
        chans: dict[int, Channel] = {}
        later: list[Batch] = []
        while pending and pending[0][0] < end and made < total:
            when, _, kind, payload = heapq.heappop(pending)
            channel = payload[0]
            if kind == "edit":
                _, mid, text, posted = payload
                later.append(Batch(channel, (MessageRecord(channel.id, mid, posted, text, edit_date=when,
                                                           views=rng.randint(1000, 50_000),
                                                           raw={"_": "Message", "id": mid}),)))
                continue
            if kind == "delete":
                later.append(Batch(channel, deleted_ids=(payload[1],), seen_at=when))
                continue
            if kind == "post":
                mid, text, views, header = payload[2], payload[1], rng.randint(1000, 50_000), None
            else:
                mid, views, header = next_id[channel.id], rng.randint(50, 5000), None
                next_id[channel.id] += 1
                if kind == "own":
                    text = _text(rng)
                else:
                    _, origin, omid, text, posted = payload
                    if kind == "forward":
                        header = ForwardHeader(
                            from_peer_type="channel", from_peer_id=origin.id, channel_post=omid, date=posted,
                            origin_username=origin.username, origin_title=origin.title)
            record = MessageRecord(channel.id, mid, when, text, forward=header, views=views,
                                   raw={"_": "Message", "id": mid})
            today.setdefault(channel.id, []).append(record)
            chans[channel.id] = channel
            made += 1
        for channel_id, records in today.items():
            for at in range(0, len(records), batch_size):
                chunk = tuple(records[at:at + batch_size])
                yield Batch(chans[channel_id], chunk, cursor=chunk[-1].message_id)
        yield from later
        if made >= total:
            return


def _count(rng: random.Random, mean: float) -> int:
    """A count with this mean, spread like a day's posts (Poisson by Knuth's method for small means)."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
