"""What every command shares: the look of help and errors, value types, option groups.

The option groups (listener, outlet, analysis windows, recording) are decorators that
add their options to a command and hand the command one frozen dataclass instead of
loose values, so each flag has one name, one meaning and one type in every command.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from proxy.net.addresses import Listener, Outlet

Callback = Callable[..., int]
Decorator = Callable[[Callback], Callback]

# ---------------------------------------------------------------------- help and errors


class _Formatter(click.HelpFormatter):
    """Usage lines read ``usage: invisproxy CMD ...``, as they always have."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "usage: " if prefix is None else prefix)


class _Context(click.Context):
    formatter_class = _Formatter


def _help_option(command: click.Command, ctx: click.Context) -> click.Option | None:
    option = click.Command.get_help_option(command, ctx)
    if option is not None:
        option.help = "show this help and exit"
    return option


class InvisCommand(click.Command):
    """A command whose errors name it: ``invisproxy CMD: error: ...`` and exit status 2.

    Options of type :class:`SpelledFlag` are also accepted in their ``--name=value``
    spelling (``--redact=all``) while ``--name`` stays a flag, so ``--redact FILE``
    still reads FILE as the file.
    """

    context_class = _Context
    get_help_option = _help_option

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        spellings = {
            p.spelling: p.opts[0] for p in self.params if isinstance(p, SpelledFlag) and p.spelling
        }
        if spellings:
            cut = args.index("--") if "--" in args else len(args)
            args = [spellings.get(a, a) for a in args[:cut]] + args[cut:]
        ctx.allow_extra_args = True  # reported below in the words of the other errors
        with _blaming(ctx):
            rest = super().parse_args(ctx, args)
        if rest:
            raise click.UsageError(f"unrecognized arguments: {' '.join(rest)}", ctx)
        return rest

    def invoke(self, ctx: click.Context) -> Any:
        from proxy.core.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            print(f"{ctx.command_path}: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # `invisproxy analyze F | head`: the reader has what it wanted
            silence_stdout()
            return 0


class InvisGroup(click.Group):
    """A group that lists its commands in a reading order and, given none, prints its
    help and exits 2 (see ``main``)."""

    context_class = _Context
    get_help_option = _help_option

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _blaming(ctx):
            return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added, not sorted


class SpelledFlag(click.Option):
    """A flag also accepted (and shown in help) as ``spelling``, e.g. ``--redact=all``."""

    def __init__(self, *args: Any, spelling: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spelling = spelling

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None or not self.spelling:
            return record
        return self.spelling, record[1]


@contextlib.contextmanager
def _blaming(ctx: click.Context) -> Iterator[None]:
    """Some parser errors (an option without its value) come without the command."""
    try:
        yield
    except click.UsageError as exc:
        if exc.ctx is None:
            exc.ctx = ctx
        raise


def usage_error_text(exc: click.UsageError) -> str:
    """A click usage error in the words the command line has always used, on one line:
    a control character the user typed into an argument is shown escaped."""
    text = _usage_error_words(exc)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _usage_error_words(exc: click.UsageError) -> str:
    if isinstance(exc, click.NoSuchOption):
        text = f"unrecognized arguments: {exc.option_name}"
        hidden = set()
        if exc.ctx is not None:  # never suggest a deprecated name
            params = exc.ctx.command.params
            hidden = {o for p in params if isinstance(p, click.Option) and p.hidden for o in p.opts}
        return text + _suggest(set(exc.possibilities or ()) - hidden)
    if isinstance(exc, click.exceptions.NoSuchCommand):
        return f"no such command: {exc.command_name}" + _suggest(exc.possibilities or ())
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        return f"the following arguments are required: {_param_name(exc.param)}"
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        return f"argument {_param_name(exc.param)}: {exc.message}"
    message = exc.message.rstrip(".")
    return message[:1].lower() + message[1:]


def _suggest(names: Iterable[str]) -> str:
    shown = sorted(names)
    return f" (did you mean {' or '.join(shown)}?)" if shown else ""


def _param_name(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return param.human_readable_name


def silence_stdout() -> None:
    """After a closed pipe (``... | head``), keep Python's exit flush quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def say(ctx_path: str, text: str) -> None:
    print(f"{ctx_path}: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- value types


@dataclass(eq=False)
class Port(click.ParamType[int]):
    """A TCP port: to listen on (0 picks a free one) or to connect to (1..65535)."""

    name = "port"
    listen: bool

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(value)
            except ValueError:
                self.fail(f"not a port number: {value!r}", param, ctx)
        low = 0 if self.listen else 1
        if not low <= number <= 65535:
            hint = "0..65535 (0 = any free port)" if self.listen else "1..65535"
            self.fail(f"port must be {hint}: {value!r}", param, ctx)
        return number


LISTEN_PORT = Port(listen=True)
REMOTE_PORT = Port(listen=False)


@dataclass(eq=False)
class Seconds(click.ParamType[float]):
    """A finite number, greater than 0 or (``zero_ok``) at least 0."""

    name = "number"
    zero_ok: bool

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"not a number: {value!r}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"not a finite number: {value!r}", param, ctx)
        if self.zero_ok and number < 0:
            self.fail(f"must be 0 or more: {value!r}", param, ctx)
        if not self.zero_ok and not number > 0:
            self.fail(f"must be greater than 0: {value!r}", param, ctx)
        return number


POSITIVE = Seconds(zero_ok=False)
NON_NEGATIVE = Seconds(zero_ok=True)


class Choices(click.Choice[str]):
    """One of fixed words, shown ``{a,b}`` and refused as ``invalid choice: 'x'``."""

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "{" + ",".join(str(c) for c in self.choices) + "}"

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        words = ", ".join(repr(c) for c in self.choices)
        return f"invalid choice: {value!r} (choose from {words})"


# ---------------------------------------------------------------------- option groups


def option_group(
    options: Sequence[Decorator],
    names: Sequence[str],
    build: Callable[[click.Context, dict[str, Any]], object],
    into: str,
) -> Decorator:
    """A decorator adding ``options`` and passing ``build(their values)`` as ``into``."""

    def decorate(f: Callback) -> Callback:
        @functools.wraps(f)
        def wrapper(**kwargs: Any) -> int:
            values = {name: kwargs.pop(name) for name in names}
            kwargs[into] = build(click.get_current_context(), values)
            return f(**kwargs)

        decorated: Callback = wrapper
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


def listener_options(
    *, tcp_default: int, ws_default: int, host_alias: bool, can_disable: str | None
) -> Decorator:
    """``--listen-host`` (also ``--host`` where it always was), ``--tcp-port``,
    ``--ws-port`` and, if ``can_disable`` (what the listeners are for: "relay"),
    ``--no-tcp``/``--no-ws``: passed as ``listener``."""
    host_names = ("--listen-host", "--host") if host_alias else ("--listen-host",)
    options: list[Decorator] = [
        click.option(
            *host_names, "listen_host", default="127.0.0.1", metavar="HOST",
            help="the address to listen on (default 127.0.0.1; any other than a loopback "
            "address lets the network in, and the command warns)",
        ),
        click.option(
            "--tcp-port", type=LISTEN_PORT, default=tcp_default, metavar="PORT",
            help=f"raw TCP port to listen on (default {tcp_default}; 0 picks a free one)",
        ),
        click.option(
            "--ws-port", type=LISTEN_PORT, default=ws_default, metavar="PORT",
            help=f"WebSocket port to listen on, path /ws (default {ws_default}; port 80 "
            "needs root; 0 picks a free one)",
        ),
    ]  # fmt: skip
    names = ["listen_host", "tcp_port", "ws_port"]
    if can_disable:
        options += [
            click.option("--no-tcp", is_flag=True, help=f"do not {can_disable} raw TCP"),
            click.option("--no-ws", is_flag=True, help=f"do not {can_disable} WebSockets"),
        ]
        names += ["no_tcp", "no_ws"]

    def build(ctx: click.Context, v: dict[str, Any]) -> Listener:
        if v.get("no_tcp") and v.get("no_ws"):
            raise click.UsageError(
                f"--no-tcp and --no-ws together leave nothing to {can_disable}", ctx
            )
        return Listener(
            host=v["listen_host"],
            tcp_port=None if v.get("no_tcp") else v["tcp_port"],
            ws_port=None if v.get("no_ws") else v["ws_port"],
        )

    return option_group(options, names, build, "listener")


def outlet_options(*, old_port_names: bool = False) -> Decorator:
    """``--outlet HOST``, ``--outlet-tcp-port``, ``--outlet-ws-port``: passed as ``outlet``.

    ``old_port_names``: also take the outlet's ports as ``--tcp-port``/``--ws-port``
    (hidden, with a warning): 'replay send' used those names, which everywhere else
    mean a port to listen on.
    """
    options: list[Decorator] = [
        click.option("--outlet", required=True, metavar="HOST", help="the outlet's address"),
        click.option(
            "--outlet-tcp-port", type=REMOTE_PORT, default=3333, metavar="PORT",
            help="the outlet's raw TCP port (default 3333)",
        ),
        click.option(
            "--outlet-ws-port", type=REMOTE_PORT, default=80, metavar="PORT",
            help="the outlet's WebSocket (HTTP) port, path /ws (default 80)",
        ),
    ]  # fmt: skip
    names = ["outlet", "outlet_tcp_port", "outlet_ws_port"]
    if old_port_names:
        options += [
            click.option("--tcp-port", "old_tcp_port", type=REMOTE_PORT, hidden=True),
            click.option("--ws-port", "old_ws_port", type=REMOTE_PORT, hidden=True),
        ]
        names += ["old_tcp_port", "old_ws_port"]

    def build(ctx: click.Context, v: dict[str, Any]) -> Outlet:
        ports = {"tcp": v["outlet_tcp_port"], "ws": v["outlet_ws_port"]}
        for kind in ("tcp", "ws"):
            old = v.get(f"old_{kind}_port")
            if old is None:
                continue
            new = f"--outlet-{kind}-port"
            if ctx.get_parameter_source(f"outlet_{kind}_port") is not _DEFAULT:
                raise click.UsageError(f"--{kind}-port is the old name of {new}: give one", ctx)
            say(
                ctx.command_path,
                f"warning: --{kind}-port is deprecated here, use {new}: elsewhere "
                f"--{kind}-port is a port to listen on",
            )
            ports[kind] = old
        return Outlet(host=v["outlet"], tcp_port=ports["tcp"], ws_port=ports["ws"])

    return option_group(options, names, build, "outlet")


_DEFAULT = click.core.ParameterSource.DEFAULT


@dataclass(frozen=True, slots=True)
class Windows:
    """How long the analysis waits before it calls an update stalled or a request unanswered."""

    stall_window: float
    reply_timeout: float


def speed_option(help: str) -> Decorator:
    """``--speed N``: how much faster than recorded a command plays a capture."""
    return click.option("--speed", type=POSITIVE, default=1.0, metavar="N", help=help)


def stall_window_option(default: float | None) -> Decorator:
    return click.option(
        "--stall-window", type=POSITIVE, default=default, metavar="S",
        help="an update with no message for longer than S seconds is stalled (default 60)",
    )  # fmt: skip


def analysis_options(f: Callback) -> Callback:
    """``--stall-window``, ``--reply-timeout``: passed as ``windows``."""
    options: list[Decorator] = [
        stall_window_option(60.0),
        click.option(
            "--reply-timeout", type=POSITIVE, default=30.0, metavar="S",
            help="a request with no reply after S seconds is unanswered (default 30)",
        ),
    ]  # fmt: skip

    def build(ctx: click.Context, v: dict[str, Any]) -> Windows:
        return Windows(stall_window=v["stall_window"], reply_timeout=v["reply_timeout"])

    return option_group(options, ["stall_window", "reply_timeout"], build, "windows")(f)


@dataclass(frozen=True, slots=True)
class Recording:
    """Whether to record a capture, and where if the user chose."""

    enabled: bool
    file: Path | None
    """Given with ``--record``; None: a fresh name under captures/."""


def recording_options(what: str, default_name: str) -> Decorator:
    """``--record FILE`` or ``--no-record``: passed as ``recording``."""
    options: list[Decorator] = [
        click.option(
            "--record", metavar="FILE",
            help=f"where to record {what} (default captures/{default_name})",
        ),
        click.option("--no-record", is_flag=True, help=f"do not record {what}"),
    ]  # fmt: skip

    def build(ctx: click.Context, v: dict[str, Any]) -> Recording:
        if v["record"] is not None and v["no_record"]:
            raise click.UsageError("--record and --no-record exclude each other", ctx)
        file = None if v["record"] is None else Path(v["record"])
        return Recording(enabled=not v["no_record"], file=file)

    return option_group(options, ["record", "no_record"], build, "recording")


def redact_options(f: Callback) -> Callback:
    """``--redact`` and ``--redact=all``: passed as ``redact`` (None, "secrets" or "all")."""
    options: list[Decorator] = [
        click.option(
            "--redact", "redact", flag_value="secrets", default=None,
            help=(
                "remove credentials (MQTT user and password, user:password in URLs, any "
                "'pass'/'password' key) in every form they take (JSON escapes, numbers, "
                "objects, duplicate keys), and list each removal by message id and field on "
                "stderr. A message that holds one is rewritten as a whole from its decoded "
                "form (compact JSON; chunk boundaries inside that message may move); an "
                "invalid frame that names a secret key is cut from that key to its end. "
                "Reads the whole capture into memory"
            ),
        ),
        click.option(
            "--redact-all", "redact", flag_value="all", cls=SpelledFlag, spelling="--redact=all",
            help=(
                "--redact, and also replace serial numbers, MAC addresses, IP addresses "
                "(loopback excepted) and SSIDs by consistent pseudonyms (SN-1, "
                "02:00:00:00:00:01, 198.18.0.1, SSID-1): the same original always gets "
                "the same one, so the copy's analysis links and OTA updates are the "
                "original's. The pseudonym table is not written anywhere"
            ),
        ),
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


def param_named(ctx: click.Context, name: str) -> click.Parameter | None:
    return next((p for p in ctx.command.params if p.name == name), None)
