"""Widgets of the invisproxy TUI."""
