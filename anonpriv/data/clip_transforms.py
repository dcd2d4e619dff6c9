"""Spatial transforms that turn decoded frames into a clip of the source's configured size.

Every transform crops a box from the frames and resizes it to ``(height, width)`` with torch ops
(bilinear, antialiased), the same box for every frame of a clip:

* evaluation: :func:`center_crop_box`, the largest centred box with the target aspect ratio,
  shrunk to ``fraction`` of its side (``fraction=1`` is "resize the shorter side, centre crop");
* training: :func:`random_resized_crop_box` (area fraction and aspect jitter drawn at random) and a
  horizontal flip with probability one half.

:func:`frames_to_clip` applies a box: uint8 ``(T, H, W, 3)`` RGB -> float32 ``(3, T, h, w)`` in [0, 1].

A clip transform is what a :class:`~anonpriv.data.video_dataset.VideoClipDataset` applies to the
decoded frames of an item: any callable ``transform(frames (T, H, W, 3) uint8) -> (3, T, h, w)
float32``. :class:`RandomCropFlip` (training) and :class:`CenterCrop` (evaluation) are the two the
real-video sources use.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # top, left, height, width


def center_crop_box(height: int, width: int, out_height: int, out_width: int, fraction: float = 1.0) -> Box:
    """The centred box with the aspect ratio of ``out_height x out_width``, as large as fits in the
    frame, times ``fraction`` of its side."""
    if not 0 < fraction <= 1:
        raise ValueError(f"crop fraction {fraction} must be in (0, 1].")
    aspect = out_width / out_height
    box_w = min(width, height * aspect)
    box_h = box_w / aspect
    box_h, box_w = max(1, round(box_h * fraction)), max(1, round(box_w * fraction))
    return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w


def random_resized_crop_box(
    height: int,
    width: int,
    out_height: int,
    out_width: int,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> Box:
    """A random box covering ``scale`` of the frame's area, with the target aspect ratio times a
    log-uniform factor in ``ratio``; falls back to :func:`center_crop_box` when no draw fits."""
    target_aspect = out_width / out_height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        u = torch.rand(4, generator=generator).tolist()
        area = height * width * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = target_aspect * math.exp(log_lo + (log_hi - log_lo) * u[1])
        box_w, box_h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < box_w <= width and 0 < box_h <= height:
            top = int(u[2] * (height - box_h + 1)) if height > box_h else 0
            left = int(u[3] * (width - box_w + 1)) if width > box_w else 0
            return min(top, height - box_h), min(left, width - box_w), box_h, box_w
    return center_crop_box(height, width, out_height, out_width)


def frames_to_clip(frames: np.ndarray | torch.Tensor, box: Box, out_height: int, out_width: int,
                   flip: bool = False) -> torch.Tensor:
    """Crop ``box`` from uint8 RGB frames ``(T, H, W, 3)``, resize to ``out_height x out_width``,
    optionally mirror left-right; returns float32 ``(3, T, out_height, out_width)`` in [0, 1]."""
    frames = torch.as_tensor(frames)
    top, left, box_h, box_w = box
    crop = frames[:, top:top + box_h, left:left + box_w].permute(0, 3, 1, 2).float()  # (T, 3, h, w)
    if (box_h, box_w) != (out_height, out_width):
        crop = F.interpolate(crop, size=(out_height, out_width), mode="bilinear", align_corners=False,
                             antialias=True)
    if flip:
        crop = crop.flip(-1)
    return crop.div_(255.0).clamp_(0.0, 1.0).permute(1, 0, 2, 3).contiguous()


class ClipTransform(Protocol):
    """Decoded frames -> the clip a model sees (see the module docstring)."""

    def __call__(self, frames: np.ndarray) -> torch.Tensor: ...


class RandomCropFlip:
    """Training: a random resized crop covering ``scale`` of the frame's area, then a left-right flip
    with probability one half; both drawn from torch's global generator, crop first."""

    def __init__(self, height: int, width: int, scale: tuple[float, float] = (0.6, 1.0)) -> None:
        self.height, self.width, self.scale = height, width, tuple(scale)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        frame_height, frame_width = frames.shape[1:3]
        box = random_resized_crop_box(frame_height, frame_width, self.height, self.width, scale=self.scale)
        flip = bool(torch.rand(()) < 0.5)
        return frames_to_clip(frames, box, self.height, self.width, flip=flip)


class CenterCrop:
    """Evaluation: the centred box of :func:`center_crop_box` (``fraction`` of the largest one)."""

    def __init__(self, height: int, width: int, fraction: float = 1.0) -> None:
        self.height, self.width, self.fraction = height, width, fraction

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        box = center_crop_box(frames.shape[1], frames.shape[2], self.height, self.width, self.fraction)
        return frames_to_clip(frames, box, self.height, self.width)
