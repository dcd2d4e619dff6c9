"""Which frames make a clip, decided apart from decoding (pytorchvideo-style clip samplers).

A clip of ``num_frames`` frames with temporal ``stride`` spans ``(num_frames - 1) * stride + 1``
frames of the video. Training takes one clip at a uniformly random start; evaluation takes
``num_clips`` clips whose starts are evenly spaced from the first to the last possible start, and
the per-video prediction averages them. A video shorter than the span repeats its last frame
(indices are clamped), so every video yields full-length clips.

A clip sampler is what a :class:`~anonpriv.data.video_dataset.VideoClipDataset` asks for the
frames of an item: any object with ``clips_per_video`` (items per video) and a call
``sampler(video_frames, clip) -> frame indices (num_frames,)`` for clip ``clip`` of a video of
``video_frames`` frames. :class:`RandomClipSampler` (training) and :class:`EvenlySpacedClipSampler`
(evaluation) are the two the real-video sources use.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


def clip_span(num_frames: int, stride: int) -> int:
    """Frames of the video one clip covers, first to last inclusive."""
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames={num_frames} and stride={stride} must both be at least 1.")
    return (num_frames - 1) * stride + 1


def _clip_at(start: int, video_frames: int, num_frames: int, stride: int) -> np.ndarray:
    return np.minimum(start + np.arange(num_frames) * stride, video_frames - 1)


def random_clip_indices(
    video_frames: int, num_frames: int, stride: int, generator: torch.Generator | None = None
) -> np.ndarray:
    """Frame indices ``(num_frames,)`` of a training clip starting at a uniformly random frame.

    Uses torch's random generator, which DataLoader seeds differently in every worker.
    """
    if video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {video_frames}.")
    last_start = max(0, video_frames - clip_span(num_frames, stride))
    start = int(torch.randint(last_start + 1, (1,), generator=generator))
    return _clip_at(start, video_frames, num_frames, stride)


def evenly_spaced_clip_indices(video_frames: int, num_frames: int, stride: int, num_clips: int) -> np.ndarray:
    """Frame indices ``(num_clips, num_frames)`` of evaluation clips with evenly spaced starts.

    One clip sits in the middle of the video; several go from the first possible start to the
    last one (they overlap when the video is short).
    """
    if video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {video_frames}.")
    if num_clips < 1:
        raise ValueError(f"num_clips={num_clips} must be at least 1.")
    last_start = max(0, video_frames - clip_span(num_frames, stride))
    if num_clips == 1:
        starts = np.array([last_start // 2])
    else:
        starts = np.round(np.linspace(0, last_start, num_clips)).astype(np.int64)
    return np.stack([_clip_at(int(s), video_frames, num_frames, stride) for s in starts])


class ClipSampler(Protocol):
    """Which frames each clip of a video takes (see the module docstring)."""

    clips_per_video: int

    def __call__(self, video_frames: int, clip: int) -> np.ndarray: ...


class RandomClipSampler:
    """One clip per video at a uniformly random start (training), drawn from torch's global generator."""

    clips_per_video = 1

    def __init__(self, num_frames: int, stride: int) -> None:
        clip_span(num_frames, stride)
        self.num_frames, self.stride = num_frames, stride

    def __call__(self, video_frames: int, clip: int = 0) -> np.ndarray:
        return random_clip_indices(video_frames, self.num_frames, self.stride)


class EvenlySpacedClipSampler:
    """``clips_per_video`` clips per video with evenly spaced starts (evaluation); no randomness."""

    def __init__(self, num_frames: int, stride: int, clips_per_video: int = 1) -> None:
        clip_span(num_frames, stride)
        if clips_per_video < 1:
            raise ValueError(f"clips_per_video={clips_per_video} must be at least 1.")
        self.num_frames, self.stride, self.clips_per_video = num_frames, stride, clips_per_video

    def __call__(self, video_frames: int, clip: int) -> np.ndarray:
        clips = evenly_spaced_clip_indices(video_frames, self.num_frames, self.stride, self.clips_per_video)
        return clips[clip]
