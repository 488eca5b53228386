"""Quitting while a file still loads: the reader is closed once, after the batch the
worker thread was reading, not under it ("generator already executing")."""

from __future__ import annotations

import threading
from collections.abc import Generator

from proxy.core.events import Data, Event, Open
from tests.tui.conftest import source_app, wait_until
from tui.sources import IterSource

WAIT = 10.0


async def test_quitting_mid_batch_closes_the_reader_after_the_batch() -> None:
    in_batch, go, closed = threading.Event(), threading.Event(), threading.Event()
    problems: list[BaseException] = []

    def events() -> Generator[Event]:
        yield Open(0.0, "c1", "tcp", "127.0.0.1:1", "127.0.0.1:2")
        for i in range(IterSource.BATCH * 3):
            if i == IterSource.BATCH + 10:
                in_batch.set()  # inside the second batch, in the worker thread
                go.wait(WAIT)
            yield Data(0.1 + i * 1e-3, "c1", "outlet", b'{"sn":"X","packetID":%d}' % i)

    reader = events()

    def close() -> None:
        try:
            reader.close()
        except ValueError as exc:  # what closing under the worker raised
            problems.append(exc)
        closed.set()

    app = source_app(IterSource(reader, label="slow", close=close))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, in_batch.is_set, WAIT)
        app.exit()
    assert not closed.is_set() and not problems  # the worker is still in its batch
    go.set()
    assert closed.wait(WAIT) and not problems
