"""The OTA session state machine: requests, acknowledgements, pushes, results, stalls
and verification after the reboot (how the app takes it: :mod:`.reaction`).

The rules follow protocol/README section 4: the cb21 acknowledgement is optional
(revB never sends it for an outlet update), the revB synchronous cb21 arrives on a new
connection after the restart, progress and results carry fresh packetIDs, a status-0
result before any progress is a firmware quirk, device_type 3 is the outlet's WWW
sub-phase, and the new firmware is only proven by the device info read after the
reboot. Updates are therefore tied together by device and target, never by packetID.

Over 500 lines on purpose: it is one state machine (each transition below reads and
moves the same session's phase and outcome, and the tables of open and verifying
updates); split further, each part would reach into the others' tables.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

from proxy.core import protocol
from proxy.core.analysis import firmware
from proxy.core.analysis.common import (
    FINAL_OUTCOMES,
    _a,
    _compact,
    _module,
    describe,
    fmt_t,
)
from proxy.core.analysis.copies import PushCopies
from proxy.core.analysis.firmware import FW_CALLBACKS, Devices
from proxy.core.analysis.reaction import AppReaction
from proxy.core.events import Close
from proxy.core.model import (
    Annotation,
    Message,
    Method,
    OtaSession,
    Outcome,
    Relation,
    Severity,
    Target,
)
from proxy.core.protocol.ota import (
    PHASE_NAMES,
    WWW_DEVICE_TYPE,
    target_of_device_type,
    target_of_request,
)

if TYPE_CHECKING:
    from proxy.core.analysis.facade import Analysis

OTA_PUSHES = frozenset({21, 22, 23})
OTA_RELATIONS: dict[int, Relation] = {21: "ota-sync", 22: "ota-progress", 23: "ota-result"}


class OtaTracker:
    """The OTA updates of one analysis, tied together by outlet and target.

    It reads and annotates the analysis' messages and draws its links through the
    facade (``host``, a weak proxy: the analysis must not be kept alive by its own
    parts, or freeing it would wait for the cyclic GC), which a bounded analysis may
    back with windows; its own tables:

    - ``sessions``: every OtaSession, in the order the updates began;
    - ``session_by_msg``: message id -> the session it belongs to;
    - ``open``: sessions still able to take messages, by (device, target);
    - ``verifying``: succeeded sessions waiting for the firmware read after the reboot,
      by (device, target): apart from ``open``, so a new request meanwhile cannot take
      their place.
    """

    def __init__(self, host: Analysis, devices: Devices, copies: PushCopies) -> None:
        self._host = host
        self._devices = devices
        self._copies = copies
        self.connections = host.connections
        self.stall_window = host.stall_window
        self.sessions: list[OtaSession] = []
        self.session_by_msg: dict[int, OtaSession] = {}
        self.open: dict[tuple[str, str], OtaSession] = {}
        self.verifying: dict[tuple[str, str], OtaSession] = {}
        # how the app takes it: gives up, waits on after a refusal
        self.reaction = self._reaction = AppReaction(weakref.proxy(self))

    def _link(self, src: int, dst: int, relation: Relation, reason: str) -> None:
        """Through the analysis: a subclass (the bounded analysis) keeps links its own way."""
        self._host._link(src, dst, relation, reason)

    def _annotate_late(self, msg_id: int, code: str, severity: Severity, text: str) -> None:
        self._host._annotate_late(msg_id, code, severity, text)

    def _still_open(self, msg_id: int) -> bool:
        session = self.session_by_msg.get(msg_id)
        return session is not None and self.holds(session)

    def tick(self, now: float) -> float:
        """Stall the updates quiet for a stall window by ``now``, note refusals the app
        sat out; the next time one can happen (inf: none)."""
        deadline = math.inf
        for session in list(self.open.values()):
            if session.outcome != "in-progress":
                continue
            if now - session.last_activity > self.stall_window:
                self._stall(session)
                self._host.generation += 1
            else:
                deadline = min(deadline, session.last_activity + self.stall_window)
        if self._reaction.refusals:
            deadline = min(deadline, self._reaction.check_refusals(now))
        return deadline

    def finish(self, end: float) -> None:
        """The capture ended at ``end``: settle what is still open."""
        for session in self.sessions:
            if session.outcome not in FINAL_OUTCOMES and session.outcome != "stalled":
                quiet = end - session.last_activity
                if quiet > self.stall_window:
                    self._stall(session)
                else:
                    session.outcome = "in-progress"
                    session.reason = (
                        f"the capture ends {quiet:.1f} s after the update's last message, "
                        f"inside the {self.stall_window:g} s stall window, with no outcome yet"
                    )
        for session in self.verifying.values():
            session.reason += (
                f"; not verified: the capture ends before any read of the "
                f"{_module(session.target)} firmware after the reboot"
                + (" (the deco was seen rebooting)" if session.module_down_seen else "")
            )
        self.verifying.clear()

    def on_close(self, event: Close) -> None:
        """A connection closed: the app may have given up, the outlet may have restarted."""
        device = self._devices.of(event.conn)
        device.open_conns.discard(event.conn)
        if event.by == "app":
            self._reaction.app_left(event)
        if event.by not in ("outlet", None):
            return  # the app left, or the proxy stopped: the outlet did not restart
        who = (
            f"the outlet closed connection {event.conn}"
            if event.by == "outlet"
            else f"connection {event.conn} closed (by which side is not known)"
        )
        for (dev, target), session in [*self.open.items(), *self.verifying.items()]:
            if dev != device.key or target != "outlet" or session.outcome == "refused":
                continue
            session.restarts += 1
            if session.phase == "rebooting" and not session.rebooted_after_result:
                session.rebooted_after_result = True
                session.reboot_t = event.t
            session.last_activity = max(session.last_activity, event.t)
            last = session.last_by_conn.get(event.conn)
            if last is not None and not self._host.messages[last].has("ota-restart"):
                why = (
                    "every revision reboots after a successful result"
                    if session.phase == "rebooting"
                    else "a revB outlet restarts as soon as it gets an outlet update"
                    if session.phase == "requested" and device.revision != "A"
                    else "it went down in the middle of the update"
                )
                self._annotate_late(
                    last,
                    "ota-restart",
                    "info",
                    f"{who} at {fmt_t(event.t)} after this message: the outlet restarted "
                    f"during the update ({why}); the app must reconnect",
                )

    def on_special(self, msg: Message, answered: Message | None) -> None:
        """An outlet message the OTA tracking reads: firmware versions, OTA status."""
        cb = msg.callback
        if cb in FW_CALLBACKS:
            self._on_firmware(msg)
        if answered is None and cb in OTA_PUSHES:
            original = self._copies.original_of(
                self._devices.of(msg.conn).key, msg, self._host.messages, self._still_open
            )
            if original is not None:
                self._on_copy(msg, original)
                return
        if cb == 21 and answered is None:
            self._on_ota_sync(msg)
        elif cb == 22:
            self._on_progress(msg)
        elif cb == 23:
            self._on_result(msg)

    def _on_copy(self, msg: Message, original: Message) -> None:
        """A copy joins its original's update; it does not count as progress again."""
        session = self.session_by_msg.get(original.id)
        if session is None:
            return
        self._add(session, msg)
        for note in original.annotations:
            if note.code in ("spurious-ota-result", "www-phase-complete", "ota-failed"):
                msg.annotate(note.code, note.severity, note.text)
        assert msg.callback is not None
        if session.request is not None:
            self._link(
                session.request,
                msg.id,
                OTA_RELATIONS[msg.callback],
                f"the same push as #{original.id} (packetID {msg.packet_id}), which the "
                f"outlet also sent to {original.conn}: every connected app gets each OTA "
                "message",
            )

    def _stall(self, session: OtaSession) -> None:
        """Mark an update stalled; the wording does not depend on when it was noticed."""
        session.outcome = "stalled"
        what = describe(session)
        session.reason = (
            f"nothing for the {what} for longer than the {self.stall_window:g} s stall "
            f"window after its last message at {fmt_t(session.last_activity)}, while the "
            "capture went on"
        )
        last = session.messages[-1] if session.messages else None
        if last is not None and not self._host.messages[last].has("ota-stalled"):
            self._annotate_late(
                last,
                "ota-stalled",
                "error",
                f"the {what} stalled: this is its last message and nothing followed for "
                f"longer than the {self.stall_window:g} s stall window",
            )

    def _add(self, session: OtaSession, msg: Message) -> None:
        session.messages.append(msg.id)
        session.last_by_conn[msg.conn] = msg.id
        session.last_activity = msg.t
        host = self._host
        host._deadline = min(host._deadline, msg.t + self.stall_window)
        self.session_by_msg[msg.id] = session
        if session.sn is None and msg.sn is not None:
            session.sn = msg.sn

    def _on_firmware(self, msg: Message) -> None:
        """Remember versions (for fw_before/expected) and verify updates after a reboot."""
        cb = msg.callback
        assert cb is not None
        versions = protocol.firmware_versions(cb, msg.args)
        if not versions:
            return
        device = self._devices.of(msg.conn)
        firmware.record(device, msg, versions)
        deco = self.verifying.get((device.key, "deco"))
        if cb == 12 and deco is not None and deco.phase == "rebooting":
            running_pm = versions.get("deco", (None, None))[0]
            if running_pm is None:  # PM missing or blank: the deco is rebooting
                deco.module_down_seen = True
        for target, (running, _) in versions.items():
            session = self.verifying.get((device.key, target))
            if session is None or session.phase != "rebooting" or running is None:
                continue
            if not firmware.after_reboot(session, msg, self.connections.get(msg.conn), running):
                continue
            self._verify(session, msg, running)

    def _verify(self, session: OtaSession, msg: Message, running: str) -> None:
        self._add(session, msg)
        session.fw_after = running
        session.phase = "verified"
        module = _module(session.target)
        source = f"cb{msg.callback} {'reply' if msg.kind == 'response' else 'push'}"
        session.verified, verdict = firmware.verdict(session, running)
        if session.verified is False:
            msg.annotate(
                "fw-mismatch",
                "error",
                f"after the {describe(session)} the {module} reports firmware {running}, "
                f"but {session.fw_expected} was expected (before: {session.fw_before})",
            )
        session.reason += f"; after the reboot the {module} runs {running}: {verdict}"
        if session.request is not None:
            self._link(
                session.request,
                msg.id,
                "ota-verify",
                f"first {source} from the same device after the successful result "
                f"and the reboot; it reports {module} fw_rev {running}, {verdict}",
            )
        del self.verifying[(self._session_device(session), session.target)]

    def _end(self, session: OtaSession, outcome: Outcome, t: float, reason: str) -> None:
        """The update ends ``outcome`` (refused, failed) at ``t`` and takes no more messages."""
        session.outcome = outcome
        session.phase = outcome
        session.ended = t
        session.reason = reason
        self._close_session(session)

    def _close_session(self, session: OtaSession) -> None:
        """No more messages for this update (a successor may already hold its key)."""
        key = (self._session_device(session), session.target)
        if self.open.get(key) is session:
            del self.open[key]

    def _session_device(self, session: OtaSession) -> str:
        return session.outlet_addr or "?"

    def holds(self, session: OtaSession) -> bool:
        """Whether the update still takes messages (open, or awaiting verification)."""
        key = (self._session_device(session), session.target)
        return self.open.get(key) is session or self.verifying.get(key) is session

    def _await_verification(self, session: OtaSession) -> None:
        """A succeeded update leaves ``open`` (a new request may come meanwhile) and waits
        for the firmware read after its reboot."""
        self._close_session(session)
        key = (self._session_device(session), session.target)
        older = self.verifying.get(key)
        if older is not None and older is not session:
            older.reason += (
                f"; not verified: a later {session.target} update succeeded at "
                f"{fmt_t(session.ended or session.last_activity)} before its firmware was read"
            )
        self.verifying[key] = session

    def on_request(self, msg: Message) -> None:
        target_no, method_no = protocol.ota_request_target(msg.args)
        target = target_of_request(target_no)
        if target is None:
            return
        device = self._devices.of(msg.conn)
        key = (device.key, target)
        self._reaction.gave_up_by_request(msg, device, target)
        self._reaction.last_cb21[msg.conn] = msg.t
        running = self.open.get(key)
        if running is not None and running.outcome == "in-progress":
            # Another request for an update that is already running (an app that heard
            # no ack and asks again, or a second app): the outlet runs one update.
            self._add(running, msg)
            since = (
                f"requested at {fmt_t(running.started)}"
                if running.request is not None
                else f"seen since {fmt_t(running.started)}"
            )
            msg.annotate(
                "ota-retry",
                "info",
                f"{_a(target)} {target} update is already running ({since}); the outlet "
                "carries on with it, and its progress and results count for that update",
            )
            return
        old = self.open.pop(key, None)
        if old is not None and old.outcome not in FINAL_OUTCOMES:
            old.reason = (old.reason + "; " if old.reason else "") + (
                f"superseded by a new {target} update requested at {fmt_t(msg.t)}"
            )
        session = self._new_session(
            msg,
            device,
            target,
            device.sn,
            f"{target} update requested at {fmt_t(msg.t)} on {msg.conn}",
            request=msg.id,
            method={0: "wifi", 1: "via-outlet"}.get(method_no if method_no is not None else -1),  # type: ignore[arg-type]
        )
        earlier = self.verifying.get(key)
        if earlier is not None:
            session.reason += (
                f", while the {describe(earlier)} (succeeded at "
                f"{fmt_t(earlier.ended or earlier.last_activity)}) waits for its firmware read "
                "after the reboot; that update keeps its own verification"
            )
        self._add(session, msg)

    def on_ack(self, request: Message, reply: Message) -> None:
        session = self.session_by_msg.get(request.id)
        delay = (reply.t - request.t) * 1000
        carries = (
            f"; it also carries a payload {_compact(reply.args)}, but with the "
            "request's packetID and a PUBACK it is the acknowledgement, not a revB "
            "synchronous status (which has no PUBACK)"
            if reply.args is not None
            else ""
        )
        self._link(
            request.id,
            reply.id,
            "ota-ack",
            f"same connection {reply.conn} and packetID {reply.packet_id}: the OTA request's "
            f"immediate acknowledgement, PUBACK {reply.puback}, after {delay:.1f} ms{carries}",
        )
        target_no, _ = protocol.ota_request_target(request.args)
        device = self._devices.of(reply.conn)
        # an answer the proxy made (a reply rule) says nothing about the outlet's revision
        if (
            target_of_request(target_no) == "outlet"
            and device.revision is None
            and not reply.injected
        ):
            device.revision = "A"
            device.revision_why = (
                f"it answered an outlet update request at {fmt_t(reply.t)} with PUBACK "
                f"{reply.puback}, which revB never does"
            )
        if session is None:
            return
        self._add(session, reply)
        context = ""
        if reply.puback == 0:
            # a repeated request's refusal stands for the update only if nothing else has
            # spoken for it yet (the same test as below)
            running = request.id != session.request and session.phase != "requested"
            context = self._reaction.refusal_context(session, request, reply, running)
            self._reaction.note_refusal(reply, context)
        if request.id != session.request:
            # A repeated request's ack speaks for the update only while nothing else
            # has: no ack, sync status or progress yet.
            if session.phase == "requested" and reply.puback == 1:
                session.phase = "accepted"
            elif session.phase == "requested" and reply.puback == 0:
                self._refuse(session, reply, context)
            return
        if reply.puback == 0 and session.outcome not in FINAL_OUTCOMES:
            self._refuse(session, reply, context)
        elif session.phase == "requested":
            session.phase = "accepted"

    def _refuse(self, session: OtaSession, reply: Message, context: str) -> None:
        who = "the proxy (not the outlet)" if reply.injected else "the outlet"
        why = f"{who} answered the {describe(session)} with PUBACK 0: {context}"
        self._end(session, "refused", reply.t, why)
        if session.request is not None:
            self._reaction.refusals.append((session, reply))
            host = self._host
            host._deadline = min(host._deadline, reply.t + self.stall_window)

    def _session_for(self, msg: Message, target: Target) -> tuple[OtaSession, str]:
        """The open session a push belongs to, or a new one whose request is missing."""
        device = self._devices.of(msg.conn)
        session = self.open.get((device.key, target))
        if session is not None and session.phase == "failed-unconfirmed":
            if msg.callback == 22:
                self._unfail(session, msg)
            else:
                session = None
        elif session is not None and session.outcome in FINAL_OUTCOMES:
            session = None  # a finished update awaiting verification takes no progress
        sn = f"same device {msg.sn}" if msg.sn is not None else f"same outlet {device.key}"
        if session is not None:
            return session, (
                f"{sn}; it belongs to the {describe(session)}; no other {target} update open"
            )
        session = self._new_session(
            msg,
            device,
            target,
            msg.sn,
            f"{target} update seen from {fmt_t(msg.t)} on; its cb21 request is not in the capture",
        )
        return session, f"{sn}; no {target} update request in the capture"

    def _new_session(
        self,
        msg: Message,
        device: firmware.Device,
        target: Target,
        sn: Any,
        reason: str,
        *,
        request: int | None = None,
        method: Method | None = None,
    ) -> OtaSession:
        """A new open update of ``target`` on ``device`` that ``msg`` starts, from the
        firmware the device was last seen with (requested, or seen only by its pushes)."""
        before, expected = device.firmware.get(target, (None, None))
        session = OtaSession(
            target=target,
            request=request,
            method=method,
            started=msg.t,
            last_activity=msg.t,
            fw_before=before,
            fw_expected=expected,
            sn=sn,
            outlet_addr=device.key,
            reason=reason,
        )
        self.sessions.append(session)
        self.open[(device.key, target)] = session
        return session

    def _reopen_if_stalled(self, session: OtaSession, msg: Message) -> None:
        if session.outcome == "stalled":
            session.outcome = "in-progress"
            session.reason += f"; activity resumed at {fmt_t(msg.t)}"

    def _join_ota_push(self, msg: Message) -> tuple[OtaSession, str, int, Any] | None:
        """The update an OTA push (cb21 sync, 22, 23) belongs to, with the push added:
        (session, why, device_type, value); None when its device_type names no target."""
        device_type, value = protocol.ota_device_type(msg.args)
        target = target_of_device_type(device_type)
        if target is None or device_type is None:
            return None
        session, why = self._session_for(msg, target)
        self._reopen_if_stalled(session, msg)
        self._add(session, msg)
        return session, why, device_type, value

    def _on_ota_sync(self, msg: Message) -> None:
        """The revB synchronous cb21 after the restart: [device, 1 continue | 0 fail]."""
        joined = self._join_ota_push(msg)
        if joined is None:
            return
        session, why, _, status = joined
        device = self._devices.of(msg.conn)
        if device.revision is None:
            device.revision = "B"
            device.revision_why = (
                f"it sent a synchronous cb21 status at {fmt_t(msg.t)}, which only revB does"
            )
        if session.request is not None:
            request = self._host.messages[session.request]
            same = (
                "carries the request's packetID"
                if msg.packet_id == request.packet_id
                else f"packetID {msg.packet_id} differs from the request's {request.packet_id}"
            )
            where = "a new connection" if msg.conn != request.conn else "the same connection"
            self._link(
                session.request,
                msg.id,
                "ota-sync",
                f"revB synchronous OTA status on {where} ({msg.conn}) after the restart; "
                f"{same}; {why}",
            )
        if status == 0 and session.outcome not in FINAL_OUTCOMES:
            self._fail(session, msg, "the revB synchronous OTA status reports 0 (failed)")
        elif session.phase in ("requested", "accepted"):
            session.phase = "updating"

    def _on_progress(self, msg: Message) -> None:
        joined = self._join_ota_push(msg)
        if joined is None:
            return
        session, why, device_type, percent = joined
        if type(percent) is int:  # a progress push without a percentage is no data point
            session.progress.append((msg.t, device_type, percent))
        session.phase = "www" if device_type == WWW_DEVICE_TYPE else "downloading"
        if session.request is not None:
            phase = PHASE_NAMES.get(device_type, f"device_type {device_type}")
            self._link(
                session.request,
                msg.id,
                "ota-progress",
                f"OTA progress ({phase} {percent} %) under its own packetID {msg.packet_id}; "
                f"device_type {device_type}: {why}",
            )

    def _on_result(self, msg: Message) -> None:
        joined = self._join_ota_push(msg)
        if joined is None:
            return
        session, why, device_type, status = joined
        started = bool(session.progress)
        if status == 0 and not started and session.request is None and len(session.messages) == 1:
            # Whether this is the spurious early result or a failure cannot be told: the
            # update's start is not in the capture. Progress that follows proves it was
            # the quirk (see _on_progress).
            note = "status 0 with the start of the update not in the capture"
            self._fail(
                session,
                msg,
                "cb23 status 0, and the start of this update is not in the capture (had it "
                "been the spurious early result, progress would have followed)",
            )
            session.phase = "failed-unconfirmed"
            self.open[(self._session_device(session), session.target)] = session
        elif status == 0 and not started:
            note = "spurious early status-0 result before any progress (a known firmware quirk)"
            msg.annotate(
                "spurious-ota-result",
                "info",
                "status 0 before any progress: the firmware sends this at the start of every "
                "update; it is not a failure (the reference client ignores it)",
            )
        elif device_type == WWW_DEVICE_TYPE and status == 1:
            note = "WWW partition finished; the main firmware phase follows"
            msg.annotate(
                "www-phase-complete",
                "info",
                "the outlet's WWW (web UI) partition is updated; this is a sub-phase, not the "
                "end of the update: main-firmware progress (device_type 1) follows",
            )
            session.phase = "www-done"
        elif status == 1:
            note = "final result: succeeded"
            if session.outcome not in FINAL_OUTCOMES or session.outcome == "failed":
                session.outcome = "succeeded"
                session.phase = "rebooting"
                session.ended = msg.t
                session.reason = (
                    f"the {describe(session)} succeeded at {fmt_t(msg.t)} "
                    f"(cb23 [{device_type}, 1]); the {session.target} reboots"
                )
                self._await_verification(session)
        elif status == 0:
            note = "final result: failed"
            self._fail(session, msg, f"cb23 [{device_type}, 0] after progress had begun")
        else:
            note = f"unexpected status {status}"
        if session.request is not None:
            self._link(
                session.request,
                msg.id,
                "ota-result",
                f"OTA result ({note}) under its own packetID {msg.packet_id}; "
                f"device_type {device_type}: {why}",
            )

    def _unfail(self, session: OtaSession, msg: Message) -> None:
        """Progress after a lone status-0 result: that result was the spurious one."""
        first = self._host.messages[session.messages[0]]
        session.outcome = "in-progress"
        session.phase = "downloading"
        session.ended = None
        session.reason = (
            f"{session.target} update seen from {fmt_t(session.started)} on; its cb21 request "
            "is not in the capture"
        )
        note = Annotation(
            "spurious-ota-result",
            "info",
            "status 0 before any progress: progress followed, so this was the spurious early "
            "result the firmware sends at the start of every update, not a failure",
        )
        # replaced in place: late_annotations holds indices into this list
        for i, old in enumerate(first.annotations):
            if old.code == "ota-failed":
                first.annotations[i] = note
                self._host.late_annotations.append((first.id, i))
                break
        else:
            first.annotations.append(note)
            self._host.late_annotations.append((first.id, len(first.annotations) - 1))

    def _fail(self, session: OtaSession, msg: Message, why: str) -> None:
        self._end(
            session, "failed", msg.t, f"the {describe(session)} failed at {fmt_t(msg.t)}: {why}"
        )
        msg.annotate("ota-failed", "error", f"the {describe(session)} failed: {why}")
