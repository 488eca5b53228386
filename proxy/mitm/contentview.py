"""The "InvisOutlet" contentview: decoded messages in mitmproxy's and mitmweb's views.

Registered by the event addon when a stock mitmproxy loads ``proxy/addon.py``.
"""

from __future__ import annotations

import json

from mitmproxy import contentviews

from proxy.core.events import Close, Data, Open, Side, Transport, is_utf8


def describe_chunk(data: bytes, side: Side, transport: Transport) -> str:
    """The InvisOutlet messages in one TCP chunk or WebSocket message, for people.

    Each value gets its decoded one-line summary, its fields with their meaning and
    the pretty JSON. A chunk is seen on its own here: a value split across TCP chunks
    shows up as incomplete (the timeline, which sees the whole stream, joins them).
    """
    from proxy.core import protocol
    from proxy.core.framing import Framer

    framer = Framer()
    framer.feed(Open(0.0, "c", transport, "", ""))
    frames = framer.feed(Data(0.0, "c", side, data, is_utf8(data)))
    rest = framer.feed(Close(0.0, "c"))  # what is left: a value the next chunk completes
    blocks: list[str] = []
    for i, frame in enumerate(frames):
        msg = protocol.decode(frame, i, transport)
        head = f"cb{msg.callback}" if msg.callback is not None else msg.kind
        lines = [f"# {head} {protocol.summary(msg)}"]
        lines += [f"#   {f.name} = {f.value}  ({f.meaning})" for f in protocol.fields(msg)]
        lines += [f"#   {a.severity}: {a.code}: {a.text}" for a in msg.annotations]
        if frame.error is None:
            lines.append(json.dumps(frame.value, indent=2, ensure_ascii=False))
        else:
            lines.append(frame.raw.decode("utf-8", "replace"))
        blocks.append("\n".join(lines))
    for frame in rest:
        text = frame.raw.decode("utf-8", "replace")
        blocks.append(f"# incomplete here (continues in the next chunk)\n{text}")
    if not blocks:
        raise ValueError("no JSON value in this message")
    return "\n\n".join(blocks)


class InvisContentview(contentviews.Contentview):
    """Shows decoded InvisOutlet messages in mitmproxy/mitmweb."""

    @property
    def name(self) -> str:
        return "InvisOutlet"

    @property
    def syntax_highlight(self) -> contentviews.SyntaxHighlight:
        return "yaml"

    def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
        if metadata.websocket_message is not None:
            from_client = metadata.websocket_message.from_client
            transport: Transport = "ws"
        else:
            from_client = metadata.tcp_message is None or metadata.tcp_message.from_client
            transport = "tcp"
        return describe_chunk(data, "app" if from_client else "outlet", transport)

    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        if metadata.tcp_message is None and metadata.websocket_message is None:
            return -1
        if data.lstrip()[:1] != b"{":
            return -1
        return 2 if b"payload" in data or b"packetID" in data else 0.5
