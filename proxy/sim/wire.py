"""The simulated outlet's writer for one connected app: queues its messages and, on
TCP, merges and splits writes the way the real outlet does (the server writes what it
is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from proxy.net.server import Endpoint
from proxy.sim.state import JsonObject

if TYPE_CHECKING:
    from proxy.sim.outlet import OutletSimulator


class Client:
    """One connected app. Messages are queued so a reply and its push can share a write,
    and TCP writes are merged and split here (the server writes what it is given)."""

    def __init__(self, sim: OutletSimulator, endpoint: Endpoint) -> None:
        self.sim = sim
        self.endpoint = endpoint
        self.name = f"{endpoint.transport} #{endpoint.number}"
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.closed = False
        self.writer_task = asyncio.create_task(self._write_loop())

    def send(self, message: JsonObject) -> None:
        if not self.closed:
            self.queue.put_nowait(json.dumps(message, separators=(",", ":")))

    async def flush(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), timeout)

    async def _write_loop(self) -> None:
        try:
            while True:
                first = await self.queue.get()
                batch = [first]
                if not self.queue.empty() and self._wants_merge():
                    batch.append(self.queue.get_nowait())
                try:
                    await self._write(batch)
                except OSError:
                    self.closed = True
                finally:
                    for _ in batch:
                        self.queue.task_done()
                if self.closed:
                    self._discard_queue()
                    return
        except asyncio.CancelledError:
            self._discard_queue()
            raise

    def _discard_queue(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()

    def _wants_merge(self) -> bool:
        sim = self.sim
        return self.endpoint.transport == "tcp" and sim._wire_rng.random() < sim.config.tcp_merge

    async def _write(self, batch: list[str]) -> None:
        if self.endpoint.transport == "ws":
            for text in batch:
                await self.endpoint.write(text.encode())
            return
        stats, rng, cfg = self.sim.stats, self.sim._wire_rng, self.sim.config
        data = ("".join(batch) + "\n").encode()
        if len(batch) > 1:
            stats.merged += 1
        if len(data) > 2 and rng.random() < cfg.tcp_split:
            cut = rng.randint(1, len(data) - 2)
            stats.split += 1
            stats.writes += 1
            await self.endpoint.write(data[:cut])
            await asyncio.sleep(cfg.split_pause)
            data = data[cut:]
        stats.writes += 1
        await self.endpoint.write(data)

    async def stop(self) -> None:
        """Stop writing, with whatever is queued left unsent."""
        self.closed = True
        self.writer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.writer_task
