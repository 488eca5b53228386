"""A scripted app that updates the outlet's firmware the way a real client does.

Used by ``invisproxy demo`` and the replay tests to produce a realistic OTA
conversation: read device info (cb12), check for updates (cb20), start the update
(cb21) with a fresh packetID, then survive what the device does next (protocol/README
§4): an optional ack, a spurious status-0 result, a revB restart and the synchronous
cb21 on the next connection, WWW and main progress, the result, the reboot, and the
cb12 that proves the new firmware runs. Pushes sent while disconnected are lost, so
after every reconnect it asks for cb12 itself, as the reference client re-reads state.

Each connection is an :class:`~proxy.net.client.OutletLink`, which reads through the
project's framer: the outlet merges and splits objects across TCP reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from proxy.core.framing import Frame
from proxy.net.client import CONNECT_ERRORS, LinkClosed, OutletLink

Outcome = Literal["succeeded", "failed", "refused", "timeout"]
TargetName = Literal["outlet", "deco"]

_TARGET_CODE: Final[dict[TargetName, int]] = {"outlet": 1, "deco": 2}
_MODULE: Final[dict[TargetName, str]] = {"outlet": "IM", "deco": "PM"}
_PHASE: Final = {1: "main", 2: "deco", 3: "WWW"}


@dataclass(frozen=True, slots=True)
class Received:
    """One message from the outlet; ``t`` is seconds since the run started."""

    t: float
    conn: int
    packet_id: Any
    callback: int | None
    args: Any
    puback: Any
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sent:
    """One request the app sent."""

    t: float
    conn: int
    packet_id: int
    callback: int
    args: Any


@dataclass(slots=True)
class AppResult:
    """What happened during one scripted update."""

    outcome: Outcome
    reason: str
    target: TargetName
    transport: Literal["tcp", "ws"]
    request_packet_id: int | None = None
    fw_before: str | None = None
    fw_expected: str | None = None
    fw_after: str | None = None
    reconnects: int = 0
    progress: list[tuple[int, int]] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    @property
    def verified(self) -> bool | None:
        """Whether the firmware seen after the update is the one that was offered."""
        if self.fw_after is None or self.fw_expected is None:
            return None
        return self.fw_after == self.fw_expected


@dataclass(frozen=True, slots=True)
class _Message:
    conn: int
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Closed:
    conn: int


_Item = _Message | _Closed


class ScriptedApp:
    """Runs one firmware update against an outlet (or a proxy in front of one).

    Give ``tcp_port`` to talk raw TCP to ``host``, or ``ws_url`` for the WebSocket.
    ``on_line`` receives one human-readable line per step, for the demo to print.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        tcp_port: int | None = None,
        ws_url: str | None = None,
        target: TargetName = "outlet",
        method: int = 0,
        timeout: float = 120.0,
        request_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        stall_timeout: float = 60.0,
        backoff: float = 0.05,
        backoff_max: float = 1.0,
        poll_interval: float = 1.0,
        seed: int | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        if (tcp_port is None) == (ws_url is None):
            raise ValueError("give exactly one of tcp_port and ws_url")
        self.host = host
        self.tcp_port = tcp_port
        self.ws_url = ws_url
        self.target: TargetName = target
        self.method = method
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self._rng = random.Random(seed)
        self._on_line = on_line
        self._inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self._link: OutletLink | None = None
        self._connections = 0
        self._link_heard = False
        self._delay = backoff
        self._t0 = 0.0
        self.result = AppResult(
            "timeout", "not started", target, "tcp" if tcp_port is not None else "ws"
        )
        # OTA bookkeeping
        self._final = False
        self._progress_seen: set[int] = set()
        self._success_conn: int | None = None
        self._pm_absent_seen = False
        self._last_activity = 0.0

    # --- the script ----------------------------------------------------------------

    async def run(self) -> AppResult:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        res = self.result
        try:
            async with asyncio.timeout(self.timeout):
                await self._reconnect(first=True)
                await self._prepare()
                await self._start_update()
                await self._follow()
        except TimeoutError:
            if self._connections == 0:
                self._finish("timeout", f"could not connect within {self.timeout:g} s")
            else:
                self._finish("timeout", f"no final result within {self.timeout:g} s")
        finally:
            if self._link is not None:
                await self._link.abort()
                self._link = None
        self._say(f"outcome: {res.outcome} ({res.reason})")
        return res

    async def _prepare(self) -> None:
        """Read the running and offered firmware (cb12, then cb20)."""
        module = _MODULE[self.target]
        info = await self._request_with_retry(12)
        running = _dig(info, "payload", "callbackArgs", module, "fw_rev")
        if isinstance(running, str):
            self.result.fw_before = running
            self._say(f"device info: {module} firmware {running}")
        updates = await self._request_with_retry(20)
        if updates.get("PUBACK") == 1:
            block = _dig(updates, "payload", "callbackArgs", module)
            if isinstance(block, dict):
                if isinstance(block.get("fw_rev"), str):
                    self.result.fw_before = block["fw_rev"]
                if isinstance(block.get("available_fw_rev"), str):
                    self.result.fw_expected = block["available_fw_rev"]
            self._say(
                f"update check: {module} {self.result.fw_before} -> "
                f"{self.result.fw_expected} available"
            )
        else:
            self._say("update check failed (PUBACK 0)")

    async def _start_update(self) -> None:
        packet_id = self._new_packet_id()
        self.result.request_packet_id = packet_id
        args = [_TARGET_CODE[self.target], self.method]
        while True:
            try:
                await self._send(21, args, packet_id)
                break
            except LinkClosed:
                await self._reconnect()
        self._say(f"OTA requested: cb21 {args} packetID {packet_id}")
        self._last_activity = self._now()

    async def _follow(self) -> None:
        """Consume messages until the update has an outcome, reconnecting as needed."""
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + self.poll_interval
        while not self._final:
            if self._now() - self._last_activity > self.stall_timeout:
                self._finish("timeout", f"stalled: nothing for {self.stall_timeout:g} s")
                return
            wait = max(0.0, next_poll - loop.time())
            try:
                item = await asyncio.wait_for(self._inbox.get(), wait)
            except TimeoutError:
                next_poll = loop.time() + self.poll_interval
                if self._wants_poll():
                    with contextlib.suppress(LinkClosed):
                        await self._send(12)
                continue
            if isinstance(item, _Closed):
                if self._link is not None and item.conn == self._link.number:
                    self._say("connection lost")
                    await self._reconnect()
                    with contextlib.suppress(LinkClosed):
                        await self._send(12)  # pushes were lost meanwhile: re-read state
                continue
            self._observe(item)

    def _wants_poll(self) -> bool:
        """After a deco result, ask for cb12 until PM is back (the link stays up)."""
        return self.target == "deco" and self._success_conn is not None

    # --- what the messages mean ----------------------------------------------------

    def _observe(self, item: _Message) -> None:
        if self._link is not None and item.conn == self._link.number:
            self._link_heard = True
            self._delay = self.backoff
        value = item.value
        payload = value.get("payload")
        callback = payload.get("callbackName") if isinstance(payload, dict) else None
        args = payload.get("callbackArgs") if isinstance(payload, dict) else None
        self.result.messages.append(
            Received(
                self._now(),
                item.conn,
                value.get("packetID"),
                callback if isinstance(callback, int) else None,
                args,
                value.get("PUBACK"),
                value,
            )
        )
        if self._final or self.result.request_packet_id is None:
            return
        pair = args if isinstance(args, list) and len(args) >= 2 else None
        if callback is None and value.get("packetID") == self.result.request_packet_id:
            self._on_ack(value.get("PUBACK"))
        elif callback == 21 and pair is not None:
            self._on_sync(pair[1])
        elif callback == 22 and pair is not None:
            self._on_progress(pair[0], pair[1])
        elif callback == 23 and pair is not None:
            self._on_result(pair[0], pair[1], item.conn)
        elif callback == 12 and isinstance(args, dict):
            self._on_device_info(args, item.conn)

    def _on_ack(self, puback: Any) -> None:
        self._last_activity = self._now()
        if puback == 0:  # from the outlet, as far as the app can tell (a proxy may answer)
            self._finish("refused", "cb21 was answered with PUBACK 0")
        else:
            self._say(f"OTA acknowledged (PUBACK {puback})")

    def _on_sync(self, status: Any) -> None:
        self._last_activity = self._now()
        if status == 1:
            self._say("synchronous cb21 after the restart: update goes on")
        else:
            self._finish("failed", f"synchronous cb21 reported status {status}")

    def _on_progress(self, device: Any, percent: Any) -> None:
        self._last_activity = self._now()
        if isinstance(device, int) and isinstance(percent, int):
            self._progress_seen.add(device)
            self.result.progress.append((device, percent))
            self._say(f"progress {_PHASE.get(device, device)} {percent}%")

    def _on_result(self, device: Any, status: Any, conn: int) -> None:
        self._last_activity = self._now()
        main = _TARGET_CODE[self.target]
        own = {1, 3} if self.target == "outlet" else {2}
        if device not in own:
            return
        if status != 1 and not (self._progress_seen & own):
            self._say(f"ignoring the spurious early result [{device}, {status}]")
            return
        if status != 1:
            self._finish("failed", f"cb23 [{device}, {status}] after progress")
        elif device == 3:
            self._say("WWW partition done; main firmware next")
        elif device == main:
            self._success_conn = conn
            last = [p for d, p in self.result.progress if d == device]
            if last and last[-1] < 100:
                self._say(f"the result came with progress last seen at {last[-1]}%")
            self._say("update succeeded; waiting for the device to come back")

    def _on_device_info(self, info: dict[str, Any], conn: int) -> None:
        module = info.get(_MODULE[self.target])
        if self.target == "deco":
            if not isinstance(module, dict):
                self._pm_absent_seen = True
                return
            fw = module.get("fw_rev")
            fresh = self._pm_absent_seen or fw == self.result.fw_expected
            if self._success_conn is not None and fresh and isinstance(fw, str):
                self._verified(fw)
            return
        fw = module.get("fw_rev") if isinstance(module, dict) else None
        if not isinstance(fw, str):
            return
        if self._success_conn is not None and conn > self._success_conn:
            self._verified(fw)
        elif (
            self._success_conn is None
            and fw != self.result.fw_before
            and fw == self.result.fw_expected
        ):
            # The result (and maybe every progress push) never reached the app: lost while
            # it was disconnected, or held up in a proxy until the outlet rebooted. The
            # offered firmware now running is the proof a real app relies on.
            if not self._progress_seen:
                self._say("no progress or result arrived, but the device runs the new firmware")
            self._verified(fw)

    def _verified(self, fw: str) -> None:
        self.result.fw_after = fw
        self._say(f"device reports firmware {fw}")
        self._finish("succeeded", f"now running {fw}")

    def _finish(self, outcome: Outcome, reason: str) -> None:
        if not self._final:
            self._final = True
            self.result.outcome = outcome
            self.result.reason = reason

    # --- connections and requests ----------------------------------------------------

    async def _reconnect(self, first: bool = False) -> None:
        """Connect, retrying with doubling backoff (the device refuses while it reboots).

        The backoff is only reset by a message: through a proxy, a connection can open
        and close at once while the outlet behind it is down, and that must not turn
        into a tight reconnect loop.
        """
        quiet = self._link is not None and not self._link_heard
        if self._link is not None:
            await self._link.abort()
            self._link = None
        while True:
            if quiet:
                self._say(f"waiting {self._delay:g} s before reconnecting")
                await self._pause()
            try:
                self._link = await self._open(self._connections + 1)
            except CONNECT_ERRORS as exc:
                self._say(f"connect failed ({_short(exc)}); retrying in {self._delay:g} s")
                await self._pause()
                continue
            self._link_heard = False
            self._connections += 1
            if not first:
                self.result.reconnects += 1
                self._say(f"reconnected (#{self.result.reconnects})")
            else:
                self._say(f"connected ({self.result.transport})")
            return

    async def _pause(self) -> None:
        await asyncio.sleep(self._delay)
        self._delay = min(self.backoff_max, self._delay * 2)

    async def _open(self, number: int) -> OutletLink:
        def post(link: OutletLink, frame: Frame) -> None:
            if frame.error is None and isinstance(frame.value, dict):
                self._inbox.put_nowait(_Message(number, frame.value))

        try:
            return await OutletLink.open(
                "tcp" if self.tcp_port is not None else "ws",
                self.host,
                self.tcp_port,
                url=self.ws_url,
                timeout=self.connect_timeout,
                ping_interval=10,
                number=number,
                on_frame=post,
                on_end=lambda link: self._inbox.put_nowait(_Closed(number)),
            )
        except ValueError as exc:
            if self.ws_url is None:
                raise
            raise ValueError(f"bad WebSocket URL {self.ws_url!r}: {exc}") from exc

    async def _send(self, callback: int, args: Any = None, packet_id: int | None = None) -> int:
        if self._link is None:
            raise LinkClosed("not connected")
        packet_id = packet_id if packet_id is not None else self._new_packet_id()
        payload: dict[str, Any] = {"callbackName": callback}
        if args is not None:
            payload["callbackArgs"] = args
        self.result.sent.append(Sent(self._now(), self._link.number, packet_id, callback, args))
        text = json.dumps({"packetID": packet_id, "payload": payload})
        await self._link.send(
            f"{text}\n".encode() if self._link.transport == "tcp" else text.encode()
        )
        return packet_id

    async def _request(self, callback: int) -> dict[str, Any]:
        """Send and wait for the reply with the same packetID; anything else is observed."""
        packet_id = await self._send(callback)
        assert self._link is not None
        conn = self._link.number
        async with asyncio.timeout(self.request_timeout):
            while True:
                item = await self._inbox.get()
                if isinstance(item, _Closed):
                    if item.conn == conn:
                        raise LinkClosed("connection closed while waiting for a reply")
                    continue
                self._observe(item)
                if item.conn == conn and item.value.get("packetID") == packet_id:
                    return item.value

    async def _request_with_retry(self, callback: int, attempts: int = 5) -> dict[str, Any]:
        for attempt in range(attempts):
            try:
                return await self._request(callback)
            except (LinkClosed, TimeoutError):
                if attempt == attempts - 1:
                    raise
                await self._reconnect()
        raise AssertionError("unreachable")

    def _new_packet_id(self) -> int:
        return self._rng.randint(100000, 999999)

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    def _say(self, line: str) -> None:
        if self._on_line is not None:
            self._on_line(f"[{self._now():7.3f}] {line}")


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _short(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
