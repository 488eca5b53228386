"""The mitmproxy adapter, the only layer that imports mitmproxy: the event addon (hooks ->
wire events), its sink bus, the capture option, the contentview, the version-bound layer
takeover, the embedded relay, and a running proxy with its recording."""
