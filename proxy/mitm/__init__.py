"""The mitmproxy adapter: the addon that turns relay hooks into wire events, the embedded
relay, and a running proxy with its recording. The only layer that imports mitmproxy."""
