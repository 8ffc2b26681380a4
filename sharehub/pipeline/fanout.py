"""Feed one stream of record batches to two consumers at once: the caller and a thread.

``publish`` writes a full run's rows to the lake (Parquet, in this thread) and to the serving
store (``COPY`` into PostgreSQL, whose server does most of that work) from a single read of the
raw zone. The side consumer gets the same batches through a bounded queue, so memory stays at
a few batches; whichever side fails, the other sees an error instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from queue import Empty, Full, Queue
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()


class SideFailed(RuntimeError):
    """The side consumer failed; its exception is the cause."""


class Aborted(RuntimeError):
    """The main consumer stopped before the end of the stream."""


class Fanout(Generic[T, R]):
    """Run ``side(batches)`` in a thread while the caller iterates :meth:`feed`.

    Use as a context manager; :meth:`result` joins the thread and returns what ``side``
    returned (or raises what it raised).
    """

    def __init__(self, side: Callable[[Iterator[T]], R], *, depth: int = 2, name: str = "fanout") -> None:
        self._queue: Queue[Any] = Queue(maxsize=depth)
        self._side = side
        self._result: R | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _items(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, Aborted):
                raise item
            yield item

    def _run(self) -> None:
        try:
            self._result = self._side(self._items())
        except BaseException as exc:
            self._error = exc
        finally:  # unblock a feeder waiting on a full queue
            while True:
                try:
                    self._queue.get_nowait()
                except Empty:
                    break

    def _put(self, item: Any) -> None:
        while True:
            if not self._thread.is_alive():
                if isinstance(item, Aborted) or item is _END:
                    return
                raise SideFailed("the side consumer stopped") from self._error
            try:
                self._queue.put(item, timeout=0.1)
                return
            except Full:
                continue

    def feed(self, batches: Iterable[T]) -> Iterator[T]:
        """Yield ``batches`` to the caller, each also handed to the side consumer."""
        finished = False
        try:
            for b in batches:
                self._put(b)
                yield b
            finished = True
            self._put(_END)
        finally:
            if not finished:
                self._put(Aborted("the main consumer stopped before the end"))

    def result(self) -> R:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def __enter__(self) -> Fanout[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Full):
                self._queue.put_nowait(Aborted("abandoned"))
        self._thread.join(timeout=600)
