"""The anonymizers of blur and downsample, with torch alone: fixed, parameter-free degradations
of every frame.

:class:`GaussianBlur` is ``f_A`` of :class:`~baselines.BlurBaseline` and :class:`DownUpSample` that
of :class:`~baselines.DownsampleBaseline`; their arguments are the methods' own. This module
imports neither the methods' base class nor Lightning, so ``anonpriv anonymize --method blur``
builds the anonymizer alone (:func:`anonpriv.methods.registry.build_anonymizer`).
:func:`gaussian_blur` is shared with BDQ (:mod:`baselines.bdq_anonymizer`), whose blur has a
learnable sigma.
"""

from __future__ import annotations

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


class GaussianBlur(nn.Module):
    """Fixed Gaussian blur of every frame.

    Args:
        kernel_size: odd number of taps per axis.
        sigma: standard deviation in pixels; ``0`` (or ``kernel_size=1``) is the identity.
    """

    def __init__(self, kernel_size: int = 13, sigma: float = 10.0) -> None:
        super().__init__()
        check_kernel_size(kernel_size)
        if sigma < 0:
            raise ValueError(f"sigma={sigma} must be non-negative (0 means no blur).")
        self.kernel_size = kernel_size
        self.sigma = float(sigma)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(video, self.kernel_size, self.sigma)

    def extra_repr(self) -> str:
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
    """

    def __init__(
        self,
        factor: float = 2.0,
        down_mode: Literal["area", "nearest"] = "area",
        up_mode: Literal["nearest", "bilinear"] = "nearest",
    ) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor={factor} must be at least 1 (1 keeps the resolution, 2 halves it).")
        if down_mode not in ("area", "nearest"):
            raise ValueError(f"down_mode={down_mode!r}: use 'area' or 'nearest'.")
        if up_mode not in ("nearest", "bilinear"):
            raise ValueError(f"up_mode={up_mode!r}: use 'nearest' or 'bilinear'.")
        self.factor = float(factor)
        self.down_mode = down_mode
        self.up_mode = up_mode

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5:
            raise ValueError(f"expected a clip (B, C, T, H, W), got a tensor of shape {tuple(video.shape)}.")
        if self.factor == 1:
            return video
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        low_size = (max(1, round(h / self.factor)), max(1, round(w / self.factor)))
        low = F.interpolate(frames, size=low_size, mode=self.down_mode)
        align = {"align_corners": False} if self.up_mode == "bilinear" else {}
        frames = F.interpolate(low, size=(h, w), mode=self.up_mode, **align)
        return frames.reshape(b, t, c, h, w).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, down_mode={self.down_mode!r}, up_mode={self.up_mode!r}"
