"""Decoding, the model and encoding overlap: a decoding thread (:func:`prefetch`) fills a queue of
frames, the model takes batches of windows from it, and an encoding thread (:class:`BackgroundSink`)
writes the anonymized batches. Each queue holds at most :data:`QUEUE_BYTES` of frames beyond its
least depth (:func:`queue_depth`), so memory follows the clip, not the video.

An exception in a thread is raised in the caller's thread. This module needs the standard library alone.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

#: bytes of frames each queue between threads holds at most (decoded frames, written batches),
#: beyond its least depth (2 decoded frames, 1 batch)
QUEUE_BYTES = 64 * 1024 * 1024


def queue_depth(item_bytes: int, most: int, least: int = 1, budget: int = QUEUE_BYTES) -> int:
    """Items of ``item_bytes`` a queue holds: what fits in ``budget``, within ``[least, most]``."""
    return max(least, min(most, budget // max(1, item_bytes)))


def chained(first, rest: Iterator) -> Iterator:
    """``first``, then the items of ``rest`` (an iterator whose first item was taken to look at it)."""
    yield first
    yield from rest


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` consecutive items (the last one shorter when the items run out)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def prefetch(items: Iterable, depth: int = 64) -> Iterator:
    """Iterate ``items`` in a background thread (decoding overlaps with the model and the encoder);
    an exception in the thread is raised here."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(item)
            buffer.put(done)
        except BaseException as error:  # handed to the consumer
            buffer.put(error)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


class BackgroundSink:
    """Calls ``consume(item)`` for every :meth:`put` item in a background thread (encoding overlaps
    with the model); :meth:`close` waits for the queue and re-raises the thread's error, if any."""

    def __init__(self, consume: Callable, depth: int = 4) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._consume = consume
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as error:  # raised by put/close in the caller's thread
                    self._error = error

    def put(self, item) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
