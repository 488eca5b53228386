"""Recordings on disk: the record codec shared by captures and traces, opening any
recording by its content, and redaction. Uses only the core."""
