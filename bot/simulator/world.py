"""The simulated Telegram: users, bots, channels, groups, messages, update streams, a settable clock.

Plain, deterministic Python. Tests and the demo mutate it directly (``post``, ``edit``, ``delete``,
``say``...) and real ``TelegramClient`` objects talk to it through :mod:`bot.simulator.sender`.
Everything a client receives is a real Telethon TL object, built here and round-tripped through
TL bytes by the sender. Tests make chosen requests fail with ``inject_error``/``inject_flood``,
random ones with ``chaos`` (see :mod:`bot.simulator.chaos`), and read what clients did from
``requests``, ``requests_by_account``, ``requests_by_dc``, ``logins`` and ``reconnects``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import itertools
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telethon.tl import TLObject, types

from . import engagement as _engagement
from . import media as _media
from .chaos import CHAOS_KINDS, TELETHON_RETRY_DELAY, Chaos, Stall
from .tl import (
    SimConnectionDropped,
    SimConnectionLost,
    SimRpcError,
    SimulatorUnsupported,
    clone,
    make,
    request_name,
    utc,
)

if TYPE_CHECKING:
    from telethon import TelegramClient

    from .sender import SimSender

DEFAULT_NOW = dt.datetime(2025, 12, 1, 12, 0, tzinfo=dt.UTC)
_USERNAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{3,31}$")


@dataclass(eq=False)
class SimUser:
    """A Telegram account (user or bot) and the server-side state Telegram keeps for it."""

    id: int
    access_hash: int
    first_name: str
    last_name: str = ""
    username: str | None = None
    bot: bool = False
    phone: str | None = None
    bot_token: str | None = None
    #: Bots in groups see only commands, mentions and replies to them (Telegram's privacy mode).
    privacy_mode: bool = True
    bot_commands: list[Any] = field(default_factory=list)
    #: Ids of users this account has blocked.
    blocked: set[int] = field(default_factory=set)
    # -- common message box (private chats and basic groups): per-account ids and pts
    pts: int = 1
    next_msg_id: int = 1
    box: dict[int, types.Message] = field(default_factory=dict)
    update_log: list[tuple[int, int, TLObject]] = field(default_factory=list)
    #: Highest read message id per channel id.
    read_marks: dict[int, int] = field(default_factory=dict)
    #: The random ids of the messages this account sent: Telegram refuses a repeat from the same
    #: sender (RANDOM_ID_DUPLICATE), whichever of its sessions sends it.
    sent_random_ids: set[int] = field(default_factory=set)

    @property
    def peer(self) -> types.PeerUser:
        """The ``PeerUser`` of this account."""
        return types.PeerUser(self.id)

    @property
    def input_peer(self) -> types.InputPeerUser:
        """An ``InputPeerUser`` with this account's access hash."""
        return types.InputPeerUser(self.id, self.access_hash)


@dataclass(eq=False)
class SimChannel:
    """A broadcast channel (or megagroup): its messages, channel pts, members and admins."""

    id: int
    access_hash: int
    title: str
    username: str | None
    date: dt.datetime
    broadcast: bool = True
    megagroup: bool = False
    about: str = ""
    signatures: bool = False
    private: bool = False
    creator: int | None = None
    admins: set[int] = field(default_factory=set)
    members: set[int] = field(default_factory=set)
    messages: dict[int, types.Message] = field(default_factory=dict)
    #: Which account posted a message through the API (``out`` is True for that viewer).
    authors: dict[int, int] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    #: When each deleted message was deleted (World time): the true moment a recorded interval holds.
    deleted_at: dict[int, dt.datetime] = field(default_factory=dict)
    next_id: int = 1
    pts: int = 1
    update_log: list[tuple[int, int, TLObject]] = field(default_factory=list)
    old_usernames: list[str] = field(default_factory=list)

    @property
    def peer(self) -> types.PeerChannel:
        """The ``PeerChannel`` of this channel."""
        return types.PeerChannel(self.id)

    @property
    def input_peer(self) -> types.InputPeerChannel:
        """An ``InputPeerChannel`` with the channel's access hash."""
        return types.InputPeerChannel(self.id, self.access_hash)

    @property
    def input_channel(self) -> types.InputChannel:
        """An ``InputChannel`` with the channel's access hash."""
        return types.InputChannel(self.id, self.access_hash)

    @property
    def marked_id(self) -> int:
        """Telethon's "marked" id (``-100…``), as ``utils.get_peer_id`` gives."""
        return int(f"-100{self.id}")

    def history(self) -> list[types.Message]:
        """Current (not deleted) messages, oldest first."""
        return [self.messages[i] for i in sorted(self.messages)]

    def can_read(self, account_id: int | None) -> bool:
        """Public channels are readable by anyone; private ones by members and admins only."""
        return not self.private or account_id in self.members or account_id in self.admins \
            or account_id == self.creator

    def can_post(self, account_id: int) -> bool:
        """Broadcast channels accept posts from admins; megagroups from members too."""
        if account_id == self.creator or account_id in self.admins:
            return True
        return self.megagroup and account_id in self.members


@dataclass(eq=False)
class SimChat:
    """A basic group: every member keeps its own copy of each message, with its own id."""

    id: int
    title: str
    members: list[int]
    date: dt.datetime
    version: int = 1

    @property
    def peer(self) -> types.PeerChat:
        """The ``PeerChat`` of this group."""
        return types.PeerChat(self.id)


@dataclass(eq=False)
class ChatLogEntry:
    """One message in a private chat or basic group, as the World saw it (for test assertions)."""

    sender_id: int
    #: The other user (private chat) or the group id.
    peer_id: int
    is_group: bool
    text: str
    date: dt.datetime
    entities: list[Any] = field(default_factory=list)
    media: Any = None
    reply_markup: Any = None
    fwd_from: Any = None
    reply_to: ChatLogEntry | None = None
    edit_date: dt.datetime | None = None
    deleted: bool = False
    #: Message id of this message in each participant's box: ``{account_id: msg_id}``.
    ids: dict[int, int] = field(default_factory=dict)

    def involves(self, entity_id: int) -> bool:
        """Whether this message belongs to the chat of ``entity_id`` (a user or a group id)."""
        if self.is_group:
            return entity_id == self.peer_id
        return entity_id in (self.sender_id, self.peer_id)

    @property
    def buttons(self) -> list[list[Any]]:
        """Rows of inline/reply keyboard buttons, or ``[]``."""
        rows = getattr(self.reply_markup, "rows", None) or []
        return [list(r.buttons) for r in rows]


@dataclass(eq=False)
class InjectedError:
    """An error planted by :meth:`World.inject_error` (or :meth:`World.inject_flood`): it fails the
    requests of one type that ``when`` accepts, skipping the first ``after`` of them, ``times`` times."""

    #: Schema name of the request type (``messages.GetHistory``).
    request: str
    #: ``(code, message)`` of an RPC error, the ``OSError`` of a lost connection, or ``"drop"`` /
    #: ``"timeout"`` (a dropped connection re-established, a request never answered).
    error: tuple[int, str] | OSError | str
    times: int
    after: int
    when: Callable[[Any], bool] | None
    #: Requests of this type accepted by ``when`` since the injection (failed ones included).
    matched: int = 0
    #: Requests this injection failed so far.
    fired: int = 0

    @property
    def done(self) -> bool:
        """Whether it failed its ``times`` requests (and no longer affects any)."""
        return self.fired >= self.times


class World:
    """The whole simulated Telegram. See the module docstring and docs/architecture.md."""

    def __init__(self, *, seed: int = 1, now: dt.datetime = DEFAULT_NOW) -> None:
        #: The World's seeded random generator. Every random value of the simulation (access hashes,
        #: query ids, login codes, SRP secrets) comes from it, so one seed replays the same World.
        self.rng = random.Random(seed)
        self.seed = seed
        self._now = utc(now)
        self.users: dict[int, SimUser] = {}
        self.channels: dict[int, SimChannel] = {}
        self.chats: dict[int, SimChat] = {}
        self._usernames: dict[str, SimUser | SimChannel] = {}
        self._user_ids = iter(range(100_001, 10**9))
        self._bot_ids = iter(range(7_000_000_001, 8 * 10**9))
        self._channel_ids = iter(range(1_100_000_001, 2 * 10**9))
        self._chat_ids = iter(range(900_001, 10**6))
        self._log: list[ChatLogEntry] = []
        #: Requests received, by schema name (``messages.GetHistory``); benchmarks read this.
        self.requests: collections.Counter[str] = collections.Counter()
        #: The same, per account id of the session that sent them (``None`` for not-logged-in
        #: sessions: a login request counts there, since its session is not logged in yet).
        self.requests_by_account: dict[int | None, collections.Counter[str]] = \
            collections.defaultdict(collections.Counter)
        #: The same, per DC of the session that sent them (an exported sender's DC, else the home DC 2).
        self.requests_by_dc: dict[int, collections.Counter[str]] = \
            collections.defaultdict(collections.Counter)
        #: Authorizations ``auth.ExportAuthorization`` gave out and no ``auth.ImportAuthorization``
        #: used yet: their bytes -> (account id, the DC they are for).
        self.exported_authorizations: dict[bytes, tuple[int, int]] = {}
        #: Successful logins through the API, per account id: a bot's ``auth.ImportBotAuthorization``
        #: (``client.start(bot_token=…)``), a user's ``auth.SignIn``/``auth.CheckPassword``. Sessions
        #: attached already logged in (``connect_client(as_user=…)``, a saved session) are not logins.
        self.logins: collections.Counter[int] = collections.Counter()
        #: Telegram sometimes lets a bot name a user it has seen with access hash 0
        #: (``InputUser(id, 0)``). False (the default): the hash must match, 0 is PEER_ID_INVALID.
        #: True: a bot's 0 hash is accepted for any existing user (users' 0 hashes never are).
        self.accept_empty_access_hash_from_bots = False
        #: Telegram gives each account its own access hash for a channel, valid for that account only.
        #: False (the default, as most tests need one hash): a channel has one hash for everybody
        #: (``SimChannel.access_hash``, what ``input_peer()`` carries). True: each account gets and must
        #: send its own (:meth:`channel_hash`); another account's is CHANNEL_INVALID.
        self.per_account_access_hashes = False
        #: Injected errors still to fire, in injection order (the earliest due one fires first).
        self._injected: list[InjectedError] = []
        #: The random faults of :meth:`chaos`, while one is set.
        self._chaos: Chaos | None = None
        #: Clients waiting on the event loop's clock because of a fault (see :meth:`stalls`).
        self._stalls: list[Stall] = []
        self._stall_waiters: list[asyncio.Future] = []
        #: Reconnections after a dropped connection, per account id (as MTProtoSender reconnects).
        self.reconnects: collections.Counter[int | None] = collections.Counter()
        #: Channel update pushes still to lose, per account id (:meth:`lose_pushes`), and those lost.
        self._pushes_to_lose: collections.Counter[int] = collections.Counter()
        self.lost_pushes: collections.Counter[int] = collections.Counter()
        self.sessions: list[SimSender] = []
        self.clients: list[TelegramClient] = []
        #: auth key id -> account id: a saved session logs in as the same account again.
        self.authorizations: dict[int, int] = {}
        self._pending_callbacks: dict[int, tuple[asyncio.Future, ChatLogEntry, int]] = {}
        #: Photos and documents by file id: what ``upload.GetFile`` serves (see :meth:`photo`).
        self.files: dict[int, _media.SimFile] = {}
        self._file_ids = itertools.count(6_000_000_000_001)
        #: Bytes ``upload.GetFile`` answered with, per file id (thumbnails included): a file
        #: downloaded once has exactly its size here.
        self.bytes_served: collections.Counter[int] = collections.Counter()
        #: GetFile requests that broke Telegram's chunk rules (each also got its 400 error).
        self.file_rule_violations: list[str] = []
        #: Posts each account's GetMessagesViews(increment=True) counted a view of: (channel, message).
        self.viewed: dict[int, set[tuple[int, int]]] = {}
        #: Read by the tests' ``world`` fixture: when False, Telethon warnings fail the test.
        self.tolerate_telethon_warnings = False
        from .handlers import Handlers  # local: handlers import this module
        self._handlers = Handlers(self)

    # -- clock -------------------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        """The World's clock (UTC, whole seconds). Dates of new messages come from here."""
        return self._now

    @now.setter
    def now(self, value: dt.datetime) -> None:
        self._now = utc(value)

    def advance(self, seconds: float = 0, **kwargs: float) -> dt.datetime:
        """Move the clock forward (``advance(60)`` or ``advance(hours=2)``) and return it."""
        self.now = self._now + dt.timedelta(seconds=seconds, **kwargs)
        return self._now

    # -- ids and hashes ----------------------------------------------------------------------

    def _access_hash(self) -> int:
        return self.rng.randrange(1, 2**63)

    def random_long(self) -> int:
        """A random signed 64-bit integer (a TL ``long``: query ids, code hashes) from :attr:`rng`."""
        return self.rng.randrange(-(2**63), 2**63)

    # -- building the world ------------------------------------------------------------------

    def add_user(self, first_name: str, *, username: str | None = None, last_name: str = "",
                 phone: str | None = None) -> SimUser:
        """A user account (a subscriber writing to the bot, or the reader session's owner)."""
        user = SimUser(id=next(self._user_ids), access_hash=self._access_hash(), first_name=first_name,
                       last_name=last_name, username=username, phone=phone)
        return self._register_user(user)

    def add_bot(self, username: str, *, first_name: str | None = None) -> SimUser:
        """A bot account; its token (``bot.bot_token``) works with ``client.start(bot_token=…)``."""
        if not username.lower().endswith("bot"):
            raise ValueError("bot usernames end in 'bot'")
        bot_id = next(self._bot_ids)
        secret = hashlib.sha256(f"{self.seed}:{bot_id}".encode()).hexdigest()[:35]
        user = SimUser(id=bot_id, access_hash=self._access_hash(), first_name=first_name or username,
                       username=username, bot=True, bot_token=f"{bot_id}:{secret}")
        return self._register_user(user)

    def _register_user(self, user: SimUser) -> SimUser:
        if user.username:
            self._claim_username(user.username, user)
        self.users[user.id] = user
        return user

    def _claim_username(self, username: str, owner: SimUser | SimChannel) -> None:
        if not _USERNAME_RE.match(username):
            raise ValueError(f"invalid username {username!r}")
        key = username.lower()
        if key in self._usernames and self._usernames[key] is not owner:
            raise ValueError(f"username {username!r} is taken")
        self._usernames[key] = owner

    def add_channel(self, username: str | None, title: str | None = None, *, owner: SimUser | None = None,
                    admins: Iterable[SimUser] = (), members: Iterable[SimUser] = (), about: str = "",
                    megagroup: bool = False, signatures: bool = False, private: bool = False,
                    date: dt.datetime | None = None) -> SimChannel:
        """A channel (broadcast unless ``megagroup``). ``username=None`` makes a private one."""
        ch = SimChannel(
            id=next(self._channel_ids), access_hash=self._access_hash(), title=title or username or "Channel",
            username=username, date=utc(date) if date else self._now, broadcast=not megagroup,
            megagroup=megagroup, about=about, signatures=signatures, private=private or username is None,
            creator=owner.id if owner else None,
        )
        if username:
            self._claim_username(username, ch)
        ch.admins.update(a.id for a in admins)
        ch.members.update(m.id for m in members)
        if owner:
            ch.members.add(owner.id)
        self.channels[ch.id] = ch
        return ch

    def add_group(self, title: str, members: Sequence[SimUser]) -> SimChat:
        """A basic group with these members (bots included)."""
        chat = SimChat(id=next(self._chat_ids), title=title, members=[m.id for m in members], date=self._now)
        self.chats[chat.id] = chat
        return chat

    def join(self, channel: SimChannel, user: SimUser) -> None:
        """Make ``user`` a member of ``channel`` (as ``channels.JoinChannel`` would)."""
        channel.members.add(user.id)
        top = max(channel.messages, default=0)
        user.read_marks.setdefault(channel.id, top)

    def add_admin(self, channel: SimChannel, user: SimUser) -> None:
        """Give ``user`` admin rights (post, edit, delete) in ``channel``."""
        channel.admins.add(user.id)
        channel.members.add(user.id)

    def block(self, user: SimUser, other: SimUser) -> None:
        """``user`` blocks ``other`` (a bot writing to them then gets USER_IS_BLOCKED)."""
        user.blocked.add(other.id)

    def make_private(self, channel: SimChannel) -> None:
        """The channel goes private: its username is released; non-members get CHANNEL_PRIVATE."""
        channel.private = True
        if channel.username:
            self._usernames.pop(channel.username.lower(), None)
            channel.old_usernames.append(channel.username)
            channel.username = None

    def make_public(self, channel: SimChannel, username: str) -> None:
        """The channel becomes public again under ``username``."""
        channel.private = False
        self._claim_username(username, channel)
        channel.username = username

    def rename(self, channel: SimChannel, new_username: str) -> None:
        """Change the channel's username: the old one stops resolving, id + access_hash still work."""
        self._claim_username(new_username, channel)
        if channel.username:
            self._usernames.pop(channel.username.lower(), None)
            channel.old_usernames.append(channel.username)
        channel.username = new_username

    def set_title(self, channel: SimChannel, title: str) -> None:
        """Rename the channel's title."""
        channel.title = title

    def resolve(self, username: str) -> SimUser | SimChannel | None:
        """What ``username`` currently points to, if anything."""
        return self._usernames.get(username.lstrip("@").lower())

    def account(self, account_id: int) -> SimUser:
        """The user or bot with this id."""
        return self.users[account_id]

    # -- injected errors, flood control and counters -----------------------------------------

    def inject_error(self, request_type: str | type, error: tuple[int, str] | OSError | str, *,
                     times: int = 1, after: int = 0, when: Callable[[Any], bool] | None = None
                     ) -> InjectedError:
        """Make requests of one type fail as a real server (or network) would fail them.

        ``error`` is an RPC error ``(code, message)``, e.g. ``(400, "CHANNEL_PRIVATE")``: the client
        gets it as a real ``RpcError`` and raises Telethon's typed error (``ChannelPrivateError``).
        Or it is an ``OSError`` instance: the connection drops and reconnecting fails, so the
        request (and that session's other pending ones) fails with it, ``client.disconnected``
        raises it, and the client is disconnected; its later requests raise ``ConnectionError``
        without reaching the World. Or ``"drop"``: the connection drops and is re-established, and
        the client sends the request again; or ``"timeout"``: the request is never answered (see
        :mod:`bot.simulator.chaos` for both).

        A request matches when it is of ``request_type`` (named as in :meth:`inject_flood`) and
        ``when(request)`` holds for the decoded request, e.g. ``lambda r: r.offset_id != 0``. This
        injection lets the first ``after`` matching requests from now through and fails the next
        ``times``. Failed requests are counted in :attr:`requests` but never reach the handlers, so
        they change nothing. When two injections are due for one request, the earlier-injected
        fails it; the other stays due. Returns the injection, whose ``fired`` counts its failures.

        Telethon handles some errors itself, as against Telegram: it retries 500-class errors after
        a 2 s sleep of the event loop's clock (which :func:`bot.simulator.drive` moves at once),
        logging a warning (which the tests' ``world`` fixture fails on), and answers
        ``*_MIGRATE_n`` by switching DC, which the simulator does not model."""
        if error in ("drop", "timeout"):
            pass
        elif not isinstance(error, OSError):
            if not (isinstance(error, tuple) and len(error) == 2 and isinstance(error[0], int)
                    and isinstance(error[1], str) and error[1]):
                raise TypeError("error must be (code, message), an OSError instance, 'drop' or 'timeout', "
                                f"not {error!r}")
        if times < 1 or after < 0:
            raise ValueError(f"times must be >= 1 and after >= 0 (got times={times}, after={after})")
        injected = InjectedError(request=self._canonical_request_name(request_type), error=error,
                                 times=times, after=after, when=when)
        self._injected.append(injected)
        return injected

    def inject_flood(self, request_type: str | type, seconds: int, times: int = 1, *, after: int = 0,
                     when: Callable[[Any], bool] | None = None) -> InjectedError:
        """The next ``times`` requests of this type raise FLOOD_WAIT_``seconds``.

        ``request_type`` is a schema name (``messages.GetHistory``), a Telethon request class
        (``GetHistoryRequest``) or its class name when that is unambiguous. ``after`` and ``when``
        pick which requests, as in :meth:`inject_error`."""
        return self.inject_error(request_type, (420, f"FLOOD_WAIT_{seconds}"), times=times, after=after,
                                 when=when)

    @staticmethod
    def _canonical_request_name(request_type: str | type) -> str:
        if isinstance(request_type, type):
            return request_name(request_type.__new__(request_type))
        if "." in request_type:
            ns, name = request_type.split(".", 1)
            return f"{ns}.{name[0].upper()}{name[1:]}".removesuffix("Request")
        from telethon.tl.alltlobjects import tlobjects
        short = request_type.removesuffix("Request")
        matches = {request_name(cls.__new__(cls)) for cls in tlobjects.values()
                   if cls.__name__ == short + "Request"}
        if len(matches) != 1:
            raise ValueError(f"ambiguous or unknown request type {request_type!r}: {sorted(matches)}")
        return matches.pop()

    def chaos(self, rate: float = 0.05, *, seed: int = 1, kinds: Sequence[str] = CHAOS_KINDS,
              requests: Iterable[str | type] | None = None, accounts: Iterable[SimUser] | None = None,
              rates: dict[str | type, float] | None = None, **options: Any) -> Chaos:
        """From now on, fail a ``rate`` share of the requests, at random, as Telegram and the network
        fail them: flood waits (``flood``), transient 500-class errors (``rpc``), a connection that
        drops with the request in flight and is re-established (``drop``), a request never answered
        (``timeout``). See :mod:`bot.simulator.chaos` for what each does and how the choice is seeded.

        ``requests`` (request types, named as in :meth:`inject_flood`) and ``accounts`` limit which
        requests may fail; ``rates`` gives request types a rate of their own (a bot sends few
        requests); ``options`` set :class:`Chaos` fields (flood ranges, burst share). Errors
        planted with :meth:`inject_error` fire first. Returns the :class:`Chaos`, which counts what it
        did (``injected``, ``faults``) and ends with ``stop()``; a new call replaces it."""
        names = None if requests is None else frozenset(self._canonical_request_name(r) for r in requests)
        ids = None if accounts is None else frozenset(a.id for a in accounts)
        own = {self._canonical_request_name(r): v for r, v in (rates or {}).items()}
        self._chaos = Chaos(rate=rate, seed=seed, kinds=tuple(kinds), requests=names, accounts=ids,
                            rates=own, **options)
        return self._chaos

    def stalls(self, now: float | None = None) -> list[Stall]:
        """Clients still held by a fault at loop time ``now`` (default: the running loop's): a
        Telethon retry sleep not over yet, or a request no client has given up on."""
        now = asyncio.get_running_loop().time() if now is None else now
        self._stalls = [s for s in self._stalls if not s.over(now)]
        return list(self._stalls)

    def next_stall(self) -> asyncio.Future:
        """A future resolved with the next :class:`Stall` a fault starts."""
        waiter = asyncio.get_running_loop().create_future()
        self._stall_waiters = [w for w in self._stall_waiters if not w.done()]
        self._stall_waiters.append(waiter)
        return waiter

    def _stall(self, stall: Stall) -> None:
        self._stalls.append(stall)
        waiters, self._stall_waiters = self._stall_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(stall)

    def _inflict(self, kind: str, name: str, detail: str) -> Any:
        """Answer (or not) as the chaos decided; see :mod:`bot.simulator.chaos`."""
        loop = asyncio.get_running_loop()
        if kind == "flood":
            raise SimRpcError(420, detail)
        if kind == "rpc":
            code, message = detail.split(" ", 1)
            self._stall(Stall("rpc", name, until=loop.time() + TELETHON_RETRY_DELAY))
            raise SimRpcError(int(code), message)
        if kind == "drop":
            if detail == "lost":  # Telethon's reconnects fail: the error of its last attempt
                raise SimConnectionLost(OSError(101, "Network is unreachable"))
            raise SimConnectionDropped()
        held: asyncio.Future = loop.create_future()
        self._stall(Stall("timeout", name, held=held))
        return held

    def is_held(self, answer: Any) -> bool:
        """Whether ``answer`` (a future from :meth:`handle`) is a request the World never answers."""
        return any(s.held is answer for s in self._stalls)

    def reset_requests(self) -> None:
        """Forget the request and login counters (e.g. after connecting the clients)."""
        self.requests.clear()
        self.requests_by_account.clear()
        self.requests_by_dc.clear()
        self.logins.clear()

    def _take_injected(self, name: str, request: TLObject) -> InjectedError | None:
        """The injected error that fails this request, if any. Every injection the request matches
        counts it towards its ``after``, whichever one fires."""
        chosen = None
        for injected in self._injected:
            if injected.request != name or (injected.when is not None and not injected.when(request)):
                continue
            injected.matched += 1
            if chosen is None and injected.matched > injected.after:
                chosen = injected
        if chosen is not None:
            chosen.fired += 1
            if chosen.done:
                self._injected.remove(chosen)
        return chosen

    # -- entrypoint for senders --------------------------------------------------------------

    def handle(self, session: SimSender, request: TLObject) -> Any:
        """Answer one decoded, unwrapped request for ``session``. May return a Future (callbacks).

        The request is counted first; then an injected error due for it is raised (SimRpcError, or
        SimConnectionLost for an OSError) instead of answering, else a fault the :meth:`chaos`
        chooses (SimRpcError, SimConnectionDropped, or a future never resolved)."""
        name = request_name(request)
        account = session.account
        self.requests[name] += 1
        self.requests_by_account[account.id if account else None][name] += 1
        self.requests_by_dc[session.dc][name] += 1
        injected = self._take_injected(name, request)
        if injected is not None:
            if isinstance(injected.error, OSError):
                raise SimConnectionLost(injected.error)
            if isinstance(injected.error, str):
                return self._inflict(injected.error, name, injected.error)
            code, message = injected.error
            if abs(code) >= 500:  # Telethon sleeps before it retries: a stall for `drive`
                return self._inflict("rpc", name, f"{code} {message}")
            raise SimRpcError(code, message)
        if self._chaos is not None:
            fault = self._chaos.decide(account.id if account else None, name, request)
            if fault is not None:
                return self._inflict(fault.kind, name, fault.detail)
        return self._handlers.dispatch(session, request)

    # -- TL rendering ------------------------------------------------------------------------

    def user_tl(self, user: SimUser, viewer: SimUser | None) -> types.User:
        """The ``User`` object ``viewer`` gets for ``user``."""
        return make(
            types.User, id=user.id, is_self=viewer is user, bot=user.bot or None,
            access_hash=user.access_hash, first_name=user.first_name, last_name=user.last_name or None,
            username=user.username,
            phone=user.phone if viewer is user else None, bot_info_version=1 if user.bot else None,
            bot_nochats=False if user.bot else None,
        )

    def channel_hash(self, ch: SimChannel, account_id: int | None) -> int:
        """The access hash of ``ch`` for this account (see ``per_account_access_hashes``)."""
        if not self.per_account_access_hashes or account_id is None:
            return ch.access_hash
        return (ch.access_hash ^ (account_id * 0x9E3779B97F4A7C15)) & 0x7FFFFFFFFFFFFFFF

    def channel_tl(self, ch: SimChannel, viewer: SimUser | None) -> types.Channel | types.ChannelForbidden:
        """The ``Channel`` (or ``ChannelForbidden``) object ``viewer`` gets for ``ch``."""
        vid = viewer.id if viewer else None
        if not ch.can_read(vid):
            return make(types.ChannelForbidden, id=ch.id, access_hash=self.channel_hash(ch, vid),
                        title=ch.title, broadcast=ch.broadcast or None, megagroup=ch.megagroup or None)
        is_admin = vid is not None and (vid in ch.admins or vid == ch.creator)
        rights = make(types.ChatAdminRights, post_messages=True, edit_messages=True, delete_messages=True,
                      change_info=vid == ch.creator or None) if is_admin else None
        return make(
            types.Channel, id=ch.id, title=ch.title, photo=types.ChatPhotoEmpty(), date=ch.date,
            access_hash=self.channel_hash(ch, vid), username=ch.username, broadcast=ch.broadcast or None,
            megagroup=ch.megagroup or None, signatures=ch.signatures or None,
            creator=(vid == ch.creator) or None, left=(vid not in ch.members) or None,
            admin_rights=rights, participants_count=len(ch.members),
        )

    def chat_tl(self, chat: SimChat, viewer: SimUser | None) -> types.Chat:
        """The ``Chat`` object for a basic group."""
        return make(types.Chat, id=chat.id, title=chat.title, photo=types.ChatPhotoEmpty(),
                    participants_count=len(chat.members), date=chat.date, version=chat.version,
                    left=(viewer is None or viewer.id not in chat.members) or None)

    def render_channel_message(self, ch: SimChannel, msg: types.Message, viewer: SimUser | None
                               ) -> types.Message:
        """A copy of a channel message as ``viewer`` sees it (``out`` for its own posts)."""
        copy = clone(msg)
        if isinstance(copy, types.Message) or isinstance(copy, types.MessageService):
            copy.out = bool(viewer and ch.authors.get(msg.id) == viewer.id)
        self._fresh_media(copy)
        return copy

    def entities_for(self, messages: Iterable[Any], viewer: SimUser | None,
                     extra: Iterable[Any] = ()) -> tuple[list[Any], list[Any]]:
        """The ``users`` and ``chats`` lists Telegram attaches to an answer carrying these messages."""
        user_ids: dict[int, None] = {}
        chan_ids: dict[int, None] = {}
        chat_ids: dict[int, None] = {}

        def add_peer(peer: Any) -> None:
            if isinstance(peer, types.PeerUser):
                user_ids[peer.user_id] = None
            elif isinstance(peer, types.PeerChannel):
                chan_ids[peer.channel_id] = None
            elif isinstance(peer, types.PeerChat):
                chat_ids[peer.chat_id] = None

        for peer in extra:
            add_peer(peer)
        for m in messages:
            add_peer(getattr(m, "peer_id", None))
            add_peer(getattr(m, "from_id", None))
            fwd = getattr(m, "fwd_from", None)
            if fwd is not None:
                add_peer(fwd.from_id)
            if getattr(m, "via_bot_id", None):
                user_ids[m.via_bot_id] = None
        if viewer is not None:
            user_ids.setdefault(viewer.id, None)
        users = [self.user_tl(self.users[i], viewer) for i in user_ids if i in self.users]
        chats = [self.channel_tl(self.channels[i], viewer) for i in chan_ids if i in self.channels]
        chats += [self.chat_tl(self.chats[i], viewer) for i in chat_ids if i in self.chats]
        return users, chats

    # -- pushing updates ---------------------------------------------------------------------

    def _sessions_of(self, account_ids: Iterable[int], exclude: SimSender | None = None) -> list[SimSender]:
        wanted = set(account_ids)
        return [s for s in self.sessions
                if s.account is not None and s.account.id in wanted and s is not exclude and s.is_connected()]

    def push(self, account: SimUser, updates: TLObject, *, exclude: SimSender | None = None) -> None:
        """Deliver an ``Updates`` object to every connected session of ``account``."""
        for session in self._sessions_of([account.id], exclude):
            session.push(updates)

    def record_account_update(self, account: SimUser, build: Any, pts_count: int = 1
                              ) -> tuple[int, TLObject]:
        """Advance the account's pts and record the update ``build(pts, pts_count)`` for getDifference.

        Nothing is pushed: the caller pushes (or answers with) the returned ``(pts, update)``."""
        account.pts += pts_count
        update = build(account.pts, pts_count)
        account.update_log.append((account.pts, pts_count, update))
        return account.pts, update

    def lose_pushes(self, account: SimUser, count: int = 1) -> None:
        """Lose the next ``count`` channel update pushes to ``account``'s sessions, as a flaky network
        does: each update is still in the channel's log (so ``updates.GetChannelDifference`` returns
        it) but never reaches the client. Telethon notices the pts gap at the next push and asks for
        the difference; a push lost with nothing after it is found only by a poll.
        :attr:`lost_pushes` counts them per account."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._pushes_to_lose[account.id] += count

    def _channel_update(self, ch: SimChannel, build: Any, pts_count: int = 1,
                        exclude: SimSender | None = None) -> int:
        """Advance the channel pts, record the update and push it to members' sessions.

        ``build(pts, pts_count, viewer)`` makes the update as ``viewer`` sees it."""
        ch.pts += pts_count
        pts = ch.pts
        ch.update_log.append((pts, pts_count, build(pts, pts_count, None)))
        audience = set(ch.members) | set(ch.admins) | ({ch.creator} if ch.creator else set())
        for session in self._sessions_of(audience, exclude):
            viewer = session.account
            if self._pushes_to_lose[viewer.id] > 0:  # lost on the way: only a difference brings it
                self._pushes_to_lose[viewer.id] -= 1
                self.lost_pushes[viewer.id] += 1
                continue
            update = build(pts, pts_count, viewer)
            msgs = [update.message] if hasattr(update, "message") else []
            users, chats = self.entities_for(msgs, viewer, extra=[ch.peer])
            session.push(types.Updates(updates=[update], users=users, chats=chats, date=self._now, seq=0))
        return pts

    # -- channel content ---------------------------------------------------------------------

    def post(self, channel: SimChannel, text: str = "", *, entities: Sequence[Any] = (), media: Any = None,
             grouped_id: int | None = None, post_author: str | None = None, date: dt.datetime | None = None,
             views: int | None = 0, forwards: int | None = 0, replies: int | None = None,
             fwd_from: types.MessageFwdHeader | None = None, reply_to: int | None = None,
             reply_markup: Any = None, author: SimUser | None = None, exclude: SimSender | None = None
             ) -> types.Message:
        """Publish a message in ``channel`` (as its admins would) and push it to members.

        ``exclude`` is a session not to push to: the one whose request made the change gets it in
        its answer instead, as on Telegram."""
        msg_id = channel.next_id
        channel.next_id += 1
        msg = make(
            types.Message, id=msg_id, peer_id=channel.peer, date=utc(date) if date else self._now,
            message=text, out=False, post=channel.broadcast or None,
            from_id=author.peer if (author and channel.megagroup) else None,
            fwd_from=fwd_from,
            reply_to=make(types.MessageReplyHeader, reply_to_msg_id=reply_to) if reply_to else None,
            media=media, reply_markup=reply_markup, entities=list(entities) or None,
            views=views if channel.broadcast else None, forwards=forwards if channel.broadcast else None,
            replies=None if replies is None
            else make(types.MessageReplies, replies=replies, replies_pts=channel.pts),
            post_author=post_author, grouped_id=grouped_id,
        )
        self._file_of(media)
        channel.messages[msg_id] = msg
        if author is not None:
            channel.authors[msg_id] = author.id
        self._channel_update(
            channel,
            lambda pts, n, viewer: types.UpdateNewChannelMessage(
                self.render_channel_message(channel, msg, viewer), pts, n),
            exclude=exclude,
        )
        return msg

    def service(self, channel: SimChannel, action: Any, *, date: dt.datetime | None = None
                ) -> types.MessageService:
        """Put a service message (``types.MessageActionChannelCreate(title)``, a pin...) in ``channel``'s
        history, as Telegram does; no update is pushed."""
        msg_id = channel.next_id
        channel.next_id += 1
        msg = make(types.MessageService, id=msg_id, peer_id=channel.peer, action=action, out=False,
                   date=utc(date) if date else self._now, post=channel.broadcast or None)
        channel.messages[msg_id] = msg
        return msg

    # -- files -------------------------------------------------------------------------------

    def photo(self, data: bytes, *, w: int = 1280, h: int = 720, date: dt.datetime | None = None,
              dc_id: int = _media.HOME_DC) -> types.MessageMediaPhoto:
        """A photo whose full size (type "y", or "w" beyond 1280 px) is ``data``, with a 320 px
        thumbnail (type "m") serving smaller bytes derived from it; for ``post(..., media=…)``.
        ``dc_id`` is the DC that stores it (GetFile elsewhere answers FILE_MIGRATE_``dc_id``)."""
        file = _media.SimFile(id=next(self._file_ids), access_hash=self._access_hash(), kind="photo",
                              data=bytes(data), size=len(data), full_type=_media.full_size_type(w, h),
                              thumbs={_media.THUMB_TYPE: _media.thumb_bytes(data)},
                              dc_id=_media.check_dc(dc_id))
        self.files[file.id] = file
        return _media.photo_of(file, w=w, h=h, date=date)

    def document(self, data: bytes, *, mime_type: str = "application/octet-stream",
                 file_name: str = "file.bin", attributes: list | None = None, date: dt.datetime | None = None,
                 dc_id: int = _media.HOME_DC) -> types.MessageMediaDocument:
        """A document (a PDF, a video with ``DocumentAttributeVideo``...) whose content is ``data``,
        stored in DC ``dc_id``."""
        file = _media.SimFile(id=next(self._file_ids), access_hash=self._access_hash(), kind="document",
                              data=bytes(data), size=len(data), dc_id=_media.check_dc(dc_id))
        self.files[file.id] = file
        return _media.document_of(file, mime_type=mime_type, file_name=file_name, attributes=attributes,
                                  date=date)

    def expire_file_references(self, file_id: int | None = None) -> None:
        """Give one file (or every file) a new file reference, as Telegram does after a while: GetFile
        with the old one fails with FILE_REFERENCE_EXPIRED; messages read from now on carry the new."""
        for file in self.files.values() if file_id is None else [self.files[file_id]]:
            file.generation += 1

    def _file_of(self, media: Any) -> _media.SimFile | None:
        """The file behind a message media (registered on first sight for the module's builders)."""
        file = _media.adopt(media)
        if file is None:
            return None
        return self.files.setdefault(file.id, file)

    def _fresh_media(self, msg: Any) -> None:
        """Put the current file reference on the photo/document of a message copy about to be sent."""
        media = getattr(msg, "media", None)
        file = self._file_of(media)
        if file is not None:
            file.refresh(media.photo if isinstance(media, types.MessageMediaPhoto) else media.document)

    def serve_file(self, location: Any, offset: int, limit: int, dc_id: int = _media.HOME_DC
                   ) -> types.upload.File:
        """Answer ``upload.GetFile`` sent to DC ``dc_id``: the chunk ``offset:offset+limit`` of the
        location's file, under Telegram's rules (see :func:`bot.simulator.media.chunk_error`) and with
        its errors; FILE_MIGRATE_N (303) when the file is stored in another DC N."""
        error = _media.chunk_error(offset, limit)
        if error is not None:
            self.file_rule_violations.append(f"{error}: offset={offset} limit={limit}")
            raise SimRpcError(400, error)
        kinds = {types.InputPhotoFileLocation: "photo", types.InputDocumentFileLocation: "document"}
        kind = kinds.get(type(location))
        if kind is None:
            raise SimulatorUnsupported(f"the simulator serves no {type(location).__name__}")
        file = self.files.get(location.id)
        if file is None or file.kind != kind or file.access_hash != location.access_hash:
            raise SimRpcError(400, "FILE_ID_INVALID")
        if file.dc_id != dc_id:
            raise SimRpcError(303, f"FILE_MIGRATE_{file.dc_id}")
        if location.file_reference != file.file_reference:
            expired = file.was_reference(location.file_reference)
            raise SimRpcError(400, "FILE_REFERENCE_EXPIRED" if expired else "FILE_REFERENCE_INVALID")
        data = file.read(location.thumb_size, offset, limit)
        self.bytes_served[file.id] += len(data)
        return types.upload.File(type=types.storage.FileUnknown(), mtime=0, bytes=data)

    def album(self, channel: SimChannel, items: Sequence[tuple[str, Any]], **kwargs: Any
              ) -> list[types.Message]:
        """Post an album: ``items`` are ``(caption, media)`` pairs sharing one ``grouped_id``."""
        grouped_id = self.rng.randrange(10**17, 10**18)
        return [self.post(channel, caption, media=m, grouped_id=grouped_id, **kwargs) for caption, m in items]

    def message(self, channel: SimChannel, msg_id: int) -> types.Message | None:
        """The current message ``msg_id`` in ``channel`` (None when missing or deleted)."""
        return channel.messages.get(msg_id)

    @staticmethod
    def forward_header(orig: types.Message, source: SimChannel) -> types.MessageFwdHeader:
        """The header Telegram puts on a forward of ``orig`` (the original's header if it is a forward)."""
        if orig.fwd_from is not None:
            return clone(orig.fwd_from)
        if isinstance(orig.peer_id, types.PeerChannel) and source.broadcast:
            return make(types.MessageFwdHeader, date=orig.date, from_id=types.PeerChannel(source.id),
                        channel_post=orig.id, post_author=orig.post_author)
        return make(types.MessageFwdHeader, date=orig.date, from_id=orig.from_id or orig.peer_id)

    @staticmethod
    def hidden_forward_header(from_name: str, date: dt.datetime) -> types.MessageFwdHeader:
        """The header of a forward from a user who hides their account: only a name and a date."""
        return make(types.MessageFwdHeader, date=utc(date), from_name=from_name)

    def forward(self, src: SimChannel, msg_id: int | Sequence[int], dst: SimChannel, *,
                drop_author: bool = False, author: SimUser | None = None, exclude: SimSender | None = None
                ) -> Any:
        """Forward message(s) from ``src`` into ``dst``; returns the new message (or list of them).

        ``exclude``: a session not to push to, as in :meth:`post`."""
        ids = [msg_id] if isinstance(msg_id, int) else list(msg_id)
        new_groups: dict[int, int] = {}
        out = []
        for mid in ids:
            orig = src.messages.get(mid)
            if orig is None or not isinstance(orig, types.Message):
                raise SimRpcError(400, "MESSAGE_ID_INVALID")
            grouped = None
            if orig.grouped_id:
                grouped = new_groups.setdefault(orig.grouped_id, self.rng.randrange(10**17, 10**18))
            orig.forwards = (orig.forwards or 0) + 1 if orig.forwards is not None else orig.forwards
            out.append(self.post(
                dst, orig.message, entities=orig.entities or (),
                media=clone(orig.media) if orig.media else None,
                grouped_id=grouped, fwd_from=None if drop_author else self.forward_header(orig, src),
                author=author, exclude=exclude,
            ))
        return out[0] if isinstance(msg_id, int) else out

    def forward_hidden(self, dst: SimChannel, from_name: str, text: str, *, orig_date: dt.datetime,
                       **kwargs: Any) -> types.Message:
        """Post into ``dst`` a forward of a hidden user's message (header with ``from_name`` only)."""
        return self.post(dst, text, fwd_from=self.hidden_forward_header(from_name, orig_date), **kwargs)

    def edit(self, channel: SimChannel, msg_id: int, new_text: str, *, entities: Sequence[Any] | None = None,
             media: Any = None, date: dt.datetime | None = None,
             exclude: SimSender | None = None) -> types.Message:
        """Edit a channel message (keeps its id, sets ``edit_date``) and push the edit. ``media``
        replaces the message's media (a photo swapped for a video: Telegram's editMessage with media).

        ``exclude``: a session not to push to, as in :meth:`post`."""
        msg = channel.messages.get(msg_id)
        if msg is None:
            raise SimRpcError(400, "MESSAGE_ID_INVALID")
        msg.message = new_text
        if entities is not None:
            msg.entities = list(entities) or None
        if media is not None:
            msg.media = media
            self._file_of(media)
        msg.edit_date = utc(date) if date else self._now
        self._channel_update(
            channel,
            lambda pts, n, viewer: types.UpdateEditChannelMessage(
                self.render_channel_message(channel, msg, viewer), pts, n),
            exclude=exclude,
        )
        return msg

    def set_views(self, channel: SimChannel, msg_id: int, views: int, forwards: int | None = None) -> None:
        """Change the view (and forward) counters of a channel post (no update is pushed)."""
        msg = channel.messages[msg_id]
        msg.views = views
        if forwards is not None:
            msg.forwards = forwards

    def set_reactions(self, channel: SimChannel, msg_id: int, counts: dict[str, int]) -> None:
        """Set a channel post's reactions ({"👍": 3, "custom:<doc id>": 1, "paid": 2}; no update pushed)."""
        _engagement.set_reactions(channel, msg_id, counts)

    def grow_engagement(self, channel: SimChannel, growth: _engagement.Growth | None = None) -> None:
        """Bring the channel's posts to the views, forwards and reactions their age now gives."""
        _engagement.grow(self, channel, growth or _engagement.Growth())

    def delete(self, channel: SimChannel, msg_ids: int | Iterable[int], *,
               exclude: SimSender | None = None) -> list[int]:
        """Delete channel messages; returns the ids that existed. Pushes UpdateDeleteChannelMessages.

        ``exclude``: a session not to push to, as in :meth:`post`."""
        ids = [msg_ids] if isinstance(msg_ids, int) else list(msg_ids)
        gone = [i for i in ids if channel.messages.pop(i, None) is not None]
        if gone:
            channel.deleted.update(gone)
            channel.deleted_at.update(dict.fromkeys(gone, self.now))
            self._channel_update(
                channel,
                lambda pts, n, viewer: types.UpdateDeleteChannelMessages(channel.id, list(gone), pts, n),
                pts_count=len(gone), exclude=exclude,
            )
        return gone

    # -- private chats and groups ------------------------------------------------------------

    def _sees_group_message(self, member: SimUser, sender: SimUser, text: str,
                            reply_to: ChatLogEntry | None) -> bool:
        if member is sender or not member.bot or not member.privacy_mode:
            return True
        if text.startswith("/"):
            return True
        if member.username and f"@{member.username.lower()}" in text.lower():
            return True
        return reply_to is not None and reply_to.sender_id == member.id

    def deliver(self, sender: SimUser, target: SimUser | SimChat, text: str, *,
                entities: Sequence[Any] = (), media: Any = None, reply_markup: Any = None,
                fwd_from: types.MessageFwdHeader | None = None, reply_to: ChatLogEntry | None = None,
                exclude: SimSender | None = None) -> ChatLogEntry:
        """Put a message from ``sender`` into a private chat or group: one copy per participant,
        each with that account's next id and pts, pushed to its sessions (except ``exclude``)."""
        if isinstance(target, SimUser):
            if sender.id in target.blocked:
                raise SimRpcError(400, "USER_IS_BLOCKED")
            participants = [sender] if target is sender else [sender, target]
            entry = ChatLogEntry(sender_id=sender.id, peer_id=target.id, is_group=False, text=text,
                                 date=self._now, entities=list(entities), media=media,
                                 reply_markup=reply_markup, fwd_from=fwd_from, reply_to=reply_to)
        else:
            if sender.id not in target.members:
                raise SimRpcError(403, "CHAT_WRITE_FORBIDDEN")
            participants = [self.users[i] for i in target.members
                            if self._sees_group_message(self.users[i], sender, text, reply_to)]
            entry = ChatLogEntry(sender_id=sender.id, peer_id=target.id, is_group=True, text=text,
                                 date=self._now, entities=list(entities), media=media,
                                 reply_markup=reply_markup, fwd_from=fwd_from, reply_to=reply_to)
        for acc in participants:
            msg_id = acc.next_msg_id
            acc.next_msg_id += 1
            entry.ids[acc.id] = msg_id
        self._log.append(entry)
        for acc in participants:
            copy = self.render_private(entry, acc)
            acc.box[copy.id] = copy
            _, update = self.record_account_update(
                acc, lambda pts, n, m=copy: types.UpdateNewMessage(m, pts, n))
            users, chats = self.entities_for([copy], acc)
            for session in self._sessions_of([acc.id], exclude):
                session.push(types.Updates(updates=[update], users=users, chats=chats, date=self._now, seq=0))
        return entry

    def render_private(self, entry: ChatLogEntry, viewer: SimUser) -> types.Message:
        """The copy of a private/group message in ``viewer``'s box."""
        out = entry.sender_id == viewer.id
        if entry.is_group:
            peer: Any = types.PeerChat(entry.peer_id)
            from_id: Any = types.PeerUser(entry.sender_id)
        else:
            other = entry.peer_id if out else entry.sender_id
            peer = types.PeerUser(other)
            from_id = types.PeerUser(viewer.id) if out else None
        reply = None
        if entry.reply_to is not None and viewer.id in entry.reply_to.ids:
            reply = make(types.MessageReplyHeader, reply_to_msg_id=entry.reply_to.ids[viewer.id])
        msg = make(
            types.Message, id=entry.ids[viewer.id], peer_id=peer, date=entry.date, message=entry.text,
            out=out or None, from_id=from_id, fwd_from=clone(entry.fwd_from) if entry.fwd_from else None,
            reply_to=reply, media=clone(entry.media) if entry.media else None,
            reply_markup=clone(entry.reply_markup) if entry.reply_markup else None,
            entities=[clone(e) for e in entry.entities] or None, edit_date=entry.edit_date,
        )
        self._fresh_media(msg)
        return msg

    def entry_for(self, account: SimUser, msg_id: int) -> ChatLogEntry | None:
        """The chat-log entry behind message ``msg_id`` of ``account``'s box."""
        for entry in reversed(self._log):
            if entry.ids.get(account.id) == msg_id and not entry.deleted:
                return entry
        return None

    def edit_private(self, entry: ChatLogEntry, *, text: str | None = None,
                     entities: Sequence[Any] | None = None, reply_markup: Any = None,
                     exclude: SimSender | None = None) -> dict[int, tuple[int, Any]]:
        """Edit a private/group message in every copy; returns ``{account_id: (pts, update)}``."""
        if text is not None:
            entry.text = text
        if entities is not None:
            entry.entities = list(entities)
        entry.reply_markup = reply_markup
        entry.edit_date = self._now
        done = {}
        for acc_id in entry.ids:
            acc = self.users[acc_id]
            copy = self.render_private(entry, acc)
            acc.box[copy.id] = copy
            pts, update = self.record_account_update(
                acc, lambda pts, n, m=copy: types.UpdateEditMessage(m, pts, n))
            done[acc_id] = (pts, update)
            users, chats = self.entities_for([copy], acc)
            for session in self._sessions_of([acc_id], exclude):
                session.push(types.Updates(updates=[update], users=users, chats=chats, date=self._now, seq=0))
        return done

    def say(self, user: SimUser, to: SimUser | SimChat, text: str, *, entities: Sequence[Any] = (),
            reply_to: ChatLogEntry | None = None) -> ChatLogEntry:
        """A simulated user (no client) writes ``text`` to a bot/user or in a group."""
        return self.deliver(user, to, text, entities=entities, reply_to=reply_to)

    def chat_log(self, entity: int | SimUser | SimChat, *, with_: int | SimUser | None = None
                 ) -> list[ChatLogEntry]:
        """Messages of a user's private chats (or of a group), oldest first; ``with_`` narrows to
        the private chat with that other account."""
        eid = entity if isinstance(entity, int) else entity.id
        other = with_ if isinstance(with_, int) or with_ is None else with_.id
        return [e for e in self._log if not e.deleted and e.involves(eid)
                and (other is None or e.involves(other))]

    def click(self, user: SimUser, entry: ChatLogEntry, data: bytes) -> asyncio.Future:
        """A simulated user presses the inline button with ``data`` under a bot's message.

        Returns a future with the bot's ``BotCallbackAnswer`` (set when the bot answers)."""
        return self.callback_query(user, entry, data)

    def callback_query(self, user: SimUser, entry: ChatLogEntry, data: bytes | None) -> asyncio.Future:
        """Send ``UpdateBotCallbackQuery`` to the bot that wrote ``entry``; future of its answer."""
        bot = self.users[entry.sender_id]
        if not bot.bot or bot.id not in entry.ids:
            raise SimRpcError(400, "MSG_ID_INVALID")
        future = asyncio.get_running_loop().create_future()
        if not self._sessions_of([bot.id]):
            raise SimRpcError(400, "BOT_RESPONSE_TIMEOUT")
        query_id = self.random_long()
        self._pending_callbacks[query_id] = (future, entry, user.id)
        peer: Any = types.PeerChat(entry.peer_id) if entry.is_group else types.PeerUser(user.id)
        update = types.UpdateBotCallbackQuery(
            query_id=query_id, user_id=user.id, peer=peer, msg_id=entry.ids[bot.id],
            chat_instance=(entry.peer_id * 7919 + bot.id) % (2**62), data=data)
        users = [self.user_tl(user, bot), self.user_tl(bot, bot)]
        chats = [self.chat_tl(self.chats[entry.peer_id], bot)] if entry.is_group else []
        self.push(bot, types.Updates(updates=[update], users=users, chats=chats, date=self._now, seq=0))
        return future

    def answer_callback_query(self, query_id: int, answer: types.messages.BotCallbackAnswer) -> None:
        """The bot answers callback query ``query_id`` (``messages.SetBotCallbackAnswer``): the future
        :meth:`callback_query` returned gets ``answer``. An unknown or already answered id is
        QUERY_ID_INVALID, as on Telegram."""
        pending = self._pending_callbacks.pop(query_id, None)
        if pending is None:
            raise SimRpcError(400, "QUERY_ID_INVALID")
        future, _, _ = pending
        if not future.done():
            future.set_result(answer)

    # -- settling and shutdown ---------------------------------------------------------------

    def _busy(self) -> bool:
        for session in self.sessions:
            if session.is_busy():
                return True
        return any(not f.done() for f, _, _ in self._pending_callbacks.values())

    async def settle(self, *, spin_rounds: int = 200, quiet_rounds: int = 20, timeout: float = 60.0) -> None:
        """Run the event loop until every client has processed its pushed updates and finished
        its event handlers.

        It waits for a condition, not for time: it spins with ``asyncio.sleep(0)``, and when a
        handler stays busy for ``spin_rounds`` turns (it waits on another thread, e.g. the archive's
        aiosqlite worker) it lets the loop block in its selector until that thread's result wakes
        it. A tight ``sleep(0)`` spin would hold the GIL and starve that thread. ``timeout`` seconds
        of wall time is only a guard against a handler that truly never finishes.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = busy = 0
        while True:
            if busy < spin_rounds:
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.001)  # block in select(); a thread's call_soon_threadsafe wakes it
            if self._busy():
                quiet = 0
                busy += 1
                if loop.time() > deadline:
                    raise RuntimeError("the simulated clients did not settle (a handler waiting forever?)")
            else:
                quiet += 1
                if quiet >= quiet_rounds:
                    return

    async def close(self) -> None:
        """Disconnect every client created with :func:`connect_client` for this World, including
        those an injected OSError cut off (so their update loops end too)."""
        clients, self.clients = self.clients, []
        for client in clients:
            if client.is_connected() or getattr(client._sender, "connection_lost", None) is not None:
                await client.disconnect()
