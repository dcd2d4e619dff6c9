"""uint8 frames <-> float clips in bounded pieces, so that memory follows a clip, not a resolution.

Video decodes to uint8 RGB (1 byte a value); models take float32 (4 bytes). A 1920 x 1080 clip of
16 frames is 100 MB as uint8 and 400 MB as float32, so ``anonpriv anonymize`` keeps frames in uint8
and converts only a few frames at a time (:data:`FLOAT_CHUNK_BYTES` of float32), for methods that
work frame by frame (:func:`map_frames`) and for resizing whole frames to a model's clip size and
back (:func:`resize_to_clip`, :func:`resize_from_clip`).

Layouts: uint8 frames are ``(N, H, W, 3)`` (as decoded); float clips are ``(C, T, H, W)`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

#: float32 bytes converted at once (at least one frame): 64 MiB is 2 frames of 1080p, 1 of 4K
FLOAT_CHUNK_BYTES = 64 * 1024 * 1024


def chunk_frames(height: int, width: int, channels: int = 3, budget: int = FLOAT_CHUNK_BYTES) -> int:
    """How many float32 frames of this size fit in ``budget`` bytes (at least 1)."""
    return max(1, budget // (4 * channels * height * width))


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [0, 1]."""
    return frames.permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float ``(N, 3, H, W)`` in [0, 1] -> uint8 ``(N, H, W, 3)`` (rounded, clipped)."""
    return frames.clamp(0, 1).mul_(255.0).round_().to(torch.uint8).permute(0, 2, 3, 1)


def map_frames(frames: torch.Tensor, function: Callable[[torch.Tensor], torch.Tensor],
               budget: int = FLOAT_CHUNK_BYTES, out: torch.Tensor | None = None) -> torch.Tensor:
    """Apply a float frame function ``(n, 3, H, W) -> (n, 3, H, W)`` to uint8 frames ``(N, H, W, 3)``
    a few frames at a time; returns uint8 ``(N, H, W, 3)`` (written into ``out`` when given)."""
    count, height, width, _ = frames.shape
    out = torch.empty_like(frames) if out is None else out
    step = chunk_frames(height, width, budget=budget)
    for start in range(0, count, step):
        out[start:start + step] = to_uint8(function(to_float(frames[start:start + step])))
    return out


def resize_float(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of float ``(n, C, h, w)`` to ``size``, anti-aliased when shrinking."""
    height, width = frames.shape[-2:]
    if (height, width) == tuple(size):
        return frames
    return F.interpolate(frames, size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=size[0] < height or size[1] < width)


def resize_to_clip(frames: torch.Tensor, size: tuple[int, int] | None, budget: int = FLOAT_CHUNK_BYTES) -> torch.Tensor:
    """uint8 ``(B, T, H, W, 3)`` -> float clips ``(B, 3, T, h, w)`` at ``size`` (``None``: as they
    are), converting a few full-size frames at a time."""
    batch, length, height, width, _ = frames.shape
    size = (height, width) if size is None else tuple(size)
    flat = frames.reshape(batch * length, height, width, 3)
    out = torch.empty(batch * length, 3, *size, dtype=torch.float32, device=frames.device)
    step = chunk_frames(height, width, budget=budget)
    for start in range(0, len(flat), step):
        out[start:start + step] = resize_float(to_float(flat[start:start + step]), size)
    return out.reshape(batch, length, 3, *size).transpose(1, 2)


def resize_from_clip(video: torch.Tensor, size: tuple[int, int], budget: int = FLOAT_CHUNK_BYTES) -> torch.Tensor:
    """float clips ``(B, 3, T, h, w)`` -> uint8 ``(B, T, H, W, 3)`` at ``size``, a few frames at a time."""
    batch, channels, length = video.shape[:3]
    flat = video.transpose(1, 2).reshape(batch * length, channels, *video.shape[-2:])
    out = torch.empty(batch * length, *size, 3, dtype=torch.uint8, device=video.device)
    step = chunk_frames(*size, budget=budget)
    for start in range(0, len(flat), step):
        out[start:start + step] = to_uint8(resize_float(flat[start:start + step].float(), size))
    return out.reshape(batch, length, *size, 3)


def upsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A mask ``(T, h, w)`` at clip size -> ``(T, H, W, 1)`` at ``size`` (nearest), in the mask's dtype
    (uint8 for a binary mask that multiplies uint8 frames, float for weights in [0, 1])."""
    small = mask[:, None]
    if tuple(small.shape[-2:]) != tuple(size):
        small = F.interpolate(small, size=tuple(size), mode="nearest")
    return small.permute(0, 2, 3, 1)
