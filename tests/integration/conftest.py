"""Fixtures shared by the relay tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from proxy.mitm.relay import Relay
from tests.integration.relay_support import RelayFactory


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """mitmproxy writes its CA here instead of ~/.mitmproxy."""
    return str(tmp_path_factory.mktemp("mitmproxy-conf"))


@pytest.fixture
async def make_relay(confdir: str) -> AsyncIterator[RelayFactory]:
    """Start relays to 127.0.0.1 on free ports; all are stopped after the test."""
    relays: list[Relay] = []

    async def make(**kw: Any) -> Relay:
        kw.setdefault("tcp_port", 0)
        kw.setdefault("ws_port", 0)
        relay = Relay("127.0.0.1", confdir=confdir, **kw)
        relays.append(relay)
        await relay.start()
        return relay

    yield make
    for relay in relays:
        await relay.stop()
