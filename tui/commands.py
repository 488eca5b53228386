"""Every action of the TUI in one table: its key, footer label, palette title and help.

Keys (Textual bindings), the command palette and the help screen are all made from
:data:`COMMANDS`, so an action cannot have a key without a name or a name without help.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from textual.app import SystemCommand
from textual.binding import Binding


@dataclass(frozen=True, slots=True)
class Command:
    action: str
    title: str  # in the palette and on the help screen
    help: str
    key: str | None = None  # None: only in the palette
    label: str = ""  # in the footer; empty: not there
    key_display: str | None = None
    playback: bool = False  # only while playing a capture back (view --play)
    live: bool = False  # acts on a live relay (run, demo); on the help screen only then


COMMANDS: tuple[Command, ...] = (
    Command("quit", "Quit", "Leave invisproxy", "q", "Quit"),
    Command("help", "Help", "Keys, glyphs and the filter syntax", "question_mark", "Help", "?"),
    Command(
        "search",
        "Search",
        "Find text or a filter expression, incrementally",
        "slash",
        "Search",
        "/",
    ),
    Command(
        "filter",
        "Filter",
        "Show only rows matching an expression (cb:21-23 and not ...)",
        "f",
        "Filter",
    ),
    Command("toggle_detail", "Toggle detail", "Show or hide the detail pane", "d", "Detail"),
    Command(
        "search_step(True)",
        "Next match",
        "Go to the next row matching the search",
        "n",
        "Next match",
    ),
    Command(
        "search_step(False)",
        "Previous match",
        "Go to the previous row matching the search",
        "N",
    ),
    Command(
        "clear_filter",
        "Clear filter",
        "Show all rows again (filter and OTA session)",
        "escape",
    ),
    Command(
        "follow",
        "Follow",
        "Jump to the newest row and stay there as traffic arrives",
        "F",
        "Follow",
    ),
    Command(
        "time_mode",
        "Time mode",
        "Cycle time: since start, delta from previous, clock",
        "t",
        "Time",
    ),
    Command(
        "jump_reply",
        "Jump to reply/request",
        "Go to the other end of a request/reply pair",
        "r",
        "Reply/req",
    ),
    Command(
        "jump_ota_request",
        "Jump to OTA request",
        "Go to the cb21 that started this update",
        "o",
        "OTA req",
    ),
    Command(
        "session_step(True)",
        "Next in session",
        "Next message of the same OTA update",
        "right_square_bracket",
        "Next in session",
        "]",
    ),
    Command(
        "session_step(False)",
        "Previous in session",
        "Previous message of the same OTA update",
        "left_square_bracket",
        "Prev in session",
        "[",
    ),
    Command("toggle_mark", "Toggle mark", "Bookmark the selected row", "m", "Mark"),
    Command(
        "mark_step(True)",
        "Next mark",
        "Go to the next bookmarked row",
        "right_curly_bracket",
        "Next mark",
        "}",
    ),
    Command(
        "mark_step(False)",
        "Previous mark",
        "Go to the previous bookmarked row",
        "left_curly_bracket",
        "Prev mark",
        "{",
    ),
    Command(
        "copy",
        "Copy message as JSON",
        "Copy the selected message to the clipboard",
        "c",
        "Copy JSON",
    ),
    Command(
        "held_edit",
        "Edit held message",
        "Edit the held message as JSON, then forward it (e exports when nothing is held)",
        "e",
        live=True,  # before export: e falls through to it while nothing is held
    ),
    Command(
        "export",
        "Export visible rows (JSON)",
        "Write the rows on show to a JSON file",
        "e",
        "Export",
    ),
    Command("export_trace", "Export visible rows (trace)", "Write them as a trace you can view"),
    Command(
        "toggle_redact",
        "Toggle redaction",
        "Copies and exports hide credentials (default: on)",
        "R",
    ),
    Command(
        "sessions",
        "OTA panel",
        "Focus the OTA updates; Enter filters to one",
        "s",
        "OTA panel",
    ),
    Command(
        "intercept",
        "Intercept",
        "Hold live messages matching a filter before forwarding (empty: hold none)",
        "i",
        live=True,
    ),
    Command(
        "held_forward",
        "Forward held message",
        "Let the highlighted held message go",
        "a",
        live=True,
    ),
    Command(
        "held_drop",
        "Drop held message",
        "Never forward the highlighted held message (recorded as dropped)",
        "x",
        live=True,
    ),
    Command(
        "held_forward_all",
        "Forward all held",
        "Let every held message go as received",
        "A",
        live=True,
    ),
    Command(
        "inject_outlet",
        "Send to outlet…",
        "Inject a message toward the outlet on the selected message's connection",
        live=True,
    ),
    Command(
        "inject_app",
        "Send to app…",
        "Inject a message toward the app on the selected message's connection",
        live=True,
    ),
    Command(
        "rules",
        "Rules",
        "The active rules, how often each matched, each switchable on and off",
        "l",
        live=True,
    ),
    Command(
        "play_pause",
        "Play/pause",
        "Pause or resume playback (view --play)",
        "space",
        "Play/pause",
        playback=True,
    ),
    Command(
        "play_step",
        "Step",
        "Deliver the next event of the playback",
        "full_stop",
        "Step",
        ".",
        playback=True,
    ),
    Command(
        "play_faster",
        "Faster",
        "Double the playback speed",
        "plus",
        "Faster",
        "+",
        playback=True,
    ),
    Command(
        "play_slower",
        "Slower",
        "Halve the playback speed",
        "minus",
        "Slower",
        "-",
        playback=True,
    ),
)

# Keys the widgets handle themselves, for the help screen.
WIDGET_KEYS: tuple[tuple[str, str, str], ...] = (
    ("↑↓ j k", "Move", "Move the selection in the timeline"),
    ("PgUp PgDn", "Page", "Move a screen at a time"),
    ("Home End", "First/last", "First row; End jumps to the newest and follows"),
    ("Tab", "Focus", "Timeline → OTA panel → detail"),
    ("Ctrl+P", "Commands", "Every action by name"),
)

PLAYBACK_ACTIONS = frozenset(c.action for c in COMMANDS if c.playback)
# Enabled only while a message is held, so their key falls through to the next
# binding of that key (e: export) otherwise.
HELD_ONLY_ACTIONS = frozenset({"held_edit"})


def bindings() -> list[Binding]:
    """The Textual bindings of every command that has a key, in the table's order (of
    two on one key, the first enabled one acts)."""
    return [
        Binding(c.key, c.action, c.label or c.title, show=bool(c.label), key_display=c.key_display)
        for c in COMMANDS
        if c.key is not None
    ]


def palette(
    run_action: Callable[[str], Awaitable[object]], *, playing: bool
) -> Iterator[SystemCommand]:
    """The command palette's entries; playback commands only while playing."""
    for command in COMMANDS:
        if playing or not command.playback:
            yield SystemCommand(command.title, command.help, _runner(run_action, command.action))


def _runner(run_action: Callable[[str], Awaitable[object]], action: str) -> Callable[[], object]:
    async def run() -> None:
        await run_action(action)

    return run


def help_rows(playing: bool, live: bool = False) -> list[tuple[str, str, str]]:
    """(key, title, help) for the help screen; playback keys only while playing, the
    live relay's only when there is one (the palette has them always, and says so)."""
    rows = [
        (c.key_display or c.key or "palette", c.title, c.help)
        for c in COMMANDS
        if (playing or not c.playback) and (live or not c.live)
    ]
    return rows + list(WIDGET_KEYS)
