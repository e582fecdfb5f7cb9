"""A word diff between two versions of a text, as runs of (op, text), and its renderings for the terminal
and for HTML (the bot, and the web view later). Pure functions.

Texts are split as `storage.text` splits words (runs of letters and digits), keeping the original
spelling and every character between words (spaces, punctuation, emoji) as tokens of their own, so the
runs joined back give the texts exactly: `old` is the `equal` and `delete` runs, `new` the `equal` and
`insert` runs. Tokens are compared as written (a change of case or of `ё` is a change).
"""

from __future__ import annotations

import difflib
import html
import re
from typing import Literal

__all__ = ["Op", "Run", "html_diff", "terminal_diff", "tokens", "word_diff"]

Op = Literal["equal", "delete", "insert"]
Run = tuple[Op, str]

_TOKEN = re.compile(r"[^\W_]+|\s+|.", re.S)  # a word (as storage.text), a run of spaces, any other character
_RED, _GREEN, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[0m"


def tokens(text: str) -> list[str]:
    """`text` as words, whitespace runs and single other characters; joined they give `text` back."""
    return _TOKEN.findall(text)


def word_diff(old: str, new: str) -> list[Run]:
    """The runs that turn `old` into `new`, in text order; a replacement is its `delete` then its
    `insert`. Whitespace alone between two changes joins them, so `a b` → `x y` is one replacement."""
    a, b = tokens(old), tokens(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    blocks: list[tuple[str, str, str]] = []  # ("equal", text, text) or ("change", old, new)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        was, now = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal":
            blocks.append(("equal", was, now))
        elif blocks and blocks[-1][0] == "change":
            _, w, n = blocks.pop()
            blocks.append(("change", w + was, n + now))
        else:
            blocks.append(("change", was, now))
    merged: list[tuple[str, str, str]] = []
    for index, block in enumerate(blocks):
        between = 0 < index < len(blocks) - 1 and block[0] == "equal" and not block[1].strip()
        if between and merged and merged[-1][0] == "change" and blocks[index + 1][0] == "change":
            _, w, n = merged.pop()
            merged.append(("change", w + block[1], n + block[2]))
        elif block[0] == "change" and merged and merged[-1][0] == "change":
            _, w, n = merged.pop()
            merged.append(("change", w + block[1], n + block[2]))
        else:
            merged.append(block)
    runs: list[Run] = []
    for kind, was, now in _words_first(merged):
        if kind == "equal":
            runs.append(("equal", was))
            continue
        if was:
            runs.append(("delete", was))
        if now:
            runs.append(("insert", now))
    return runs


def _words_first(blocks: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """A pure insertion or deletion that starts with spaces the unchanged text after it starts with
    too is shifted by them (`new{+ illegal+} sanctions` → `new {+illegal +}sanctions`): changes start
    at a word."""
    out = [list(block) for block in blocks]
    for index in range(1, len(out) - 1):
        kind, was, now = out[index]
        after = out[index + 1]
        if kind != "change" or (was and now) or after[0] != "equal" or out[index - 1][0] != "equal":
            continue
        changed = was or now
        space = changed[:len(changed) - len(changed.lstrip())]
        if space and space != changed and after[1].startswith(space):
            shifted = changed[len(space):] + space
            out[index] = ["change", shifted if was else "", shifted if now else ""]
            out[index - 1] = ["equal", out[index - 1][1] + space, out[index - 1][2] + space]
            out[index + 1] = ["equal", after[1][len(space):], after[2][len(space):]]
    return [(k, w, n) for k, w, n in out if k == "change" or w]


def _elide(text: str, context: int | None, first: bool, last: bool) -> str:
    """An unchanged run cut to `context` characters on each side that touches a change (at a space
    where one is near), with `…` for what is left out; None keeps it whole."""
    if context is None or len(text) <= 2 * context + 1:
        return text
    head = "" if first else text[:context]
    tail = "" if last else text[-context:]
    if head and " " in head[context // 2:]:
        head = head[:head.rindex(" ") + 1]
    if tail and " " in tail[:context // 2]:
        tail = tail[tail.index(" "):]
    return head + "…" + tail


def terminal_diff(runs: list[Run], *, colour: bool = False, context: int | None = None) -> str:
    """Runs as `unchanged [-removed-]{+added+}`, in red and green too when `colour` (a terminal);
    unchanged stretches longer than twice `context` are cut around the changes."""
    out = []
    for index, (op, text) in enumerate(runs):
        if op == "equal":
            out.append(_elide(text, context, index == 0, index == len(runs) - 1))
        elif op == "delete":
            out.append(f"{_RED}[-{text}-]{_RESET}" if colour else f"[-{text}-]")
        else:
            out.append(f"{_GREEN}{{+{text}+}}{_RESET}" if colour else f"{{+{text}+}}")
    return "".join(out)


def html_diff(runs: list[Run], *, context: int | None = None, tags: tuple[str, str] = ("del", "ins")) -> str:
    """Runs as HTML, every text escaped: removed words in <del>, added ones in <ins>; `tags` names
    others (Telethon's HTML, which the bot sends, knows <del> and <u> but not <ins>)."""
    out = []
    for index, (op, text) in enumerate(runs):
        if op == "equal":
            out.append(html.escape(_elide(text, context, index == 0, index == len(runs) - 1), quote=True))
        else:
            tag = tags[0] if op == "delete" else tags[1]
            out.append(f"<{tag}>{html.escape(text, quote=True)}</{tag}>")
    return "".join(out)
