"""Listening anywhere but loopback always warns, decided from the address really bound.

The commands run for real (subprocesses, real binds on 127.0.0.1 and 0.0.0.0 with port
0); traffic only ever goes to 127.0.0.1. The README's mitmdump recipe runs with the
real mitmdump against the real simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import re
import shlex
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from proxy.cli.main import main as cli_main
from proxy.core.errors import UserError
from proxy.net.listen import listen_warning, resolve_listen_host
from proxy.sim.outlet import OutletSimulator, SimConfig

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "captures" / "sample-deco-ota.invcap"
BIN = Path(sys.executable).parent
WAIT = 30.0  # generous: the commands import mitmproxy on a busy box
EVERY = "every interface"
NOT_LOOPBACK = "not a loopback address"


# --- the decision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001", "::1", "127.9.9.9"]
)
def test_loopback_in_any_spelling_does_not_warn(host: str) -> None:
    assert listen_warning(host, "X") is None
    assert all(a.is_loopback for a in resolve_listen_host(host))


@pytest.mark.parametrize(
    ("host", "bound"),
    [
        ("0", "0.0.0.0"),
        ("0x0", "0.0.0.0"),
        ("0.0.0.0", "0.0.0.0"),
        ("00", "0.0.0.0"),
        ("::", "::"),
        ("::ffff:0.0.0.0", "0.0.0.0"),
        ("", "0.0.0.0 and ::"),
    ],
)
def test_every_spelling_of_every_interface_warns(host: str, bound: str) -> None:
    warning = listen_warning(host, "the simulator")
    assert warning is not None
    assert f"({bound}, {EVERY})" in warning or f"{host} ({EVERY})" in warning
    assert warning.endswith("anyone on the network can reach the simulator")


@pytest.mark.parametrize("host", ["192.0.2.1", "10.1.2.3", "3221225985", "fe80::1", "2001:db8::1"])
def test_an_address_reachable_from_the_network_warns(host: str) -> None:
    warning = listen_warning(host, "the outlet through this proxy")
    assert warning is not None and NOT_LOOPBACK in warning
    assert warning.endswith("can reach the outlet through this proxy")


@given(st.integers(0, 2**32 - 1), st.sampled_from(["{:d}", "0x{:x}", "0{:o}"]))
def test_the_decision_follows_the_resolved_ipv4_address(number: int, spelling: str) -> None:
    """inet_aton's spellings (decimal, hex, octal) decide as the dotted address does."""
    host = spelling.format(number)
    warning = listen_warning(host, "X")
    if number >> 24 == 127:
        assert warning is None
    elif number == 0:
        assert warning is not None and EVERY in warning
    else:
        assert warning is not None and NOT_LOOPBACK in warning


@pytest.mark.parametrize("host", ["no.such.host.invalid", "a\0b", "x" * 300, "\udcff", "[::1]"])
def test_an_unresolvable_host_is_a_user_error(host: str) -> None:
    with pytest.raises(UserError, match="cannot listen on"):
        listen_warning(host, "X")


@pytest.mark.parametrize(
    "argv",
    [
        ["sim", "--host", "no.such.host.invalid", "--tcp-port", "0", "--ws-port", "0"],
        ["replay", "serve", str(SAMPLE), "--host", "x" * 300, "--tcp-port", "0"],
        ["run", "--outlet", "127.0.0.1", "--listen-host", "\udcff", "--headless", "--no-record"],
    ],
    ids=["sim", "replay-serve", "run"],
)
def test_every_command_turns_an_unresolvable_listen_host_into_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "error: cannot listen on" in err and "Traceback" not in err


# --- real binds ----------------------------------------------------------------------------


class Command:
    """One invisproxy command in a subprocess; its output, line by line, as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []

    @classmethod
    async def start(cls, *argv: str) -> Command:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "invisproxy"), *argv,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        return cls(proc)

    async def line(self, stream: str, pattern: str) -> re.Match[str]:
        reader = self.proc.stdout if stream == "out" else self.proc.stderr
        lines = self.out if stream == "out" else self.err
        assert reader is not None
        async with asyncio.timeout(WAIT):
            while True:
                raw = await reader.readline()
                assert raw, f"exited early: out {self.out}, err {self.err}"
                lines.append(raw.decode())
                if m := re.search(pattern, lines[-1]):
                    return m

    async def stop(self) -> str:
        """Ctrl-C, then everything it wrote to stderr."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(WAIT):
            _, rest = await self.proc.communicate()
        return "".join(self.err) + rest.decode()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


@pytest.fixture
async def commands() -> AsyncIterator[list[Command]]:
    started: list[Command] = []
    yield started
    for command in started:
        command.kill()
        await command.proc.wait()


def covers_every_interface(port: int) -> bool:
    """Whether the listener on ``port`` also holds 127.0.0.2, which only 0.0.0.0 does."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.2", port))
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE, exc
            return True
    return False


async def tcp_round_trip(port: int) -> dict[str, Any]:
    """Ask the listener on 127.0.0.1 for cb9; its first reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b'{"packetID":123456,"payload":{"callbackName":9}}\n')
        await writer.drain()
        async with asyncio.timeout(WAIT):
            line = await reader.readline()
    finally:
        writer.close()
    reply: dict[str, Any] = json.loads(line)
    return reply


@pytest.mark.parametrize(
    ("host", "warns"), [("127.0.0.1", False), ("0", True), ("0x0", True), ("0.0.0.0", True)]
)
async def test_sim_warns_exactly_when_it_listens_on_every_interface(
    host: str, warns: bool, commands: list[Command]
) -> None:
    sim = await Command.start("sim", "--host", host, "--tcp-port", "0", "--ws-port", "0",
                              "--sensor-interval", "0")  # fmt: skip
    commands.append(sim)
    port = int((await sim.line("out", r"listening: tcp \S+:(\d+)")).group(1))
    await sim.line("out", r"Ctrl-C to stop")  # the warning, if any, is out before this
    assert (await tcp_round_trip(port))["PUBACK"] == 1
    assert covers_every_interface(port) is warns
    err = await sim.stop()
    assert sim.proc.returncode == 0, err
    if warns:
        assert f"invisproxy sim: warning: listening on {host} (" in err
        assert "anyone on the network can reach the simulator" in err
    else:
        assert "warning" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("host", "warns"), [("127.0.0.1", False), ("0x0", True)])
async def test_run_warns_exactly_when_it_listens_on_every_interface(
    host: str, warns: bool, commands: list[Command]
) -> None:
    async with OutletSimulator(SimConfig(sensor_interval=0, tcp_split=0, seed=1)) as outlet:
        run = await Command.start(
            "run", "--outlet", "127.0.0.1", "--outlet-tcp-port", str(outlet.tcp_port),
            "--listen-host", host, "--tcp-port", "0", "--ws-port", "0",
            "--headless", "--no-record",
        )  # fmt: skip
        commands.append(run)
        m = await run.line("err", r"relaying TCP (\S+):(\d+)")
        await run.line("err", r"press Ctrl-C to stop")
        assert m.group(1) == ("0.0.0.0" if warns else "127.0.0.1")
        port = int(m.group(2))
        assert (await tcp_round_trip(port))["PUBACK"] == 1
        assert covers_every_interface(port) is warns
        err = await run.stop()
    assert run.proc.returncode == 0, err
    warning = "invisproxy run: warning: listening on 0x0 (0.0.0.0, every interface)"
    assert (warning in err) is warns, err
    assert warns or "warning" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("host", "warns"), [("127.0.0.1", False), ("0", True)])
async def test_replay_serve_warns_exactly_when_it_listens_on_every_interface(
    host: str, warns: bool, commands: list[Command]
) -> None:
    serve = await Command.start("replay", "serve", str(SAMPLE), "--host", host,
                                "--tcp-port", "0", "--ws-port", "0")  # fmt: skip
    commands.append(serve)
    port = int((await serve.line("out", r"listening: tcp \S+:(\d+)")).group(1))
    assert covers_every_interface(port) is warns
    err = await serve.stop()
    warning = f"invisproxy replay serve: warning: listening on {host} (0.0.0.0, every interface)"
    assert (warning in err) is warns, err
    assert warns or "warning" not in err
    assert "Traceback" not in err


def local_lan_address() -> str | None:
    """This machine's address toward the network, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP connect only picks a route
        except OSError:
            return None
        address: str = s.getsockname()[0]
    return None if address.startswith("127.") else address


async def test_sim_on_a_lan_address_warns_that_it_is_reachable(commands: list[Command]) -> None:
    address = local_lan_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    sim = await Command.start("sim", "--host", address, "--tcp-port", "0", "--ws-port", "0",
                              "--sensor-interval", "0")  # fmt: skip
    commands.append(sim)
    await sim.line("out", r"Ctrl-C to stop")
    err = await sim.stop()
    assert f"invisproxy sim: warning: listening on {address}, which is {NOT_LOOPBACK}" in err


# --- the README's mitmdump recipe ------------------------------------------------------------


def readme_mitmdump_command() -> list[str]:
    """The mitmdump command line the README shows, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            if line.startswith("mitmdump "):
                return shlex.split(line)
    raise AssertionError("no mitmdump command in the README")


MITMDUMP = shutil.which("mitmdump", path=str(BIN))


def free_ports(count: int) -> list[int]:
    """Distinct ports free on 127.0.0.1 now (mitmdump refuses two modes on port 0)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@pytest.mark.skipif(MITMDUMP is None, reason="mitmdump is not installed")
async def test_the_readme_mitmdump_recipe_listens_on_loopback_only_and_relays(
    tmp_path: Path, commands: list[Command]
) -> None:
    argv = readme_mitmdump_command()
    modes = [argv[i + 1] for i, word in enumerate(argv) if word == "--mode"]
    assert modes and all(
        re.fullmatch(r"reverse:\w+://[\d.]+:\d+@127\.0\.0\.1:\d+", m) for m in modes
    )
    async with OutletSimulator(SimConfig(sensor_interval=0, tcp_split=0, seed=2)) as outlet:
        ports = {"tcp": outlet.tcp_port, "http": outlet.ws_port}
        listen_ports = iter(free_ports(len(modes)))
        for i, word in enumerate(argv):
            if word == "--mode":  # the same mode, aimed at the simulator, on a free port
                kind = argv[i + 1].split(":", 1)[1].split("://", 1)[0]
                argv[i + 1] = (
                    f"reverse:{kind}://127.0.0.1:{ports[kind]}@127.0.0.1:{next(listen_ports)}"
                )
            elif word.startswith("invis_capture="):
                argv[i] = f"invis_capture={tmp_path / 'out.invcap'}"
        assert MITMDUMP is not None
        proc = await asyncio.create_subprocess_exec(
            MITMDUMP, *argv[1:], "--set", f"confdir={tmp_path / 'conf'}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        dump = Command(proc)
        commands.append(dump)
        listening: dict[str, int] = {}
        while len(listening) < len(modes):
            m = await dump.line("out", r"reverse proxy to (\w+)://\S+ listening at (\S+):(\d+)")
            assert m.group(2) == "127.0.0.1", dump.out  # not "*": every interface
            listening[m.group(1)] = int(m.group(3))
        assert (await tcp_round_trip(listening["tcp"]))["PUBACK"] == 1
        if "http" in listening:
            async with connect(f"ws://127.0.0.1:{listening['http']}/ws") as ws:
                await ws.send('{"packetID":654321,"payload":{"callbackName":15}}')
                async with asyncio.timeout(WAIT):
                    reply = json.loads(await ws.recv())
            assert reply["packetID"] == 654321 and reply["PUBACK"] == 1
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):
            await proc.communicate()
    assert (tmp_path / "out.invcap").exists()
