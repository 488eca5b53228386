"""The ``invisproxy`` command line: one subcommand per module in ``proxy.cli``.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (a callable taking the parsed namespace and returning an exit code). Heavy
imports (mitmproxy, Textual) happen inside ``func`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Sequence

from proxy.core.errors import UserError

COMMAND_MODULES = ("demo", "run", "view", "analyze", "convert", "sim", "replay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invisproxy",
        description=(
            "Protocol-debugging proxy for the InvisOutlet local API. It relays the "
            "app<->outlet traffic (raw TCP :3333 and WebSocket /ws on :80) byte for "
            "byte, decodes and annotates every message, links each request to its "
            "reply and each OTA update to everything it caused, and records captures "
            "you can view, analyze and replay."
        ),
        epilog="Try 'invisproxy demo' for the whole OTA story on the built-in simulator.",
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"proxy.cli.{name}")
        module.register(sub)
    return parser


def _command_parser(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> argparse.ArgumentParser:
    """The (sub)command parser the words of ``argv`` lead to, for its usage line."""
    current = parser
    for word in argv:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if subs and word in subs[0].choices:
            current = subs[0].choices[word]
    return current


def main(argv: Sequence[str] | None = None) -> int:
    # Captures may hold any string, lone surrogates included (a valid JSON "\\ud800");
    # printing one must not kill the command half-way through its output.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Say which command did not understand them, with that command's usage.
        words = sys.argv[1:] if argv is None else argv
        _command_parser(parser, words).error(f"unrecognized arguments: {' '.join(extra)}")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except UserError as exc:
        print(f"invisproxy {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `invisproxy analyze F | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
