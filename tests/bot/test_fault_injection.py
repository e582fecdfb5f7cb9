"""Faults injected into the simulated Telegram (issue #12): the simulator's random faults themselves
(flood waits, server errors, dropped connections, requests never answered), and one test for each
thing they found in the daemon. Time moves only through the World's clock and the loop clock that
`drive` moves through each stall: nothing waits.
"""

from __future__ import annotations

import asyncio

import pytest
from telethon import functions, types

from bot.simulator import (
    CHAOS_KINDS,
    Chaos,
    LoopClock,
    RequestHung,
    drive,
)
from bot.simulator.chaos import TELETHON_ATTEMPTS, TELETHON_RETRY_DELAY

# --- the simulator's faults -----------------------------------------------------------------------


def history_request(min_id: int = 0) -> functions.messages.GetHistoryRequest:
    return functions.messages.GetHistoryRequest(peer=types.InputPeerChannel(1, 2), offset_id=0,
                                                offset_date=None, add_offset=0, limit=100, max_id=0,
                                                min_id=min_id, hash=0)


def test_chaos_fails_the_same_requests_whatever_order_they_arrive_in():
    asked = [history_request(i) for i in range(300)]
    first = {r.min_id: Chaos(rate=0.2, seed=7).decide(5, "messages.GetHistory", r) for r in asked}
    chaos = Chaos(rate=0.2, seed=7)
    second = {r.min_id: chaos.decide(5, "messages.GetHistory", r) for r in reversed(asked)}
    assert first == second
    assert 30 <= sum(f is not None for f in first.values()) <= 90
    assert set(chaos.injected) == set(CHAOS_KINDS) and sum(chaos.injected.values()) == len(chaos.faults)
    other = {r.min_id: Chaos(rate=0.2, seed=8).decide(5, "messages.GetHistory", r) for r in asked}
    assert other != first


def test_a_burst_of_server_errors_fails_every_attempt_telethon_makes():
    chaos = Chaos(rate=1.0, seed=3, kinds=("rpc",), burst_share=1.0)
    faults = [chaos.decide(5, "messages.GetHistory", history_request()) for _ in range(TELETHON_ATTEMPTS)]
    assert len({f.detail for f in faults}) == 1 and all(f.kind == "rpc" for f in faults)
    chaos.stop()
    assert chaos.decide(5, "messages.GetHistory", history_request()) is None


async def test_a_dropped_connection_is_made_again_and_the_request_answered_once(
        world, reader, reader_account):
    ch = world.add_channel("dropchan", "Drop")
    world.post(ch, "still here")
    world.reset_requests()
    world.inject_error("messages.GetHistory", "drop")
    [message] = await reader.get_messages(ch.input_peer, limit=1)
    assert message.message == "still here" and reader.is_connected()
    assert world.requests["messages.GetHistory"] == 2  # sent again on the new connection
    assert world.reconnects[reader_account.id] == 1 and reader._sender.reconnects == 1


async def test_a_request_never_answered_holds_its_caller_until_the_caller_gives_up(world, reader):
    ch = world.add_channel("quietchan", "Quiet")
    world.post(ch, "unheard")
    world.inject_error("messages.GetHistory", "timeout", times=2)
    loop = asyncio.get_running_loop()
    with LoopClock() as clock:
        started = loop.time()
        with pytest.raises(TimeoutError):
            await drive(world, clock, asyncio.wait_for(reader.get_messages(ch.input_peer, limit=1), 30))
        assert 30 <= loop.time() - started < 35 and not world.stalls()
        with pytest.raises(RequestHung, match="messages.GetHistory"):  # Telethon alone waits for ever
            await drive(world, clock, reader.get_messages(ch.input_peer, limit=1), give_up_after=120)
    assert clock.offset >= 150


async def test_telethon_retries_a_server_error_on_the_loop_clock_without_waiting(world, reader):
    world.tolerate_telethon_warnings = True  # "Telegram is having internal issues", once per error
    ch = world.add_channel("busychan", "Busy")
    world.post(ch, "eventually")
    world.reset_requests()
    world.inject_error("messages.GetHistory", (500, "RPC_CALL_FAIL"), times=2)
    with LoopClock() as clock:
        [message] = await drive(world, clock, reader.get_messages(ch.input_peer, limit=1))
    assert message.message == "eventually" and world.requests["messages.GetHistory"] == 3
    assert clock.offset >= 2 * TELETHON_RETRY_DELAY
