"""The headless core: wire events, framing, the protocol catalog, the model, the analysis
and the filter language. It imports neither mitmproxy, Textual nor websockets, so every
other layer (and tests) can use it alone."""
