"""Per-frame results remembered by frame content: the detectors of face_blur and blackening run once per
distinct frame, however often a fixed training set or a test clip comes back.

A frame's key is a 16-byte BLAKE2b of its bytes (with a tag per detector, and the frame's shape and
dtype), so equal pixels share a result and nothing else does. The cache keeps the last ``capacity``
frames used (least recently used first out); a result is small (a few boxes: ~100 bytes).
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np


class FrameResultCache:
    """An LRU of per-frame results keyed by frame content.

    Args:
        tag: up to 16 bytes that keep one detector's results apart from another's.
        capacity: frames remembered at most.
    """

    def __init__(self, tag: bytes, capacity: int = 200_000) -> None:
        self.tag = tag
        self.capacity = int(capacity)
        self._results: collections.OrderedDict[bytes, Any] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._results)

    def keys(self, frames: np.ndarray) -> list[bytes]:
        """The key of each frame of ``frames`` (N, ...)."""
        suffix = repr(frames.shape[1:]).encode() + frames.dtype.str.encode()
        return [hashlib.blake2b(frame.tobytes(), digest_size=16, person=self.tag).digest() + suffix for frame in frames]

    def lookup(self, frames: np.ndarray, compute: Callable[[list[int]], Iterable[Any]]) -> list[Any]:
        """The result of every frame: remembered ones from the cache, the others from
        ``compute(indices)`` (the first index of each distinct new frame, in order; it returns one result
        per index), which are then remembered."""
        keys = self.keys(frames)
        first: dict[bytes, int] = {}
        for index, key in enumerate(keys):
            if key not in self._results:
                first.setdefault(key, index)
        if first:
            for key, result in zip(first, compute(list(first.values()))):
                self._results[key] = result
        results = []
        for key in keys:
            self._results.move_to_end(key)
            results.append(self._results[key])
        while len(self._results) > self.capacity:
            self._results.popitem(last=False)
        return results
