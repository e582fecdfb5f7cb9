"""The cut between Telethon and the World: a fake ``MTProtoSender`` installed as ``client._sender``.

``send()`` serialises each request to TL bytes and parses it back, lets the World answer, then
serialises the answer and parses it with the request's own ``read_result`` — the same path a
real ``RpcResult`` takes in ``MTProtoSender._handle_rpc_result``. Errors become the exceptions
``telethon.errors.rpc_message_to_error`` builds. Pushed updates go into the client's
``_updates_queue``, exactly where ``MTProtoSender._handle_update`` puts them.

``attach`` also makes the senders Telethon borrows for other DCs (a file stored elsewhere) simulated:
the client's ``_create_exported_sender`` builds a SimSender bound to that DC, and the real
``auth.ExportAuthorization``/``auth.ImportAuthorization`` exchange logs it in.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from telethon import TelegramClient, functions
from telethon.crypto import AuthKey
from telethon.network.mtprotosender import MTProtoSender
from telethon.sessions import StringSession
from telethon.sessions.abstract import Session
from telethon.tl import TLObject
from telethon.tl.alltlobjects import LAYER

from .media import HOME_DC, check_dc
from .tl import (
    SimConnectionDropped,
    SimConnectionLost,
    SimRpcError,
    clone,
    decode,
    encode_result,
    read_result,
    to_error,
    unwrap,
)

if TYPE_CHECKING:
    from .world import SimUser, World

_log = logging.getLogger(__name__)

#: Dummy API credentials: never sent anywhere.
SIM_API_ID = 1
SIM_API_HASH = "00000000000000000000000000000000"


class SimSender(MTProtoSender):
    """An ``MTProtoSender`` whose "network" is a :class:`World` in the same process.

    Subclassing keeps every attribute Telethon may touch (``auth_key``, ``_updates_queue``,
    ``_store_own_updates``…); the methods that would use sockets are overridden."""

    def __init__(self, world: World, client: TelegramClient, account: SimUser | None, *,
                 exported_dc: int | None = None) -> None:
        auth_key = client.session.auth_key
        if exported_dc is not None:  # a new key of its own, logged in by auth.ImportAuthorization
            auth_key = AuthKey(hashlib.sha256(f"export:{id(client)}:{exported_dc}".encode()).digest() * 8)
        elif account is not None:
            auth_key = world_auth_key(world, account)
            world.authorizations[auth_key.key_id] = account.id
        elif auth_key is not None and auth_key.key and auth_key.key_id in world.authorizations:
            account = world.users[world.authorizations[auth_key.key_id]]
        else:
            auth_key = AuthKey(hashlib.sha256(f"anon:{id(client)}".encode()).digest() * 8)
        # an exported sender, like Telethon's own, has no updates queue: what it is pushed is dropped
        super().__init__(auth_key, loggers=client._log,
                         updates_queue=client._updates_queue if exported_dc is None else None,
                         auth_key_callback=None, auto_reconnect_callback=None)
        #: The DC this session talks to: the home DC, or the one it was exported to.
        self.dc = HOME_DC if exported_dc is None else check_dc(exported_dc)
        self.world = world
        self.client = client
        self.account = account
        self._sim_connected = False
        self._sim_disconnected: asyncio.Future | None = None
        self._sim_pending: set[asyncio.Future] = set()
        #: Pending requests the World holds unanswered (a chaos ``timeout``): never "busy".
        self._sim_held: set[asyncio.Future] = set()
        #: Reconnection callbacks running (``_auto_reconnect_callback``, None unless one is set).
        self._sim_callbacks: set[asyncio.Task] = set()
        #: Times this session reconnected after a dropped connection.
        self.reconnects = 0
        #: The error the connection was lost with (an injected OSError), until the client disconnects.
        self.connection_lost: OSError | None = None

    # -- identity ----------------------------------------------------------------------------

    def login(self, account: SimUser) -> None:
        """Bind this session (its auth key) to ``account`` — what auth.ImportBotAuthorization does —
        and count the login in ``World.logins``."""
        self.account = account
        self.world.authorizations[self.auth_key.key_id] = account.id
        self.world.logins[account.id] += 1

    def authorize(self, account: SimUser) -> None:
        """Bind this session to ``account`` without a login: what auth.ImportAuthorization does."""
        self.account = account
        self.world.authorizations[self.auth_key.key_id] = account.id

    def logout(self) -> None:
        """Forget the session's authorization."""
        self.world.authorizations.pop(self.auth_key.key_id, None)
        self.account = None

    # -- connection --------------------------------------------------------------------------

    async def connect(self, connection: Any) -> bool:
        """Mark connected; ``connection`` (a Telethon Connection object) is kept but never opened."""
        if self._sim_connected:
            return False
        self._connection = connection
        self.connection_lost = None
        self._sim_connected = True
        self._user_connected = True
        self._sim_disconnected = asyncio.get_running_loop().create_future()
        if self not in self.world.sessions:
            self.world.sessions.append(self)
        return True

    def is_connected(self) -> bool:
        """Whether the client connected and has not disconnected."""
        return self._sim_connected

    def _transport_connected(self) -> bool:
        return self._sim_connected

    async def disconnect(self) -> None:
        """Disconnect: pending requests fail with ConnectionError, the World stops pushing."""
        self.connection_lost = None
        await self._disconnect()

    async def _disconnect(self, error: BaseException | None = None) -> None:
        self._close(error)

    def lose_connection(self, error: OSError) -> None:
        """The connection drops and reconnecting fails (an injected OSError): what MTProtoSender does
        when it gives up. Pending requests fail with ``error``, ``disconnected`` raises it, and the
        client is no longer connected."""
        if self._sim_connected:
            self.connection_lost = error
        self._close(error)

    def _close(self, error: BaseException | None) -> None:
        if not self._sim_connected:
            return
        self._sim_connected = False
        self._user_connected = False
        if self in self.world.sessions:
            self.world.sessions.remove(self)
        for fut in list(self._sim_pending):
            if not fut.done():
                fut.set_exception(error or ConnectionError(
                    "Connection to Telegram failed (simulator disconnected)"))
                fut.exception()  # mark retrieved: nobody may be awaiting it any more
        self._sim_pending.clear()
        if self._sim_disconnected is not None and not self._sim_disconnected.done():
            if error is None:
                self._sim_disconnected.set_result(None)
            else:
                self._sim_disconnected.set_exception(error)
                self._sim_disconnected.exception()  # retrieved: awaiting `disconnected` still raises it

    @property
    def disconnected(self) -> asyncio.Future:
        """Future that resolves when this session disconnects (``client.disconnected``)."""
        if self._sim_disconnected is None:
            self._sim_disconnected = asyncio.get_running_loop().create_future()
            self._sim_disconnected.set_result(None)
        return asyncio.shield(self._sim_disconnected)

    def _keepalive_ping(self, rnd_id: int) -> None:
        """No pings: the World is always there."""

    # -- requests ----------------------------------------------------------------------------

    def send(self, request: Any, ordered: bool = False) -> Any:
        """Answer a request (or a list) — a future per request, like MTProtoSender.send."""
        if not self._sim_connected:
            raise ConnectionError("Cannot send requests while disconnected")
        if isinstance(request, (list, tuple)):
            return [self._send_one(r) for r in request]
        return self._send_one(request)

    def _send_one(self, request: TLObject) -> asyncio.Future:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._answer(future, request)
        return future

    def _answer(self, future: asyncio.Future, request: TLObject) -> None:
        """Let the World answer ``request`` into ``future`` (again, after a reconnect)."""
        if future.done():  # the caller gave up while the connection was re-established
            return
        if not self._sim_connected:  # an earlier request of the same batch lost the connection
            future.set_exception(self.connection_lost
                                 or ConnectionError("Cannot send requests while disconnected"))
            return
        try:
            wire = unwrap(decode(request))
            answer = self.world.handle(self, wire)
        except SimRpcError as e:
            future.set_exception(to_error(e, request))
            return
        except SimConnectionLost as lost:
            future.set_exception(lost.error)
            self.lose_connection(lost.error)
            return
        except SimConnectionDropped:
            self._reconnect(future, request)
            return
        except Exception as e:  # a simulator bug or an unsupported request: surface it to the caller
            future.set_exception(e)
            return
        if isinstance(answer, asyncio.Future):
            self._sim_pending.add(future)
            if self.world.is_held(answer):
                self._sim_held.add(future)
                # the caller giving up (its task cancelled) is what ends a held request
                future.add_done_callback(lambda _: answer.cancel())

            def done(inner: asyncio.Future) -> None:
                self._sim_pending.discard(future)
                self._sim_held.discard(future)
                if future.done():
                    return
                if inner.cancelled():
                    future.cancel()
                elif isinstance(inner.exception(), SimRpcError):
                    future.set_exception(to_error(inner.exception(), request))
                elif inner.exception() is not None:
                    future.set_exception(inner.exception())
                else:
                    self._resolve(future, request, inner.result())

            answer.add_done_callback(done)
            return
        self._resolve(future, request, answer)

    def _reconnect(self, future: asyncio.Future, request: TLObject) -> None:
        """The connection dropped with ``request`` in flight: reconnect at once and send it again on
        the next turn of the loop, logging what ``MTProtoSender._reconnect`` logs."""
        self.reconnects += 1
        self.world.reconnects[self.account.id if self.account else None] += 1
        self._log.info("Closing current connection to begin reconnect...")
        asyncio.get_running_loop().call_soon(self._answer, future, request)
        if self._auto_reconnect_callback is not None:  # as MTProtoSender._reconnect, once reconnected
            task = asyncio.get_running_loop().create_task(self._auto_reconnect_callback())
            self._sim_callbacks.add(task)
            task.add_done_callback(self._sim_callbacks.discard)

    def _resolve(self, future: asyncio.Future, request: TLObject, answer: Any) -> None:
        """Round-trip the answer through bytes, let Telethon see its own updates, set the result."""
        try:
            result = read_result(_result_reader(request), encode_result(answer))
        except Exception as e:
            future.set_exception(e)
            return
        store = getattr(self, "_store_own_updates", None)
        if store is not None:
            store(result)
        future.set_result(result)

    # -- updates -----------------------------------------------------------------------------

    def push(self, updates: TLObject) -> None:
        """Deliver an ``Updates`` object (round-tripped through bytes) to the client."""
        if self._sim_connected and self._updates_queue is not None:
            self._updates_queue.put_nowait(clone(updates))

    def is_busy(self) -> bool:
        """Whether this client still has updates to process, handlers running or answers pending."""
        if not self._sim_connected:
            return False
        if self._updates_queue is not None and not self._updates_queue.empty():
            return True
        if any(not f.done() and f not in self._sim_held for f in self._sim_pending):
            return True
        tasks = getattr(self.client, "_event_handler_tasks", ())
        if any(not t.done() for t in tasks) or self._sim_callbacks:
            return True
        box = getattr(self.client, "_message_box", None)
        # a pts gap seen (Telethon waits half a second for the missing push, then gets the difference)
        return bool(getattr(box, "getting_diff_for", None) or getattr(box, "possible_gaps", None))


def _result_reader(request: TLObject) -> TLObject:
    """The request whose ``read_result`` parses the answer (the innermost, for wrappers)."""
    return request


def world_auth_key(world: World, account: SimUser) -> AuthKey:
    """A deterministic 2048-bit auth key for ``account``: the same World seed gives the same key."""
    digest = hashlib.sha256(f"chanwatch-sim:{world.seed}:{account.id}".encode()).digest()
    return AuthKey(digest * 8)


def attach(world: World, client: TelegramClient, *, as_user: SimUser | None = None) -> SimSender:
    """Install a :class:`SimSender` as ``client._sender`` (before ``connect()``).

    With ``as_user`` the session is logged in as that account; without, it is the account its
    saved auth key belongs to (a session string saved earlier), or not logged in at all."""
    if client.is_connected():
        raise RuntimeError("attach the simulator before connecting the client")
    sender = SimSender(world, client, as_user)
    client._sender = sender
    client.session.auth_key = sender.auth_key
    client._create_exported_sender = functools.partial(_create_exported_sender, world, client)
    if client not in world.clients:
        world.clients.append(client)
    return sender


async def _create_exported_sender(world: World, client: TelegramClient, dc_id: int) -> SimSender:
    """``TelegramBaseClient._create_exported_sender`` with a SimSender for the MTProtoSender: the DC's
    address from ``help.GetConfig``, a connection object (never opened), the authorization exported
    on the home sender and imported on the new one inside InvokeWithLayer(InitConnection(...))."""
    dc = await client._get_dc(dc_id)
    sender = SimSender(world, client, None, exported_dc=dc.id)
    await sender.connect(client._connection(dc.ip_address, dc.port, dc.id, loggers=client._log,
                                            proxy=client._proxy, local_addr=client._local_addr))
    _log.debug("exporting the authorization for a borrowed sender in DC %d", dc.id)
    auth = await client(functions.auth.ExportAuthorizationRequest(dc_id))
    client._init_request.query = functions.auth.ImportAuthorizationRequest(id=auth.id, bytes=auth.bytes)
    await sender.send(functions.InvokeWithLayerRequest(LAYER, client._init_request))
    return sender


async def connect_client(world: World, *, as_user: SimUser | None = None, bot: bool = False,
                         session: str | Session | None = None, login: bool = True,
                         **client_kwargs: Any) -> TelegramClient:
    """A real, connected ``TelegramClient`` logged in as a World account, without any network.

    ``as_user`` picks the account; if omitted, the World's first bot (``bot=True``) or first
    non-bot user is used, created if needed. ``login=False`` gives a connected but not
    logged-in client (to exercise ``client.start(bot_token=…)``). ``session`` may be a string
    session saved from an earlier client. Extra keyword arguments go to ``TelegramClient``."""
    if as_user is None and login and session is None:
        as_user = _default_account(world, bot=bot)
    if as_user is not None and as_user.bot != bot and bot:
        raise ValueError(f"{as_user.first_name} is not a bot")
    if isinstance(session, str) or session is None:
        session = StringSession(session or None)
    client_kwargs.setdefault("receive_updates", True)
    client = TelegramClient(session, SIM_API_ID, SIM_API_HASH, **client_kwargs)
    attach(world, client, as_user=as_user if login else None)
    await client.connect()
    return client


def _default_account(world: World, *, bot: bool) -> SimUser:
    for user in world.users.values():
        if user.bot == bot:
            return user
    if bot:
        return world.add_bot("chanwatch_bot", first_name="chanwatch")
    return world.add_user("Reader", username="reader_account")
