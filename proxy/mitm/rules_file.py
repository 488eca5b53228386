"""Reload a rules file while the proxy runs, as mitmproxy reloads its scripts.

A task polls the file's modification time, size and inode (no file-system events: they
differ per platform and miss editors that save by renaming). When they change, the file
is read again: a good edit replaces the rules in place (:meth:`RuleSet.replace` keeps
the switch and the counts of every rule whose text did not change), a broken one keeps
the rules in use and says why, once per edit. The owner decides where that is said (a
line on stderr, a status message in the TUI, mitmproxy's log).

``run`` and the mitmproxy addon share it; mitmproxy is imported only where the option
needs it, so ``run --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Literal

from proxy.core.rules import Rule, RuleError, RuleSet, combine, load_rules
from proxy.mitm.options import RULES

Signature = tuple[int, int, int]
OutcomeKind = Literal["reloaded", "kept"]

POLL_SECONDS: Final = 1.0

logger = logging.getLogger(__name__)


def file_signature(path: Path) -> Signature | None:
    """What tells a file changed without reading it: mtime, size, inode (None: unreadable)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ReloadOutcome:
    """What one noticed change did: ``reloaded`` (the new rules are active) or ``kept``
    (the edit is broken; ``error`` says why and the old rules stay)."""

    __slots__ = ("kind", "message")

    def __init__(self, kind: OutcomeKind, message: str) -> None:
        self.kind: OutcomeKind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"ReloadOutcome({self.kind!r}, {self.message!r})"


class RulesFileWatcher:
    """Keeps ``rules`` equal to ``cli_texts`` + the rules of ``path``, re-read on change.

    ``signature`` is the file's state when the caller read it at start (so a change made
    since is noticed at the first poll). ``say`` gets one sentence per noticed change;
    ``outcomes`` lists them all, and :meth:`next_outcome` waits for the next one: that
    is the signal tests and callers wait on, never a sleep.
    """

    def __init__(
        self,
        path: Path,
        rules: RuleSet,
        *,
        cli_texts: Sequence[str] = (),
        signature: Signature | None = None,
        say: Callable[[ReloadOutcome], None] | None = None,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.path = Path(path)
        self.rules = rules
        self.cli_texts = tuple(cli_texts)
        self.signature = signature if signature is not None else file_signature(self.path)
        self.say = say
        self.interval = interval
        self.outcomes: list[ReloadOutcome] = []
        self.polls = 0
        self._waiters: list[asyncio.Future[ReloadOutcome]] = []
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ one poll

    def check(self) -> ReloadOutcome | None:
        """Look at the file once; reload it if it changed. The outcome, or None."""
        self.polls += 1
        now = file_signature(self.path)
        if now == self.signature:
            return None
        self.signature = now
        try:
            fresh: list[Rule] = combine(self.cli_texts, load_rules(self.path))
        except RuleError as exc:
            count = len(self.rules)
            outcome = ReloadOutcome(
                "kept",
                f"rules file {self.path} not reloaded: {_without_where(exc, self.path)}; "
                f"still using the {count} rule{'s' if count != 1 else ''} in use",
            )
        else:
            self.rules.replace(fresh)
            from_file = len(fresh) - len(self.cli_texts)
            outcome = ReloadOutcome(
                "reloaded",
                f"rules file {self.path} reloaded: {from_file} rule"
                f"{'s' if from_file != 1 else ''} from it, {len(fresh)} in all",
            )
        self._tell(outcome)
        return outcome

    def _tell(self, outcome: ReloadOutcome) -> None:
        self.outcomes.append(outcome)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(outcome)
        if self.say is not None:
            self.say(outcome)

    async def next_outcome(self) -> ReloadOutcome:
        """Wait for the next noticed change (reloaded or kept)."""
        waiter: asyncio.Future[ReloadOutcome] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    # ------------------------------------------------------------------ the task

    def start(self) -> None:
        """Poll every ``interval`` seconds in the running loop until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()

    @property
    def running(self) -> bool:
        return self._task is not None

    def cancel(self) -> None:
        """Stop polling, from synchronous code (mitmproxy's ``done`` hook)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        """Stop polling and wait until the task is gone."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _without_where(exc: RuleError, path: Path) -> str:
    """The error without the file name the sentence around it already gives
    (the table, ``[[rule]] 2``, stays)."""
    where = exc.where or ""
    name = str(path)
    if where == name:
        exc_where = None
    elif where.startswith(name + ", "):
        exc_where = where[len(name) + 2 :]
    else:
        exc_where = where or None
    copy = RuleError(exc.message, exc.column, text=exc.text, where=exc_where, hint=exc.hint)
    return str(copy)


OPTION: Final = RULES


class RulesOption:
    """The mitmproxy option ``invis_rules=FILE``: load the file's rules, then watch it.

    A file that cannot be used is refused with the rule's column: at startup as an error
    in mitmproxy's log, which makes mitmdump exit (an exception there would be printed
    with a traceback, as a bug in the script); once running (``:set`` in the console,
    mitmweb's options) as mitmproxy's OptionsError, which refuses the setting. A broken
    edit of the file later is a warning in the log, and the rules in use stay. ``apply``
    hands a new rule set to the relay. Setting the option back to "" removes the file's
    rules; while it was never set, rules given another way (``Relay(rules=...)``) stay.
    """

    def __init__(
        self, apply: Callable[[RuleSet], None], stop: Callable[[int], object] = os._exit
    ) -> None:
        """``stop``: ends the process with a status (a bad file at startup: 2)."""
        self.apply = apply
        self.stop = stop
        self.path: Path | None = None
        self.watcher: RulesFileWatcher | None = None
        self.is_running = False
        self.startup_error: str | None = None

    def configure(self, updated: set[str], value: str) -> None:
        if OPTION not in updated:
            return
        from mitmproxy import exceptions

        if not value:
            if self.path is not None:
                self._unwatch()
                self.path = None
                self.apply(RuleSet([]))
            return
        path = Path(value)
        signature = file_signature(path)
        try:
            rules = RuleSet(load_rules(path))
        except RuleError as exc:
            if not self.is_running:
                # not logged as an error: mitmproxy would exit 1 on it; running() stops
                # the proxy with 2, as run and demo do on a bad rule
                logger.warning(f"invisproxy: {OPTION}: {exc}")
                self.startup_error = f"{OPTION}: {exc}"
                return
            raise exceptions.OptionsError(f"{OPTION}: {exc}") from None  # type: ignore[no-untyped-call]
        self._unwatch()
        self.path = path
        self.apply(rules)
        count = len(rules)
        logger.info(f"invisproxy: {count} rule{'s' if count != 1 else ''} from {path}")
        self.watcher = RulesFileWatcher(path, rules, signature=signature, say=_log)
        with contextlib.suppress(RuntimeError):  # no loop yet: running() starts it
            asyncio.get_running_loop()
            self.watcher.start()

    def running(self) -> None:
        if self.startup_error is not None:
            # A bad rule stops the proxy before it relays anything, with exit status 2
            # as for run and demo (mitmproxy's own startup errors exit 1, after a while).
            print(f"invisproxy: {self.startup_error}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            self.stop(2)
            return
        self.is_running = True
        if self.watcher is not None and not self.watcher.running:
            self.watcher.start()

    def done(self) -> None:
        self._unwatch()

    def _unwatch(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            self.watcher = None


def _log(outcome: ReloadOutcome) -> None:
    if outcome.kind == "reloaded":
        logger.info(f"invisproxy: {outcome.message}")
    else:
        logger.warning(f"invisproxy: {outcome.message}")
