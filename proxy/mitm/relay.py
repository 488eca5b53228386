"""The live relay: a minimal embedded mitmproxy master in front of one outlet.

Only the addons a reverse proxy needs are loaded (core, proxyserver, next_layer,
tlsconfig): ``default_addons()`` roughly doubles the per-message latency, and
DumpMaster prints and may ``sys.exit`` (DESIGN 5). No other addon wants messages, so
the invisproxy addon runs ``direct``: messages reach it without mitmproxy's per-message
hooks, a task and a loop iteration less per message than stock mitmproxy. The master is
built inside the running event loop so the TUI, the tests and ``invisproxy run`` can all
host it.

mitmproxy keeps its master in a process-wide global (``mitmproxy.ctx``), so one Relay
runs per process at a time.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterable
from typing import Any, ClassVar, Final

from mitmproxy import exceptions, options
from mitmproxy.addons import core, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master
from mitmproxy.proxy import mode_specs

from proxy.core.errors import UserError
from proxy.core.events import Side, Transport
from proxy.core.rules import RuleSet
from proxy.mitm.addon import InvisAddon, Sink
from proxy.mitm.intervene import Interventions
from proxy.mitm.takeover import LayerTakeover
from proxy.net.peers import host_text

logger = logging.getLogger(__name__)

DEFAULT_TCP_TIMEOUT: Final = 7 * 24 * 3600
"""Device connections idle for hours; mitmproxy's 10 minute default would cut them."""

STOP_TIMEOUT: Final = 5.0


class RelayError(UserError):
    """The relay could not start (port in use, bad address, ...)."""


class Relay:
    """Relays app<->outlet traffic over raw TCP and WebSocket, emitting wire events.

    ``tcp_port`` / ``ws_port`` are the listen ports (0 = ephemeral, None = that
    transport is off); after :meth:`start` the bound addresses are in
    :attr:`tcp_address` / :attr:`ws_address`. Every event goes to the ``sinks`` (before
    the bytes are forwarded) and the ``deferred_sinks`` (just after), see
    :class:`proxy.mitm.addon.InvisAddon`; a failing sink never stops forwarding. All of
    them have had every event, Close included, when :meth:`stop` returns.
    """

    _active: ClassVar[Relay | None] = None

    def __init__(
        self,
        outlet_host: str,
        *,
        outlet_tcp_port: int = 3333,
        outlet_ws_port: int = 80,
        listen_host: str = "127.0.0.1",
        tcp_port: int | None = 3333,
        ws_port: int | None = 8080,
        sinks: Iterable[Sink] = (),
        deferred_sinks: Iterable[Sink] = (),
        ws_path: str = "/ws",
        tcp_timeout: int = DEFAULT_TCP_TIMEOUT,
        confdir: str | None = None,
        bare: bool = False,
        takeover: LayerTakeover | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        """``bare`` leaves the invisproxy addon out (a baseline for benchmarks).

        ``rules`` act on the messages forwarded (:mod:`proxy.core.rules`); with none
        and no intercept filter, chunks are forwarded exactly as received.

        ``takeover`` decides whether messages bypass mitmproxy's hooks (by default:
        on the mitmproxy version that was written for, see :mod:`proxy.mitm.takeover`).
        """
        if tcp_port is None and ws_port is None:
            raise ValueError("both transports are disabled: nothing to relay")
        self.outlet_host = outlet_host
        self.outlet_tcp_port = outlet_tcp_port
        self.outlet_ws_port = outlet_ws_port
        self.listen_host = listen_host
        self.tcp_port = tcp_port
        self.ws_port = ws_port
        self.tcp_timeout = tcp_timeout
        self.confdir = confdir
        self.bare = bare
        self.addon = InvisAddon(
            *sinks,
            deferred_sinks=deferred_sinks,
            ws_path=ws_path,
            direct=True,
            takeover=takeover,
            rules=rules,
        )
        self.tcp_address: tuple[str, int] | None = None
        self.ws_address: tuple[str, int] | None = None
        self._master: Master | None = None
        self._ps: proxyserver.Proxyserver | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._modes: dict[Transport, str] = {}

    # ------------------------------------------------------------------ modes

    def mode_specs(self) -> dict[Transport, str]:
        """The mitmproxy ``--mode`` specs this relay runs, by transport.

        Port 0 is resolved to a free port here: mitmproxy refuses two modes on the
        same address, and "port 0" twice looks like that. (mitmproxy resolves port 0
        the same way, so this adds no new race.)
        """
        host = host_text(self.outlet_host)  # as it goes into a mitmproxy server spec
        listen = self.listen_host.strip("[]")
        modes: dict[Transport, str] = {}
        taken: set[int] = set()
        if self.tcp_port is not None:
            port = self.tcp_port or _free_port(listen, taken)
            taken.add(port)
            modes["tcp"] = f"reverse:tcp://{host}:{self.outlet_tcp_port}@{listen}:{port}"
        if self.ws_port is not None:
            port = self.ws_port or _free_port(listen, taken)
            modes["ws"] = f"reverse:http://{host}:{self.outlet_ws_port}@{listen}:{port}"
        return modes

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._run_task is not None and not self._run_task.done()

    async def start(self) -> None:
        """Bind the listeners; raises RelayError (a UserError) if that is impossible."""
        if Relay._active is not None:
            raise RuntimeError("a Relay is already running in this process (mitmproxy is global)")
        try:
            self._modes = self.mode_specs()
        except OSError as exc:
            transport: Transport = "tcp" if self.tcp_port is not None else "ws"
            raise RelayError(_describe_listen_error(transport, self.listen_host, exc)) from None
        for spec in self._modes.values():
            try:
                mode_specs.ProxyMode.parse(spec)
            except ValueError as exc:
                raise RelayError(f"bad outlet or listen address in {spec!r}: {exc}") from None

        opts = options.Options()
        master = Master(opts, event_loop=asyncio.get_running_loop())
        started = _Started()
        ps = proxyserver.Proxyserver()  # type: ignore[no-untyped-call]
        addons: list[Any] = [core.Core(), ps, started]
        if not self.bare:
            # before NextLayer, so our raw TCP layer is chosen without TLS sniffing
            addons.append(self.addon)
        addons += [next_layer.NextLayer(), tlsconfig.TlsConfig()]
        master.addons.add(*addons)  # type: ignore[no-untyped-call]
        settings: dict[str, Any] = {
            "mode": list(self._modes.values()),
            "tcp_timeout": self.tcp_timeout,
            "connection_strategy": "eager",
            "websocket": True,
        }
        if self.confdir is not None:
            settings["confdir"] = self.confdir
        try:
            opts.update(**settings)  # type: ignore[no-untyped-call]
        except exceptions.OptionsError as exc:
            master.shutdown()  # type: ignore[no-untyped-call]
            await master.done()
            raise RelayError(str(exc)) from None

        Relay._active = self
        self._master = master
        self._ps = ps
        self._run_task = asyncio.create_task(master.run(), name="invisproxy relay")
        wait_started = asyncio.create_task(started.event.wait())
        await asyncio.wait([self._run_task, wait_started], return_when=asyncio.FIRST_COMPLETED)
        wait_started.cancel()

        problems = self._startup_problems()
        if problems or self._run_task.done():
            await self.stop()
            failure = None
            if self._run_task.done() and not self._run_task.cancelled():
                failure = self._run_task.exception()
            if failure is not None:
                raise RelayError(f"the proxy failed to start: {failure}") from failure
            raise RelayError("; ".join(problems) or "the proxy stopped while starting")

    def _proxyserver(self) -> proxyserver.Proxyserver:
        assert self._ps is not None
        return self._ps

    def _startup_problems(self) -> list[str]:
        ps = self._proxyserver()
        problems: list[str] = []
        for transport, spec in self._modes.items():
            try:
                instance = ps.servers[spec]
            except KeyError:
                problems.append(f"{transport} listener was not created")
                continue
            if instance.last_exception is not None or not instance.is_running:
                mode = mode_specs.ProxyMode.parse(spec)
                where = f"{mode.listen_host()}:{mode.listen_port()}"
                problems.append(_describe_listen_error(transport, where, instance.last_exception))
                continue
            host, port, *_ = instance.listen_addrs[0]
            if transport == "tcp":
                self.tcp_address = (host, port)
            else:
                self.ws_address = (host, port)
        return problems

    async def stop(self) -> None:
        """Close the listeners and every live connection, then the master.

        ``Master.shutdown()`` alone leaves both open (DESIGN 5). Events for the closed
        connections (``Close(by="proxy")``) reach the sinks before this returns.
        """
        master = self._master
        if master is None:
            return
        self.addon.closing = True
        try:
            ps = self._proxyserver()
            await ps.servers.update([])
            tasks = []
            for handler in list(ps.connections.values()):
                for io in list(handler.transports.values()):
                    if io.handler is not None and not io.handler.done():
                        io.handler.cancel("invisproxy relay stopping")
                        tasks.append(io.handler)
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            if not self.bare:
                await self.addon.wait_idle(STOP_TIMEOUT)
        finally:
            self.addon.flush()
            master.shutdown()  # type: ignore[no-untyped-call]
            if self._run_task is not None:
                await asyncio.wait([self._run_task], timeout=STOP_TIMEOUT)
            self._master = None
            self._ps = None
            self.addon.closing = False
            if Relay._active is self:
                Relay._active = None

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ control

    def inject(self, conn: str, to: Side, data: bytes, *, text: bool = True) -> None:
        """See :meth:`proxy.mitm.addon.InvisAddon.inject`."""
        self.addon.inject(conn, to, data, text=text)

    @property
    def interventions(self) -> Interventions:
        """Rules, the intercept filter and the held messages of this relay."""
        return self.addon.interventions

    @property
    def active_connections(self) -> int:
        """Connections mitmproxy is handling right now (recorded or not)."""
        if self._master is None:
            return 0
        return len(self._proxyserver().connections)


class _Started:
    """Sets an event on mitmproxy's ``running`` hook (servers are set up by then)."""

    name = "invis_started"

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def running(self) -> None:
        self.event.set()


def _free_port(host: str, exclude: set[int]) -> int:
    """A port the kernel says is free on ``host``; OSError if ``host`` cannot be bound."""
    infos = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM)
    for _ in range(10):
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in exclude:
            return port
    return 0


def _describe_listen_error(transport: Transport, where: str, exc: BaseException | None) -> str:
    what = "TCP" if transport == "tcp" else "WebSocket"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen for {what} on {where}: unknown host ({exc.strerror})"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"cannot listen for {what} on {where}: the port is already in use"
        if exc.errno == errno.EACCES:
            return (
                f"cannot listen for {what} on {where}: permission denied "
                "(ports below 1024 need root)"
            )
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen for {what} on {where}: no such local address"
        return f"cannot listen for {what} on {where}: {exc.strerror or exc}"
    return f"cannot listen for {what} on {where}: {exc or 'unknown error'}"
