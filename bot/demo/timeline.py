"""Seed a simulator World with the demo's accounts and channels, and play its timeline on the World's clock.

`build_world` makes the accounts (the reader session, the bot, the subscriber, the channels' press
office) and the channels. `Timeline.apply_until(t)` performs every event due by `t` at its own time
(the clock is set to each event's time first, so message dates are the scenario's), then leaves the
clock at `t`. The daemon under demonstration only ever sees the World through Telethon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telethon.extensions import markdown
from telethon.tl import types

from bot.formatting import utf16_len
from bot.simulator import ChatLogEntry, SimChannel, SimUser, World
from bot.simulator.engagement import Growth

from .scenario import Event, FileSpec, Scenario

_HASHTAG = re.compile(r"(?<![\w#])#\w+")


def parse_text(source: str) -> tuple[str, list[types.TypeMessageEntity]]:
    """Scenario markup -> (text, entities): ``**bold**``, ``[label](url)``, and hashtag entities."""
    text, entities = markdown.parse(source, delimiters={"**": types.MessageEntityBold})
    entities = list(entities)
    for match in _HASHTAG.finditer(text):
        offset = utf16_len(text[:match.start()])
        entities.append(types.MessageEntityHashtag(offset, utf16_len(match.group())))
    entities.sort(key=lambda e: (e.offset, -e.length))
    return text, entities


@dataclass(eq=False)
class DemoWorld:
    """The seeded World and the accounts the demo needs by name."""

    world: World
    reader: SimUser
    bot: SimUser
    subscriber: SimUser
    press: SimUser
    channels: dict[str, SimChannel]


def build_world(scenario: Scenario, *, seed: int = 1) -> DemoWorld:
    """A World at `scenario.world_start` with the reader, bot, subscriber and the scenario's channels."""
    world = World(seed=seed, now=scenario.world_start)
    reader = world.add_user("Demo reader", username="chanwatch_reader")
    bot = world.add_bot("chanwatch_demo_bot", first_name="chanwatch")
    subscriber = world.add_user(scenario.subscriber.first_name, username=scenario.subscriber.username)
    press = world.add_user("Press office", username="freedonia_press")
    channels = {
        spec.key: world.add_channel(spec.username, spec.title, owner=press, about=spec.about)
        for spec in scenario.channels
    }
    return DemoWorld(world, reader, bot, subscriber, press, channels)


@dataclass(frozen=True, slots=True)
class Happened:
    """An event that was performed: when, a one-line description, and the chat entry of a `say`."""

    event: Event
    when: datetime
    description: str
    entry: ChatLogEntry | None = None


@dataclass(eq=False)
class Timeline:
    """Plays `scenario.events` into `demo.world` in time order (each at most once)."""

    demo: DemoWorld
    scenario: Scenario
    #: label -> (channel, message id) of every message posted or forwarded under a label.
    messages: dict[str, tuple[SimChannel, int]] = field(default_factory=dict)
    done: int = 0

    @property
    def next_at(self) -> datetime | None:
        """When the next event happens (None when all have happened)."""
        events = self.scenario.events
        return events[self.done].when if self.done < len(events) else None

    @property
    def finished(self) -> bool:
        """Whether every event has happened."""
        return self.done >= len(self.scenario.events)

    def apply_until(self, until: datetime) -> list[Happened]:
        """Perform the events due by `until`, each at its own time; leave the clock at `until`
        (never moving it backwards)."""
        world = self.demo.world
        happened: list[Happened] = []
        while not self.finished and self.scenario.events[self.done].when <= until:
            event = self.scenario.events[self.done]
            if event.when > world.now:
                world.now = event.when
            happened.append(self._apply(event))
            self.done += 1
        if until > world.now:
            world.now = until
        self.grow()
        return happened

    def grow(self) -> None:
        """Bring every post's views, forwards and reactions to what its age now gives (each channel
        towards its own audience), so the daemon's engagement readings see them rise."""
        for spec in self.scenario.channels:
            self.demo.world.grow_engagement(self.demo.channels[spec.key], Growth(ceiling=spec.audience))

    def _apply(self, event: Event) -> Happened:
        world = self.demo.world
        when = world.now
        if event.kind == "say":
            entry = world.say(self.demo.subscriber, self.demo.bot, event.text)
            name = self.demo.subscriber.first_name
            return Happened(event, when, f"{name} → @{self.demo.bot.username}: {event.text}", entry)
        channel = self.demo.channels[event.channel]
        here = f"@{channel.username}"
        if event.kind == "post":
            text, entities = parse_text(event.text)
            media = [self._media(spec) for spec in event.files]
            if len(media) > 1:  # an album (as `World.album` posts it): the text is the first part's caption
                grouped_id = world.rng.randrange(10**17, 10**18)
                parts = [world.post(channel, text if i == 0 else "", entities=entities if i == 0 else (),
                                    media=m, grouped_id=grouped_id) for i, m in enumerate(media)]
                message = parts[0]
            else:
                message = world.post(channel, text, entities=entities, media=media[0] if media else None)
            self._remember(event.label, channel, message.id)
            note = _files_note(event.files)
            return Happened(event, when, f"{here}/{message.id} posted{note}: "
                                         f"{_first_line(text, 72 - len(note))}")
        source_channel, source_id = self.messages[event.source]
        if event.kind == "forward":
            message = world.forward(source_channel, source_id, channel)
            self._remember(event.label, channel, message.id)
            origin = f"@{source_channel.username}/{source_id}"
            return Happened(event, when, f"{here}/{message.id} forwarded {origin}")
        if event.kind == "edit":
            text, entities = parse_text(event.text)
            world.edit(source_channel, source_id, text, entities=entities)
            return Happened(event, when, f"@{source_channel.username}/{source_id} edited: "
                                         f"{_first_line(_added_line(event, self.scenario))}")
        if event.kind == "delete":
            world.delete(source_channel, source_id)
            return Happened(event, when, f"@{source_channel.username}/{source_id} deleted")
        raise ValueError(f"unknown event kind {event.kind!r}")

    def _media(self, spec: FileSpec) -> Any:
        """The simulator's media for a scenario file (its bytes served by GetFile)."""
        world = self.demo.world
        if spec.kind == "photo":
            return world.photo(spec.data())
        return world.document(spec.data(), mime_type=spec.mime_type, file_name=spec.name)

    def _remember(self, label: str, channel: SimChannel, message_id: int) -> None:
        if label:
            self.messages[label] = (channel, message_id)


def _files_note(files: tuple[FileSpec, ...]) -> str:
    """What a post carries, for its line: `` (photo)``, `` (album of 3 photos)``, `` (name.pdf, 9 KB)``."""
    if not files:
        return ""
    if len(files) > 1:
        return f" (album of {len(files)} photos)" if all(f.kind == "photo" for f in files) \
            else f" (album of {len(files)} files)"
    spec = files[0]
    return " (photo)" if spec.kind == "photo" else f" ({spec.name}, {spec.size / 1000:.0f} KB)"


def _added_line(edit: Event, scenario: Scenario) -> str:
    """The first paragraph an edit added to its message (what the terminal shows for the edit)."""
    before = next((e.text for e in scenario.events if e.label == edit.source), "")
    old = set(parse_text(before)[0].split("\n"))
    new = [line for line in parse_text(edit.text)[0].split("\n") if line.strip() and line not in old]
    return new[0] if new else parse_text(edit.text)[0]


def _first_line(text: str, width: int = 72) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"
