"""`invisproxy import` and `invisproxy export`: between captures (.invcap) and traces (JSONL).

Both write to a temporary file beside the output and rename it into place at the end,
so an interrupted conversion never leaves a half-written file under the real name and
``--force`` never destroys the old file before the new one is complete.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from proxy.errors import UserError

_MAX_SHOWN = 20
_EXIT_PROBLEMS = 1


def register(sub: Any) -> None:
    imp: argparse.ArgumentParser = sub.add_parser(
        "import",
        help="turn a trace (JSONL) into a capture (.invcap)",
        description=(
            "Convert a trace (the JSONL text form of a capture, one event per line) into "
            "a capture file that 'view', 'analyze' and 'replay' open like a recording. "
            "Lines that cannot be read are reported with their line number and skipped; "
            "every other event is kept."
        ),
        epilog=(
            "Exit status: 0 when every line converted, 1 when the capture was written but "
            "some lines were skipped (they are listed on stderr), 2 on errors."
        ),
    )
    imp.add_argument("trace", metavar="TRACE", help="the trace file to read (JSONL)")
    imp.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the capture to write (default: captures/<TRACE name>.invcap)",
    )
    imp.add_argument("-f", "--force", action="store_true", help="replace FILE if it already exists")
    imp.set_defaults(func=_run_import)

    exp: argparse.ArgumentParser = sub.add_parser(
        "export",
        help="write a capture or trace out as a trace (JSONL)",
        description=(
            "Write the events of a capture (or a trace) as a trace: the JSONL text form "
            "of DESIGN 4.1, one event per line, bytes as 'text' (UTF-8) or 'b64'. The "
            "trace converts back to an identical capture with 'invisproxy import'."
        ),
        epilog=(
            "Exit status: 0 when every event was read, 1 when the output was written but "
            "the input had problems (listed on stderr), 2 on errors."
        ),
    )
    exp.add_argument("file", metavar="FILE", help="the capture (.invcap) or trace to read")
    exp.add_argument(
        "--format",
        choices=("trace", "jsonl"),
        default="trace",
        help=(
            "'trace' (default): raw events, lossless. 'jsonl': one decoded message per "
            "line (not available yet)"
        ),
    )
    exp.add_argument(
        "--redact",
        action="store_true",
        help="mask secrets (Wi-Fi passwords, tokens) in the output (not available yet)",
    )
    exp.add_argument(
        "-o", "--output", metavar="OUT", help="write to OUT instead of standard output"
    )
    exp.add_argument("-f", "--force", action="store_true", help="replace OUT if it already exists")
    exp.set_defaults(func=_run_export)


def _run_import(args: argparse.Namespace) -> int:
    from proxy.capture import CAPTURE_KEY, DEFAULT_FOLDER, EXTENSION, CaptureWriter
    from proxy.sources import load_events

    source = load_events(args.trace)
    with source:
        if source.kind != "trace":
            raise UserError(
                f"{args.trace} is already a capture; 'invisproxy export' turns it into a trace"
            )
        output = args.output or os.path.join(DEFAULT_FOLDER, Path(args.trace).stem + EXTENSION)
        if args.output is None:
            os.makedirs(DEFAULT_FOLDER, exist_ok=True)
        meta = {k: v for k, v in source.meta.items() if k != CAPTURE_KEY}
        with (
            _replacing(output, args.force) as tmp,
            CaptureWriter(tmp, meta, flush_each=False, overwrite=True) as writer,
        ):
            count = writer.write_all(source.events)
    print(f"imported {_events(count)} from {args.trace} into {output}")
    return _report(args.trace, source.problems)


def _run_export(args: argparse.Namespace) -> int:
    from proxy.sources import load_events
    from proxy.trace import TraceWriter

    if args.format == "jsonl":
        raise UserError(
            "--format jsonl (decoded messages) is not available yet; use --format trace"
        )
    if args.redact:
        raise UserError("--redact is not available yet; the export would not hide secrets")
    source = load_events(args.file)
    with source:
        if args.output is None:
            try:
                count = TraceWriter(sys.stdout, source.meta).write_all(source.events)
            except BrokenPipeError:
                _silence_stdout()
                return _EXIT_PROBLEMS
        else:
            with (
                _replacing(args.output, args.force) as tmp,
                TraceWriter(tmp, source.meta, overwrite=True) as writer,
            ):
                count = writer.write_all(source.events)
            print(f"exported {_events(count)} from {args.file} into {args.output}")
    return _report(args.file, source.problems)


@contextmanager
def _replacing(path: str, force: bool) -> Iterator[str]:
    """A fresh temporary path beside ``path`` that replaces it when the block succeeds."""
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory; give a file name to write")
    if os.path.lexists(path) and not force:
        raise UserError(f"{path} already exists; use --force to replace it")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {path}: folder {folder} does not exist")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.partial")
    try:
        # Created like any new file (the umask applies), and never over another file.
        open(tmp, "xb").close()
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _report(name: str, problems: list[Any]) -> int:
    if not problems:
        return 0
    for problem in problems[:_MAX_SHOWN]:
        print(f"{name}: {problem}", file=sys.stderr)
    if len(problems) > _MAX_SHOWN:
        print(f"{name}: ... and {len(problems) - _MAX_SHOWN} more problems", file=sys.stderr)
    print(f"{name}: {len(problems)} problem(s); every readable event was kept", file=sys.stderr)
    return _EXIT_PROBLEMS


def _events(n: int) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


def _silence_stdout() -> None:
    """After a closed pipe (``export FILE | head``), keep Python's exit flush quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
