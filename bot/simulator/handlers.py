"""How the simulated server answers each request type (decoded TL in, TL objects out).

One method per request, looked up by the request's schema name (``messages.GetHistory`` ->
``messages_GetHistory``). Errors are raised as :class:`SimRpcError` with Telegram's message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from telethon.tl import TLObject, types

from . import engagement as _engagement
from .media import DC_IDS, HOME_DC, dc_address
from .tl import SimRpcError, SimulatorUnsupported, make, request_name

if TYPE_CHECKING:
    from .sender import SimSender
    from .world import ChatLogEntry, SimChannel, SimChat, SimUser, World

MAX_MESSAGE_LENGTH = 4096
HISTORY_LIMIT = 100
#: Requests a session may make before it is logged in.
_ANONYMOUS = frozenset({"help.GetConfig", "auth.ImportBotAuthorization", "help.GetNearestDc",
                        "auth.SendCode", "auth.ExportLoginToken", "help.GetCdnConfig",
                        "auth.SignIn", "account.GetPassword", "auth.CheckPassword",
                        "auth.ImportAuthorization"})
#: The code every simulated login accepts (``auth.SendCode`` "sends" it to the account's app).
LOGIN_CODE = "12345"
#: Telegram's 2048-bit SRP prime (with g = 3), as Telethon's password module knows it.
_SRP_PRIME = bytes.fromhex(
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4db"
    "fa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f64"
    "2477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b41"
    "0dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4"
    "e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf"
    "6f4fadf034b10403119cd8e3b92fcc5b")
#: Requests bots may not make (bots cannot read channel history or hold dialogs).
_USER_ONLY = frozenset({"messages.GetHistory", "messages.Search", "messages.GetPeerDialogs",
                        "messages.GetDialogs", "channels.JoinChannel", "messages.GetBotCallbackAnswer"})
#: Requests that send messages, each with a random id Telegram deduplicates per sender.
_RANDOM_ID_SENDS = frozenset({"messages.SendMessage", "messages.SendMedia", "messages.SendMultiMedia"})
_BOT_ONLY = frozenset({"bots.SetBotCommands", "bots.GetBotCommands", "bots.ResetBotCommands",
                       "messages.SetBotCallbackAnswer"})


def page(messages_desc: Sequence[Any], *, offset_id: int = 0, offset_date: dt.datetime | None = None,
         add_offset: int = 0, limit: int = 0, max_id: int = 0, min_id: int = 0) -> list[Any]:
    """Telegram's history slicing over messages sorted newest-first.

    ``min_id``/``max_id`` bound the ids (both exclusive); the window starts at the first message
    older than ``offset_id`` (else older than ``offset_date``, else the newest), moved by
    ``add_offset`` (negative reaches newer messages) and holds at most ``limit`` (<= 100)."""
    if offset_date is not None and offset_date.timestamp() <= 0:
        offset_date = None  # a TL date of 0 means "no date"
    cand = [m for m in messages_desc if (not max_id or m.id < max_id) and (not min_id or m.id > min_id)]
    if offset_id:
        pos = next((i for i, m in enumerate(cand) if m.id < offset_id), len(cand))
    elif offset_date:
        pos = next((i for i, m in enumerate(cand) if m.date < offset_date), len(cand))
    else:
        pos = 0
    limit = max(0, min(limit, HISTORY_LIMIT))
    start = pos + add_offset
    end = start + limit
    return cand[max(start, 0):max(end, 0)]


def _date_or_none(value: dt.datetime | None) -> dt.datetime | None:
    """TL encodes a missing date as 0; treat the epoch as "no date"."""
    return value if value is not None and value.timestamp() > 0 else None


def _bare_id(peer: Any) -> int | None:
    """The bare user/chat/channel id of a Peer or InputPeer, if it has one."""
    for attr in ("channel_id", "user_id", "chat_id"):
        value = getattr(peer, attr, None)
        if value:
            return value
    return None


def _random_ids(request: Any) -> list[int]:
    """The random ids of a send: SendMessage's and SendMedia's one, SendMultiMedia's one per item."""
    items = getattr(request, "multi_media", None)
    if items is not None:
        return [item.random_id for item in items]
    return [request.random_id]


def _same_entities(a: Sequence[Any] | None, b: Sequence[Any] | None) -> bool:
    """Whether two entity lists serialise identically (None and [] are the same)."""
    return [bytes(e) for e in a or []] == [bytes(e) for e in b or []]


def _same_tl(a: Any, b: Any) -> bool:
    """Whether two optional TL objects serialise identically."""
    return (bytes(a) if a is not None else None) == (bytes(b) if b is not None else None)


class Handlers:
    """The request handlers; ``dispatch`` routes by request type."""

    def __init__(self, world: World) -> None:
        self.world = world
        #: phone_code_hash -> (phone digits, account id) of codes "sent" by auth.SendCode.
        self._login_codes: dict[str, tuple[str, int]] = {}
        #: auth key id -> account id of sessions that passed the code and owe the 2FA password.
        self._awaiting_password: dict[int, int] = {}
        #: srp_id -> (account id, b, B bytes, verifier v, salt1, salt2) of an account.GetPassword answer.
        self._srp: dict[int, tuple[int, int, bytes, int, bytes, bytes]] = {}
        #: (account id, file id) -> {part number: bytes} of files uploaded by upload.SaveFilePart.
        self._uploads: dict[tuple[int, int], dict[int, bytes]] = {}

    def dispatch(self, session: SimSender, request: TLObject) -> Any:
        """Check authorisation and bot/user restrictions, then call the handler for ``request``."""
        name = request_name(request)
        account = session.account
        if account is None and name not in _ANONYMOUS:
            raise SimRpcError(401, "AUTH_KEY_UNREGISTERED")
        if account is not None and account.bot and name in _USER_ONLY:
            raise SimRpcError(400, "BOT_METHOD_INVALID")
        if account is not None and not account.bot and name in _BOT_ONLY:
            raise SimRpcError(400, "USER_BOT_REQUIRED")
        random_ids = _random_ids(request) if name in _RANDOM_ID_SENDS and account is not None else []
        if account is not None and not account.sent_random_ids.isdisjoint(random_ids):
            raise SimRpcError(500, "RANDOM_ID_DUPLICATE")  # Telegram's code for it, as Telethon lists it
        method = getattr(self, name.replace(".", "_"), None)
        if method is None:
            raise SimulatorUnsupported(f"the simulator does not answer {name} yet")
        result = method(session, account, request)
        if account is not None:
            account.sent_random_ids.update(random_ids)  # a send that failed used up no id
        return result

    # -- resolving input peers ---------------------------------------------------------------

    def _user(self, me: SimUser, peer: Any, error: str = "PEER_ID_INVALID") -> SimUser:
        """The user behind an InputUser/InputPeerUser. The access hash must match, except a bot's
        0 when ``World.accept_empty_access_hash_from_bots`` is on."""
        if isinstance(peer, (types.InputPeerSelf, types.InputUserSelf)):
            return me
        if isinstance(peer, (types.InputPeerUserFromMessage, types.InputUserFromMessage)):
            user = self.world.users.get(peer.user_id)
            if user is None:
                raise SimRpcError(400, error)
            return user
        user_id = getattr(peer, "user_id", None)
        user = self.world.users.get(user_id) if user_id is not None else None
        if user is None:
            raise SimRpcError(400, error)
        if peer.access_hash != user.access_hash and not (
                peer.access_hash == 0 and me.bot and self.world.accept_empty_access_hash_from_bots):
            raise SimRpcError(400, error)
        return user

    def _channel(self, me: SimUser, peer: Any, *, readable: bool = True) -> SimChannel:
        """The channel behind an InputChannel/InputPeerChannel, checking access hash and access."""
        if isinstance(peer, (types.InputPeerChannelFromMessage, types.InputChannelFromMessage)):
            ch = self.world.channels.get(peer.channel_id)
            if ch is None:
                raise SimRpcError(400, "CHANNEL_INVALID")
        else:
            ch = self.world.channels.get(getattr(peer, "channel_id", None))
            if ch is None or peer.access_hash != self.world.channel_hash(ch, me.id):
                raise SimRpcError(400, "CHANNEL_INVALID")
        if readable and not ch.can_read(me.id):
            raise SimRpcError(400, "CHANNEL_PRIVATE")
        return ch

    def _peer(self, me: SimUser, peer: Any) -> SimUser | SimChannel | SimChat:
        if isinstance(peer, (types.InputPeerChannel, types.InputPeerChannelFromMessage)):
            return self._channel(me, peer)
        if isinstance(peer, types.InputPeerChat):
            chat = self.world.chats.get(peer.chat_id)
            if chat is None or me.id not in chat.members:
                raise SimRpcError(400, "PEER_ID_INVALID")
            return chat
        if isinstance(peer, types.InputPeerEmpty):
            raise SimRpcError(400, "PEER_ID_INVALID")
        return self._user(me, peer)

    @staticmethod
    def _reply_to_id(request: Any) -> int | None:
        reply = getattr(request, "reply_to", None)
        if reply is not None:
            return getattr(reply, "reply_to_msg_id", None)
        return getattr(request, "reply_to_msg_id", None)

    def _state(self, me: SimUser) -> types.updates.State:
        return types.updates.State(pts=me.pts, qts=0, date=self.world.now, seq=0, unread_count=0)

    def _check_text(self, text: str, media: Any = None) -> None:
        if not text and media is None:
            raise SimRpcError(400, "MESSAGE_EMPTY")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise SimRpcError(400, "MESSAGE_TOO_LONG")

    # -- connection and login ----------------------------------------------------------------

    def help_GetConfig(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        w = self.world
        dcs = [make(types.DcOption, id=n, ip_address=dc_address(n), port=443) for n in DC_IDS]
        return make(
            types.Config, date=w.now, expires=w.now + dt.timedelta(hours=1), test_mode=False,
            this_dc=session.dc, dc_options=dcs, dc_txt_domain_name="sim.invalid", chat_size_max=200,
            megagroup_size_max=200000, forwarded_count_max=100, online_update_period_ms=210000,
            offline_blur_timeout_ms=5000, offline_idle_timeout_ms=30000, online_cloud_timeout_ms=300000,
            notify_cloud_delay_ms=30000, notify_default_delay_ms=1500, push_chat_period_ms=60000,
            push_chat_limit=2, edit_time_limit=172800, revoke_time_limit=2147483647,
            revoke_pm_time_limit=2147483647, rating_e_decay=2419200, stickers_recent_limit=200,
            channels_read_media_period=604800, call_receive_timeout_ms=20000, call_ring_timeout_ms=90000,
            call_connect_timeout_ms=30000, call_packet_timeout_ms=10000, me_url_prefix="https://t.me/",
            caption_length_max=1024, message_length_max=MAX_MESSAGE_LENGTH, webfile_dc_id=4,
        )

    def help_GetNearestDc(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        return types.NearestDc(country="ZZ", this_dc=session.dc, nearest_dc=HOME_DC)

    def auth_ExportAuthorization(self, session: SimSender, me: SimUser, req: Any) -> Any:
        """One-use bytes that log a session in another DC in as ``me`` (DC_ID_INVALID for this DC)."""
        if req.dc_id not in DC_IDS or req.dc_id == session.dc:
            raise SimRpcError(400, "DC_ID_INVALID")
        token = self.world.rng.randbytes(128)
        self.world.exported_authorizations[token] = (me.id, req.dc_id)
        return make(types.auth.ExportedAuthorization, id=me.id, bytes=token)

    def auth_ImportAuthorization(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        """Log this session in with bytes exported for its DC (once); not counted in ``World.logins``."""
        exported = self.world.exported_authorizations.get(bytes(req.bytes))
        if exported is None or exported != (req.id, session.dc):
            raise SimRpcError(400, "AUTH_BYTES_INVALID")
        del self.world.exported_authorizations[bytes(req.bytes)]
        user = self.world.users[req.id]
        session.authorize(user)
        return make(types.auth.Authorization, user=self.world.user_tl(user, user))

    def auth_ImportBotAuthorization(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        bot = next((u for u in self.world.users.values() if u.bot_token == req.bot_auth_token), None)
        if bot is None:
            raise SimRpcError(400, "ACCESS_TOKEN_INVALID")
        session.login(bot)
        return make(types.auth.Authorization, user=self.world.user_tl(bot, bot))

    # -- user login: phone, code, two-step password (SRP, checked like Telegram does) --------------
    # An account's phone is ``SimUser.phone``; its two-step password, if any, is an attribute
    # ``password`` set on the SimUser (``user.password = "secret"``).

    def _account_by_phone(self, phone: str) -> SimUser | None:
        digits = "".join(ch for ch in phone if ch.isdigit())
        return next((u for u in self.world.users.values() if not u.bot and u.phone
                     and "".join(ch for ch in u.phone if ch.isdigit()) == digits), None)

    def auth_SendCode(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        digits = "".join(ch for ch in req.phone_number if ch.isdigit())
        if len(digits) < 5:
            raise SimRpcError(400, "PHONE_NUMBER_INVALID")
        user = self._account_by_phone(digits)
        if user is None:
            raise SimRpcError(400, "PHONE_NUMBER_UNOCCUPIED")
        code_hash = f"{self.world.random_long() & 0xFFFFFFFFFFFF:012x}"
        self._login_codes[code_hash] = (digits, user.id)
        return make(types.auth.SentCode, type=types.auth.SentCodeTypeApp(length=len(LOGIN_CODE)),
                    phone_code_hash=code_hash)

    def _login_user(self, session: SimSender, user: SimUser) -> Any:
        session.login(user)
        return make(types.auth.Authorization, user=self.world.user_tl(user, user))

    def auth_SignIn(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        sent = self._login_codes.get(req.phone_code_hash)
        digits = "".join(ch for ch in req.phone_number if ch.isdigit())
        if sent is None or sent[0] != digits:
            raise SimRpcError(400, "PHONE_CODE_EXPIRED")
        if getattr(req, "phone_code", None) != LOGIN_CODE:
            raise SimRpcError(400, "PHONE_CODE_INVALID")
        del self._login_codes[req.phone_code_hash]
        user = self.world.users[sent[1]]
        if getattr(user, "password", None):
            self._awaiting_password[session.auth_key.key_id] = user.id
            raise SimRpcError(401, "SESSION_PASSWORD_NEEDED")
        return self._login_user(session, user)

    def account_GetPassword(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        from telethon import password as srp

        user_id = me.id if me is not None else self._awaiting_password.get(session.auth_key.key_id)
        user = self.world.users.get(user_id) if user_id is not None else None
        secret = getattr(user, "password", None) if user is not None else None
        extra = {"new_algo": types.PasswordKdfAlgoUnknown(),
                 "new_secure_algo": types.SecurePasswordKdfAlgoUnknown(), "secure_random": bytes(32)}
        if user is None or not secret:
            return make(types.account.Password, has_password=False, **extra)
        rng = self.world.rng
        algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=rng.randbytes(16), salt2=rng.randbytes(16), g=3, p=_SRP_PRIME)
        p, g = int.from_bytes(_SRP_PRIME, "big"), 3
        v = pow(g, int.from_bytes(srp.compute_hash(algo, secret), "big"), p)
        k = int.from_bytes(srp.sha256(srp.num_bytes_for_hash(_SRP_PRIME), srp.big_num_for_hash(g)), "big")
        while True:
            b = int.from_bytes(rng.randbytes(256), "big")
            g_b = pow(g, b, p)
            big_b = (k * v + g_b) % p
            if srp.is_good_mod_exp_first(g_b, p) and srp.is_good_large(big_b, p):
                break
        srp_id = rng.randrange(1, 2**63)
        b_bytes = srp.big_num_for_hash(big_b)
        self._srp[srp_id] = (user.id, b, b_bytes, v, algo.salt1, algo.salt2)
        return make(types.account.Password, has_password=True, current_algo=algo, srp_B=b_bytes,
                    srp_id=srp_id, hint=None, **extra)

    def auth_CheckPassword(self, session: SimSender, me: SimUser | None, req: Any) -> Any:
        from telethon import password as srp

        check = req.password
        entry = self._srp.pop(getattr(check, "srp_id", 0), None)
        if entry is None:
            raise SimRpcError(400, "SRP_ID_INVALID")
        user_id, b, b_bytes, v, salt1, salt2 = entry
        user = self.world.users[user_id]
        p, g = int.from_bytes(_SRP_PRIME, "big"), 3
        a_bytes = check.A
        u = int.from_bytes(srp.sha256(a_bytes, b_bytes), "big")
        shared = pow(int.from_bytes(a_bytes, "big") * pow(v, u, p) % p, b, p)
        expected = srp.sha256(
            srp.xor(srp.sha256(srp.num_bytes_for_hash(_SRP_PRIME)), srp.sha256(srp.big_num_for_hash(g))),
            srp.sha256(salt1), srp.sha256(salt2), a_bytes, b_bytes,
            srp.sha256(srp.big_num_for_hash(shared)))
        if expected != check.M1:
            raise SimRpcError(400, "PASSWORD_HASH_INVALID")
        self._awaiting_password.pop(session.auth_key.key_id, None)
        return self._login_user(session, user)

    def auth_LogOut(self, session: SimSender, me: SimUser, req: Any) -> Any:
        session.logout()
        return make(types.auth.LoggedOut)

    def users_GetUsers(self, session: SimSender, me: SimUser, req: Any) -> Any:
        out = []
        for inp in req.id:
            try:
                out.append(self.world.user_tl(self._user(me, inp), me))
            except SimRpcError:
                continue  # Telegram silently leaves out users it cannot give
        return out

    def users_GetFullUser(self, session: SimSender, me: SimUser, req: Any) -> Any:
        user = self._user(me, req.id, "USER_ID_INVALID")
        full = make(types.UserFull, id=user.id, settings=types.PeerSettings(),
                    notify_settings=types.PeerNotifySettings(), common_chats_count=0,
                    bot_info=make(types.BotInfo, user_id=user.id, description="",
                                  commands=list(user.bot_commands)) if user.bot else None)
        return types.users.UserFull(full_user=full, chats=[], users=[self.world.user_tl(user, me)])

    def updates_GetState(self, session: SimSender, me: SimUser, req: Any) -> Any:
        return self._state(me)

    def updates_GetDifference(self, session: SimSender, me: SimUser, req: Any) -> Any:
        pending = [(pts, n, u) for pts, n, u in me.update_log if pts > req.pts]
        if not pending:
            return types.updates.DifferenceEmpty(date=self.world.now, seq=0)
        new_messages = [u.message for _, _, u in pending if isinstance(u, types.UpdateNewMessage)]
        other = [u for _, _, u in pending if not isinstance(u, types.UpdateNewMessage)]
        msgs = new_messages + [u.message for u in other if hasattr(u, "message")]
        users, chats = self.world.entities_for(msgs, me)
        return types.updates.Difference(new_messages=new_messages, new_encrypted_messages=[],
                                        other_updates=other, chats=chats, users=users, state=self._state(me))

    def updates_GetChannelDifference(self, session: SimSender, me: SimUser, req: Any) -> Any:
        ch = self._channel(me, req.channel)
        pending = [(pts, n, u) for pts, n, u in ch.update_log if pts > req.pts]
        if not pending:
            return types.updates.ChannelDifferenceEmpty(pts=ch.pts, final=True, timeout=30)
        rendered = []
        new_messages = []
        for _, _, u in pending:
            if isinstance(u, types.UpdateNewChannelMessage):
                if u.message.id in ch.messages:
                    new_messages.append(self.world.render_channel_message(ch, u.message, me))
            else:
                rendered.append(u)
        users, chats = self.world.entities_for(new_messages, me, extra=[ch.peer])
        return types.updates.ChannelDifference(pts=ch.pts, new_messages=new_messages, other_updates=rendered,
                                               chats=chats, users=users, final=True, timeout=30)

    # -- usernames and entities --------------------------------------------------------------

    def contacts_ResolveUsername(self, session: SimSender, me: SimUser, req: Any) -> Any:
        username = req.username.lstrip("@")
        if not username or len(username) < 4 or not username.replace("_", "").isalnum():
            raise SimRpcError(400, "USERNAME_INVALID")
        target = self.world.resolve(username)
        if target is None:
            raise SimRpcError(400, "USERNAME_NOT_OCCUPIED")
        from .world import SimUser as _SimUser
        if isinstance(target, _SimUser):
            return types.contacts.ResolvedPeer(peer=target.peer, chats=[],
                                               users=[self.world.user_tl(target, me)])
        return types.contacts.ResolvedPeer(peer=target.peer, chats=[self.world.channel_tl(target, me)],
                                           users=[])

    def channels_GetChannels(self, session: SimSender, me: SimUser, req: Any) -> Any:
        chans = [self._channel(me, inp, readable=False) for inp in req.id]
        return types.messages.Chats(chats=[self.world.channel_tl(ch, me) for ch in chans])

    def channels_GetFullChannel(self, session: SimSender, me: SimUser, req: Any) -> Any:
        ch = self._channel(me, req.channel)
        top = max(ch.messages, default=0)
        read = me.read_marks.get(ch.id, top)
        full = make(
            types.ChannelFull, id=ch.id, about=ch.about, read_inbox_max_id=read, read_outbox_max_id=top,
            unread_count=sum(1 for i in ch.messages if i > read), chat_photo=types.PhotoEmpty(id=0),
            notify_settings=types.PeerNotifySettings(), bot_info=[], pts=ch.pts,
            participants_count=len(ch.members), can_view_participants=False,
        )
        return types.messages.ChatFull(full_chat=full, chats=[self.world.channel_tl(ch, me)], users=[])

    def channels_JoinChannel(self, session: SimSender, me: SimUser, req: Any) -> Any:
        ch = self._channel(me, req.channel)
        if me.id in ch.members:
            raise SimRpcError(400, "USER_ALREADY_PARTICIPANT")
        self.world.join(ch, me)
        return types.Updates(updates=[types.UpdateChannel(channel_id=ch.id)], users=[],
                             chats=[self.world.channel_tl(ch, me)], date=self.world.now, seq=0)

    def channels_LeaveChannel(self, session: SimSender, me: SimUser, req: Any) -> Any:
        ch = self._channel(me, req.channel, readable=False)
        if me.id not in ch.members:
            raise SimRpcError(400, "USER_NOT_PARTICIPANT")
        ch.members.discard(me.id)
        return types.Updates(updates=[types.UpdateChannel(channel_id=ch.id)], users=[],
                             chats=[self.world.channel_tl(ch, me)], date=self.world.now, seq=0)

    # -- reading messages --------------------------------------------------------------------

    def _channel_messages(self, ch: SimChannel, me: SimUser, msgs: list[Any], count: int) -> Any:
        rendered = [self.world.render_channel_message(ch, m, me) if isinstance(m, types.Message) else m
                    for m in msgs]
        users, chats = self.world.entities_for(rendered, me, extra=[ch.peer])
        return make(types.messages.ChannelMessages, pts=ch.pts, count=count, messages=rendered, topics=[],
                    chats=chats, users=users)

    def _private_history(self, me: SimUser, other: SimUser | SimChat) -> list[Any]:
        from .world import SimChat as _SimChat
        if isinstance(other, _SimChat):
            entries = [e for e in self.world.chat_log(other.id) if me.id in e.ids]
        else:
            entries = [e for e in self.world.chat_log(me.id, with_=other.id) if me.id in e.ids]
        return sorted((me.box[e.ids[me.id]] for e in entries), key=lambda m: -m.id)

    def _messages_slice(self, me: SimUser, msgs: list[Any], count: int) -> Any:
        users, chats = self.world.entities_for(msgs, me)
        return make(types.messages.MessagesSlice, count=count, messages=msgs, chats=chats, users=users)

    def messages_GetHistory(self, session: SimSender, me: SimUser, req: Any) -> Any:
        target = self._peer(me, req.peer)
        from .world import SimChannel as _SimChannel
        desc = (list(reversed(target.history())) if isinstance(target, _SimChannel)
                else self._private_history(me, target))
        got = page(desc, offset_id=req.offset_id, offset_date=req.offset_date, add_offset=req.add_offset,
                   limit=req.limit, max_id=req.max_id, min_id=req.min_id)
        if isinstance(target, _SimChannel):
            return self._channel_messages(target, me, got, len(desc))
        return self._messages_slice(me, got, len(desc))

    def messages_Search(self, session: SimSender, me: SimUser, req: Any) -> Any:
        target = self._peer(me, req.peer)
        from .world import SimChannel as _SimChannel
        if not isinstance(req.filter, types.InputMessagesFilterEmpty):
            raise SimulatorUnsupported("messages.Search with a filter")
        desc = (list(reversed(target.history())) if isinstance(target, _SimChannel)
                else self._private_history(me, target))
        q = (req.q or "").casefold()
        min_date, max_date = _date_or_none(req.min_date), _date_or_none(req.max_date)
        hits = [m for m in desc if q in (getattr(m, "message", "") or "").casefold()
                and (not min_date or m.date >= min_date) and (not max_date or m.date <= max_date)]
        got = page(hits, offset_id=req.offset_id, add_offset=req.add_offset, limit=req.limit or 20,
                   max_id=req.max_id, min_id=req.min_id)
        if isinstance(target, _SimChannel):
            return self._channel_messages(target, me, got, len(hits))
        return self._messages_slice(me, got, len(hits))

    def channels_GetMessages(self, session: SimSender, me: SimUser, req: Any) -> Any:
        ch = self._channel(me, req.channel)
        out = []
        for inp in req.id:
            msg_id = getattr(inp, "id", None)
            msg = ch.messages.get(msg_id) if msg_id is not None else None
            out.append(msg if msg is not None else types.MessageEmpty(id=msg_id or 0, peer_id=ch.peer))
        return self._channel_messages(ch, me, out, len(out))

    def messages_GetMessages(self, session: SimSender, me: SimUser, req: Any) -> Any:
        out = []
        for inp in req.id:
            msg_id = getattr(inp, "id", None)
            msg = me.box.get(msg_id)
            if msg is None or self.world.entry_for(me, msg_id) is None:
                out.append(types.MessageEmpty(id=msg_id or 0))
            else:
                out.append(msg)
        users, chats = self.world.entities_for(out, me)
        return types.messages.Messages(messages=out, chats=chats, users=users)

    def messages_GetMessagesViews(self, session: SimSender, me: SimUser, req: Any) -> Any:
        return _engagement.get_views(self.world, self._channel(me, req.peer), me, list(req.id), req.increment)

    def messages_GetMessagesReactions(self, session: SimSender, me: SimUser, req: Any) -> Any:
        return _engagement.get_reactions(self.world, self._channel(me, req.peer), me, list(req.id))

    def messages_GetPeerDialogs(self, session: SimSender, me: SimUser, req: Any) -> Any:
        from .world import SimChannel as _SimChannel
        dialogs, messages = [], []
        for dp in req.peers:
            target = self._peer(me, dp.peer)
            if isinstance(target, _SimChannel):
                if me.id not in target.members:
                    continue  # no dialog for channels the account has not joined
                top = max(target.messages, default=0)
                read = me.read_marks.get(target.id, top)
                dialogs.append(make(
                    types.Dialog, peer=target.peer, top_message=top, read_inbox_max_id=read,
                    read_outbox_max_id=top, unread_count=sum(1 for i in target.messages if i > read),
                    unread_mentions_count=0, unread_reactions_count=0,
                    notify_settings=types.PeerNotifySettings(), pts=target.pts,
                ))
                if top:
                    messages.append(self.world.render_channel_message(target, target.messages[top], me))
            else:
                hist = self._private_history(me, target)
                if not hist:
                    continue
                dialogs.append(make(
                    types.Dialog, peer=types.PeerUser(target.id) if hasattr(target, "access_hash")
                    else types.PeerChat(target.id), top_message=hist[0].id, read_inbox_max_id=hist[0].id,
                    read_outbox_max_id=hist[0].id, unread_count=0, unread_mentions_count=0,
                    unread_reactions_count=0, notify_settings=types.PeerNotifySettings(),
                ))
                messages.append(hist[0])
        users, chats = self.world.entities_for(messages, me, extra=[d.peer for d in dialogs])
        return types.messages.PeerDialogs(dialogs=dialogs, messages=messages, chats=chats, users=users,
                                          state=self._state(me))

    def messages_GetDialogs(self, session: SimSender, me: SimUser, req: Any) -> Any:
        items: list[tuple[Any, Any, Any]] = []  # (sort key, dialog, top message)
        for ch in self.world.channels.values():
            if me.id not in ch.members:
                continue
            top = max(ch.messages, default=0)
            msg = self.world.render_channel_message(ch, ch.messages[top], me) if top else None
            read = me.read_marks.get(ch.id, top)
            dialog = make(types.Dialog, peer=ch.peer, top_message=top, read_inbox_max_id=read,
                          read_outbox_max_id=top, unread_count=sum(1 for i in ch.messages if i > read),
                          unread_mentions_count=0, unread_reactions_count=0,
                          notify_settings=types.PeerNotifySettings(), pts=ch.pts)
            items.append(((msg.date if msg else ch.date, top), dialog, msg))
        others: dict[tuple[bool, int], Any] = {}
        for entry in self.world.chat_log(me.id) + [e for c in self.world.chats.values()
                                                   if me.id in c.members for e in self.world.chat_log(c.id)]:
            if me.id in entry.ids:
                key = (entry.is_group, entry.peer_id if entry.is_group or entry.sender_id == me.id
                       else entry.sender_id)
                others[key] = me.box[entry.ids[me.id]]
        for (is_group, other_id), msg in others.items():
            peer: Any = types.PeerChat(other_id) if is_group else types.PeerUser(other_id)
            dialog = make(types.Dialog, peer=peer, top_message=msg.id, read_inbox_max_id=msg.id,
                          read_outbox_max_id=msg.id, unread_count=0, unread_mentions_count=0,
                          unread_reactions_count=0, notify_settings=types.PeerNotifySettings())
            items.append(((msg.date, msg.id), dialog, msg))
        items.sort(key=lambda t: t[0], reverse=True)
        start = 0
        offset_peer = _bare_id(req.offset_peer)
        if offset_peer:
            start = next((i + 1 for i, (_, d, _) in enumerate(items) if _bare_id(d.peer) == offset_peer), 0)
        limit = max(1, min(req.limit or 100, 100))
        chosen = items[start:start + limit]
        dialogs = [d for _, d, _ in chosen]
        messages = [m for _, _, m in chosen if m is not None]
        users, chats = self.world.entities_for(messages, me, extra=[d.peer for d in dialogs])
        if start == 0 and len(items) <= limit:
            return types.messages.Dialogs(dialogs=dialogs, messages=messages, chats=chats, users=users)
        return types.messages.DialogsSlice(count=len(items), dialogs=dialogs, messages=messages, chats=chats,
                                           users=users)

    def upload_GetFile(self, session: SimSender, me: SimUser, req: Any) -> Any:
        # positional: bench/media.py times serve_file through a ``*args`` wrapper
        return self.world.serve_file(req.location, req.offset, req.limit, session.dc)

    def upload_SaveFilePart(self, session: SimSender, me: SimUser, req: Any) -> Any:
        self._uploads.setdefault((me.id, req.file_id), {})[req.file_part] = bytes(req.bytes)
        return True

    def _uploaded(self, me: SimUser, file: Any) -> bytes:
        """The bytes of an InputFile this account uploaded, every part present (else FILE_PARTS_INVALID)."""
        parts = self._uploads.pop((me.id, file.id), None)
        if parts is None or sorted(parts) != list(range(file.parts)):
            raise SimRpcError(400, "FILE_PARTS_INVALID")
        return b"".join(parts[i] for i in range(file.parts))

    def channels_ReadHistory(self, session: SimSender, me: SimUser, req: Any) -> Any:
        ch = self._channel(me, req.channel)
        me.read_marks[ch.id] = max(me.read_marks.get(ch.id, 0), req.max_id or max(ch.messages, default=0))
        return True

    def messages_ReadHistory(self, session: SimSender, me: SimUser, req: Any) -> Any:
        self._peer(me, req.peer)
        return types.messages.AffectedMessages(pts=me.pts, pts_count=0)

    def channels_GetParticipants(self, session: SimSender, me: SimUser, req: Any) -> Any:
        raise SimRpcError(400, "CHAT_ADMIN_REQUIRED")

    # -- writing -----------------------------------------------------------------------------

    def _reply_entry(self, me: SimUser, reply_id: int | None) -> ChatLogEntry | None:
        if not reply_id:
            return None
        return self.world.entry_for(me, reply_id)

    def _channel_sent(self, ch: SimChannel, me: SimUser, msgs: list[Any], random_ids: list[int]) -> Any:
        updates: list[Any] = [types.UpdateMessageID(id=m.id, random_id=r) for m, r in zip(msgs, random_ids,
                                                                                           strict=True)]
        # pts of each new message: they were the last len(msgs) channel updates
        first_pts = ch.pts - len(msgs) + 1
        updates += [
            types.UpdateNewChannelMessage(self.world.render_channel_message(ch, m, me), first_pts + i, 1)
            for i, m in enumerate(msgs)
        ]
        users, chats = self.world.entities_for(msgs, me, extra=[ch.peer])
        return types.Updates(updates=updates, users=users, chats=chats, date=self.world.now, seq=0)

    def _private_sent(self, me: SimUser, entries: list[ChatLogEntry], random_ids: list[int]) -> Any:
        updates: list[Any] = []
        msgs = []
        for entry, rnd in zip(entries, random_ids, strict=True):
            msg = me.box[entry.ids[me.id]]
            pts = next(p for p, _, u in reversed(me.update_log)
                       if isinstance(u, types.UpdateNewMessage) and u.message.id == msg.id)
            updates += [types.UpdateMessageID(id=msg.id, random_id=rnd), types.UpdateNewMessage(msg, pts, 1)]
            msgs.append(msg)
        users, chats = self.world.entities_for(msgs, me)
        return types.Updates(updates=updates, users=users, chats=chats, date=self.world.now, seq=0)

    def messages_SendMessage(self, session: SimSender, me: SimUser, req: Any) -> Any:
        self._check_text(req.message)
        return self._send(session, me, req, req.message, media=None)

    def _send(self, session: SimSender, me: SimUser, req: Any, text: str, media: Any) -> Any:
        from .world import SimChannel as _SimChannel
        from .world import SimUser as _SimUser
        target = self._peer(me, req.peer)
        entities = list(req.entities or [])
        if isinstance(target, _SimChannel):
            if not target.can_post(me.id):
                raise SimRpcError(403, "CHAT_WRITE_FORBIDDEN")
            msg = self.world.post(target, text, entities=entities, media=media,
                                  reply_to=self._reply_to_id(req),
                                  reply_markup=getattr(req, "reply_markup", None), author=me,
                                  exclude=session)
            return self._channel_sent(target, me, [msg], [req.random_id])
        entry = self.world.deliver(me, target, text, entities=entities, media=media,
                                   reply_markup=getattr(req, "reply_markup", None),
                                   reply_to=self._reply_entry(me, self._reply_to_id(req)), exclude=session)
        if isinstance(target, _SimUser) and media is None:
            msg = me.box[entry.ids[me.id]]
            pts = me.pts
            return types.UpdateShortSentMessage(id=msg.id, pts=pts, pts_count=1, date=msg.date, out=True,
                                                entities=entities or None)
        return self._private_sent(me, [entry], [req.random_id])

    def messages_SendMedia(self, session: SimSender, me: SimUser, req: Any) -> Any:
        self._check_text(req.message or "", media=req.media)
        media = req.media
        if isinstance(media, types.InputMediaPoll):
            media = types.MessageMediaPoll(poll=media.poll, results=make(types.PollResults))
        elif isinstance(media, types.InputMediaUploadedPhoto):
            self._check_caption(req.message)
            media = self.world.photo(self._uploaded(me, media.file))
        elif isinstance(media, types.InputMediaUploadedDocument):
            self._check_caption(req.message)
            media = self._uploaded_document(me, media)
        else:
            raise SimulatorUnsupported(f"messages.SendMedia with {type(media).__name__}")
        return self._send(session, me, req, req.message or "", media=media)

    @staticmethod
    def _check_caption(caption: str | None) -> None:
        if len((caption or "").encode("utf-16-le")) // 2 > 1024:  # counted as Telegram does
            raise SimRpcError(400, "MEDIA_CAPTION_TOO_LONG")

    def _uploaded_document(self, me: SimUser, media: types.InputMediaUploadedDocument
                           ) -> types.MessageMediaDocument:
        """A file a bot or user sends (`send_file` of a document): its uploaded bytes kept in the World
        under its name and mime type, so the receiving chat holds a real, downloadable document."""
        data = self._uploaded(me, media.file)
        if media.thumb is not None:
            self._uploaded(me, media.thumb)  # its parts must be whole too; the simulator keeps no thumbs
        names = [a.file_name for a in media.attributes if isinstance(a, types.DocumentAttributeFilename)]
        others = [a for a in media.attributes if not isinstance(a, types.DocumentAttributeFilename)]
        return self.world.document(data, mime_type=media.mime_type or "application/octet-stream",
                                   file_name=names[0] if names else "file", attributes=others,
                                   date=self.world.now)

    def messages_EditMessage(self, session: SimSender, me: SimUser, req: Any) -> Any:
        from .world import SimChannel as _SimChannel
        target = self._peer(me, req.peer)
        if isinstance(target, _SimChannel):
            msg = target.messages.get(req.id)
            if msg is None:
                raise SimRpcError(400, "MESSAGE_ID_INVALID")
            if not (target.can_post(me.id) and (target.authors.get(req.id) == me.id or me.id in target.admins
                                                or me.id == target.creator)):
                raise SimRpcError(403, "MESSAGE_AUTHOR_REQUIRED")
            text = req.message if req.message is not None else msg.message
            if text == msg.message and _same_entities(req.entities, msg.entities) \
                    and _same_tl(req.reply_markup, msg.reply_markup):
                raise SimRpcError(400, "MESSAGE_NOT_MODIFIED")
            self.world.edit(target, req.id, text, entities=req.entities, exclude=session)
            if req.reply_markup is not None:
                msg.reply_markup = req.reply_markup
            rendered = self.world.render_channel_message(target, msg, me)
            upd = types.UpdateEditChannelMessage(rendered, target.pts, 1)
            users, chats = self.world.entities_for([msg], me, extra=[target.peer])
            return types.Updates(updates=[upd], users=users, chats=chats, date=self.world.now, seq=0)
        entry = self.world.entry_for(me, req.id)
        if entry is None:
            raise SimRpcError(400, "MESSAGE_ID_INVALID")
        if entry.sender_id != me.id:
            raise SimRpcError(403, "MESSAGE_AUTHOR_REQUIRED")
        text = req.message if req.message is not None else entry.text
        if req.entities is not None:
            entities = req.entities
        else:
            entities = entry.entities if req.message is None else []
        if text == entry.text and _same_entities(entities, entry.entities) \
                and _same_tl(req.reply_markup, entry.reply_markup):
            raise SimRpcError(400, "MESSAGE_NOT_MODIFIED")
        self._check_text(text, entry.media)
        done = self.world.edit_private(entry, text=text, entities=entities, reply_markup=req.reply_markup,
                                       exclude=session)
        _, update = done[me.id]
        users, chats = self.world.entities_for([update.message], me)
        return types.Updates(updates=[update], users=users, chats=chats, date=self.world.now, seq=0)

    def messages_ForwardMessages(self, session: SimSender, me: SimUser, req: Any) -> Any:
        from .world import SimChannel as _SimChannel
        source = self._peer(me, req.from_peer)
        target = self._peer(me, req.to_peer)
        if isinstance(source, _SimChannel):
            originals = []
            for mid in req.id:
                m = source.messages.get(mid)
                if m is None:
                    raise SimRpcError(400, "MESSAGE_ID_INVALID")
                originals.append(m)
            headers = [None if req.drop_author else self.world.forward_header(m, source) for m in originals]
        else:
            originals, headers = [], []
            for mid in req.id:
                entry = self.world.entry_for(me, mid)
                if entry is None:
                    raise SimRpcError(400, "MESSAGE_ID_INVALID")
                originals.append(me.box[mid])
                sender = self.world.users[entry.sender_id]
                headers.append(None if req.drop_author else (
                    clone_header(entry.fwd_from) if entry.fwd_from else
                    make(types.MessageFwdHeader, date=entry.date, from_id=sender.peer)))
        if isinstance(target, _SimChannel):
            if not target.can_post(me.id):
                raise SimRpcError(403, "CHAT_WRITE_FORBIDDEN")
            if isinstance(source, _SimChannel):
                new = self.world.forward(source, list(req.id), target, drop_author=bool(req.drop_author),
                                         author=me, exclude=session)
            else:
                new = [self.world.post(target, m.message, entities=m.entities or (), media=m.media,
                                       fwd_from=h, author=me, exclude=session)
                       for m, h in zip(originals, headers, strict=True)]
            return self._channel_sent(target, me, new, list(req.random_id))
        entries = [self.world.deliver(me, target, m.message, entities=m.entities or (), media=m.media,
                                      fwd_from=h, exclude=session)
                   for m, h in zip(originals, headers, strict=True)]
        if isinstance(source, _SimChannel):
            for m in originals:
                if m.forwards is not None:
                    m.forwards += 1
        return self._private_sent(me, entries, list(req.random_id))

    def messages_DeleteMessages(self, session: SimSender, me: SimUser, req: Any) -> Any:
        deleted = []
        for mid in req.id:
            entry = self.world.entry_for(me, mid)
            if entry is None:
                continue
            if req.revoke or not entry.is_group:
                entry.deleted = True
            deleted.append(mid)
            me.box.pop(mid, None)
        if not deleted:
            return types.messages.AffectedMessages(pts=me.pts, pts_count=0)
        pts, _ = self.world.record_account_update(
            me, lambda pts, n: types.UpdateDeleteMessages(messages=list(deleted), pts=pts, pts_count=n),
            pts_count=len(deleted))
        return types.messages.AffectedMessages(pts=pts, pts_count=len(deleted))

    def channels_DeleteMessages(self, session: SimSender, me: SimUser, req: Any) -> Any:
        ch = self._channel(me, req.channel)
        if not (me.id in ch.admins or me.id == ch.creator):
            raise SimRpcError(403, "MESSAGE_DELETE_FORBIDDEN")
        gone = self.world.delete(ch, list(req.id), exclude=session)
        return types.messages.AffectedMessages(pts=ch.pts, pts_count=len(gone))

    def messages_SetTyping(self, session: SimSender, me: SimUser, req: Any) -> Any:
        self._peer(me, req.peer)
        return True

    # -- bots --------------------------------------------------------------------------------

    def bots_SetBotCommands(self, session: SimSender, me: SimUser, req: Any) -> Any:
        me.bot_commands = list(req.commands)
        return True

    def bots_GetBotCommands(self, session: SimSender, me: SimUser, req: Any) -> Any:
        return list(me.bot_commands)

    def bots_ResetBotCommands(self, session: SimSender, me: SimUser, req: Any) -> Any:
        me.bot_commands = []
        return True

    def messages_GetBotCallbackAnswer(self, session: SimSender, me: SimUser, req: Any) -> Any:
        self._peer(me, req.peer)
        entry = self.world.entry_for(me, req.msg_id)
        if entry is None:
            raise SimRpcError(400, "MESSAGE_ID_INVALID")
        return self.world.callback_query(me, entry, req.data)

    def messages_SetBotCallbackAnswer(self, session: SimSender, me: SimUser, req: Any) -> Any:
        self.world.answer_callback_query(req.query_id, make(
            types.messages.BotCallbackAnswer, cache_time=req.cache_time, alert=req.alert, message=req.message,
            url=req.url))
        return True


def clone_header(header: Any) -> Any:
    """A copy of a forward header (forwarding a forward keeps the original's header)."""
    from .tl import clone
    return clone(header)
