"""How the app takes an OTA update: when it gives up, when it waits on after a refusal,
and what the capture knows about a refusal or a missing acknowledgement.

The reference client gives up on an update after a stall window without OTA news, and
ignores PUBACK 0 (it waits for progress all the same); a revB outlet never acknowledges
an outlet update (protocol/README 4). These rules read the OTA tracker's sessions and
add their own annotations and reasons.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from proxy.core import protocol
from proxy.core.analysis.common import TARGETS, _a, _duration, _module, describe, fmt_t
from proxy.core.analysis.firmware import Device, device_key
from proxy.core.events import Close
from proxy.core.model import Annotation, Message, OtaSession, Severity
from proxy.core.protocol.ota import target_of_request

if TYPE_CHECKING:
    from proxy.core.analysis.ota import OtaTracker


class AppReaction:
    """The app's side of the OTA updates of one analysis (see the module docstring)."""

    def __init__(self, ota: OtaTracker) -> None:
        """``ota``: a weak proxy of the tracker that holds this (no reference cycle)."""
        self._ota = ota
        self._host = ota._host
        self._devices = ota._devices
        self.connections = ota.connections
        self.stall_window = ota.stall_window
        # refused sessions whose app may keep waiting (see check_refusals); the time of
        # the latest cb21 on each connection
        self.refusals: deque[tuple[OtaSession, Message]] = deque()
        self.last_cb21: dict[str, float] = {}

    def _annotate_late(self, msg_id: int, code: str, severity: Severity, text: str) -> None:
        self._host._annotate_late(msg_id, code, severity, text)

    def note_refusal(self, reply: Message, context: str) -> None:
        """Give the PUBACK 0 of a cb21 the reason the traffic shows, not a generic one."""
        who = "the proxy (not the outlet)" if reply.injected else "the outlet"
        text = f"PUBACK 0: {who} refused this request; {context}"
        for i, note in enumerate(reply.annotations):
            if note.code == "puback-failure":
                reply.annotations[i] = Annotation(note.code, note.severity, text)
                return
        reply.annotate("puback-failure", "warning", text)

    def refusal_context(
        self, session: OtaSession, request: Message, reply: Message, joined_running: bool
    ) -> str:
        """What the capture knows about why an update was refused: an update already
        running, the module rebooting after an update, the last offer, the revision."""
        target = session.target
        device = self._devices.of(reply.conn)
        facts: list[str] = []
        if joined_running:
            facts.append(
                f"{_a(target)} {describe(session)} is already running and goes on; "
                "only this request was refused"
            )
        elif session.request is not None and request.id != session.request:
            facts.append(
                f"the earlier request #{session.request} got no answer and nothing of its "
                "update followed, so this refusal stands for that update"
            )
        earlier = self._ota.verifying.get((device.key, target))
        if earlier is not None and earlier is not session:
            down = (
                f"and the {target} was seen rebooting (PM missing or blank in cb12)"
                if earlier.module_down_seen
                else f"and the {target} reboots after a successful update"
            )
            facts.append(
                f"the {describe(earlier)} succeeded at "
                f"{fmt_t(earlier.ended or earlier.last_activity)}, its new firmware has not "
                f"been read yet {down}; this refusal does not undo that update"
            )
        offer = device.offers.get(target)
        module = _module(target)
        versions = protocol.firmware_versions(20, offer.args).get(target) if offer else None
        if offer is None or versions is None:
            facts.append(
                f"no cb20 reply before it in the capture, so whether a newer {module} firmware "
                "was available is not known"
            )
        else:
            running, available = versions
            # a cb12 since (the update's verification above all) may show a newer version
            now_running = device.firmware.get(target, (running, None))[0]
            if available is not None and available == running:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) showed {module} "
                    f"{running} with nothing newer: already up to date"
                )
            elif available is not None and available == now_running:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) offered {module} "
                    f"{available}, which the {target} has reported running since: already up "
                    "to date"
                )
            elif available is not None:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) offered {module} "
                    f"{available} over the running {running or '?'}, so it was not for "
                    "lack of an update"
                )
            else:
                facts.append(
                    f"the last cb20 (#{offer.id} at {fmt_t(offer.t)}) named no available "
                    f"{module} firmware"
                )
        facts.append(self._revision_text(device))
        return f"{target} target; " + "; ".join(facts)

    def _revision_text(self, device: Device) -> str:
        if device.revision is None:
            return "outlet revision unknown"
        return f"outlet revision {device.revision}, as {device.revision_why}"

    def no_ack(self, msg: Message, why: str, close: Close | None) -> None:
        """A cb21 whose acknowledgement never came: say what that means for its target
        and the outlet's revision, as far as the traffic shows them."""
        session = self._ota.session_by_msg.get(msg.id)
        target_no, _ = protocol.ota_request_target(msg.args)
        device = self._devices.of(msg.conn)
        info = self.connections.get(msg.conn)
        text = f"no acknowledgement came: {why}"
        if target_of_request(target_no) == "outlet":
            restarted = (
                close is not None
                and close.by == "outlet"
                and info is not None
                and info.transport == "tcp"
                and session is not None
                and session.phase == "requested"
                and device.revision != "A"
            )
            if restarted and close is not None:
                after = _duration(close.t - msg.t)
                if device.revision is None:
                    device.revision = "B"
                    device.revision_why = (
                        f"it closed TCP connection {msg.conn} {after} after an outlet update "
                        "request without answering it"
                    )
                text = (
                    f"no acknowledgement came: the outlet closed the TCP connection {after} "
                    "after this request, as a revB outlet does: it restarts at once on an "
                    "outlet update and never sends the acknowledgement; the status comes as a "
                    "synchronous cb21 once the app reconnects"
                )
            elif device.revision == "B":
                text += (
                    f"; {self._revision_text(device)}; a revB outlet never acknowledges an "
                    "outlet update: the status comes as a synchronous cb21 after the reconnect"
                )
            elif device.revision == "A":
                text += (
                    f"; {self._revision_text(device)}; the acknowledgement is optional: a revA "
                    "outlet may not send it before it gets busy, and the reference client does "
                    "not wait for it"
                )
            else:
                text += (
                    "; outlet revision unknown: a revA outlet may not acknowledge before it "
                    "gets busy, a revB outlet never acknowledges an outlet update; the "
                    "reference client does not wait for it"
                )
        elif target_of_request(target_no) == "deco":
            text += (
                "; for a deco update the outlet is expected to acknowledge on either revision "
                "(the missing acknowledgement is documented only for outlet updates); the "
                f"reference client does not wait for it; {self._revision_text(device)}"
            )
        else:
            text += "; the reference client does not wait for the acknowledgement"
        self._annotate_late(msg.id, "fire-and-forget", "info", text)

    def _latest_sessions(self, device_key: str) -> Iterator[OtaSession]:
        """The newest update per target on this outlet (sessions are few)."""
        seen: set[str] = set()
        for session in reversed(self._ota.sessions):
            if session.outlet_addr == device_key and session.target not in seen:
                seen.add(session.target)
                yield session
                if len(seen) == len(TARGETS):
                    return

    def _is_requesting_app(self, session: OtaSession, conn: str) -> bool:
        """Whether ``conn`` is the app that asked for the update: its connection, or a
        later one from the same host after that one closed (a reconnect)."""
        if session.request is None:
            return False
        request = self._host.messages[session.request]
        if conn == request.conn:
            return True
        asked, info = self.connections.get(request.conn), self.connections.get(conn)
        return (
            asked is not None
            and info is not None
            and asked.closed is not None
            and asked.closed <= info.opened
            and device_key(asked.app) == device_key(info.app)
        )

    def _waited_out(self, session: OtaSession, t: float) -> Message | None:
        """The update's last message, if the app has had no OTA news for longer than a
        stall window by ``t`` (the reference client gives up then), and has not yet
        been seen giving up on it."""
        if session.app_gave_up is not None or not session.messages:
            return None
        if session.outcome not in ("in-progress", "stalled", "refused"):
            return None
        last = self._host.messages[session.messages[-1]]
        return last if t - last.t > self.stall_window else None

    def _gave_up_note(self, session: OtaSession, last: Message, t: float, what: str) -> str:
        refused = (
            "; the outlet had refused it, but the reference client ignores PUBACK 0 and "
            "waits for progress all the same"
            if session.outcome == "refused"
            else ""
        )
        phases = (
            " (its stall timer runs on across the WWW and main phases)"
            if any(dt == 3 for _, dt, _ in session.progress)
            else ""
        )
        return (
            f"the app gave up on the {describe(session)}: {what} {t - last.t:.1f} s "
            f"after the update's last message (#{last.id} at {fmt_t(last.t)}), longer than "
            f"the {self.stall_window:g} s without OTA news after which the reference client "
            f"gives up{phases}{refused}"
        )

    def app_left(self, event: Close) -> None:
        """The requesting app closed its connection: did it give up on its update?"""
        info = self.connections.get(event.conn)
        if info is None:
            return
        for session in list(self._latest_sessions(device_key(info.outlet))):
            last = self._waited_out(session, event.t)
            if last is None or not self._is_requesting_app(session, event.conn):
                continue
            session.app_gave_up = event.t
            what = f"it closed connection {event.conn} at {fmt_t(event.t)},"
            note = self._gave_up_note(session, last, event.t, what)
            session.reason += (
                f"; the app gave up at {fmt_t(event.t)}: it closed connection {event.conn} "
                f"{event.t - last.t:.1f} s after the update's last message"
            )
            where = session.last_by_conn.get(event.conn, session.messages[-1])
            self._annotate_late(where, "app-gave-up", "warning", note)

    def gave_up_by_request(self, msg: Message, device: Device, target: str) -> None:
        """A new cb21 from the app a stall window after its update went quiet."""
        for session in self._latest_sessions(device.key):
            if session.target != target:
                continue
            last = self._waited_out(session, msg.t)
            if last is None or not self._is_requesting_app(session, msg.conn):
                return
            session.app_gave_up = msg.t
            note = self._gave_up_note(session, last, msg.t, "it asks again with this cb21")
            session.reason += f"; the app gave up at {fmt_t(msg.t)} and asked again (#{msg.id})"
            msg.annotate("app-gave-up", "warning", note)
            return

    def check_refusals(self, now: float) -> float:
        """Refusals whose app kept waiting a stall window; the next such deadline."""
        window = self.stall_window
        refusals = self.refusals
        while refusals and now - refusals[0][1].t > window:
            session, reply = refusals.popleft()
            info = self.connections.get(reply.conn)
            if info is None or info.closed is not None or session.app_gave_up is not None:
                continue  # the app left (or already gave up): it did not wait
            if self.last_cb21.get(reply.conn, -math.inf) > reply.t:
                continue  # it asked again
            polls: dict[int, int] = {}
            messages = self._host.messages
            for i in range(reply.id + 1, len(messages)):
                later = messages[i]
                if later.t > reply.t + window:
                    break
                if later.side == "app" and later.conn == reply.conn and later.callback:
                    polls[later.callback] = polls.get(later.callback, 0) + 1
            polled = (
                "; meanwhile it sent "
                + ", ".join(f"cb{cb} ×{n}" if n > 1 else f"cb{cb}" for cb, n in polls.items())
                if polls
                else ""
            )
            self._annotate_late(
                reply.id,
                "refusal-ignored",
                "warning",
                f"the app kept waiting after this refusal: {window:g} s later connection "
                f"{reply.conn} is still open and it has sent no new cb21{polled}; the outlet "
                f"refused the {describe(session)}, so no progress will come for it (the "
                "reference client ignores PUBACK 0 and waits until its stall timer fires)",
            )
            self._host.generation += 1
        return refusals[0][1].t + window if refusals else math.inf
