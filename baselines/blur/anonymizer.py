"""The anonymizers of blur and downsample, with torch alone: fixed, parameter-free degradations
of every frame.

:class:`GaussianBlur` is ``f_A`` of :class:`~anonpriv.baselines.blur.BlurBaseline` and :class:`DownUpSample` that
of :class:`~anonpriv.baselines.blur.DownsampleBaseline`; their arguments are the methods' own. This module
imports neither the methods' base class nor Lightning, so ``anonpriv anonymize --method blur``
builds the anonymizer alone (:func:`anonpriv.methods.registry.build_anonymizer`).
:func:`gaussian_blur` is shared with BDQ (:mod:`anonpriv.baselines.bdq.anonymizer`), whose blur has a
learnable sigma.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def check_kernel_size(kernel_size: int) -> None:
    """Raise a clear error unless ``kernel_size`` is a positive odd integer."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size={kernel_size!r} must be a positive odd integer (1, 3, 5, ...) so the blur "
            "is centred on each pixel; use e.g. 5 or 13."
        )


def gaussian_kernel1d(kernel_size: int, sigma: torch.Tensor | float) -> torch.Tensor:
    """A normalised 1D Gaussian of ``kernel_size`` taps, differentiable in ``sigma``.

    ``sigma == 0`` (or ``kernel_size == 1``) gives the unit impulse ``[0, .., 1, .., 0]``, so a blur
    with it is exactly the identity. A tiny positive sigma gives the same impulse: the off-centre
    taps underflow to exactly zero.
    """
    check_kernel_size(kernel_size)
    sigma = torch.as_tensor(sigma, dtype=torch.float32)
    offsets = torch.arange(kernel_size, dtype=sigma.dtype, device=sigma.device) - kernel_size // 2
    if float(sigma.detach()) <= 0.0:
        return (offsets == 0).to(sigma.dtype)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def gaussian_blur(video: torch.Tensor, kernel_size: int, sigma: torch.Tensor | float) -> torch.Tensor:
    """Blur every frame of ``video`` (B, C, T, H, W) with a separable Gaussian.

    The frames are padded by replicating their border, so the output has the input's size and the
    image edges do not darken. Gradients flow to ``video`` and to a tensor ``sigma``.
    """
    if video.dim() != 5:
        raise ValueError(f"expected a clip (B, C, T, H, W), got a tensor of shape {tuple(video.shape)}.")
    kernel = gaussian_kernel1d(kernel_size, sigma).to(device=video.device, dtype=video.dtype)
    if bool(kernel[kernel_size // 2] == 1):
        return video  # the kernel is a unit impulse (sigma ~ 0 or one tap): exactly the identity
    b, c, t, h, w = video.shape
    frames = video.transpose(1, 2).reshape(b * t, c, h, w)
    pad = kernel_size // 2
    frames = F.pad(frames, (pad, pad, pad, pad), mode="replicate")
    frames = F.conv2d(frames, kernel.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size), groups=c)
    frames = F.conv2d(frames, kernel.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1), groups=c)
    return frames.reshape(b, t, c, h, w).transpose(1, 2)


def _frames_of(video: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B * T, C, H, W)."""
    b, c, t, h, w = video.shape
    return video.transpose(1, 2).reshape(b * t, c, h, w)


def _clip_of(frames: torch.Tensor, batch: int) -> torch.Tensor:
    """(B * T, C, H, W) -> (B, C, T, H, W)."""
    n, c, h, w = frames.shape
    return frames.reshape(batch, n // batch, c, h, w).transpose(1, 2)


#: above this sigma (pixels) a relative blur is computed at a reduced resolution
DIRECT_SIGMA = 3.0


def blur_frames_relative(frames: torch.Tensor, relative_sigma: float) -> torch.Tensor:
    """Gaussian blur of frames ``(N, C, H, W)`` with sigma ``relative_sigma * H`` pixels, the kernel
    wide enough for it (3 sigma each side). A sigma above :data:`DIRECT_SIGMA` pixels is applied at
    a resolution ``f = sigma // 2`` times lower (area averaging, a blur of ``sigma / f``, bilinear
    back up): the same strength for a fraction of the cost of a 6-sigma kernel at full size."""
    height, width = frames.shape[-2:]
    sigma = relative_sigma * height
    if sigma <= 0:
        return frames
    factor = int(sigma // 2) if sigma > DIRECT_SIGMA else 1
    work = frames
    if factor > 1:
        work = F.interpolate(frames, size=(max(1, -(-height // factor)), max(1, -(-width // factor))), mode="area")
    small_sigma = sigma / factor
    kernel_size = 2 * math.ceil(3 * small_sigma) + 1
    work = gaussian_blur(work[None].transpose(1, 2), kernel_size, small_sigma)[0].transpose(0, 1)
    if factor > 1:
        work = F.interpolate(work, size=(height, width), mode="bilinear", align_corners=False)
    return work


class GaussianBlur(nn.Module):
    """Fixed Gaussian blur of every frame.

    Args:
        kernel_size: odd number of taps per axis.
        sigma: standard deviation in pixels; ``0`` (or ``kernel_size=1``) is the identity.
        relative_sigma: if given, the standard deviation is this fraction of each frame's height
            instead (``kernel_size`` and ``sigma`` are then unused; the kernel covers 3 sigma each side,
            and a wide blur is computed at a reduced resolution: :func:`blur_frames_relative`). Sized
            for footage of any resolution: ``anonpriv anonymize --method blur`` uses it.
    """

    def __init__(self, kernel_size: int = 13, sigma: float = 10.0, relative_sigma: float | None = None) -> None:
        super().__init__()
        check_kernel_size(kernel_size)
        if sigma < 0:
            raise ValueError(f"sigma={sigma} must be non-negative (0 means no blur).")
        if relative_sigma is not None and not 0 <= relative_sigma <= 1:
            raise ValueError(f"relative_sigma={relative_sigma} must lie in [0, 1] (a fraction of the frame height).")
        self.kernel_size = kernel_size
        self.sigma = float(sigma)
        self.relative_sigma = None if relative_sigma is None else float(relative_sigma)

    def sigma_at(self, height: int) -> float:
        """The blur's standard deviation in pixels on frames ``height`` pixels tall (0: the identity)."""
        if self.relative_sigma is not None:
            return self.relative_sigma * height
        return 0.0 if self.kernel_size == 1 else self.sigma

    def blur_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """The blur of frames ``(N, C, H, W)``."""
        if self.relative_sigma is not None:
            return blur_frames_relative(frames, self.relative_sigma)
        return gaussian_blur(frames[None].transpose(1, 2), self.kernel_size, self.sigma)[0].transpose(0, 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if self.relative_sigma is not None:
            if video.dim() != 5:
                raise ValueError(f"expected a clip (B, C, T, H, W), got a tensor of shape {tuple(video.shape)}.")
            return _clip_of(self.blur_frames(_frames_of(video)), video.shape[0])
        return gaussian_blur(video, self.kernel_size, self.sigma)

    def forward_uint8(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(N, H, W, 3)`` blurred, a few at a time (:func:`anonpriv.frames.map_frames`)."""
        from anonpriv.frames import map_frames

        return map_frames(frames, self.blur_frames)

    def extra_repr(self) -> str:
        if self.relative_sigma is not None:
            return f"relative_sigma={self.relative_sigma}"
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}"


class DownUpSample(nn.Module):
    """Spatial down-sampling of every frame by ``factor``, then up-sampling back to its size.

    The output keeps the input's shape, so downstream models are unchanged; the detail finer than
    ``factor`` pixels is gone. ``factor=1`` is the identity.

    Args:
        factor: down-sampling factor (>= 1); the low-resolution frame is
            ``max(1, round(H / factor)) x max(1, round(W / factor))``.
        down_mode: ``area`` (averages each block, anti-aliased) or ``nearest`` (drops pixels).
        up_mode: ``nearest`` (blocky) or ``bilinear`` (smooth).
        target_height: if given, every frame is down-sampled to this height (the width follows the
            aspect ratio) whatever its size, instead of by ``factor`` (a frame no taller is kept as it
            is). Sized for footage of any resolution: ``anonpriv anonymize --method downsample`` uses it.
    """

    def __init__(
        self,
        factor: float = 2.0,
        down_mode: Literal["area", "nearest"] = "area",
        up_mode: Literal["nearest", "bilinear"] = "nearest",
        target_height: int | None = None,
    ) -> None:
        super().__init__()
        if target_height is not None and (isinstance(target_height, bool) or int(target_height) != target_height
                                          or target_height < 1):
            raise ValueError(f"target_height={target_height!r} must be a positive whole number of pixels.")
        self.target_height = None if target_height is None else int(target_height)
        if factor < 1:
            raise ValueError(f"factor={factor} must be at least 1 (1 keeps the resolution, 2 halves it).")
        if down_mode not in ("area", "nearest"):
            raise ValueError(f"down_mode={down_mode!r}: use 'area' or 'nearest'.")
        if up_mode not in ("nearest", "bilinear"):
            raise ValueError(f"up_mode={up_mode!r}: use 'nearest' or 'bilinear'.")
        self.factor = float(factor)
        self.down_mode = down_mode
        self.up_mode = up_mode

    def low_size(self, height: int, width: int) -> tuple[int, int]:
        """The low resolution a ``height x width`` frame passes through."""
        if self.target_height is not None:
            if height <= self.target_height:
                return height, width
            return self.target_height, max(1, round(width * self.target_height / height))
        return max(1, round(height / self.factor)), max(1, round(width / self.factor))

    def resample_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Down and up again, frames ``(N, C, H, W)``."""
        h, w = frames.shape[-2:]
        low_size = self.low_size(h, w)
        if low_size == (h, w):
            return frames
        low = F.interpolate(frames, size=low_size, mode=self.down_mode)
        align = {"align_corners": False} if self.up_mode == "bilinear" else {}
        return F.interpolate(low, size=(h, w), mode=self.up_mode, **align)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got a tensor of shape {tuple(video.shape)}.")
        if self.factor == 1 and self.target_height is None:
            return video
        return _clip_of(self.resample_frames(_frames_of(video)), video.shape[0])

    def forward_uint8(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(N, H, W, 3)`` resampled, a few at a time (:func:`anonpriv.frames.map_frames`)."""
        from anonpriv.frames import map_frames

        return map_frames(frames, self.resample_frames)

    def extra_repr(self) -> str:
        size = f"target_height={self.target_height}" if self.target_height is not None else f"factor={self.factor}"
        return f"{size}, down_mode={self.down_mode!r}, up_mode={self.up_mode!r}"
