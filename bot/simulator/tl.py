"""TL plumbing for the simulator: real bytes in and out, layer-tolerant construction, RPC errors.

Everything the simulator says to Telethon passes through these helpers, so the client parses
exactly what it would parse from Telegram (and a malformed answer fails here, loudly).
"""

from __future__ import annotations

import datetime as dt
import inspect
import struct
import typing
from functools import cache
from typing import Any

from telethon.errors import rpc_message_to_error
from telethon.extensions import BinaryReader
from telethon.tl import TLObject, TLRequest, types

_VECTOR = 0x1CB5C415
_BOOL_TRUE = 0x997275B5
_BOOL_FALSE = 0xBC799737

#: Requests that only wrap another request; the simulator answers the innermost one.
_WRAPPER_NAMES = frozenset({
    "InvokeWithLayerRequest", "InitConnectionRequest", "InvokeWithoutUpdatesRequest",
    "InvokeAfterMsgRequest", "InvokeWithMessagesRangeRequest", "InvokeWithTakeoutRequest",
})


class SimRpcError(Exception):
    """An RPC error the World wants Telethon to see (converted by the sender with rpc_message_to_error)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class SimConnectionLost(Exception):
    """The World drops the requesting session's connection for good; the sender fails the request
    (and the session's other pending ones) with ``error`` and disconnects, as MTProtoSender does
    when it cannot reconnect."""

    def __init__(self, error: OSError) -> None:
        super().__init__(f"connection lost: {error!r}")
        self.error = error


class SimConnectionDropped(Exception):
    """The connection drops with the request in flight and the client reconnects at once: the sender
    sends the request again on the new connection, as MTProtoSender does with every pending request
    after a successful reconnect."""

    def __init__(self) -> None:
        super().__init__("connection dropped; reconnecting")


class SimulatorUnsupported(NotImplementedError):
    """The simulator has no answer for this request; raised to the caller instead of guessing."""


def decode(request: TLObject) -> TLObject:
    """Serialise a request to its TL bytes and parse it back, as the server would receive it."""
    with BinaryReader(bytes(request)) as reader:
        return reader.tgread_object()


def unwrap(request: TLObject) -> TLObject:
    """Strip InvokeWithLayer / InitConnection / InvokeWithoutUpdates wrappers off a request."""
    while type(request).__name__ in _WRAPPER_NAMES:
        request = request.query
    return request


def encode_result(result: Any) -> bytes:
    """Serialise an answer as Telegram would: a TL object, a Bool, or a Vector of objects."""
    if result is True or result is False:
        return struct.pack("<I", _BOOL_TRUE if result else _BOOL_FALSE)
    if isinstance(result, list):
        return struct.pack("<Ii", _VECTOR, len(result)) + b"".join(bytes(x) for x in result)
    if isinstance(result, TLObject):
        return bytes(result)
    raise TypeError(f"cannot encode answer {result!r}")


def read_result(request: TLRequest, data: bytes) -> Any:
    """Parse answer bytes with the request's own reader, exactly as MTProtoSender does."""
    with BinaryReader(data) as reader:
        return request.read_result(reader)


def clone(obj: TLObject) -> TLObject:
    """A deep copy made through TL bytes (so it is also a proof the object serialises)."""
    with BinaryReader(bytes(obj)) as reader:
        return reader.tgread_object()


def to_error(err: SimRpcError, request: TLRequest) -> Exception:
    """The exception Telethon raises for this RPC error, built by Telethon's own mapping."""
    wire = clone(types.RpcError(error_code=err.code, error_message=err.message))
    return rpc_message_to_error(wire, request)


def request_name(request: TLObject) -> str:
    """Schema-style name of a request, e.g. ``messages.GetHistory`` or ``help.GetConfig``."""
    cls = type(request)
    name = cls.__name__
    if name.endswith("Request"):
        name = name[: -len("Request")]
    module = cls.__module__.rsplit(".", 1)[-1]
    return name if module == "functions" else f"{module}.{name}"


# -- Layer-tolerant construction -----------------------------------------------------------------

def _abstract_default(name: str) -> Any:
    """Defaults for required abstract-typed fields the simulator never cares about."""
    table = {
        "TypePeerNotifySettings": lambda: types.PeerNotifySettings(),
        "TypePhoto": lambda: types.PhotoEmpty(id=0),
        "TypeChatPhoto": lambda: types.ChatPhotoEmpty(),
        "TypeUserProfilePhoto": lambda: types.UserProfilePhotoEmpty(),
        "TypePeerSettings": lambda: types.PeerSettings(),
        "TypePollResults": lambda: types.PollResults(),
        "TypeChatParticipants": None,
    }
    factory = table.get(name)
    if factory is None:
        raise TypeError(f"no default for required field of type {name}")
    return factory()


@cache
def _params(cls: type) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(cls.__init__)
    return {k: v for k, v in sig.parameters.items() if k != "self"}


def _default_for(annotation: Any) -> Any:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    if annotation is int:
        return 0
    if annotation is float:
        return 0.0
    if annotation is str:
        return ""
    if annotation is bytes:
        return b""
    if annotation is bool:
        return False
    if typing.get_origin(annotation) in (list,) or text.startswith(("List[", "typing.List")):
        return []
    if "datetime" in text:
        return None
    if "Type" in text:
        return _abstract_default(text.strip("'\"").split("'")[0].replace("ForwardRef(", ""))
    raise TypeError(f"no default for annotation {annotation!r}")


def make(cls: type, **kwargs: Any) -> Any:
    """Build a TL object with the fields this layer has: unknown names are dropped, missing
    required ones get neutral defaults. Keeps the simulator working across Telethon 1.36+ layers."""
    params = _params(cls)
    args: dict[str, Any] = {}
    for name, p in params.items():
        if name in kwargs:
            value = kwargs[name]
            if p.annotation is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif p.annotation is int and isinstance(value, float):
                value = int(value)
            args[name] = value
        elif p.default is inspect.Parameter.empty:
            args[name] = _default_for(p.annotation)
    return cls(**args)


def text_with_entities(text: str) -> Any:
    """``TextWithEntities`` on layers that have it (poll questions/answers), else the plain string."""
    cls = getattr(types, "TextWithEntities", None)
    return cls(text=text, entities=[]) if cls is not None else text


def wants_text_with_entities(cls: type, field: str) -> bool:
    """Whether ``cls.field`` is a TextWithEntities on this layer (it used to be a plain string)."""
    ann = _params(cls)[field].annotation
    return "TextWithEntities" in (ann if isinstance(ann, str) else repr(ann))


def utc(value: dt.datetime) -> dt.datetime:
    """Telegram dates are whole seconds in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0)
