"""A fake InvisOutlet: raw TCP and WebSocket ``/ws`` at once, with a realistic OTA.

It exists so the proxy, the demo and the tests have a device that misbehaves the way
the real one does (protocol/README §4 and §6): the revB outlet drops the connection as
soon as it is told to update and answers on the *next* connection, every successful
outlet update ends in a reboot, progress pushes go only to whoever is connected, a
spurious status-0 result precedes every update, and TCP output is sometimes merged
or split across writes. Everything random comes from one seed.

Choices where the protocol notes state nothing (tags as in protocol/README §0):

* **A restart is announced once.** "A device restart announces itself with a cb12
  push" [H]; nobody is connected while it reboots, so the push goes to the first app
  that connects afterwards, and to no later one (it announces the restart, it is not
  a greeting).
* **A deco cb21 while the deco reboots is answered PUBACK 0, at once, and nothing
  else happens.** The deco's reboot does not drop the outlet connection and it leaves
  ``PM`` out of cb12 [H]; PUBACK 0 means "could not start" for cb21 [D]; the outlet
  answers PUBACK 0 when it cannot reach the deco for cb26 ("timed out reaching the
  sensor") [D:plain], and the simulator's other deco commands (cb24, 25, 28) do
  the same. That the outlet answers at once rather than after a timeout of its own is
  [I], as is this whole rule for cb21 (no source describes it); it matches an
  independent client's report of a retry during the deco's reboot answered PUBACK 0.
  The first update is not disturbed: it finishes, and the deco comes back with the
  new firmware. The rule holds whenever the deco is offline (a cb24 restart too), not
  only after an update.
* **A fault (--fault) is acted out by the next update only,** or the next N, or every
  one (``Fault.times``). A request refused for its own reason (already up to date, an
  update running, the deco offline) does not use it up.

The device's data and catalog are in ``state.py``, its settings in ``config.py``, the
per-connection writer that merges and splits TCP writes as the real outlet does in
``wire.py``; the sockets are :class:`~proxy.net.server.OutletServer`'s (shared with
replay serve); this module is the clock, the restarts and the OTA timeline, about
500 lines on purpose: each answer, restart and OTA phase reads the same clock and
connection list, and the choices above are easiest to check read in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

from proxy.core.events import Transport
from proxy.core.framing import Frame
from proxy.net.server import Endpoint, ListenError, OutletServer
from proxy.sim.config import (
    DEFAULT_SERIALS,
    Fault,
    FaultKind,
    Revision,
    SimConfig,
    WireStats,
)
from proxy.sim.state import NO_PAYLOAD, DeviceState, Json, JsonObject, Reply
from proxy.sim.wire import Client

__all__ = [
    "DEFAULT_SERIALS",
    "Fault",
    "FaultKind",
    "OutletSimulator",
    "Revision",
    "SimConfig",
    "SimError",
    "WireStats",
]


class SimError(Exception):
    """The simulator cannot do what it was asked (for example, a port is in use)."""


class OutletSimulator:
    """A simulated InvisOutlet; ``async with OutletSimulator(cfg) as sim: ...``.

    ``on_event`` receives one human-readable line per state change (connections,
    restarts, every OTA step but the individual progress pushes).
    """

    def __init__(
        self, config: SimConfig | None = None, *, on_event: Callable[[str], None] | None = None
    ) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.state = DeviceState(
            serial=cfg.serial_number(),
            revision=cfg.revision,
            firmware=dataclasses.replace(cfg.firmware),
        )
        self.stats = WireStats()
        self.ota_state = "idle"
        self.ota_history: list[str] = []
        self.connections_accepted = 0
        self._on_event = on_event
        seed = cfg.seed if cfg.seed is not None else random.randrange(1 << 32)
        self._wire_rng = random.Random(f"{seed}:wire")
        self._id_rng = random.Random(f"{seed}:ids")
        self._sensor_rng = random.Random(f"{seed}:sensors")
        self._server = OutletServer(
            self, cfg.listener.host, cfg.listener.tcp_port, cfg.listener.ws_port
        )
        self._clients: dict[int, Client] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ota_task: asyncio.Task[None] | None = None
        self._up = False
        self._started = False
        self._announce_on_connect = False
        self._faults_left: int | None = cfg.fault.times if cfg.fault is not None else 0
        self._pending_sync: tuple[Json, int] | None = None
        self._sync_sent = asyncio.Event()
        self._state_changed = asyncio.Condition()

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        await self._open_listeners(retry_seconds=0.0)
        self._started = True
        self._up = True
        if self.config.sensor_interval > 0:
            self._spawn(self._sensor_loop())
        self._emit(
            f"listening: {self._server.describe()} "
            f"(rev {self.config.revision}, sn {self.state.serial}, fw {self.state.firmware.im})"
        )
        if self.config.fault is not None:
            self._emit(f"fault: {self.config.fault.describe()}")

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._up = False
        tasks = [*self._tasks, *([self._ota_task] if self._ota_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._close_listeners()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def tcp_port(self) -> int:
        """The TCP port; the one picked once started, when the config says 0."""
        return self._server.tcp_port or 0

    @property
    def ws_port(self) -> int:
        return self._server.ws_port or 0

    @property
    def ws_url(self) -> str:
        return self._server.ws_url

    @property
    def is_up(self) -> bool:
        return self._up

    @property
    def ota_active(self) -> bool:
        """Whether an update is still running (a stalled one has stopped for good)."""
        return self._ota_task is not None and not self._ota_task.done()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def wait_ota_state(self, state: str, timeout: float = 10.0) -> None:
        """Wait until the OTA has passed through ``state`` (see ``ota_history``)."""
        async with asyncio.timeout(timeout), self._state_changed:
            await self._state_changed.wait_for(lambda: state in self.ota_history)

    # --- listeners and connections -----------------------------------------------

    async def _open_listeners(self, retry_seconds: float) -> None:
        """Bind both listeners; after a reboot the port may be briefly taken, so retry."""
        deadline = time.monotonic() + retry_seconds
        while True:
            try:
                await self._server.start()
                return
            except ListenError as exc:
                if time.monotonic() >= deadline:
                    raise SimError(str(exc)) from exc
                await asyncio.sleep(0.05)

    async def _close_listeners(self) -> None:
        """Close the listeners and drop everyone without a goodbye, as a device losing
        power: what is still queued is lost, and nobody is reported as disconnected."""
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            client.closed = True
        await self._server.stop()
        for client in clients:
            await client.stop()

    # --- the sockets' handler (proxy.net.server.Handler) -----------------------------

    def refusal(self, transport: Transport, peer: str) -> str | None:
        """Connections are turned away while the outlet is down."""
        return None if self._up else "outlet down (rebooting)"

    def connected(self, endpoint: Endpoint) -> None:
        client = Client(self, endpoint)
        self._clients[endpoint.number] = client
        self.connections_accepted += 1
        self._emit(f"connected: {client.name} from {endpoint.peer}")
        if self._pending_sync is not None:
            packet_id, status = self._pending_sync
            self._pending_sync = None
            client.send(self._response(packet_id, None, 21, [1, status]))
            self._sync_sent.set()
        if self._announce_on_connect:
            # The restart is announced once, to the first app back, not to every later one.
            self._announce_on_connect = False
            client.send(self._push(12, self.state.device_info()))
            self._emit(f"restart announced to {client.name} (cb12 push)")

    def frame(self, endpoint: Endpoint, frame: Frame) -> None:
        client = self._clients.get(endpoint.number)
        if client is not None and frame.error is None:
            self._dispatch(client, frame.value)

    async def disconnected(self, endpoint: Endpoint) -> None:
        client = self._clients.get(endpoint.number)
        if client is None:  # dropped by a reboot or stop
            return
        if not client.closed and not endpoint.closed:  # the app hung up: replies go first
            await client.flush(1.0)
        if self._clients.pop(endpoint.number, None) is not None:
            await client.stop()
            self._emit(f"disconnected: {client.name}")

    # --- requests -----------------------------------------------------------------

    def _dispatch(self, client: Client, request: Json) -> None:
        if not self._up or client.closed or not isinstance(request, dict):
            return
        packet_id = request.get("packetID")
        payload = request.get("payload")
        callback = payload.get("callbackName") if isinstance(payload, dict) else None
        if not isinstance(callback, int) or isinstance(callback, bool):
            client.send(self._response(packet_id, 0))
            return
        args = payload.get("callbackArgs") if isinstance(payload, dict) else None
        if callback == 21:
            self._ota_request(client, packet_id, args)
            return
        reply = self.state.handle(callback, args)
        if callback == 11 and reply.puback == 1:
            reply.args = self.state.sensors(self._sensor_rng)
        if reply.puback is not None:
            client.send(self._response(packet_id, reply.puback, callback, reply.args))
        for push_cb, push_args in reply.pushes:
            self._broadcast(self._push(push_cb, push_args))
        self._run_action(reply)

    def _run_action(self, reply: Reply) -> None:
        if reply.action == "restart":
            self._spawn(self._reboot("restart (cb5)", self.config.reboot_seconds, announce=True))
        elif reply.action == "factory-reset":
            self.state.reset_to_factory()
            self._spawn(self._reboot("factory reset (cb7)", self.config.reboot_seconds, True))
        elif reply.action == "deco-restart":
            self._spawn(self._deco_reboot("restart (cb24)", None))

    def _response(
        self, packet_id: Json, puback: int | None, callback: int = 0, args: Json = NO_PAYLOAD
    ) -> JsonObject:
        message: JsonObject = {"sn": self.state.serial}
        if packet_id is not None:
            message["packetID"] = packet_id
        if puback is not None:
            message["PUBACK"] = puback
        if args is not NO_PAYLOAD:
            message["payload"] = {"callbackName": callback, "callbackArgs": args}
        return message

    def _push(self, callback: int, args: Json) -> JsonObject:
        return {
            "sn": self.state.serial,
            "packetID": self._id_rng.randint(100000, 999999),
            "payload": {"callbackName": callback, "callbackArgs": args},
        }

    def _broadcast(self, message: JsonObject) -> None:
        """Send to everyone connected; with nobody connected the push is lost."""
        for client in list(self._clients.values()):
            client.send(message)

    # --- restarts -----------------------------------------------------------------

    async def _reboot(
        self,
        why: str,
        down_seconds: float,
        announce: bool,
        apply: Callable[[], None] | None = None,
    ) -> None:
        """Drop everyone, refuse connections for ``down_seconds``, come back."""
        if not self._up:
            return
        self._up = False
        self._emit(f"outlet {why}: dropping {len(self._clients)} connection(s)")
        # A snapshot: an app may hang up (and leave the table) while its neighbours flush.
        for client in list(self._clients.values()):
            await client.flush(1.0)
        await self._close_listeners()
        await asyncio.sleep(down_seconds)
        if apply is not None:
            apply()
        self._announce_on_connect = announce
        try:
            await self._open_listeners(retry_seconds=5.0)
        except SimError as exc:
            self._emit(f"outlet cannot come back up: {exc}")
            return
        self._up = True
        self._emit(f"outlet up again (fw {self.state.firmware.im})")

    async def _deco_reboot(self, why: str, apply: Callable[[], None] | None) -> None:
        """The faceplate goes away (no PM, no sensors) and comes back; the outlet stays up."""
        self.state.deco_online = False
        self._emit(f"deco {why}: offline")
        await asyncio.sleep(self.config.reboot_seconds)
        if apply is not None:
            apply()
        self.state.deco_online = True
        self._emit(f"deco online again (fw {self.state.firmware.pm})")
        self._broadcast(self._push(12, self.state.device_info()))

    async def _sensor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sensor_interval)
            if self._up and self.state.deco_online:
                self._broadcast(self._push(11, self.state.sensors(self._sensor_rng)))

    # --- OTA ------------------------------------------------------------------------

    def _ota_request(self, client: Client, packet_id: Json, args: Json) -> None:
        target = args[0] if isinstance(args, list) and args else None
        method = args[1] if isinstance(args, list) and len(args) > 1 else 0
        if target not in (1, 2) or isinstance(target, bool):
            client.send(self._response(packet_id, 0))
            return
        busy = self._ota_task is not None and not self._ota_task.done()
        name = "outlet" if target == 1 else "deco"
        self._set_ota("requested", f"OTA {name} requested (packetID {packet_id}, method {method})")
        if target == 2 and not self.state.deco_online:
            # Module docstring: the outlet cannot reach a rebooting deco, as for cb24-28.
            client.send(self._response(packet_id, 0))
            why = "the deco is offline (rebooting) and the outlet cannot reach it"
            self._set_ota("refused", f"OTA deco refused (PUBACK 0): {why}")
            return
        if busy:
            client.send(self._response(packet_id, 0))
            self._set_ota("refused", "OTA refused (PUBACK 0): an update is already running")
            return
        fw = self.state.firmware
        current = fw.outlet_current() if target == 1 else fw.deco_current()
        fault = None if current else self._take_fault()
        refuse = current or (fault is not None and fault.kind == "refuse")
        if target == 1 and self.config.revision == "B":
            runner = self._ota_outlet_revb(packet_id, refuse, fault)
            self._ota_task = asyncio.create_task(runner)
            return
        if refuse:
            client.send(self._response(packet_id, 0))
            why = "already up to date" if current else "fault injected"
            self._set_ota("refused", f"OTA {name} refused (PUBACK 0): {why}")
            return
        client.send(self._response(packet_id, 1))
        self._set_ota("acknowledged", f"OTA {name} acknowledged (PUBACK 1)")
        runner = self._ota_outlet_reva(fault) if target == 1 else self._ota_deco(fault)
        self._ota_task = asyncio.create_task(runner)

    def _take_fault(self) -> Fault | None:
        """The fault for the update starting now, if any is left: each update uses one.

        Only an update that would otherwise go ahead uses it, so a request refused for
        its own reason (already up to date, busy, deco offline) leaves it for the next.
        """
        fault = self.config.fault
        left = self._faults_left
        if fault is None or (left is not None and left <= 0):
            return None
        if self._faults_left is not None:
            self._faults_left -= 1
        more = "every update" if self._faults_left is None else f"{self._faults_left} more"
        self._emit(f"fault {fault} injected into this update ({more} to come)")
        return fault

    async def _ota_outlet_reva(self, fault: Fault | None) -> None:
        self._broadcast(self._push(23, [1, 0]))  # the spurious early "failure"
        if await self._progress(self._outlet_phases(), fault) == "succeeded":
            await self._finish_outlet_update()

    async def _ota_outlet_revb(self, packet_id: Json, refuse: bool, fault: Fault | None) -> None:
        self._set_ota("restarting", "OTA outlet (revB): restarting at once, no ack")
        self._pending_sync = (packet_id, 0 if refuse else 1)
        self._sync_sent.clear()
        await self._reboot("restart for OTA", self.config.restart_seconds, announce=False)
        self._set_ota("waiting-for-reconnect", "OTA outlet (revB): waiting for a client")
        try:
            await asyncio.wait_for(self._sync_sent.wait(), self.config.sync_wait_seconds)
            self._set_ota("sync-sent", f"OTA outlet (revB): sync cb21 [1, {int(not refuse)}] sent")
        except TimeoutError:
            self._pending_sync = None
            self._emit("OTA outlet (revB): nobody reconnected; the sync cb21 is lost")
        if refuse:
            self._set_ota("refused", "OTA outlet refused (sync status 0)")
            return
        self._broadcast(self._push(23, [1, 0]))
        if await self._progress(self._outlet_phases(), fault) == "succeeded":
            await self._finish_outlet_update()

    async def _ota_deco(self, fault: Fault | None) -> None:
        self._broadcast(self._push(23, [2, 0]))
        if await self._progress([2], fault) != "succeeded":
            return
        fw = self.state.firmware

        def apply() -> None:
            fw.pm = fw.pm_available

        self._set_ota("deco-rebooting", "OTA deco: faceplate rebooting")
        await self._deco_reboot("rebooting after OTA", apply)
        self._set_ota("succeeded", f"OTA deco succeeded: PM now {fw.pm}")

    def _outlet_phases(self) -> list[int]:
        fw = self.state.firmware
        return [3, 1] if fw.www != fw.www_available else [1]

    async def _finish_outlet_update(self) -> None:
        fw = self.state.firmware

        def apply() -> None:
            fw.im, fw.www = fw.im_available, fw.www_available

        self._set_ota("rebooting", "OTA outlet: rebooting into the new firmware")
        await self._reboot("reboot after OTA", self.config.reboot_seconds, True, apply)
        self._set_ota("succeeded", f"OTA outlet succeeded: IM now {fw.im}")

    async def _progress(self, phases: list[int], fault: Fault | None) -> str:
        """Push cb22/cb23 for each phase; the last phase is the main one (``fault`` applies)."""
        cfg = self.config
        fault = fault if fault is not None and fault.kind != "refuse" else None
        step = max(1, min(100, cfg.progress_step))
        plans: list[list[int]] = []
        for i, _ in enumerate(phases):
            percents = set(range(0, 101, step)) | {100}
            if fault is not None and i == len(phases) - 1:
                percents = {p for p in percents if p <= fault.percent} | {fault.percent}
            plans.append(sorted(percents))
        interval = cfg.ota_seconds / max(1, sum(len(p) for p in plans))
        names = {1: "main", 2: "deco", 3: "WWW"}
        for i, (device, plan) in enumerate(zip(phases, plans, strict=True)):
            main = i == len(phases) - 1
            self._set_ota(f"{names[device].lower()}-phase", f"OTA {names[device]} phase started")
            for percent in plan:
                await asyncio.sleep(interval)
                self._broadcast(self._push(22, [device, percent]))
            if main and fault is not None and fault.kind == "stall-at":
                self._set_ota("stalled", f"OTA stalled at {fault.percent}% (fault injected)")
                return "stalled"
            if main and fault is not None:
                self._broadcast(self._push(23, [device, 0]))
                self._set_ota("failed", f"OTA failed at {fault.percent}% (fault injected)")
                return "failed"
            self._broadcast(self._push(23, [device, 1]))
            self._emit(f"OTA {names[device]} phase complete")
        return "succeeded"

    # --- plumbing -----------------------------------------------------------------

    def _set_ota(self, state: str, line: str) -> None:
        self.ota_state = state
        self.ota_history.append(state)
        self._emit(line)
        self._spawn(self._notify_state())

    async def _notify_state(self) -> None:
        async with self._state_changed:
            self._state_changed.notify_all()

    def _emit(self, line: str) -> None:
        if self._on_event is not None:
            self._on_event(line)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
