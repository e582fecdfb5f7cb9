"""Percolation throughput: the indexed percolator vs trying every rule on every post.

Run by hand: `python bench/percolate.py --posts 100000 --rules 1000,10000`.

Posts are EN/RU texts whose words follow a Zipf law over a large vocabulary (stop words, topical
words, a long tail), ~20% of them forwards; rules are 1-3 content words (some ORs, phrases, prefixes,
negations, some with channel:/lang:/is: filters, a few filters alone) owned by 200 chats. Measured:

- matching alone, from PostDocs already loaded (what the percolator adds per post), against naive
  matching of each post with every rule (on a sample, extrapolated);
- end to end: ingest with the percolator as the after-ingest hook (and the time spent in the hook:
  loading PostDocs, matching, writing alert rows) vs ingest without it.

Nothing is held whole: the corpus is generated 100 batches at a time outside the timed loops, and
PostDocs are loaded 5,000 at a time; the peak memory of the whole run is printed at the end.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import chunked  # noqa: E402
from storage.database import connect_sync  # noqa: E402
from storage.ingest import ingest_batch  # noqa: E402
from storage.percolator import Percolator  # noqa: E402
from storage.records import Batch, Channel, ForwardHeader, IngestResult, MessageRecord  # noqa: E402
from storage.rules import add_rule  # noqa: E402
from storage.search import PostDoc, load_docs  # noqa: E402

EN_STOP = ("the of and to in a is that for on with as by at from this be it are was an has will "
           "have not or which their its also were been more after who all but had new").split()
RU_STOP = ("и в на с по не что о к из за для от как это а также до при его был будет все они "
           "мы было бы так же уже или об только").split()
EN_TOPIC = (
    "minister foreign sanctions canada arctic statement embassy russia talks cooperation security "
    "council treaty nuclear energy trade agreement president visit delegation meeting press "
    "conference sovereignty dialogue partnership economic strategic international law crisis "
    "negotiations relations bilateral summit consular visa citizens forum culture education lavrov "
    "ukraine africa china india brics ottawa london washington parliament election military"
).split()
RU_TOPIC = (
    "министр иностранных санкции канада арктика заявление посольство россия переговоры "
    "сотрудничество безопасность совет договор ядерный энергетика торговля соглашение президент "
    "визит делегация встреча пресс конференция суверенитет диалог партнёрство экономический "
    "стратегический международное право кризис отношения двусторонний саммит консульский граждане "
    "лавров украина африка китай индия брикс оттава лондон вашингтон парламент выборы военный"
).split()
EN_SYL = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + "tion ment ing er al ous ly ter".split()
RU_SYL = [c + v for c in "бвгдзклмнпрстфхч" for v in "аеиоуя"] + "ния ов ен ски тель ство ать ый".split()
TAGS = ["#MFA", "#Russia", "#Canada", "#Арктика", "#RussiaAfrica", "#МИД", "#Lavrov", "#Санкции"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def vocabulary(rng: random.Random, stop: list[str], topic: list[str], syllables: list[str],
               size: int) -> list[str]:
    """Words by falling frequency: stop words, topical words, then made-up content words."""
    words = list(dict.fromkeys(stop + topic))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class Corpus:
    """Seeded EN/RU vocabularies with Zipf weights, channels, and the post/rule generators."""

    def __init__(self, seed: int = 11, size: int = 20_000) -> None:
        self.rng = random.Random(seed)
        self.vocab = {
            "en": vocabulary(self.rng, EN_STOP, EN_TOPIC, EN_SYL, size),
            "ru": vocabulary(self.rng, RU_STOP, RU_TOPIC, RU_SYL, size),
        }
        self.cum = {lang: list(itertools.accumulate(1 / (rank + 1) ** 1.05 for rank in range(len(words))))
                    for lang, words in self.vocab.items()}
        self.channels = [Channel(20_000 + i, f"chan{i}", f"Channel {i}", i, watched=True) for i in range(60)]

    def text(self, rng: random.Random) -> str:
        lang = "ru" if rng.random() < 0.5 else "en"
        words = rng.choices(self.vocab[lang], cum_weights=self.cum[lang], k=rng.randint(15, 70))
        if rng.random() < 0.3:
            words.append(rng.choice(TAGS))
        return " ".join(words).capitalize() + "."

    def batches(self, posts: int, batch_size: int = 100, forward_share: float = 0.2) -> Iterator[Batch]:
        """About `posts` canonical posts (forwards of recent originals come on top), poller-sized batches."""
        rng = random.Random(5)
        next_id = dict.fromkeys((c.id for c in self.channels), 1)
        recent: list[tuple[Channel, int, str]] = []
        clock, made = T0, 0
        while made < posts:
            channel = rng.choice(self.channels)
            records = []
            for _ in range(batch_size):
                clock += timedelta(seconds=rng.randint(1, 20))
                mid = next_id[channel.id]
                next_id[channel.id] += 1
                if recent and rng.random() < forward_share:
                    origin, omid, body = rng.choice(recent[-2000:])
                    if origin.id == channel.id:
                        continue
                    header = ForwardHeader(from_peer_type="channel", from_peer_id=origin.id,
                                           channel_post=omid, date=clock - timedelta(minutes=5),
                                           origin_username=origin.username, origin_title=origin.title)
                    records.append(MessageRecord(channel.id, mid, clock, body, forward=header))
                else:
                    body = self.text(rng)
                    records.append(MessageRecord(channel.id, mid, clock, body))
                    recent.append((channel, mid, body))
                    if len(recent) > 4000:  # only the last 2,000 are forwarded from
                        del recent[:2000]
                    made += 1
            yield Batch(channel, tuple(records))

    def rules(self, count: int, seed: int = 3) -> list[tuple[int, str]]:
        """(chat id, query): content words (log-uniform over ranks 150..20,000, as subscribers pick
        names and topics rather than common words)."""
        rng = random.Random(seed)

        def word(lang: str | None = None) -> str:
            words = self.vocab[lang or rng.choice(("en", "ru"))]
            return words[min(int(math.exp(rng.uniform(math.log(150), math.log(len(words))))), len(words) - 1)]

        out = []
        for n in range(count):
            kind = rng.random()
            lang = rng.choice(("en", "ru"))
            if kind < 0.45:
                query = word(lang)
            elif kind < 0.65:
                query = f"{word(lang)} {word(lang)}"
            elif kind < 0.75:
                query = f"{word(lang)} {word(lang)} {word(lang)}"
            elif kind < 0.87:
                query = " OR ".join(word() for _ in range(rng.randint(2, 3)))
            elif kind < 0.92:
                query = f'"{word(lang)} {word(lang)}"'
            elif kind < 0.96:
                stem = word(lang)
                query = stem[:max(4, len(stem) - 2)] + "*"
            elif kind < 0.99:
                query = f"{word(lang)} -{word(lang)}"
            else:
                query = f"channel:chan{rng.randrange(60)}"
            if rng.random() < 0.2 and not query.startswith("channel:"):
                query += " " + rng.choice(
                    [f"channel:chan{rng.randrange(60)}", "lang:ru", "lang:en", "is:forward", "-is:forward",
                     "since:2025-01-02", rng.choice(TAGS)])
            out.append((1000 + n % 200, query))
        return out


def build(path: str, corpus: Corpus, posts: int, rules: list[tuple[int, str]], hook: bool) -> dict:
    """Ingest the corpus into a fresh archive (with `rules` stored first); time it."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = connect_sync(path)
    conn.execute("BEGIN")
    for chat, query in rules:
        add_rule(conn, chat, query)
    conn.execute("COMMIT")
    percolator = Percolator()
    hook_seconds = 0.0

    def timed(c: sqlite3.Connection, result: IngestResult) -> None:
        nonlocal hook_seconds
        started = time.perf_counter()
        percolator(c, result)
        hook_seconds += time.perf_counter() - started

    seconds = 0.0
    for chunk in chunked(corpus.batches(posts)):  # generated before the clock starts, 100 batches at a time
        start = time.perf_counter()
        for b in chunk:
            ingest_batch(conn, b, after=timed if hook else None)
        seconds += time.perf_counter() - start
    made = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    conn.close()
    return {"seconds": seconds, "hook_seconds": hook_seconds, "posts": made, "messages": messages,
            "alerts": alerts}


def matching(path: str, rules: list[tuple[int, str]], naive_sample: int) -> dict:
    """Matching alone, from loaded PostDocs: the index vs every rule on every post."""
    conn = connect_sync(path)
    conn.execute("DELETE FROM rules")
    conn.execute("BEGIN")
    for chat, query in rules:
        add_rule(conn, chat, query)
    conn.execute("COMMIT")
    ids = [r[0] for r in conn.execute("SELECT id FROM posts ORDER BY id")]
    percolator = Percolator()
    start = time.perf_counter()
    index = percolator.refresh(conn)
    index_seconds = time.perf_counter() - start
    start = time.perf_counter()
    idle_checks = 1000
    for _ in range(idle_checks):
        percolator.refresh(conn)
    check_us = (time.perf_counter() - start) / idle_checks * 1e6
    load_seconds = indexed_seconds = 0.0
    matched = candidates = 0
    sample: list[PostDoc] = []  # the first posts, kept for the naive comparison
    for i in range(0, len(ids), 5000):  # streamed: 5,000 PostDocs in memory at a time
        start = time.perf_counter()
        docs = load_docs(conn, ids[i:i + 5000])
        load_seconds += time.perf_counter() - start
        start = time.perf_counter()
        for doc in docs:
            matched += len(index.match(doc))
        indexed_seconds += time.perf_counter() - start
        if i == 0:
            candidates = sum(len(index.candidates(doc)[0]) for doc in docs[:2000])
            sampled = min(2000, len(docs))
        sample += docs[:naive_sample - len(sample)]
    start = time.perf_counter()
    naive = [[r for r in index.rules if r.query.matches(doc)] for doc in sample]
    naive_seconds = time.perf_counter() - start
    assert naive == [index.match(doc) for doc in sample], "the index disagrees with naive matching"
    conn.close()
    return {
        "docs": len(ids), "load_per_second": len(ids) / load_seconds, "index_seconds": index_seconds,
        "check_us": check_us, "indexed_per_second": len(ids) / indexed_seconds,
        "naive_per_second": len(sample) / naive_seconds, "naive_sample": len(sample),
        "matches_per_post": matched / len(ids), "candidates_per_post": candidates / sampled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--rules", default="1000,10000", help="comma-separated rule counts")
    parser.add_argument("--naive-sample", type=int, default=1000, help="posts tried naively (extrapolated)")
    parser.add_argument("--end-to-end", type=int, default=None,
                        help="posts ingested with the percolator (default: --posts)")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    counts = [int(c) for c in args.rules.split(",")]
    corpus = Corpus()
    e2e_posts = args.end_to_end or args.posts
    base = os.path.join(args.dir, "chanwatch-percolate")

    plain = build(base + "-plain.db", corpus, args.posts, [], hook=False)
    plain_rate = plain["posts"] / plain["seconds"]
    print(f"corpus: {plain['posts']:,} posts in {plain['messages']:,} messages; ingest without "
          f"percolation {plain_rate:,.0f} posts/s ({plain['seconds']:.1f} s)")
    for count in counts:
        rules = corpus.rules(count)
        m = matching(base + "-plain.db", rules, args.naive_sample)
        print(f"\n{count:,} rules: index built in {m['index_seconds'] * 1000:.0f} ms, unchanged-rules "
              f"check {m['check_us']:.0f} µs/batch; {m['candidates_per_post']:.1f} candidates and "
              f"{m['matches_per_post']:.2f} matches per post")
        print(f"  matching from PostDocs: percolator {m['indexed_per_second']:,.0f} posts/s, naive "
              f"{m['naive_per_second']:,.0f} posts/s (naive on {m['naive_sample']:,} posts), "
              f"x{m['indexed_per_second'] / m['naive_per_second']:.0f}; load_docs "
              f"{m['load_per_second']:,.0f} posts/s")
        e2e = build(base + f"-{count}.db", corpus, e2e_posts, rules, hook=True)
        hook_us = e2e["hook_seconds"] / e2e["posts"] * 1e6
        print(f"  end to end: ingest + percolation {e2e['posts'] / e2e['seconds']:,.0f} posts/s "
              f"({e2e['seconds']:.1f} s, {e2e['alerts']:,} alerts; ingest alone {plain_rate:,.0f} posts/s); "
              f"the hook itself {hook_us:.0f} µs/post = {1e6 / hook_us:,.0f} posts/s "
              f"({e2e['hook_seconds'] / e2e['seconds']:.0%} of the ingest time)")
    print(f"\npeak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB (the whole run: "
          "corpus generated 100 batches at a time, PostDocs loaded 5,000 at a time)")


if __name__ == "__main__":
    main()
