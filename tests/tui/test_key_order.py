"""KeyOrder on its own: the order it lets keys in, and its safety net."""

from __future__ import annotations

from collections.abc import Callable

from textual import events

from tui.focus import HOLD_AT_MOST, KeyOrder


class Net:
    """Stands in for the interval timer: the test calls the check itself."""

    def __init__(self) -> None:
        self.check: Callable[[], None] | None = None
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def order() -> tuple[KeyOrder, list[events.Key], list[Net], list[float]]:
    read: list[events.Key] = []
    nets: list[Net] = []
    now = [0.0]

    def every(check: Callable[[], None]) -> Net:
        nets.append(Net())
        nets[-1].check = check
        return nets[-1]

    keys = KeyOrder(read.append, every, lambda: now[0])  # type: ignore[arg-type]
    return keys, read, nets, now


def test_keys_wait_for_the_one_in_flight_and_come_back_in_order() -> None:
    keys, read, nets, _ = order()
    a, b, c = (events.Key(k, k) for k in "abc")
    assert keys.admit(a)
    assert not keys.admit(b) and not keys.admit(c)
    assert read == [] and len(nets) == 1  # one net while keys wait
    keys.done()
    assert read == [b]  # b is read again; c waits behind it
    assert not keys.admit(c) and keys.admit(b)
    keys.done()
    assert read == [b, c] and keys.admit(c)
    keys.done()
    assert nets[0].stopped  # nothing waits any more


def test_a_hold_keeps_keys_out_until_released() -> None:
    keys, read, _, _ = order()
    enter, f = events.Key("enter", "\r"), events.Key("f", "f")
    assert keys.admit(enter)
    keys.hold()
    keys.done()
    assert not keys.admit(f) and read == []
    keys.release()
    assert read == [f]


def test_a_key_that_never_comes_back_blocks_the_others_only_for_a_while() -> None:
    keys, read, nets, now = order()
    a, b = events.Key("a", "a"), events.Key("b", "b")
    assert keys.admit(a)
    assert not keys.admit(b)
    check = nets[0].check
    assert check is not None
    now[0] = HOLD_AT_MOST / 2
    check()
    assert read == []  # not yet
    now[0] = HOLD_AT_MOST * 1.5
    check()
    assert read == [b] and keys.admit(b)
