"""How a video's frames are cut into the fixed-length clips a method takes, and how many clips a batch holds.

A method is trained on clips of ``T`` frames (its ``clip_shape``; ``--clip-shape`` overrides;
:data:`DEFAULT_CLIP_FRAMES` for a method without one). A video of any length is cut into windows of
``T`` frames so that every input frame gets exactly one output frame:

* A method that returns ``T_out < T`` frames (BDQ's temporal difference returns ``T - 1``) has its
  outputs aligned with the *last* ``T_out`` frames of each window, and windows advance by
  ``T_out``, so they overlap by ``T - T_out`` frames (the :attr:`OutputLayout.lag`). Before the
  first frame the video is padded with copies of the first frame, so the very first output frame
  is computed against a copy of itself (for BDQ: a blank difference frame).
* The last window is padded by repeating the last frame; outputs for padding are dropped.

Windows are batched for the model: ``--batch-size`` windows, or by default as many as fit in
:data:`BATCH_BYTES` of uint8 frames, at most :data:`MAX_AUTO_BATCH` (:func:`batch_windows`).

This module needs numpy alone; the model side is :mod:`anonpriv.anonymize.engine`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np

#: window length for a method without a ``clip_shape``
DEFAULT_CLIP_FRAMES = 16
#: uint8 bytes of windows a batch holds when ``--batch-size`` is not given (at least one window)
BATCH_BYTES = 64 * 1024 * 1024
#: at most this many windows a batch when ``--batch-size`` is not given
MAX_AUTO_BATCH = 4


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """What the method returns for a clip of ``clip_frames`` frames (learned from one dummy clip)."""

    clip_frames: int
    output_frames: int  # frames of the output used for writing (mask if any, else video)
    uses_mask: bool
    has_tubelet_mask: bool
    uint8: bool = False  # the method works frame by frame on uint8 frames of any size (its anonymize_uint8)

    @property
    def lag(self) -> int:
        """Frames of context before the first output frame of each window."""
        return self.clip_frames - self.output_frames


def sliding_windows(frames: Iterable[np.ndarray], clip_frames: int, lag: int) -> Iterator[tuple[np.ndarray, int]]:
    """``(window (clip_frames, h, w, 3), valid outputs)`` over a frame stream, windows overlapping
    by ``lag`` frames (see the module docstring). Each window is one array that decoded frames are
    copied into as they arrive (a frame lives in one window and, for the overlap, the next), so a
    window costs one clip of memory."""
    step = clip_frames - lag
    buffer: np.ndarray | None = None
    filled = 0
    for frame in frames:
        if buffer is None:  # the first frame: pad with copies of it
            buffer = np.empty((clip_frames, *frame.shape), frame.dtype)
            buffer[:lag] = frame
            filled = lag
        buffer[filled] = frame
        filled += 1
        if filled == clip_frames:
            done, buffer = buffer, np.empty_like(buffer)
            buffer[:lag] = done[step:]
            filled = lag
            yield done, step
    pending = filled - lag
    if buffer is not None and pending > 0:
        buffer[filled:] = buffer[filled - 1]
        yield buffer, pending


def batch_windows(clip_frames: int, frame_bytes: int) -> int:
    """Windows per batch for frames of ``frame_bytes``: 4 for small frames, 1 at 1080p and above."""
    return max(1, min(MAX_AUTO_BATCH, BATCH_BYTES // max(1, clip_frames * frame_bytes)))
