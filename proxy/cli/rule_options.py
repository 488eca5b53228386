"""The rules a command starts with (``--rule``, ``--rules FILE``), shared by run and demo.

Parsed while the command line is read, so a bad rule stops the command with exit 2 and
the column of the mistake before anything starts; the file's watcher and how a reload
is told (stderr headless, a notification in the TUI) are here too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from proxy.cli.options import Callback, Decorator, option_group, param_named

if TYPE_CHECKING:
    from proxy.core.rules import Rule, RuleSet
    from proxy.mitm.rules_file import ReloadOutcome, RulesFileWatcher


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """The rules a command starts with: ``--rule`` texts first, then ``--rules FILE``'s.

    Parsed while the command line is read, so a bad rule stops the command before it
    starts anything. ``file_signature`` is the file's state before it was read: the
    reloader compares against it, so an edit made while the command started is not missed.
    """

    texts: tuple[str, ...]
    file: Path | None
    rules: tuple[Rule, ...]
    file_signature: tuple[int, int, int] | None

    def ruleset(self) -> RuleSet | None:
        """A live set of these rules for the relay; None when none was given (the relay
        then forwards chunks exactly as received). With a file, the set exists even if
        the file holds no rule yet: an edit may add some."""
        from proxy.core.rules import RuleSet

        if not self.rules and self.file is None:
            return None
        return RuleSet(self.rules)

    @contextlib.asynccontextmanager
    async def watching(
        self, rules: RuleSet | None, *, say: Callable[[str], None] | None = None, app: Any = None
    ) -> AsyncIterator[RulesFileWatcher | None]:
        """The reloader of ``--rules FILE`` running while the body runs (None without
        rules or without a file). Each reload is told as a notification of ``app`` (the
        TUI hides stderr), or else as a line to ``say``."""
        from proxy.mitm.rules_file import RulesFileWatcher

        if rules is None or self.file is None:
            yield None
            return
        told = _notify_reloads(app) if app is not None else _print_reloads(say or print)
        watcher = RulesFileWatcher(
            self.file, rules, cli_texts=self.texts, signature=self.file_signature, say=told
        )
        watcher.start()
        try:
            yield watcher
        finally:
            await watcher.stop()


def _print_reloads(say: Callable[[str], None]) -> Callable[[ReloadOutcome], None]:
    """Where a rules file reload is told headless: a line (a warning when it was kept)."""

    def told(outcome: ReloadOutcome) -> None:
        say(("" if outcome.kind == "reloaded" else "warning: ") + outcome.message)

    return told


def _notify_reloads(app: Any) -> Callable[[ReloadOutcome], None]:
    """Where a rules file reload is told in the TUI: a notification (stderr is hidden)."""

    def say(outcome: ReloadOutcome) -> None:
        app.notify(
            outcome.message,
            title="Rules",
            severity="information" if outcome.kind == "reloaded" else "warning",
            timeout=10,
        )

    return say


def describe_rules(rules: RuleSet | None) -> list[str]:
    """One line per rule, with how often it matched and acted, for the headless output."""
    if rules is None:
        return []
    if not rules:
        return ["no rules in use"]
    lines = []
    for rule in rules.rules:
        state = "" if rule.enabled else " (off)"
        lines.append(
            f"{rule.label}{state}: matched {rule.matched}, acted {rule.applied}"
            + (f" [from {rule.source}]" if rule.source else "")
        )
    return lines


RULE_SYNTAX: Final = (
    "MATCH is the timeline's filter (cb:22, dir:app or dir:outlet, conn:c1, sev:error, "
    "a bare word) plus arg.N:VALUE or arg.N:LOW-HIGH for the N-th callbackArgs element; "
    "ACTION is drop, delay SECONDS, close (the proxy closes that connection), "
    "reply FIELD=VALUE... (answer an app's request as the outlet, not forwarding it) or "
    "set PATH=JSON (change one field, then forward), optionally followed by once, "
    "times N or after N"
)


def rule_options(f: Callback) -> Callback:
    """``--rule 'MATCH -> ACTION'`` (repeatable) and ``--rules FILE``: passed as ``rules``."""
    options: list[Decorator] = [
        click.option(
            "--rule", "rule_texts", multiple=True, metavar="'MATCH -> ACTION'",
            help=(
                "make the device misbehave: act on each message MATCH selects instead of "
                "forwarding it unchanged, e.g. --rule 'cb:21 dir:app -> reply puback=0' "
                "(refuse the update as the outlet would) or --rule 'cb:22 arg.1:50-100 -> "
                f"close once'. {RULE_SYNTAX}. Repeatable; the first rule that matches a "
                "message acts on it, and rules are numbered in order"
            ),
        ),
        click.option(
            "--rules", "rules_file", metavar="FILE",
            help=(
                "read more rules from a TOML file of [[rule]] tables, each with match = "
                "\"cb:22 arg.1:40-100\" and action = \"drop\" (optionally enabled = false); "
                "numbered after the --rule ones. The file is reloaded whenever it changes; "
                "an edit with a mistake keeps the rules in use and says why"
            ),
        ),
    ]  # fmt: skip

    def build(ctx: click.Context, v: dict[str, Any]) -> RuleOptions:
        from proxy.core.rules import RuleError, combine, load_rules
        from proxy.mitm.rules_file import file_signature

        texts = tuple(v["rule_texts"])
        file = None if v["rules_file"] is None else Path(v["rules_file"])
        try:
            rules = combine(texts)
        except RuleError as exc:
            raise click.BadParameter(str(exc), ctx, param_named(ctx, "rule_texts")) from None
        signature = file_signature(file) if file is not None else None
        if file is not None:
            try:
                rules = combine(texts, load_rules(file))
            except RuleError as exc:
                raise click.BadParameter(str(exc), ctx, param_named(ctx, "rules_file")) from None
        return RuleOptions(texts, file, tuple(rules), signature)

    return option_group(options, ["rule_texts", "rules_file"], build, "rules")(f)
