"""The demo's sample day: who exists in the simulated Telegram and what they post, hour by hour.

Everything here is fictional text written for the chanwatch project: the Ministry of Foreign Affairs
of Freedonia (@mfa_freedonia) and its embassies in Canada, Kenya and Brazil. The style imitates
diplomatic channels (statements, briefings, emoji, hashtags, Russian and English), but no real channel
or post is copied. Text uses ``**bold**`` and ``[label](url)`` markup (Telethon's markdown); hashtags
become hashtag entities, as Telegram's server would make them.

The day has history from the day before (the first poll finds it), a morning statement on sanctions
that three embassies forward, an article about the Arctic, posts tagged #Africa, an edit that adds a
watched word, a deletion, a forward of a forward, and a ``/search`` typed by the subscriber. Some
posts carry files (`FileSpec`): a photo, a PDF that two embassies pass on, and a three-photo album; their
bytes are made up here, deterministically, a few KB each, so the daemon's media job has real files
to download.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

#: Midnight (UTC) of the simulated day. The demo runs from `DAY_BEGINS` to `DAY_ENDS` after it.
DAY = datetime(2025, 12, 16, tzinfo=UTC)
DAY_BEGINS = timedelta(hours=7)
DAY_ENDS = timedelta(hours=23)

EventKind = Literal["post", "forward", "edit", "delete", "say"]


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """A channel of the sample world: a short key used by events, its @username, title and about;
    `audience`: the views its posts approach as they age (the simulator's engagement growth);
    `source`: how the daemon reads it, through the account (`api`) or its web preview (`web`)."""

    key: str
    username: str
    title: str
    about: str
    audience: int = 1_500
    source: str = "api"


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file a post carries: a photo (``.jpg``) or a document (any other name), `size` bytes long."""

    name: str
    size: int

    @property
    def kind(self) -> Literal["photo", "document"]:
        """photo for a ``.jpg``, document otherwise."""
        return "photo" if self.name.endswith(".jpg") else "document"

    @property
    def mime_type(self) -> str:
        """The document's MIME type (a PDF, or bytes)."""
        return "application/pdf" if self.name.endswith(".pdf") else "application/octet-stream"

    def data(self) -> bytes:
        """The file's content: a format header, then SHA-256 blocks of the name (the same on every run)."""
        head = b"\xff\xd8\xff\xe0" if self.kind == "photo" else b"%PDF-1.4\n"
        body = bytearray(head)
        counter = 0
        while len(body) < self.size:
            body += hashlib.sha256(f"{self.name}:{counter}".encode()).digest()
            counter += 1
        return bytes(body[:self.size])


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happens at `at` (``"HH:MM"`` on the demo day, ``"-1 HH:MM"`` the day before).

    post: `channel` publishes `text` (remembered as `label`), with `files` if any: one file, or an
    album of several (the text is the first part's caption). forward: `channel` forwards the
    message `source` (a label). edit: the message `source` gets `text`. delete: the message `source`
    is deleted. say: the subscriber writes `text` to the bot.
    """

    at: str
    kind: EventKind
    channel: str = ""
    text: str = ""
    label: str = ""
    source: str = ""
    files: tuple[FileSpec, ...] = ()

    @property
    def when(self) -> datetime:
        """The event's time in UTC."""
        day, _, clock = self.at.rpartition(" ")
        hours, minutes = clock.split(":")
        return DAY + timedelta(days=int(day or 0), hours=int(hours), minutes=int(minutes))


@dataclass(frozen=True, slots=True)
class Subscriber:
    """The simulated person who reads the alerts: a user with a private chat to the bot."""

    first_name: str
    username: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """Channels, the subscriber and the timeline of one demo day."""

    channels: tuple[ChannelSpec, ...]
    subscriber: Subscriber
    events: tuple[Event, ...]
    begins: datetime
    ends: datetime

    @property
    def world_start(self) -> datetime:
        """Where the simulated clock starts: a minute before the first event (history included)."""
        first = min((e.when for e in self.events), default=self.begins)
        return min(first, self.begins) - timedelta(minutes=1)

    def channel(self, key: str) -> ChannelSpec:
        """The channel with this key."""
        for spec in self.channels:
            if spec.key == key:
                return spec
        raise KeyError(key)


CHANNELS = (
    ChannelSpec("mfa", "mfa_freedonia", "Ministry of Foreign Affairs of Freedonia",
                "Official channel of the Ministry of Foreign Affairs of Freedonia / Официальный канал МИД "
                "Фридонии (fictional, chanwatch demo)", audience=24_000),
    ChannelSpec("ca", "freedonia_in_canada", "Freedonia in Canada 🇨🇦",
                "The Embassy of Freedonia in Canada / Посольство Фридонии в Канаде (fictional)",
                audience=3_200, source="web"),
    ChannelSpec("ke", "freedonia_in_kenya", "Freedonia in Kenya 🇰🇪",
                "The Embassy of Freedonia in Kenya / Посольство Фридонии в Кении (fictional)"),
    ChannelSpec("br", "freedonia_in_brazil", "Freedonia in Brazil 🇧🇷",
                "The Embassy of Freedonia in Brazil / Посольство Фридонии в Бразилии (fictional)",
                audience=900),
)

SUBSCRIBER = Subscriber("Dana", "dana_desk", ("sanctions OR санкции", "arctic OR арктика", "#Africa"))

_MFA_SITE = "https://mfa.freedonia.example"

EVENTS: tuple[Event, ...] = (
    # --- the day before: what the first poll finds -------------------------------------------------
    Event("-1 15:00", "post", "mfa", label="m_talks", text=(
        "📅 On December 16, Foreign Minister Victor Albescu will hold talks with the Foreign Minister of "
        "Ruritania, Elena Marsh, who is in Freedonia on an official visit.\n\n#FreedoniaRuritania")),
    Event("-1 16:30", "post", "ca", label="c_credentials", text=(
        "🇨🇦 Ambassador Petra Dunmore presented copies of her credentials to the Chief of Protocol of "
        "Global Affairs Canada.\n\n#FreedoniaCanada")),
    Event("-1 17:10", "post", "ke", label="k_museum", text=(
        "🇰🇪 Embassy staff visited the Nairobi National Museum, which hosts an exhibition of Freedonian "
        "folk crafts until the end of January.\n\n#FreedoniaKenya")),
    Event("-1 18:45", "post", "br", label="b_seminar", text=(
        "🇧🇷 The Embassy held a seminar on university exchanges in São Paulo. / В Сан-Паулу прошёл "
        "семинар посольства об академических обменах.\n\n#FreedoniaBrazil")),
    # --- the demo day --------------------------------------------------------------------------------
    # The subscriber checks her saved searches (a bot can only write to people who wrote to it first).
    Event("07:00", "say", text="/rules"),
    Event("07:05", "post", "mfa", label="m_briefing_note", text=(
        "🎙 On December 17, Foreign Ministry Spokesperson Irina Koval will hold her weekly briefing on "
        "current foreign policy issues.\n\nMedia accreditation closes today at 18:00.\n\n#briefing"),
          files=(FileSpec("briefing_room.jpg", 6_000),)),
    Event("07:40", "post", "mfa", label="m_sanctions_ru", text=(
        "🇨🇦 **Заявление МИД Фридонии в связи с новыми санкциями Канады**\n\n"
        "Оттава объявила очередной пакет односторонних санкций против фридонских компаний и граждан. "
        "Подобные шаги не имеют ничего общего с международным правом и не останутся без ответа.\n\n"
        "☝️ Никакое давление никогда не меняло и не изменит курс Фридонии.\n\n#Канада #санкции")),
    Event("07:45", "post", "mfa", label="m_sanctions_en", text=(
        "🇨🇦 **Statement by the Ministry of Foreign Affairs of Freedonia on Canada's new sanctions**\n\n"
        "Ottawa has announced yet another package of unilateral sanctions against Freedonian companies "
        "and citizens. Such steps have nothing to do with international law and will not go "
        "unanswered.\n\n☝️ Pressure has never changed Freedonia's course and never will.\n\n"
        f"[Read in full]({_MFA_SITE}/statements/1216)\n\n#Canada #sanctions")),
    Event("08:20", "forward", "ca", source="m_sanctions_en"),
    Event("08:35", "forward", "ca", source="m_sanctions_ru"),
    Event("09:10", "forward", "ke", source="m_sanctions_en"),
    Event("09:30", "forward", "br", source="m_sanctions_en"),
    Event("10:00", "post", "mfa", label="m_arctic", text=(
        "📰 **Article by Foreign Minister Victor Albescu for the Northern Review: \"The Arctic must remain "
        "a territory of dialogue\"**\n\n✍️ The Arctic is our common home. Freedonia has always stood for "
        "pragmatic cooperation among all states of the region: on shipping, science, search and rescue "
        "and the protection of its fragile nature. <...>\n\n👉 Turning the High North into an arena of "
        "bloc confrontation serves no one's interests.\n\n"
        f"[Read in full]({_MFA_SITE}/articles/arctic-dialogue)\n\n#Arctic")),
    Event("10:30", "forward", "ca", source="m_arctic"),
    Event("11:00", "post", "ke", label="k_partnership", text=(
        "🇰🇪 **Ambassador Lucas Brenner met with Kenya's Principal Secretary for Foreign Affairs**\n\n"
        "The sides discussed preparations for the Freedonia–Africa Partnership Forum and cooperation in "
        "agriculture, education and health.\n\n🤝 The conversation was held in a friendly and "
        "constructive atmosphere.\n\n#Africa #FreedoniaKenya")),
    Event("11:40", "post", "mfa", label="m_africa_ru", text=(
        "🌍 **Статья Министра иностранных дел Фридонии В.Албеску «Фридония – Африка: новые горизонты "
        "старой дружбы»**\n\n✍️ На этой неделе Найроби примет министерскую конференцию Форума "
        "партнёрства Фридония – Африка. Впервые она пройдёт на африканском континенте.\n\n"
        "Мы поддерживаем стремление африканских стран самостоятельно определять пути своего развития "
        "и выбирать партнёров.\n\n#Африка")),
    Event("11:45", "post", "mfa", label="m_africa_en", text=(
        "🌍 **Article by Foreign Minister Victor Albescu for African media: \"Freedonia – Africa: New "
        "Horizons for Old Friends\"**\n\n✍️ This week Nairobi hosts the ministerial conference of the "
        "Freedonia–Africa Partnership Forum, for the first time on the African continent.\n\n"
        "We support the right of African countries to choose their own path of development and their "
        "own partners.\n\n#Africa")),
    Event("12:15", "forward", "ke", source="m_africa_en"),
    Event("12:50", "forward", "br", source="m_africa_en"),
    Event("13:10", "post", "br", label="b_education", text=(
        "🇧🇷 **Посол Фридонии в Бразилии Ана Руис приняла участие в семинаре о сотрудничестве в области "
        "высшего образования**\n\nОбсуждались совместные программы университетов и стипендии для "
        "бразильских студентов.\n\n#ФридонияБразилия")),
    Event("13:30", "post", "ca", label="c_consular", text=(
        "🇨🇦 **Consular section: holiday hours**\n\nThe consular section of the Embassy will be closed "
        "from December 24 to January 2. For urgent passport matters, write to "
        "consular@freedonia-embassy.example.\n\n#consular")),
    Event("14:10", "post", "mfa", label="m_arctic_ru", text=(
        "💬 **Официальный представитель МИД Фридонии И.Коваль — о ситуации в Арктике:**\n\n"
        "• Наращивание военной активности внерегиональных государств в Арктике ведёт к росту "
        "напряжённости.\n• Фридония выступает за сохранение региона территорией мира и "
        "сотрудничества.\n\n#Арктика")),
    Event("14:40", "forward", "ca", source="m_arctic_ru"),
    Event("15:20", "edit", "ca", source="c_consular", text=(
        "🇨🇦 **Consular section: holiday hours**\n\nThe consular section of the Embassy will be closed "
        "from December 24 to January 2. For urgent passport matters, write to "
        "consular@freedonia-embassy.example.\n\n❗️ Because of the sanctions imposed by Ottawa, consular "
        "fees can no longer be paid by bank card; please bring cash.\n\n#consular")),
    Event("15:45", "post", "br", label="b_reception_typo", text=(
        "🇧🇷 The reception on the occasion of Freedonia's National Day will be held on December 81 at "
        "the Embassy in Brasília.\n\n#FreedoniaBrazil")),
    Event("16:05", "delete", "br", source="b_reception_typo"),
    Event("16:10", "post", "br", label="b_reception", text=(
        "🇧🇷 The reception on the occasion of Freedonia's National Day will be held on December 18 at "
        "the Embassy in Brasília. Invitations have been sent.\n\n#FreedoniaBrazil"),
          files=(FileSpec("reception_hall.jpg", 4_000), FileSpec("reception_flags.jpg", 3_500),
                 FileSpec("reception_guests.jpg", 5_000))),
    Event("17:00", "post", "mfa", label="m_kenya_call", text=(
        "🇰🇪 Foreign Minister Victor Albescu had a telephone conversation with Kenya's Cabinet Secretary "
        "for Foreign Affairs. The ministers discussed the agenda of the Freedonia–Africa Partnership "
        "Forum and the opening of a direct flight between the two capitals.\n\n#FreedoniaKenya #Africa")),
    Event("17:20", "forward", "ke", source="m_kenya_call"),
    Event("18:00", "say", text="/search sanctions OR санкции"),
    Event("19:00", "post", "mfa", label="m_brazil_ru", text=(
        "🇧🇷 **Министр иностранных дел Фридонии В.Албеску провёл переговоры с министром иностранных дел "
        "Бразилии**\n\nСтороны отметили рост товарооборота и договорились подготовить межправительственное "
        "соглашение о научно-техническом сотрудничестве.\n\n#ФридонияБразилия")),
    Event("19:15", "forward", "br", source="m_brazil_ru"),
    Event("19:30", "post", "ca", label="c_hockey", text=(
        "🇨🇦🏒 Embassy staff joined a charity hockey match in Ottawa. The proceeds go to a children's "
        "hospital.\n\n#FreedoniaCanada")),
    Event("20:15", "post", "mfa", label="m_eu_sanctions", text=(
        "📄 **Comment by the Ministry on the European Union's new package of sanctions**\n\nBrussels "
        "continues to harm European businesses by cutting them off from partners they have worked with "
        "for decades. Freedonia will take the measures it deems necessary.\n\n#sanctions"),
          files=(FileSpec("comment_eu_sanctions.pdf", 9_000),)),
    Event("21:00", "forward", "ke", label="k_eu_sanctions", source="m_eu_sanctions"),
    Event("21:30", "forward", "ca", source="k_eu_sanctions"),
    Event("22:00", "post", "br", label="b_greetings", text=(
        "🇧🇷 Поздравляем соотечественников в Бразилии с наступающими праздниками! Консульский отдел "
        "работает в обычном режиме до 23 декабря.\n\n#ФридонияБразилия")),
)

SCENARIO = Scenario(CHANNELS, SUBSCRIBER, EVENTS, DAY + DAY_BEGINS, DAY + DAY_ENDS)


def validate(scenario: Scenario) -> None:
    """Check the timeline is ordered and every reference resolves; raise ValueError otherwise."""
    keys = {c.key for c in scenario.channels}
    labels: set[str] = set()
    previous = None
    for event in scenario.events:
        if previous is not None and event.when < previous:
            raise ValueError(f"events out of order at {event.at}")
        previous = event.when
        if event.kind in ("post", "forward", "edit", "delete") and event.channel not in keys:
            raise ValueError(f"{event.at}: unknown channel {event.channel!r}")
        if event.kind in ("forward", "edit", "delete") and event.source not in labels:
            raise ValueError(f"{event.at}: unknown message {event.source!r}")
        if event.label:
            if event.label in labels:
                raise ValueError(f"{event.at}: label {event.label!r} used twice")
            labels.add(event.label)
        if event.kind in ("post", "edit", "say") and not event.text:
            raise ValueError(f"{event.at}: {event.kind} without text")
        if event.files and event.kind != "post":
            raise ValueError(f"{event.at}: only a post carries files")
    if scenario.events and scenario.events[-1].when > scenario.ends:
        raise ValueError("an event falls after the end of the day")

