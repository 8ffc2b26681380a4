"""sharehub.pipeline.fanout: one stream to two consumers; a failure on either side reaches the other."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sharehub.pipeline.fanout import Aborted, Fanout, SideFailed


def test_both_sides_see_every_item_in_order() -> None:
    with Fanout(lambda items: list(items), depth=2) as fan:
        main = list(fan.feed(range(1000)))
        assert fan.result() == main == list(range(1000))


def test_a_failed_side_stops_the_main_stream() -> None:
    def side(items: Iterator[int]) -> None:
        for i in items:
            if i == 10:
                raise ValueError("serving load failed")

    with Fanout(side, depth=2) as fan, pytest.raises(SideFailed) as info:
        for _ in fan.feed(range(10_000)):
            pass
    assert isinstance(info.value.__cause__, ValueError)


def test_a_failed_main_stream_aborts_the_side() -> None:
    got: list[int] = []

    def side(items: Iterator[int]) -> None:
        for i in items:
            got.append(i)

    def source() -> Iterator[int]:
        yield from range(5)
        raise OSError("lake read failed")

    with Fanout(side, depth=2) as fan:
        with pytest.raises(OSError, match="lake read failed"):
            list(fan.feed(source()))
        with pytest.raises(Aborted):
            fan.result()
    assert got == list(range(5))


def test_the_side_can_wait_for_the_main_side_before_finishing() -> None:
    """What publish does: the serving side waits for the lake's commit before it commits."""
    done = threading.Event()
    ok: list[bool] = []
    committed: list[int] = []

    def side(items: Iterator[int]) -> int:
        rows = sum(1 for _ in items)
        done.wait()
        if not ok:
            raise RuntimeError("lake failed: nothing committed")
        committed.append(rows)
        return rows

    with Fanout(side) as fan:
        try:
            assert sum(fan.feed(range(100))) == 4950
            ok.append(True)
        finally:
            done.set()
        assert fan.result() == 100
    assert committed == [100]


def test_read_ahead_yields_everything_and_passes_errors_on() -> None:
    from connectors.common import read_ahead as ahead

    assert list(ahead(iter(range(100)), depth=3)) == list(range(100))

    def broken() -> Iterator[int]:
        yield 1
        raise OSError("parquet read failed")

    it = ahead(broken())
    assert next(it) == 1
    with pytest.raises(OSError, match="parquet read failed"):
        next(it)
    # a consumer that stops early stops the producer (the thread is joined, nothing hangs)
    it2 = ahead(iter(range(10**9)), depth=2)
    assert next(it2) == 0
    it2.close()  # type: ignore[attr-defined]
