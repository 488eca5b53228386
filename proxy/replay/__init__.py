"""Replay: scripts built from a capture's analysis, a server that plays the recorded
outlet to an app, and a sender that re-drives a real outlet with recorded requests."""
