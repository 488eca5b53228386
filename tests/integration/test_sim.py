"""The outlet simulator over real sockets: catalog replies, pushes, OTA timelines, faults,
TCP merging/splitting, and the ``invisproxy sim`` command.

Over 500 lines because the simulator is one component and every section below drives it
through the same socket client (Raw) and message helpers at the top."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from proxy.cli.main import main as cli_main
from proxy.core.events import Data, Open
from proxy.core.framing import Framer
from proxy.sim.outlet import Fault, OutletSimulator, SimConfig
from proxy.sim.state import Firmware
from tests.integration.cli_support import Command, running

Kind = Literal["tcp", "ws"]
Msg = dict[str, Any]
FAST = {"ota_seconds": 0.3, "reboot_seconds": 0.2, "restart_seconds": 0.1, "sensor_interval": 0}
NEW_FW = Firmware().im_available
WAIT = 10.0


class Raw:
    """A bare-bones client that records everything, including TCP chunk boundaries."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.chunks: list[bytes] = []
        self.inbox: asyncio.Queue[Msg | None] = asyncio.Queue()
        self.closed = False
        self._writer: asyncio.StreamWriter | None = None
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._ids = iter(range(100001, 999999, 7919))

    @classmethod
    async def open(cls, kind: Kind, sim: OutletSimulator) -> Raw:
        raw = cls(kind)
        if kind == "tcp":
            reader, raw._writer = await asyncio.open_connection("127.0.0.1", sim.tcp_port)
            raw._task = asyncio.create_task(raw._read_tcp(reader))
        else:
            raw._ws = await connect(sim.ws_url, ping_interval=None)
            raw._task = asyncio.create_task(raw._read_ws(raw._ws))
        return raw

    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        framer = Framer()
        framer.feed(Open(0, "c", "tcp", "app", "outlet"))
        try:
            while chunk := await reader.read(65536):
                self.chunks.append(chunk)
                for frame in framer.feed(Data(0, "c", "outlet", chunk)):
                    assert frame.error is None, (frame.raw, frame.error)
                    self.inbox.put_nowait(frame.value)
        except OSError:
            pass
        self.inbox.put_nowait(None)

    async def _read_ws(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                assert isinstance(message, str)
                self.inbox.put_nowait(json.loads(message))
        except ConnectionClosed:
            pass
        self.inbox.put_nowait(None)

    def packet_id(self) -> int:
        return next(self._ids)

    async def send(self, callback: int, args: Any = None, packet_id: int | None = None) -> int:
        pid = packet_id if packet_id is not None else self.packet_id()
        payload: Msg = {"callbackName": callback}
        if args is not None:
            payload["callbackArgs"] = args
        await self.send_raw({"packetID": pid, "payload": payload})
        return pid

    async def send_raw(self, message: Any) -> None:
        text = json.dumps(message)
        if self._writer is not None:
            self._writer.write((text + "\n").encode())
            await self._writer.drain()
        else:
            assert self._ws is not None
            await self._ws.send(text)

    async def next(self, timeout: float = WAIT) -> Msg:
        item = await asyncio.wait_for(self.inbox.get(), timeout)
        if item is None:
            self.closed = True
            raise AssertionError("connection closed")
        return item

    async def until(self, pred: Callable[[Msg], bool], timeout: float = WAIT) -> list[Msg]:
        """Every message up to and including the first that satisfies ``pred``."""
        seen: list[Msg] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.next()
                seen.append(msg)
                if pred(msg):
                    return seen

    async def until_closed(self, timeout: float = WAIT) -> list[Msg]:
        seen: list[Msg] = []
        async with asyncio.timeout(timeout):
            while (item := await self.inbox.get()) is not None:
                seen.append(item)
        self.closed = True
        return seen

    async def request(self, callback: int, args: Any = None) -> tuple[Msg, list[Msg]]:
        """The reply to a fresh request, and whatever arrived before it."""
        pid = await self.send(callback, args)
        seen = await self.until(lambda m: m.get("packetID") == pid and "PUBACK" in m)
        return seen[-1], seen[:-1]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        if self._ws is not None:
            self._ws.transport.abort()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=WAIT)


def cb(msg: Msg) -> int | None:
    payload = msg.get("payload")
    return payload.get("callbackName") if isinstance(payload, dict) else None


def args_of(msg: Msg) -> Any:
    return msg["payload"]["callbackArgs"]


def is_push(msg: Msg, callback: int) -> bool:
    return cb(msg) == callback and "PUBACK" not in msg


def six_digits(value: Any) -> bool:
    return isinstance(value, int) and 100000 <= value <= 999999


@pytest.fixture
async def sim() -> AsyncIterator[OutletSimulator]:
    async with OutletSimulator(SimConfig(seed=7, **FAST)) as s:  # type: ignore[arg-type]
        yield s


def make(on_event: Callable[[str], None] | None = None, **kwargs: Any) -> OutletSimulator:
    options: dict[str, Any] = {"seed": 3, **FAST, **kwargs}
    return OutletSimulator(SimConfig(**options), on_event=on_event)


# --- the catalog -----------------------------------------------------------------------


def check_response(reply: Msg, pid: int, sn: str, puback: int, callback: int | None) -> None:
    assert reply["sn"] == sn
    assert reply["packetID"] == pid
    assert reply["PUBACK"] == puback
    if callback is None:
        assert "payload" not in reply, reply
    else:
        assert reply["payload"]["callbackName"] == callback


@pytest.mark.parametrize("kind", ["tcp", "ws"])
async def test_every_callback_answers_with_its_documented_shape(
    sim: OutletSimulator, kind: Kind
) -> None:
    c = await Raw.open(kind, sim)
    sn = sim.state.serial

    async def ask(callback: int, args: Any, puback: int, with_payload: bool) -> Msg:
        pid = await c.send(callback, args)
        seen = await c.until(lambda m: m.get("packetID") == pid and "PUBACK" in m)
        check_response(seen[-1], pid, sn, puback, callback if with_payload else None)
        return seen[-1]

    config = args_of(await ask(1, None, 1, True))
    assert set(config) == {"acc_prefs", "sys_prefs"}
    assert {"enabled", "mqtt_broker_url", "user", "pass", "qos"} <= set(config["sys_prefs"]["mqtt"])
    await ask(2, [{"acc_prefs": {"pmIndicatorBrightness": 77}}], 1, False)
    assert args_of(await ask(1, None, 1, True))["acc_prefs"]["pmIndicatorBrightness"] == 77
    await ask(2, "nonsense", 0, False)

    names = args_of(await ask(3, None, 1, True))
    assert isinstance(names, list)  # real firmware: a bare array, not {"payload": [...]}
    assert [n["accessory"] for n in names] == [1, 2, 3]
    await ask(4, [{"accessory": 1, "name": "Fan"}], 1, False)
    assert args_of(await ask(3, None, 1, True))[0] == {"accessory": 1, "name": "Fan"}
    await ask(4, [{"accessory": 9, "name": "x"}], 0, False)

    assert args_of(await ask(9, None, 1, True)) == [1, 0]
    sensors = args_of(await ask(11, None, 1, True))
    assert sensors[0] == 1 and {"temp_celsius", "humidity", "AQI"} <= set(sensors[1])

    info = args_of(await ask(12, None, 1, True))
    assert set(info["IM"]) == {"sn", "MAC", "device", "fw_rev", "hw_rev"}
    assert info["IM"]["sn"] == sn
    assert {"online", "sn", "MAC", "device", "type", "fw_rev", "hw_rev", "radar"} <= set(info["PM"])

    assert args_of(await ask(15, None, 1, True)) == [1, 100]
    light = args_of(await ask(18, [5], 1, True))
    assert light[0] == 5 and len(light) == 6 and len(light[2]) == 9
    assert all(len(led) == 4 and len(led[2]) == 2 for led in light[2])
    assert len(args_of(await ask(18, [7], 1, True))[2]) == 7

    updates = args_of(await ask(20, None, 1, True))
    assert set(updates["IM"]) == {
        "fw_rev",
        "available_fw_rev",
        "www_fw_rev",
        "available_www_fw_rev",
    }
    assert set(updates["PM"]) == {"fw_rev", "available_fw_rev"}

    for callback, args in [(25, None), (26, [30]), (27, [0]), (28, [25000, 50000])]:
        await ask(callback, args, 1, False)
    await ask(26, ["soon"], 0, False)
    for unknown in (8, 13, 16, 19, 99):
        await ask(unknown, None, 0, False)
    await ask(24, None, 1, False)  # restarts the deco: last, as it takes PM away for a while

    # 6 is fire-and-forget: the next message is the reply to what follows it.
    await c.send(6)
    pid = await c.send(9)
    assert (await c.next())["packetID"] == pid
    await c.close()


@pytest.mark.parametrize("kind", ["tcp", "ws"])
async def test_controls_ack_then_push_the_new_state_to_every_client(
    sim: OutletSimulator, kind: Kind
) -> None:
    actor = await Raw.open(kind, sim)
    other = await Raw.open("ws" if kind == "tcp" else "tcp", sim)
    cases = [
        (10, [2, 1], 9, [1, 1]),
        (14, [0, 40], 15, [0, 40]),
        (17, [5, 1, [[1, 60, [200, 90]]]], 18, None),
    ]
    for control, args, pushed, expected in cases:
        pid = await actor.send(control, args)
        seen = await actor.until(partial(is_push, callback=pushed))
        reply = next(m for m in seen if m.get("packetID") == pid)
        assert reply == {"sn": sim.state.serial, "packetID": pid, "PUBACK": 1}
        push = seen[-1]
        assert six_digits(push["packetID"]) and push["packetID"] != pid
        theirs = (await other.until(partial(is_push, callback=pushed)))[-1]
        assert args_of(theirs) == args_of(push)
        if expected is not None:
            assert args_of(push) == expected
    colour = args_of(push)
    assert colour[:2] == [5, 1]
    assert all(led[:3] == [1, 60, [200, 90]] for led in colour[2])  # one HSV entry fills all
    await actor.close()
    await other.close()


async def test_sensor_readings_are_pushed_to_connected_clients() -> None:
    async with make(sensor_interval=0.02) as s:
        c = await Raw.open("tcp", s)
        pushes = [m for m in await c.until(lambda m: is_push(m, 11)) if is_push(m, 11)]
        assert pushes[0]["sn"] == s.state.serial
        deco_type, readings = args_of(pushes[0])
        assert deco_type == 1 and readings["temp_valid"] == 1
        await c.close()


async def test_restart_drops_everyone_refuses_connections_then_announces_itself() -> None:
    async with make(reboot_seconds=60) as s:
        c = await Raw.open("tcp", s)
        await c.send(5)
        assert await c.until_closed() == []  # no reply to cb5
        assert not s.is_up
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", s.tcp_port)
    async with make(reboot_seconds=0.05) as s:
        c = await restart_and_come_back("ws", s)
        await c.close()


async def restart_and_come_back(kind: Kind, sim: OutletSimulator) -> Raw:
    """cb5 on a ``kind`` link, then that app back once the outlet is up: its first news
    must be the cb12 announcement of this outlet. Returns the link it came back on."""
    c = await Raw.open(kind, sim)
    await c.send(5)
    await c.until_closed()
    back = await connect_when_up(kind, sim)
    announce = await back.next()
    assert is_push(announce, 12) and args_of(announce)["IM"]["sn"] == sim.state.serial
    return back


async def connect_when_up(kind: Kind, sim: OutletSimulator, timeout: float = WAIT) -> Raw:
    """What an app does while the outlet reboots: try again until it answers."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await Raw.open(kind, sim)
            except OSError:
                await asyncio.sleep(0.02)


# --- OTA --------------------------------------------------------------------------------


def check_phase(messages: list[Msg], device: int, status: int = 1) -> None:
    """``messages`` holds progress 0..100 for ``device`` and then its result."""
    progress = [args_of(m)[1] for m in messages if cb(m) == 22 and args_of(m)[0] == device]
    assert progress and progress == sorted(progress) and progress[0] == 0
    results = [args_of(m) for m in messages if cb(m) == 23 and args_of(m)[0] == device]
    assert results[-1] == [device, status]


def ota_kinds(messages: list[Msg]) -> list[tuple[int, ...]]:
    """The OTA pushes in order, with progress runs collapsed: (22, dev) and (23, dev, status)."""
    out: list[tuple[int, ...]] = []
    for m in messages:
        if cb(m) == 22:
            key: tuple[int, ...] = (22, args_of(m)[0])
            if not out or out[-1] != key:
                out.append(key)
        elif cb(m) == 23:
            out.append((23, *args_of(m)))
    return out


async def test_reva_outlet_update_acks_reports_two_phases_reboots_and_announces() -> None:
    async with make(revision="A") as s:
        c = await Raw.open("ws", s)
        pid = await c.send(21, [1, 0])
        seen = await c.until_closed()
        assert seen[0] == {"sn": s.state.serial, "packetID": pid, "PUBACK": 1}
        assert ota_kinds(seen[1:]) == [(23, 1, 0), (22, 3), (23, 3, 1), (22, 1), (23, 1, 1)]
        check_phase(seen, 3)
        check_phase(seen, 1)
        assert all(six_digits(m["packetID"]) and m["packetID"] != pid for m in seen[1:])
        assert [args_of(m)[1] for m in seen if cb(m) == 22][-1] == 100
        await s.wait_ota_state("succeeded")
        c = await Raw.open("ws", s)
        announce = await c.next()
        assert is_push(announce, 12) and args_of(announce)["IM"]["fw_rev"] == NEW_FW
        reply, _ = await c.request(20)
        assert args_of(reply)["IM"]["fw_rev"] == args_of(reply)["IM"]["available_fw_rev"]
        await c.close()


async def test_revb_outlet_update_restarts_at_once_and_answers_on_the_next_connection() -> None:
    async with make(revision="B") as s:
        c = await Raw.open("tcp", s)
        pid = await c.send(21, [1, 0])
        assert await c.until_closed() == []  # no ack: the device restarts immediately
        assert c.chunks == []
        await s.wait_ota_state("waiting-for-reconnect")
        c = await Raw.open("tcp", s)
        sync = await c.next()
        assert sync == {
            "sn": s.state.serial,
            "packetID": pid,
            "payload": {"callbackName": 21, "callbackArgs": [1, 1]},
        }
        seen = await c.until_closed()
        assert ota_kinds(seen) == [(23, 1, 0), (22, 3), (23, 3, 1), (22, 1), (23, 1, 1)]
        check_phase(seen, 1)
        assert all(m["packetID"] != pid for m in seen)
        await s.wait_ota_state("succeeded")
        c = await Raw.open("tcp", s)
        announce = await c.next()
        assert is_push(announce, 12) and args_of(announce)["IM"]["fw_rev"] == NEW_FW
        await c.close()


async def test_progress_pushes_are_lost_while_nobody_is_connected() -> None:
    async with make(revision="A", ota_seconds=0.4) as s:
        c = await Raw.open("tcp", s)
        await c.send(21, [1, 0])
        await c.until(lambda m: cb(m) == 22 and args_of(m)[0] == 1)  # main phase begun
        await c.close()
        await s.wait_ota_state("succeeded")
        late = await Raw.open("tcp", s)
        first = await late.next()
        assert is_push(first, 12)  # no stale progress or results queued up for it
        assert s.ota_history[-3:] == ["main-phase", "rebooting", "succeeded"]
        await late.close()


@pytest.mark.parametrize("revision", ["A", "B"])
async def test_deco_update_keeps_the_connection_and_brings_pm_back_with_new_firmware(
    revision: Literal["A", "B"],
) -> None:
    async with make(revision=revision, sensor_interval=0.02, reboot_seconds=1.5) as s:
        c = await Raw.open("tcp", s)
        pid = await c.send(21, [2, 1])
        seen = await c.until(lambda m: cb(m) == 23 and args_of(m) == [2, 1])
        assert {"sn": s.state.serial, "packetID": pid, "PUBACK": 1} in seen
        assert ota_kinds(seen) == [(23, 2, 0), (22, 2), (23, 2, 1)]
        check_phase(seen, 2)
        reply, _ = await c.request(12)
        assert "PM" not in args_of(reply)  # the faceplate is rebooting
        back = await c.until(lambda m: cb(m) == 12 and "PM" in args_of(m))
        assert not any(cb(m) == 11 for m in back), "sensor pushes go on while the deco reboots"
        assert args_of(back[-1])["PM"]["fw_rev"] == Firmware().pm_available
        assert not c.closed and s.client_count == 1
        await s.wait_ota_state("succeeded")
        await c.close()


@pytest.mark.parametrize(
    ("revision", "kind", "firmware"),
    [
        ("A", "ws", Firmware()),
        ("A", "tcp", Firmware(im_available="0.0.1", www_available="0.1.2")),
    ],
    ids=["fault", "already-current"],
)
async def test_reva_refuses_with_puback_0(
    revision: Literal["A"], kind: Kind, firmware: Firmware
) -> None:
    fault = Fault("refuse") if firmware == Firmware() else None
    async with make(revision=revision, fault=fault, firmware=firmware) as s:
        c = await Raw.open(kind, s)
        reply, _ = await c.request(21, [1, 0])
        assert "payload" not in reply and reply["PUBACK"] == 0
        after, _ = await c.request(12)
        assert s.ota_history == ["requested", "refused"] and not s.ota_active
        assert args_of(after)["IM"]["fw_rev"] == firmware.im
        await c.close()


async def test_revb_refusal_comes_as_a_status_0_sync_cb21_after_the_restart() -> None:
    async with make(revision="B", fault=Fault("refuse")) as s:
        c = await Raw.open("tcp", s)
        pid = await c.send(21, [1, 0])
        await c.until_closed()
        await s.wait_ota_state("waiting-for-reconnect")
        c = await Raw.open("tcp", s)
        sync = await c.next()
        assert sync["packetID"] == pid and args_of(sync) == [1, 0]
        await s.wait_ota_state("refused")
        reply, between = await c.request(12)
        assert ota_kinds(between) == [] and not s.ota_active
        assert args_of(reply)["IM"]["fw_rev"] == Firmware().im
        await c.close()


async def test_fail_at_reports_a_main_phase_failure_and_keeps_running() -> None:
    async with make(revision="A", fault=Fault("fail-at", 45)) as s:
        c = await Raw.open("ws", s)
        await c.send(21, [1, 0])
        main: list[int] = []

        def main_result(m: Msg) -> bool:
            if cb(m) == 22 and args_of(m)[0] == 1:
                main.append(args_of(m)[1])
            return bool(main) and cb(m) == 23 and args_of(m)[0] == 1

        seen = await c.until(main_result)
        assert ota_kinds(seen) == [(23, 1, 0), (22, 3), (23, 3, 1), (22, 1), (23, 1, 0)]
        assert main[-1] == 45 and max(main) == 45
        await s.wait_ota_state("failed")
        reply, _ = await c.request(12)
        assert args_of(reply)["IM"]["fw_rev"] == Firmware().im and not c.closed
        await c.close()


async def test_stall_at_stops_progress_for_good() -> None:
    async with make(revision="A", fault=Fault("stall-at", 30)) as s:
        c = await Raw.open("tcp", s)
        await c.send(21, [1, 0])
        await s.wait_ota_state("stalled")
        assert not s.ota_active  # nothing left that could push more
        _, seen = await c.request(12)
        main = [args_of(m)[1] for m in seen if cb(m) == 22 and args_of(m)[0] == 1]
        assert main[-1] == 30 and max(main) == 30
        assert ota_kinds(seen)[-1] == (22, 1)  # no result after the stall
        await c.close()


# --- TCP write shapes -----------------------------------------------------------------------


async def test_tcp_merges_objects_without_a_delimiter() -> None:
    async with make(tcp_merge=1.0, tcp_split=0.0) as s:
        c = await Raw.open("tcp", s)
        burst = [{"packetID": 200000 + i, "payload": {"callbackName": 9}} for i in range(6)]
        c._writer.write("".join(json.dumps(m) + "\n" for m in burst).encode())  # type: ignore[union-attr]
        seen = await c.until(lambda m: m.get("packetID") == 200005)
        assert [m["packetID"] for m in seen] == [200000 + i for i in range(6)]
        assert s.stats.merged >= 1
        assert any(re.search(rb"\}\{", chunk) for chunk in c.chunks)
        await c.close()


async def test_tcp_splits_objects_across_writes_and_they_reassemble() -> None:
    async with make(tcp_merge=0.0, tcp_split=1.0, split_pause=0.02) as s:
        c = await Raw.open("tcp", s)
        for _ in range(5):
            reply, _ = await c.request(12)
            assert reply["PUBACK"] == 1 and "IM" in args_of(reply)
        assert s.stats.split == 5
        partial = [chunk for chunk in c.chunks if not _complete_values(chunk)]
        assert partial, "every chunk held whole objects: no split reached the client"
        await c.close()


def _complete_values(chunk: bytes) -> bool:
    framer = Framer()
    framer.feed(Open(0, "x", "tcp", "a", "b"))
    frames = framer.feed(Data(0, "x", "outlet", chunk))
    return bool(frames) and all(f.error is None for f in frames) and chunk.endswith(b"\n")


async def test_tcp_mangling_follows_the_seed() -> None:
    async def run(seed: int) -> tuple[int, int]:
        async with make(seed=seed, tcp_merge=0.0, tcp_split=0.5, split_pause=0.0) as s:
            c = await Raw.open("tcp", s)
            for _ in range(20):
                await c.request(12)
            await c.close()
            return s.stats.writes, s.stats.split

    first, again = await run(11), await run(11)
    assert first == again
    assert 0 < first[1] < 20


# --- the command line ---------------------------------------------------------------------


def test_sim_command_rejects_a_bad_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["sim", "--fault", "explode"]) == 2
    err = capsys.readouterr().err
    assert "bad fault 'explode'" in err and "Traceback" not in err


def test_sim_command_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli_main(["sim", "--tcp-port", str(port), "--ws-port", "0"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"invisproxy sim: error: cannot listen on 127.0.0.1 TCP port {port}: address already in use"
    )


@asynccontextmanager
async def sim_command(
    *args: str,
) -> AsyncIterator[tuple[Command, asyncio.StreamReader, asyncio.StreamWriter]]:
    """``invisproxy sim`` as a user starts it (revA, free ports, seed 1, no sensor pushes,
    then ``args``), and an app connected to its TCP port once it says where it listens."""
    base = ["--rev", "A", "--tcp-port", "0", "--ws-port", "0", "--sensor-interval", "0"]
    async with running("sim", *base, "--seed", "1", *args, wait=WAIT) as sim:
        m = await sim.line_matching(r"listening: tcp 127\.0\.0\.1:(\d+), ws (ws://\S+/ws)")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(m.group(1)))
        try:
            yield sim, reader, writer
        finally:
            writer.close()


async def test_sim_command_serves_prints_ota_steps_and_stops_on_ctrl_c() -> None:
    args = ["--ota-seconds", "0.2", "--reboot-seconds", "0.1"]
    async with sim_command(*args) as (sim, _, writer):
        writer.write(b'{"packetID":123456,"payload":{"callbackName":21,"callbackArgs":[1,0]}}\n')
        await writer.drain()
        await sim.line_matching(r"OTA outlet succeeded: IM now 0\.0\.2")
        writer.close()
        out, err = await sim.interrupt()
    assert sim.proc.returncode == 0, err
    for step in ("acknowledged", "WWW phase started", "main phase started", "rebooting"):
        assert step in out
    assert out.rstrip().endswith("stopped")
    assert b"Traceback" not in err


# --- fidelity: faults, the restart announcement, a deco retry while it reboots -------------


class Progress:
    """Marks each cb23 that follows progress, so the spurious early result is told apart."""

    def __init__(self) -> None:
        self.seen_progress = False

    def __call__(self, msg: Msg) -> bool:
        if cb(msg) == 22:
            self.seen_progress = True
        if cb(msg) == 23 and self.seen_progress:
            self.seen_progress = False
            return True
        return False


async def ask_deco_update(c: Raw) -> tuple[Msg, list[Msg]]:
    """Request a deco update; its reply and every message up to its real result."""
    pid = await c.send(21, [2, 1])
    seen = await c.until(Progress())
    reply = next(m for m in seen if m.get("packetID") == pid and "PUBACK" in m)
    return reply, seen


async def test_a_fault_is_acted_out_by_the_next_update_only() -> None:
    async with make(revision="A", fault=Fault("fail-at", 30), reboot_seconds=0.1) as s:
        c = await Raw.open("tcp", s)
        reply, seen = await ask_deco_update(c)
        assert reply["PUBACK"] == 1 and ota_kinds(seen)[-1] == (23, 2, 0)
        assert max(args_of(m)[1] for m in seen if cb(m) == 22) == 30
        await s.wait_ota_state("failed")
        reply, seen = await ask_deco_update(c)
        assert reply["PUBACK"] == 1
        assert ota_kinds(seen)[-1] == (23, 2, 1), "the second update failed again"
        assert [args_of(m)[1] for m in seen if cb(m) == 22][-1] == 100
        await s.wait_ota_state("succeeded")
        await c.close()


async def test_a_revb_refusal_fault_refuses_one_update_and_the_next_goes_ahead() -> None:
    async with make(revision="B", fault=Fault("refuse")) as s:
        syncs: list[Any] = []
        for _ in range(2):
            c = await connect_when_up("tcp", s)
            pid = await c.send(21, [1, 0])
            await c.until_closed()  # revB restarts at once
            c = await connect_when_up("tcp", s)
            sync = await c.next()
            assert sync["packetID"] == pid
            syncs.append(args_of(sync))
            if len(syncs) == 1:
                await s.wait_ota_state("refused")
            await c.close()
        assert syncs == [[1, 0], [1, 1]]
        await s.wait_ota_state("succeeded")


@pytest.mark.parametrize(("times", "refused"), [(2, 2), (None, 4)], ids=["twice", "always"])
async def test_a_fault_repeats_for_its_count_or_always(times: int | None, refused: int) -> None:
    async with make(revision="A", fault=Fault("refuse", times=times)) as s:
        c = await Raw.open("ws", s)
        pubacks = [(await c.request(21, [2, 1]))[0]["PUBACK"] for _ in range(refused)]
        assert pubacks == [0] * refused
        if times is not None:
            reply, _ = await c.request(21, [2, 1])
            assert reply["PUBACK"] == 1, "the fault outlived its count"
        await c.close()


async def test_a_request_refused_for_its_own_reason_leaves_the_fault_for_later() -> None:
    lines: list[str] = []
    async with make(lines.append, revision="A", reboot_seconds=0.3, fault=Fault("refuse")) as s:
        c = await Raw.open("tcp", s)
        reply, _ = await c.request(24)  # restart the deco: it goes offline for a while
        assert reply["PUBACK"] == 1
        offline, _ = await c.request(21, [2, 1])
        assert offline["PUBACK"] == 0 and "payload" not in offline
        assert any("the deco is offline" in line for line in lines), lines
        await c.until(lambda m: is_push(m, 12) and "PM" in args_of(m))  # the deco is back
        faulted, _ = await c.request(21, [2, 1])
        assert faulted["PUBACK"] == 0 and any("fault injected" in line for line in lines)
        reply, _ = await c.request(21, [2, 1])
        assert reply["PUBACK"] == 1
        await c.close()


@pytest.mark.parametrize("revision", ["A", "B"])
async def test_a_second_deco_cb21_while_the_deco_reboots_gets_puback_0_and_changes_nothing(
    revision: Literal["A", "B"],
) -> None:
    lines: list[str] = []
    async with make(lines.append, revision=revision, reboot_seconds=0.5) as s:
        c = await Raw.open("tcp", s)
        first, _ = await ask_deco_update(c)
        assert first["PUBACK"] == 1
        await s.wait_ota_state("deco-rebooting")
        retry_pid = await c.send(21, [2, 1])
        after = await c.until(lambda m: is_push(m, 12) and "PM" in args_of(m))
        retry = [m for m in after if m.get("packetID") == retry_pid]
        assert retry == [{"sn": s.state.serial, "packetID": retry_pid, "PUBACK": 0}]
        assert ota_kinds(after) == [], "the refused retry started an update of its own"
        assert args_of(after[-1])["PM"]["fw_rev"] == Firmware().pm_available
        await s.wait_ota_state("succeeded")
        assert s.ota_history == [
            *["requested", "acknowledged", "deco-phase", "deco-rebooting"],
            *["requested", "refused", "succeeded"],
        ]
        assert any("OTA deco refused (PUBACK 0): the deco is offline" in x for x in lines), lines
        assert not c.closed and s.client_count == 1
        await c.close()


async def test_a_deco_cb21_while_a_cb24_restart_has_the_deco_offline_gets_puback_0() -> None:
    async with make(revision="B", reboot_seconds=0.3) as s:
        c = await Raw.open("tcp", s)
        reply, _ = await c.request(24)
        assert reply["PUBACK"] == 1
        refused, _ = await c.request(21, [2, 0])
        assert refused == {"sn": s.state.serial, "packetID": refused["packetID"], "PUBACK": 0}
        back = await c.until(lambda m: is_push(m, 12) and "PM" in args_of(m))
        assert ota_kinds(back) == [] and not s.ota_active
        assert s.ota_history == ["requested", "refused"]
        assert args_of(back[-1])["PM"]["fw_rev"] == Firmware().pm  # nothing was installed
        await c.close()


async def test_the_restart_is_announced_to_the_first_app_back_and_no_later_one() -> None:
    async with make(reboot_seconds=0.05) as s:
        first = await restart_and_come_back("tcp", s)
        for kind in ("ws", "tcp"):
            later = await Raw.open(kind, s)
            reply, before = await later.request(9)
            assert reply["PUBACK"] == 1
            assert not any(is_push(m, 12) for m in before), f"a later {kind} app got the cb12"
            await later.close()
        await first.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault-times", "2"], "--fault-times needs a --fault to act out"),
        (["--fault", "refuse", "--fault-times", "0"], "expected a count of 1 or more, or 'always'"),
        (["--fault", "refuse", "--fault-times", "often"], "expected a count of 1 or more"),
    ],
)
def test_sim_command_rejects_a_bad_fault_count(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = cli_main(["sim", "--tcp-port", "0", "--ws-port", "0", *argv])
    except SystemExit as exc:
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


async def test_sim_command_acts_a_fault_out_as_many_times_as_asked() -> None:
    async with sim_command("--fault", "refuse", "--fault-times", "2") as (sim, reader, writer):
        framer = Framer()
        framer.feed(Open(0, "c", "tcp", "app", "outlet"))
        pubacks: list[int] = []
        for pid in (111111, 222222, 333333):
            request = {"packetID": pid, "payload": {"callbackName": 21, "callbackArgs": [2, 1]}}
            writer.write(json.dumps(request).encode() + b"\n")
            async with asyncio.timeout(WAIT):
                while len(pubacks) < pid // 111111:
                    chunk = await reader.read(65536)
                    assert chunk, "the simulator closed the connection"
                    for frame in framer.feed(Data(0, "c", "outlet", chunk)):
                        if frame.value.get("packetID") == pid and "PUBACK" in frame.value:
                            pubacks.append(frame.value["PUBACK"])
        writer.close()
        out, err = await sim.interrupt()
    assert pubacks == [0, 0, 1]
    assert "fault: refuse on the next 2 updates" in out
    assert out.count("OTA deco refused (PUBACK 0): fault injected") == 2
    assert b"Traceback" not in err
