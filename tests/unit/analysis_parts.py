"""Messages for the analysis parts' own tests: decoded from real frames, as the
analysis decodes them."""

from __future__ import annotations

import json
from typing import Any

from proxy.core.framing import Frame
from proxy.core.model import Message
from proxy.core.protocol import decode

SN = "11B27540076"


class Messages(list[Message]):
    """Decoded messages, ``self[i].id == i``, as ``Analysis.messages`` holds them."""

    def add(
        self,
        t: float,
        conn: str,
        side: str,
        pid: Any,
        cb: int | None = None,
        args: Any = None,
        **fields: Any,
    ) -> Message:
        obj: dict[str, Any] = {"packetID": pid, **fields}
        if side == "outlet":
            obj = {"sn": SN, **obj}
        if cb is not None:
            payload: dict[str, Any] = {"callbackName": cb}
            if args is not None:
                payload["callbackArgs"] = args
            obj["payload"] = payload
        raw = json.dumps(obj).encode()
        msg = decode(Frame(t, conn, side, raw, json.loads(raw)), len(self), "tcp")  # type: ignore[arg-type]
        msg.conn = conn
        self.append(msg)
        return msg
