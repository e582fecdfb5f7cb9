"""Synthetic archives for benchmarks: channels, posts in English and Russian, ~30% forwards.

Two corpora, both deterministic (seeded) and generated lazily in per-channel batches like a poller
would hand them over:
- `uniform`: every word drawn uniformly from 40 topical words per language, 12-60 words a post. Each
  word is in ~28% of the posts: a worst case for counting and filtering, a best case for a scan with
  a LIMIT. Kept unchanged so figures stay comparable across versions.
- `zipf`: a realistic corpus. Tens of thousands of Russian and English word forms (real and made-up
  stems with real inflections: cases, plurals, verb endings), drawn by a Zipf law over lexemes (stop
  words first, the topical words among the first few hundred ranks, then a long tail); a few fixed
  collocations ("foreign minister", "министр иностранных дел"); post lengths log-normal (median 30
  words: one-line news up to 600-word statements) split into sentences; each channel writes mostly
  in one language.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

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
CORPORA = ("uniform", "zipf")


def uniform_text(rng: random.Random) -> str:
    """One post of the uniform corpus: 12-60 words of the 40, a hashtag in three posts of ten."""
    vocab = RU if rng.random() < 0.5 else EN
    words = [rng.choice(vocab) for _ in range(rng.randint(12, 60))]
    words[0] = words[0].capitalize()
    if rng.random() < 0.3:
        words.append(rng.choice(TAGS))
    return " ".join(words) + "."


# The zipf corpus. Inflection classes: the endings a stem takes (real Russian and English ones).
RU_ENDINGS = {
    "m": ("", "а", "у", "ом", "е", "ы", "ов", "ам", "ами", "ах"),
    "f": ("а", "ы", "е", "у", "ой", "ам", "ами", "ах"),
    "fk": ("а", "и", "е", "у", "ой", "ам", "ами", "ах"),
    "ija": ("я", "и", "ю", "ей", "й", "ям", "ями", "ях"),
    "ja": ("я", "и", "ю", "ей", "е"),
    "ie": ("е", "я", "ю", "ем", "и", "й", "ям", "ями", "ях"),
    "o": ("о", "а", "у", "ом", "е"),
    "soft": ("ь", "и", "ью"),
    "adj": ("ый", "ого", "ому", "ым", "ом", "ая", "ой", "ую", "ое", "ые", "ых", "ыми"),
    "adjk": ("ий", "ого", "ому", "им", "ом", "ая", "ой", "ую", "ое", "ие", "их", "ими"),
    "verb": ("ть", "ет", "ют", "л", "ла", "ли", "ло", "ем"),
    "name": ("", "а", "у", "ым", "е"),
    "pl": ("е", "", "ам", "ами", "ах"),
    "fixed": ("",),
}
EN_ENDINGS = {
    "n": ("", "s"),
    "v": ("", "s", "ed", "ing"),
    "nv": ("", "s", "ed", "ing"),
    "e": ("e", "es", "ed", "ing", "ion", "ions", "or", "ors"),
    "adj": ("",),
    "fixed": ("",),
}
RU_STOP_Z = ("и в на с по не что о к из за для от как это а также до при его был будет все они мы было "
             "бы так же уже или об только").split()
EN_STOP_Z = ("the of and to in a is that for on with as by at from this be it are was an has will have "
             "not or which their its also were been more after who all but had new").split()
RU_LEXEMES = (  # stem:class, the topical words of a foreign ministry's channels; the first 20 are
    # the most frequent (among them every word the search benchmark asks for)
    "санкци:ija канад:f министр:m иностранн:adj арктик:fk визит:m ядерн:adj энергетик:fk консульск:adjk "
    "граждан:pl переговор:m договор:m безопасност:soft заявлени:ie посольств:o росси:ija "
    "сотрудничеств:o совет:m торговл:ja соглашени:ie президент:m делегаци:ija встреч:fk пресс:fixed "
    "конференци:ija суверенитет:m диалог:m партнёрств:o экономическ:adjk стратегическ:adjk "
    "международн:adj прав:o кризис:m отношени:ie двусторонн:adjk саммит:m лавров:name украин:f "
    "африк:fk китай:fixed индия:fixed брикс:fixed оттав:f лондон:m вашингтон:m парламент:m выбор:m "
    "военн:adj обсужда:verb заявля:verb подписа:verb сообща:verb"
).split()
EN_LEXEMES = (
    "sanction:nv canada:fixed foreign:adj minister:n arctic:fixed treaty:fixed security:fixed "
    "trade:fixed summit:n energy:fixed nuclear:adj partnership:n negotiat:e statement:n embassy:fixed "
    "russia:fixed talk:nv cooperation:n council:n agreement:n president:n visit:v delegation:n "
    "meeting:n press:fixed conference:n sovereignty:fixed dialogue:n economic:adj strategic:adj "
    "international:adj law:n crisis:fixed relation:n bilateral:adj consular:adj visa:n citizen:n "
    "forum:n culture:n education:fixed lavrov:fixed ukraine:fixed africa:fixed china:fixed india:fixed "
    "brics:fixed ottawa:fixed london:fixed washington:fixed parliament:n election:n military:adj "
    "discuss:v sign:v report:nv"
).split()
COLLOCATIONS = {  # whole phrases drawn as one lexeme, so phrase queries meet real phrases
    "ru": ("министр иностранных дел", "министра иностранных дел", "пресс конференция", "совет безопасности",
           "ядерной энергетики"),
    "en": ("foreign minister", "press conference", "security council", "nuclear energy", "foreign ministry"),
}
RU_SYL_Z = [c + v for c in "бвгдзклмнпрстфхч" for v in "аеиоу"]
EN_SYL_Z = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + "tr pl st gr".split()
RU_SUFFIX = ("ов", "ск", "н", "тельн", "ств", "ниц", "ач", "ист", "")
EN_SUFFIX = ("ation", "ment", "ness", "er", "ist", "al", "ive", "")
MADE_UP = {"ru": 3000, "en": 4500}  # made-up lexemes per language: the long tail
"""With the inflections, about 24,000 Russian and 17,000 English word forms."""


class Zipf:
    """The seeded zipf vocabulary of one language: lexemes by rank, each a list of forms."""

    def __init__(self, lang: str, seed: int) -> None:
        rng = random.Random(f"{seed}-{lang}")
        ru = lang == "ru"
        stop, real = (RU_STOP_Z, RU_LEXEMES) if ru else (EN_STOP_Z, EN_LEXEMES)
        endings = RU_ENDINGS if ru else EN_ENDINGS
        syllables, suffixes = (RU_SYL_Z, RU_SUFFIX) if ru else (EN_SYL_Z, EN_SUFFIX)
        topical = [[stem + end for end in endings[kind]] for stem, kind in (x.split(":") for x in real)]
        topical += [[phrase] for phrase in COLLOCATIONS[lang]]
        made: list[list[str]] = []
        seen: set[str] = set()
        while len(made) < MADE_UP[lang]:
            stem = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) + rng.choice(suffixes)
            if stem in seen or len(stem) < 3:
                continue
            seen.add(stem)
            kinds = [k for k in endings if k not in ("fixed", "name", "pl")]
            made.append([stem + end for end in endings[rng.choice(kinds)]])
        # Topical lexemes take ranks among the first few hundred, mixed with the tail's head.
        head = made[:300]
        ranked = [[w] for w in stop]
        mixed = topical + head
        rng.shuffle(mixed)
        mixed.sort(key=lambda lex: 0 if lex in topical[:20] else 1)  # the 20 most topical come first
        ranked += mixed + made[300:]
        self.lexemes = ranked
        self.forms = sum(len(lex) for lex in ranked)
        self.cum = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(ranked))))

    def words(self, rng: random.Random, count: int) -> list[str]:
        """`count` words: a lexeme by the Zipf law, then one of its forms (the first forms likelier)."""
        out = []
        for lex in rng.choices(self.lexemes, cum_weights=self.cum, k=count):
            n = len(lex)
            out.append(lex[0] if n == 1 else lex[min(int(rng.expovariate(2.5 / n)), n - 1)])
        return out


@cache
def zipf_vocabulary(lang: str, seed: int) -> Zipf:
    """The zipf vocabulary of `lang`, built once per process."""
    return Zipf(lang, seed)


def zipf_text(rng: random.Random, lang: str, seed: int = 7) -> str:
    """One post: a log-normal number of words (median 30, at most 600) in sentences of 5-20 words."""
    vocab = zipf_vocabulary(lang, seed)
    count = min(max(int(rng.lognormvariate(math.log(30), 1.0)), 3), 600)
    words = vocab.words(rng, count)
    sentences, i = [], 0
    while i < len(words):
        size = rng.randint(5, 20)
        sentence = words[i:i + size]
        sentences.append(" ".join(sentence).capitalize() + ".")
        i += size
    if rng.random() < 0.3:
        sentences.append(rng.choice(TAGS))
    return " ".join(sentences)


def _language_of(channel_index: int) -> str:
    return "ru" if channel_index % 2 == 0 else "en"


def text_maker(corpus: str, seed: int) -> Callable[[random.Random, int], str]:
    """The post text generator of `corpus`, called with the rng and the posting channel's index."""
    if corpus == "uniform":
        return lambda rng, _ci: uniform_text(rng)
    if corpus == "zipf":
        def make(rng: random.Random, ci: int) -> str:
            lang = _language_of(ci)
            if rng.random() < 0.15:
                lang = "en" if lang == "ru" else "ru"
            return zipf_text(rng, lang, seed)
        return make
    raise ValueError(f"unknown corpus {corpus!r}: one of {', '.join(CORPORA)}")


def archive_path(db: str, corpus: str) -> str:
    """The benchmark archive of `corpus` beside `db`: `/tmp/x.db` -> `/tmp/x-zipf.db` (uniform keeps `db`)."""
    if corpus == "uniform":
        return db
    stem, dot, ext = db.rpartition(".")
    return f"{stem}-{corpus}.{ext}" if dot and "/" not in ext else f"{db}-{corpus}"


def chunked(items: Iterator[Batch], size: int = 100) -> Iterator[list[Batch]]:
    """`items` in lists of `size`: a benchmark generates a list, then times only the work on it."""
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def batches(
    total: int, *, channels: int = 50, origins: int = 5, forward_share: float = 0.3,
    batch_size: int = 100, seed: int = 7, corpus: str = "uniform", start: datetime = T0,
) -> Iterator[Batch]:
    """Yield batches adding up to `total` messages, the first dated just after `start`; the first
    `origins` channels are forwarded from."""
    make_text = text_maker(corpus, seed)
    rng = random.Random(seed)
    chans = [Channel(10_000 + i, f"chan{i}", f"Channel {i}", i, watched=True) for i in range(channels)]
    next_id = [1] * channels
    published: list[tuple[int, int, str, datetime]] = []  # (origin id, message id, text, date)
    made = 0
    clock = start
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
                text = make_text(rng, ci)
                records.append(MessageRecord(channel.id, mid, clock, text, views=10,
                                             raw={"_": "Message", "id": mid}))
                if ci < origins:
                    published.append((channel.id, mid, text, clock))
                    if len(published) > 10_000:  # only the last 5,000 are forwarded from
                        del published[:5_000]
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
                    text, mid = uniform_text(rng), next_id[origin.id]  # an origin posts only these, in order
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
                    text = uniform_text(rng)
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
