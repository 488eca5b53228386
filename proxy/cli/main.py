"""The ``invisproxy`` command line: a click group, one command module per subcommand.

Each module in ``COMMAND_MODULES`` exposes ``register(group)``, which adds its
command(s). Heavy imports (mitmproxy, Textual) happen inside the command bodies so that
``--help`` stays fast. ``main`` returns the exit status instead of exiting: 0 ok, 1 the
input had problems (per command), 2 usage errors and other errors.
"""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Sequence

import click

from proxy.cli.options import InvisGroup, silence_stdout, usage_error_text

COMMAND_MODULES = ("demo", "run", "view", "analyze", "convert", "sim", "replay")

PROG = "invisproxy"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("invisproxy")
    except PackageNotFoundError:  # run from a source tree that was never installed
        text = "(version unknown: the package is not installed)"
    click.echo(f"{PROG} {text}")
    ctx.exit(0)


def build_cli() -> click.Group:
    @click.group(
        PROG,
        cls=InvisGroup,
        context_settings={"help_option_names": ["-h", "--help"]},
        help=(
            "Protocol-debugging proxy for the InvisOutlet local API. It relays the "
            "app<->outlet traffic (raw TCP :3333 and WebSocket /ws on :80) byte for "
            "byte, decodes and annotates every message, links each request to its "
            "reply and each OTA update to everything it caused, and records captures "
            "you can view, analyze and replay."
        ),
        epilog="Try 'invisproxy demo' for the whole OTA story on the built-in simulator.",
    )
    @click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_print_version,
        help="print the installed version and exit",
    )
    def cli() -> None:
        """The subcommand does the work."""

    for name in COMMAND_MODULES:
        importlib.import_module(f"proxy.cli.{name}").register(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    # Captures may hold any string, lone surrogates included (a valid JSON "\\ud800");
    # printing one must not kill the command half-way through its output.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = build_cli().main(args, prog_name=PROG, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        # a group without its command: its help, on stdout only for the top level
        top = exc.ctx.parent is None
        click.echo(exc.ctx.get_help(), file=sys.stdout if top else sys.stderr)
        return 2
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else PROG
        if exc.ctx is not None:
            print(exc.ctx.get_usage(), file=sys.stderr)
            print(f"Try '{where} --help' for help.", file=sys.stderr)
        print(f"{where}: error: {usage_error_text(exc)}", file=sys.stderr)
        return 2
    except click.ClickException as exc:
        print(f"{PROG}: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except click.Abort:  # Ctrl-C before a command ran
        return 130
    except BrokenPipeError:  # `invisproxy --help | head`
        silence_stdout()
        return 0
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
