"""Deferred sinks: off the forwarding path, batched, in order, and never starving the relay."""

from __future__ import annotations

import asyncio
import time

from mitmproxy import tcp
from mitmproxy.test import tflow

from proxy.core.events import Data, Event, Open
from proxy.mitm.addon import DRAIN_SLICE, InvisAddon

WAIT = 10.0


def _started(addon: InvisAddon) -> tcp.TCPFlow:
    """A new TCP flow whose start the addon has seen, as every test here begins."""
    flow = tflow.ttcpflow(messages=[])
    addon.tcp_start(flow)
    return flow


def _message(addon: InvisAddon, flow: tcp.TCPFlow, data: bytes) -> None:
    """What the relay layer does for each chunk it forwards."""
    flow.messages.append(tcp.TCPMessage(True, data))  # type: ignore[no-untyped-call]
    addon.tcp_message(flow)


async def test_deferred_sinks_wait_for_the_step_to_end_then_see_the_same_events() -> None:
    now: list[Event] = []
    later: list[Event] = []
    addon = InvisAddon(now.append, deferred_sinks=[later.append])
    flow = _started(addon)
    for i in range(5):
        _message(addon, flow, b'{"n":%d}' % i)

    assert [type(e) for e in now] == [Open, Data, Data, Data, Data, Data]
    assert later == []  # nothing runs in the step that forwards
    delivered = asyncio.Event()
    addon.deferred_sinks.append(lambda e: delivered.set())
    await asyncio.wait_for(delivered.wait(), WAIT)  # ...but it comes without a flush
    assert later == now


async def test_flush_delivers_everything_pending_at_once() -> None:
    later: list[Event] = []
    addon = InvisAddon(deferred_sinks=[later.append])
    flow = _started(addon)
    _message(addon, flow, b"{}")
    addon.flush()
    assert [type(e) for e in later] == [Open, Data]
    _message(addon, flow, b"[]")  # a new batch starts after a flush
    addon.flush()
    assert [e.data for e in later if isinstance(e, Data)] == [b"{}", b"[]"]


async def test_a_slow_consumer_gives_the_loop_back_between_slices() -> None:
    """A backlog is delivered in slices: what the relay has to do runs in between."""
    delivered: list[Event] = []
    relay_ran_after: list[int] = []
    per_event = DRAIN_SLICE / 2

    def slow(event: Event) -> None:
        if not delivered:  # the relay's next piece of work, queued while we deliver
            asyncio.get_running_loop().call_soon(lambda: relay_ran_after.append(len(delivered)))
        end = time.perf_counter() + per_event
        while time.perf_counter() < end:
            pass
        delivered.append(event)

    addon = InvisAddon(deferred_sinks=[slow])
    flow = _started(addon)
    for i in range(29):
        _message(addon, flow, b"[%d]" % i)
    done = asyncio.Event()
    addon.deferred_sinks.append(lambda e: done.set() if len(delivered) == 30 else None)
    await asyncio.wait_for(done.wait(), WAIT)

    assert len(relay_ran_after) == 1 and 0 < relay_ran_after[0] < 30
    assert [type(e) for e in delivered] == [Open] + [Data] * 29


async def test_steady_traffic_is_still_delivered_while_it_lasts() -> None:
    """No quiet moment ever comes: the batch goes out when its oldest event is due."""
    now: list[Event] = []
    later: list[Event] = []
    addon = InvisAddon(now.append, deferred_sinks=[later.append])
    flow = _started(addon)
    loop = asyncio.get_running_loop()
    sent = 0
    delivered_while_sending = asyncio.Event()

    def send() -> None:
        nonlocal sent
        _message(addon, flow, b"{}")
        sent += 1
        if later:
            delivered_while_sending.set()
        elif sent < 100_000:
            loop.call_soon(send)  # a relay that never pauses

    loop.call_soon(send)
    await asyncio.wait_for(delivered_while_sending.wait(), WAIT)
    # a batch went out while the relay was still sending (on a busy box the due batch may
    # go out with the very message that made it due, so nothing need be left pending)
    assert sent < 100_000
    assert later and later == now[: len(later)]
    addon.flush()
    assert later == now and len(now) == sent + 1
