"""Importing a big Telegram Desktop export: time, messages/s and peak memory of `chanwatch import`.

Run by hand: `python bench/import_export.py --messages 1000000`. It writes one channel's export of N
messages to a file (Cyrillic text of realistic lengths, entities, photos, replies, edits, ~15%
forwards, ~1% service messages; seeded, so every run reads the same file), then imports it into a
fresh archive in a child process (`python -m bot import --no-progress`), three times. Only the
import is timed, never the generation. Peak memory is the child's own max RSS (`os.wait4`).
The target: a peak under 300 MB whatever the file's size (the import streams the file).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple, TextIO


class Run(NamedTuple):
    """One import: wall-clock seconds, the child's peak RSS in MB, its summary line."""

    seconds: float
    rss_mb: float
    summary: str


ROOT = Path(__file__).resolve().parent.parent

WORDS = (
    "министр иностранных дел санкции канада арктика заявление посольство россия переговоры "
    "сотрудничество безопасность совет договор ядерный энергетика торговля соглашение президент "
    "визит делегация встреча пресс конференция суверенитет диалог партнёрство экономический "
    "стратегический международное право кризис отношения двусторонний саммит консульский граждане "
    "брифинг официальный представитель комментарий ситуация вопрос ответ регион развитие будущее"
).split()
TAGS = ["#МИД", "#Россия", "#Канада", "#Арктика", "#брифинг", "#RussiaAfrica"]
ORIGINS = [("Новости дня", 1100000001), ("Посольство в Оттаве", 1100000002), ("ТАСС", 1100000003)]
CHANNEL_ID, CHANNEL_NAME = 1234567890, "МИД России (бенчмарк)"
T0 = 1_735_689_600  # 2025-01-01 UTC


def _sentence(rng: random.Random, words: int) -> str:
    chosen = [rng.choice(WORDS) for _ in range(words)]
    chosen[0] = chosen[0].capitalize()
    return " ".join(chosen) + "."


def _parts(rng: random.Random) -> list[dict[str, Any]]:
    """A message's `text_entities`: 3 to 300 words (median 20), with bold, links and hashtags."""
    words = min(300, max(3, int(rng.lognormvariate(3.0, 0.7))))
    parts: list[dict[str, Any]] = []
    if rng.random() < 0.4:
        parts += [{"type": "bold", "text": _sentence(rng, rng.randint(3, 8))},
                  {"type": "plain", "text": "\n\n"}]
    parts.append({"type": "plain", "text": _sentence(rng, words)})
    if rng.random() < 0.3:
        parts += [{"type": "plain", "text": " Подробнее: "},
                  {"type": "text_link", "text": "на сайте", "href": f"https://example.org/{rng.randrange(10**6)}"}]
    if rng.random() < 0.5:
        parts += [{"type": "plain", "text": "\n\n"}, {"type": "hashtag", "text": rng.choice(TAGS)}]
    return parts


def _message(rng: random.Random, mid: int, unix: int) -> dict[str, Any]:
    """One message as Telegram Desktop writes it (text both as `text` and as `text_entities`)."""
    if rng.random() < 0.01:
        return {"id": mid, "type": "service", "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)),
                "date_unixtime": str(unix), "actor": CHANNEL_NAME, "actor_id": f"channel{CHANNEL_ID}",
                "action": "pin_message", "message_id": max(1, mid - 1), "text": "", "text_entities": []}
    parts = _parts(rng)
    text: Any = [p["text"] if p["type"] == "plain" else p for p in parts]
    if len(parts) == 1:
        text = parts[0]["text"]
    message: dict[str, Any] = {
        "id": mid, "type": "message", "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)),
        "date_unixtime": str(unix), "from": CHANNEL_NAME, "from_id": f"channel{CHANNEL_ID}",
    }
    if rng.random() < 0.1:
        edited = unix + rng.randint(60, 86400)
        message["edited"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(edited))
        message["edited_unixtime"] = str(edited)
    if rng.random() < 0.15:
        name, origin = rng.choice(ORIGINS)
        message["forwarded_from"] = name
        message["forwarded_from_id"] = f"channel{origin}"
    elif rng.random() < 0.3:
        message["author"] = rng.choice(["Мария Захарова", "Пресс-служба", "Дежурный редактор"])
    if rng.random() < 0.05 and mid > 1:
        message["reply_to_message_id"] = rng.randint(max(1, mid - 500), mid - 1)
    if rng.random() < 0.2:
        message.update(photo=f"photos/photo_{mid}.jpg", photo_file_size=rng.randint(20_000, 400_000),
                       width=1280, height=rng.choice([720, 853, 960]))
    message["text"] = text
    message["text_entities"] = parts
    return message


def write_export(path: Path, n: int, seed: int = 7) -> int:
    """A Desktop export of `n` messages at `path`, written message by message (never all in memory);
    returns how many of them are not service messages (what the import stores)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        return _write(out, rng, n)


def _write(out: TextIO, rng: random.Random, n: int) -> int:
    out.write('{\n "name": ' + json.dumps(CHANNEL_NAME, ensure_ascii=False)
              + f',\n "type": "public_channel",\n "id": {CHANNEL_ID},\n "messages": [\n')
    unix, stored = T0, 0
    for mid in range(1, n + 1):
        unix += rng.randint(20, 600)
        message = _message(rng, mid, unix)
        stored += message["type"] == "message"
        out.write("  " + json.dumps(message, ensure_ascii=False) + (",\n" if mid < n else "\n"))
    out.write(" ]\n}\n")
    return stored


def import_once(export: Path, db: Path) -> Run:
    """`chanwatch import` of `export` into a fresh archive at `db`, in a child process."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(db), "import", "--no-progress",
                                  str(export)], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not every child's maximum
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        summary, problem = out.read().decode().strip(), err.read().decode(errors="replace")
    if child.returncode != 0:
        raise SystemExit(f"import failed ({child.returncode}): {problem[-2000:]}")
    return Run(elapsed, usage.ru_maxrss / 1024, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default="/tmp", help="where the export and the archive are written")
    parser.add_argument("--keep", action="store_true", help="keep the export and the archive afterwards")
    args = parser.parse_args()
    folder = Path(args.dir)
    export, db = folder / f"chanwatch-bench-export-{args.messages}.json", folder / "chanwatch-bench-import.db"
    stored = write_export(export, args.messages)
    size_mb = export.stat().st_size / 1e6
    print(f"export: {args.messages:,} messages ({stored:,} not service messages), {size_mb:,.0f} MB "
          f"({export})")
    runs = [import_once(export, db) for _ in range(args.runs)]
    print(runs[-1].summary)
    seconds = sorted(r.seconds for r in runs)
    rates = sorted(stored / s for s in seconds)
    rss = sorted(r.rss_mb for r in runs)

    def spread(values: list[float], fmt: str) -> str:
        return "–".join(format(v, fmt) for v in (values[0], statistics.median(values), values[-1]))

    print(f"import ({len(runs)} runs, min–median–max): {spread(seconds, '.1f')} s, "
          f"{spread(rates, ',.0f')} messages/s, peak {spread(rss, ',.0f')} MB (target < 300 MB)")
    if not args.keep:
        for path in (export, db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
