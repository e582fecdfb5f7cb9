"""An in-process Telegram for tests and the offline demo.

The real ``telethon.TelegramClient`` runs unmodified; only ``client._sender`` is replaced by
:class:`SimSender`, which hands TL-encoded requests to a :class:`World` and TL-encoded answers
and updates back. See docs/architecture.md, "The simulator".
"""

from . import media
from .chaos import CHAOS_KINDS, TRANSIENT_RPC_ERRORS, Chaos, ChaosFault, LoopClock, RequestHung, Stall, drive
from .handlers import page
from .sender import SIM_API_HASH, SIM_API_ID, SimSender, attach, connect_client
from .tl import SimConnectionDropped, SimConnectionLost, SimRpcError, SimulatorUnsupported
from .world import ChatLogEntry, InjectedError, SimChannel, SimChat, SimUser, World

__all__ = [
    "CHAOS_KINDS", "SIM_API_HASH", "SIM_API_ID", "TRANSIENT_RPC_ERRORS", "Chaos", "ChaosFault",
    "ChatLogEntry", "InjectedError", "LoopClock", "RequestHung", "SimChannel", "SimChat",
    "SimConnectionDropped", "SimConnectionLost", "SimRpcError", "SimSender", "SimUser",
    "SimulatorUnsupported", "Stall", "World", "attach", "connect_client", "drive", "media", "page",
]
