"""``python -m proxy ...`` as a child process, as a user runs it: for the command tests."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


async def spawn(*args: str) -> asyncio.subprocess.Process:
    """Start ``python -m proxy ARGS`` in the repository with both outputs piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxy",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )


class Command:
    """A running command whose stdout a test reads line by line, then stops with Ctrl-C."""

    def __init__(self, proc: asyncio.subprocess.Process, wait: float) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.stdout = proc.stdout
        self.wait = wait
        self.lines: list[str] = []

    async def line_matching(self, pattern: str) -> re.Match[str]:
        """Read until a line matches ``pattern``; every line read is kept in ``lines``."""
        async with asyncio.timeout(self.wait):
            while True:
                raw = await self.stdout.readline()
                assert raw, f"the command exited early: {self.lines}"
                self.lines.append(raw.decode())
                if m := re.search(pattern, self.lines[-1]):
                    return m

    async def interrupt(self) -> tuple[str, bytes]:
        """Ctrl-C, then wait for the exit: all of stdout (read or not yet) and stderr."""
        self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(self.wait):
            rest, err = await self.proc.communicate()
        return "".join(self.lines) + rest.decode(), err


@asynccontextmanager
async def running(*args: str, wait: float) -> AsyncIterator[Command]:
    """The command for the block; killed at the end if a failed step left it running."""
    command = Command(await spawn(*args), wait)
    try:
        yield command
    finally:
        if command.proc.returncode is None:
            command.proc.kill()
            await command.proc.wait()
