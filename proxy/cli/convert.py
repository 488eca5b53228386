"""`invisproxy import` and `invisproxy export`: between captures (.invcap) and traces (JSONL).

Both write to a temporary file beside the output and rename it into place at the end,
so an interrupted conversion never leaves a half-written file under the real name and
``--force`` never destroys the old file before the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import click

from proxy.cli.analyze import Redact
from proxy.cli.options import Choices, InvisCommand, redact_options, silence_stdout
from proxy.core.errors import UserError
from proxy.core.events import Event

Format = Literal["trace", "jsonl", "capture"]
_MAX_SHOWN = 20
_EXIT_PROBLEMS = 1


@dataclass(frozen=True, slots=True)
class ImportOptions:
    trace: str
    output: str | None
    force: bool


@dataclass(frozen=True, slots=True)
class ExportOptions:
    file: str
    format: Format
    redact: Redact
    output: str | None
    force: bool


@click.command(
    "import",
    cls=InvisCommand,
    short_help="turn a trace (JSONL) into a capture (.invcap)",
    help=(
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
@click.argument("trace", metavar="TRACE")
@click.option(
    "-o", "--output", metavar="FILE",
    help="the capture to write (default: captures/<TRACE name>.invcap)",
)  # fmt: skip
@click.option("-f", "--force", is_flag=True, help="replace FILE if it already exists")
def import_command(trace: str, output: str | None, force: bool) -> int:
    return _run_import(ImportOptions(trace, output, force))


@click.command(
    "export",
    cls=InvisCommand,
    short_help="write a capture or trace out as a trace (JSONL)",
    help=(
        "Write the events of a capture (or a trace) as a trace: the JSONL text form "
        "of a capture, one event per line, bytes as 'text' (UTF-8) or 'b64'. The "
        "trace converts back to an identical capture with 'invisproxy import'. "
        "--format jsonl writes decoded messages instead; --redact makes a copy safe "
        "to share (in every format), --redact=all one safe to share publicly."
    ),
    epilog=(
        "Exit status: 0 when every event was read, 1 when the output was written but "
        "the input had problems (listed on stderr), 2 on errors."
    ),
)
@click.argument("file", metavar="FILE")
@click.option(
    "--format", "fmt", type=Choices(("trace", "jsonl", "capture")), default="trace",
    help=(
        "'trace' (default): raw events, lossless. 'jsonl': one decoded message per "
        "line (the message objects of 'analyze --json', each with its links). "
        "'capture': a .invcap file (with --redact: a shareable copy)"
    ),
)  # fmt: skip
@redact_options
@click.option("-o", "--output", metavar="OUT", help="write to OUT instead of standard output")
@click.option("-f", "--force", is_flag=True, help="replace OUT if it already exists")
def export_command(file: str, fmt: Format, redact: Redact, output: str | None, force: bool) -> int:
    return _run_export(ExportOptions(file, fmt, redact, output, force))


def register(group: click.Group) -> None:
    group.add_command(import_command)
    group.add_command(export_command)


def _run_import(args: ImportOptions) -> int:
    from proxy.store.capture import CAPTURE_KEY, DEFAULT_FOLDER, EXTENSION, CaptureWriter
    from proxy.store.recording import load_events

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
            CaptureWriter(tmp, meta, flush_each=False, overwrite=True, stamp=False) as writer,
        ):
            count = writer.write_all(source.events)
    print(f"imported {_events(count)} from {args.trace} into {output}")
    return _report(args.trace, source.problems)


def _run_export(args: ExportOptions) -> int:
    from proxy.store.recording import load_events

    if args.format == "capture" and args.output is None:
        raise UserError("--format capture writes a file: give it with -o FILE")
    source = load_events(args.file)
    with source:
        events: Iterable[Event] = source.events
        meta = dict(source.meta)
        if args.redact:
            say = sys.stderr if args.output is None else sys.stdout
            events, meta = redacted(list(events), meta, args.redact == "all", say)
        if args.output is None:
            try:
                count = _write(args.format, sys.stdout, meta, events)
            except BrokenPipeError:
                silence_stdout()
                return _EXIT_PROBLEMS
        else:
            with _replacing(args.output, args.force) as tmp:
                count = _write(args.format, tmp, meta, events)
            what = "messages" if args.format == "jsonl" else "events"
            print(f"exported {count} {what} from {args.file} into {args.output}")
    return _report(args.file, source.problems)


def redacted(
    events: list[Event], meta: dict[str, Any], pseudonymise: bool, say: TextIO
) -> tuple[list[Event], dict[str, Any]]:
    """``events`` and ``meta`` redacted, with what was removed said on ``say``."""
    from proxy.store.redact import redact_events, redact_meta

    out, report = redact_events(events, pseudonymise=pseudonymise)
    if report.removals:
        n = len({r.message for r in report.removals})
        print(
            f"redacted {len(report.removals)} secret(s) in {n} message(s) "
            "(each message holding one is rewritten as a whole):",
            file=say,
        )
        for removal in report.removals:
            print(f"  - {removal}", file=say)
    else:
        print("redact: found no credentials (MQTT user, password, URL credentials)", file=say)
    if pseudonymise:
        counts = ", ".join(f"{n} {kind}" for kind, n in report.pseudonyms.items())
        print(f"redact=all: replaced by consistent pseudonyms: {counts}", file=say)
    elif not report.removals:
        print("redact: the output equals the input", file=say)
    return out, redact_meta(meta, report)


def _write(fmt: str, target: Any, meta: dict[str, Any], events: Iterable[Event]) -> int:
    """Write ``events`` in ``fmt`` to a path or text stream; the number written."""
    from proxy.store.capture import CAPTURE_KEY, CaptureWriter
    from proxy.store.trace import TraceWriter

    if fmt == "trace":
        with TraceWriter(target, meta, overwrite=True) as writer:
            return writer.write_all(events)
    if fmt == "capture":
        meta = {k: v for k, v in meta.items() if k != CAPTURE_KEY}
        with CaptureWriter(target, meta, flush_each=False, overwrite=True, stamp=False) as writer:
            return writer.write_all(events)
    return _write_messages(target, events)


def _write_messages(target: Any, events: Iterable[Event]) -> int:
    """One decoded message per line: the 'analyze --json' message object plus its links."""
    import json

    from proxy.core.analysis import analyze
    from proxy.core.analysis.schema import link_json, message_json

    analysis = analyze(events)
    fp = open(target, "w", encoding="utf-8") if isinstance(target, str) else target  # noqa: SIM115
    try:
        for msg in analysis.messages:
            doc = message_json(msg)
            doc["links"] = [link_json(link) for link in analysis.links_of(msg.id)]
            fp.write(json.dumps(doc, ensure_ascii=False) + "\n")
    finally:
        if fp is not target:
            fp.close()
    return len(analysis.messages)


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
