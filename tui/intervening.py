"""Intervening in live traffic from the TUI: intercept, held messages, inject, rules.

Everything goes through the source's :class:`~tui.sources.Control` (the live relay):
this module only asks it and shows what it says. A replayed capture has no relay, so
each command says it needs a live proxy instead of pretending. What the relay does is
recorded by the relay (DESIGN 4.1); the timeline shows those records as they arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxy.core import gate
from proxy.core.events import Side
from proxy.core.filter import Filter
from tui import inject
from tui.sources import Control, HeldMessage, Interventions
from tui.widgets.choice import ChoiceScreen
from tui.widgets.editor import EditorScreen
from tui.widgets.held import HeldPanel
from tui.widgets.rules import RulesScreen

if TYPE_CHECKING:
    from proxy.core.model import Message
    from tui.app import InvisApp

NEEDS_LIVE = "needs a live proxy: start invisproxy run (or invisproxy demo)"
QUIT_CHOICES = (
    ("forward", "Forward them all, then quit"),
    ("drop", "Drop them all (recorded as dropped by you), then quit"),
    ("cancel", "Cancel: stay"),
)


def compact(text: str) -> bytes:
    """The editor's JSON as one compact line (raises ValueError when it is not JSON)."""
    return gate.compact(json.loads(text))


class Intervener:
    """The app's intervention commands, over the source's control (None: a replay)."""

    def __init__(self, app: InvisApp, control: Control | None, panel: HeldPanel) -> None:
        self.app = app
        self.control = control
        self.panel = panel
        self._dirty = True
        self._shown: list[int] | None = None  # ids of the held messages on show

    # -- state -------------------------------------------------------------------

    @property
    def interventions(self) -> Interventions | None:
        return self.control.interventions if self.control is not None else None

    def held(self) -> list[HeldMessage]:
        iv = self.interventions
        return list(iv.held()) if iv is not None else []

    @property
    def intercept_text(self) -> str:
        iv = self.interventions
        flt = iv.intercept if iv is not None else None
        return flt.expression if flt is not None else ""

    def attach(self) -> None:
        """Listen to the relay's changes (held messages, counts); on mount."""
        if (iv := self.interventions) is not None:
            iv.listeners.append(self._changed)

    def detach(self) -> None:
        """The TUI goes away: stop holding (nobody could release what is held next)."""
        iv = self.interventions
        if iv is None:
            return
        if iv.intercept is not None:
            iv.set_intercept(None)
        if self._changed in iv.listeners:
            iv.listeners.remove(self._changed)

    def _changed(self) -> None:
        # Called from the relay while it forwards: only note it, the tick redraws.
        self._dirty = True

    def refresh(self, *, force: bool = False) -> bool:
        """Redraw the held strip if the relay changed something (or ``force``); whether
        it did."""
        if not (self._dirty or force):
            return False
        self._dirty = False
        held = self.held()
        ids = [h.id for h in held]
        if not force and ids == self._shown:
            return False  # the relay's note was about rule counts only: nothing to redraw
        self._shown = ids
        self.panel.show(held, self.app.clock())
        return True

    def _live(self, what: str) -> Interventions | None:
        iv = self.interventions
        if iv is None:
            self.app.notify(f"{what} {NEEDS_LIVE}", title="Not live", severity="warning")
        return iv

    # -- intercept -----------------------------------------------------------------

    def intercept_chosen(self, flt: Filter) -> None:
        iv = self._live("Intercepting")
        if iv is None:
            return
        iv.set_intercept(None if flt.is_empty else flt)
        if flt.is_empty:
            left = len(self.held())
            still = f"; {left} still held (a, x or A)" if left else ""
            self.app.notify(f"Intercept off{still}", timeout=3)
        else:
            self.app.notify(f"Holding messages matching: {flt.expression}", timeout=3)
        self.refresh(force=True)

    # -- held messages -------------------------------------------------------------

    def _chosen(self, what: str) -> tuple[Interventions, HeldMessage] | None:
        iv = self._live(what)
        if iv is None:
            return None
        self.refresh(force=True)
        held = self.panel.chosen
        if held is None:
            self.app.notify("Nothing is held (i sets an intercept filter)", severity="warning")
            return None
        return iv, held

    def _do(self, act: Callable[[], object], done: str) -> bool:
        try:
            act()
        except ValueError as exc:  # released meanwhile, connection gone, bad edit
            self.app.notify(str(exc), title="Not done", severity="error")
            self.refresh(force=True)
            return False
        self.app.notify(done, timeout=2)
        self.refresh(force=True)
        return True

    def forward(self) -> None:
        if (chosen := self._chosen("Forwarding")) is not None:
            iv, held = chosen
            self._do(lambda: iv.forward(held.id), f"Forwarded held #{held.id}")

    def drop(self) -> None:
        if (chosen := self._chosen("Dropping")) is not None:
            iv, held = chosen
            self._do(lambda: iv.drop(held.id), f"Dropped held #{held.id} (recorded as dropped)")

    def forward_all(self) -> None:
        iv = self._live("Forwarding")
        if iv is None:
            return
        count = iv.forward_all()
        self.app.notify(f"Forwarded {count} held message(s)" if count else "Nothing is held")
        self.refresh(force=True)

    def drop_all(self) -> int:
        iv = self.interventions
        count = 0
        for held in self.held() if iv is not None else []:
            try:
                iv.drop(held.id)  # type: ignore[union-attr]
            except ValueError:
                continue  # released meanwhile
            count += 1
        self.refresh(force=True)
        return count

    def edit(self) -> None:
        if (chosen := self._chosen("Editing")) is None:
            return
        iv, held = chosen
        try:
            text = json.dumps(json.loads(held.text), indent=2, ensure_ascii=False)
        except ValueError:
            text = held.text  # shown as received; it must become JSON to be sent
        about = f"Held #{held.id} on {held.conn}, {held.side} → " + (
            "outlet" if held.side == "app" else "app"
        )

        def done(result: str | None) -> None:
            if result is None:
                self.app.notify(f"Edit cancelled; #{held.id} is still held", timeout=2)
                return
            self._do(lambda: iv.forward(held.id, result), f"Forwarded #{held.id} as edited")

        self.app.push_screen(
            EditorScreen(f"Edit held #{held.id}", text, about, verb="forward"), done
        )

    # -- inject --------------------------------------------------------------------

    def inject(self, to: Side) -> None:
        iv = self._live(f"Sending to the {to}")
        if iv is None or self.control is None:
            return
        msg = self.app.timeline.current_message
        if msg is None:
            self.app.notify(
                f"Select a message of the connection to send to the {to} on",
                severity="warning",
            )
            return
        options = [("copy", f"A copy of the selected message (cb{msg.callback} {msg.name})")]
        options += [(str(n), f"cb{n} {name}") for n, name in inject.callbacks(to)]
        question = f"What to send to the {to} on {msg.conn}, with a fresh packetID:"
        self.app.push_screen(
            ChoiceScreen(f"Send to {to}", question, options),
            lambda choice: self._inject_chosen(msg, to, choice),
        )

    def _inject_chosen(self, msg: Message, to: Side, choice: str | None) -> None:
        if choice is None:
            return
        analysis = self.app.analysis
        taken = {m.packet_id for m in analysis.messages[-inject.LOOK_BACK :] if m is not None}
        pid = inject.fresh_packet_id(taken)
        try:
            if choice == "copy":
                text = inject.copy_of(msg, pid)
            else:
                sn = inject.last_sn(analysis.messages, msg.conn)
                text = inject.template(int(choice), to, pid, sn)
        except ValueError as exc:
            self.app.notify(str(exc), title="Cannot prefill", severity="error")
            return
        about = f"To the {to} on {msg.conn} ({msg.transport}); packetID {pid} is fresh."
        if to == "outlet":
            about += " Its reply is recorded but not forwarded to the app (it never asked)."
        self.app.push_screen(
            EditorScreen(f"Send to {to} on {msg.conn}", text, about),
            lambda result: self._send(msg, to, result),
        )

    def _send(self, msg: Message, to: Side, result: str | None) -> None:
        if result is None or self.control is None:
            return
        control = self.control
        data = compact(result)
        if msg.transport == "tcp":
            data += b"\n"
        self._do(
            lambda: control.inject(msg.conn, to, data, text=True),
            f"Sent to the {to} on {msg.conn}",
        )

    # -- rules -----------------------------------------------------------------------

    def rules(self) -> None:
        iv = self._live("The rules list")
        if iv is not None:
            self.app.push_screen(RulesScreen(iv.rules))

    # -- quitting ------------------------------------------------------------------

    def quit(self, leave: Callable[[], object]) -> None:
        """Leave, but first ask what to do with held messages (none is lost silently)."""
        if not self.held():
            leave()
            return

        def done(choice: str | None) -> None:
            if choice in ("forward", "drop") and self.interventions is not None:
                self.interventions.set_intercept(None)  # hold nothing the user cannot see
            if choice == "forward":
                forwarded = self.interventions.forward_all() if self.interventions else 0
                self.app.notify(f"Forwarded {forwarded} held message(s)")
                leave()
            elif choice == "drop":
                self.drop_all()
                leave()
            else:
                self.app.notify(f"Still holding {len(self.held())} message(s)", timeout=2)

        self.app.push_screen(
            ChoiceScreen(
                "Quit",
                # no count: more may be held while this is open (the strip counts them)
                "Messages are held for you (the strip below lists them). Forward or drop "
                "them all before quitting?",
                QUIT_CHOICES,
            ),
            done,
        )
