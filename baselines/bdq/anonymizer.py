"""BDQ's encoder (Blur -> Difference -> Quantization), ``f_A`` of :class:`~anonpriv.baselines.bdq.BDQBaseline`,
with torch alone: this module imports neither the methods' base class nor Lightning, so a trained
BDQ checkpoint's anonymizer is rebuilt without them (:func:`anonpriv.methods.registry.load_checkpoint_anonymizer`).
The steps are described in :mod:`anonpriv.baselines.bdq.method`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.baselines.blur.anonymizer import check_kernel_size, gaussian_blur


class LearnableGaussianBlur(nn.Module):
    """Gaussian blur of every frame with a learnable standard deviation.

    Args:
        kernel_size: odd number of taps per axis (BDQ: 5).
        sigma_init: initial sigma in pixels (BDQ: 3).
        min_sigma: sigma is clamped from below to this in the forward pass, so the kernel never
            divides by zero whatever the optimiser does to the parameter.
    """

    def __init__(self, kernel_size: int = 5, sigma_init: float = 3.0, min_sigma: float = 1e-3) -> None:
        super().__init__()
        check_kernel_size(kernel_size)
        if sigma_init <= 0 or min_sigma <= 0:
            raise ValueError(f"sigma_init={sigma_init} and min_sigma={min_sigma} must be positive.")
        self.kernel_size = kernel_size
        self.min_sigma = min_sigma
        self.sigma = nn.Parameter(torch.tensor(float(sigma_init)))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(video, self.kernel_size, self.sigma.clamp(min=self.min_sigma))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={float(self.sigma):.3f}"


class TemporalDifference(nn.Module):
    """Frame t minus frame t-1: (B, C, T, H, W) -> (B, C, T-1, H, W), values in [-1, 1]."""

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or video.shape[2] < 2:
            raise ValueError(
                f"the temporal difference needs a clip (B, C, T, H, W) with T >= 2 frames, got shape "
                f"{tuple(video.shape)}: use clips of at least 2 frames."
            )
        return video[:, :, 1:] - video[:, :, :-1]


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


class SoftQuantizer(nn.Module):
    """Differentiable quantisation with learnable, always-sorted thresholds.

    Each clip is scaled on its own to ``[0, num_thresholds]`` (its minimum to 0, its maximum to
    ``num_thresholds``; a constant clip maps to 0), then passed through the soft staircase
    ``q(x) = sum_j sigmoid(slope * (x - b_j))``, and divided by ``num_thresholds`` so the output lies
    in [0, 1] like every other anonymized clip in this project (downstream models normalise
    assuming that range).

    The thresholds are parametrised as the first threshold plus cumulative positive gaps
    (``softplus``), so they are sorted after any optimiser step; they start at 0.5, 1.5, ...,
    ``num_thresholds - 0.5``.

    Args:
        num_thresholds: number of steps of the staircase (BDQ: 15, i.e. 16 levels).
        slope: steepness of each step (BDQ: 5); larger is closer to hard rounding.
        eps: floor of a clip's value range when scaling, so a constant clip does not divide by 0.
    """

    def __init__(self, num_thresholds: int = 15, slope: float = 5.0, eps: float = 1e-6) -> None:
        super().__init__()
        if num_thresholds < 1:
            raise ValueError(f"num_thresholds={num_thresholds} must be at least 1 (BDQ uses 15).")
        if slope <= 0:
            raise ValueError(f"slope={slope} must be positive (BDQ uses 5).")
        self.num_thresholds = num_thresholds
        self.slope = float(slope)
        self.eps = eps
        self.first_threshold = nn.Parameter(torch.tensor(0.5))
        self.raw_gaps = nn.Parameter(_inverse_softplus(torch.ones(num_thresholds - 1)))

    @property
    def thresholds(self) -> torch.Tensor:
        """The sorted thresholds ``b_1 <= ... <= b_n`` (differentiable)."""
        gaps = F.softplus(self.raw_gaps)
        return torch.cat([self.first_threshold.view(1), self.first_threshold + torch.cumsum(gaps, dim=0)])

    def scale_per_clip(self, x: torch.Tensor) -> torch.Tensor:
        """Map each clip (first dimension) linearly to ``[0, num_thresholds]`` using only its own values."""
        dims = tuple(range(1, x.dim()))
        low = x.amin(dim=dims, keepdim=True)
        high = x.amax(dim=dims, keepdim=True)
        return (x - low) / (high - low).clamp_min(self.eps) * self.num_thresholds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = self.scale_per_clip(x)
        staircase = torch.zeros_like(scaled)
        for threshold in self.thresholds:  # a loop, not a broadcast: memory stays at one clip batch
            staircase = staircase + torch.sigmoid(self.slope * (scaled - threshold))
        return staircase / self.num_thresholds

    def extra_repr(self) -> str:
        return f"num_thresholds={self.num_thresholds}, slope={self.slope}"


class BDQEncoder(nn.Module):
    """Blur -> Difference -> Quantization: (B, C, T, H, W) in [0, 1] -> (B, C, T-1, H, W) in [0, 1]."""

    def __init__(
        self, blur_kernel_size: int = 5, blur_sigma: float = 3.0, num_thresholds: int = 15, slope: float = 5.0
    ) -> None:
        super().__init__()
        self.blur = LearnableGaussianBlur(blur_kernel_size, blur_sigma)
        self.difference = TemporalDifference()
        self.quantizer = SoftQuantizer(num_thresholds, slope)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.quantizer(self.difference(self.blur(video)))


def bdq_anonymizer(blur_kernel_size: int = 5, blur_sigma: float = 3.0, num_thresholds: int = 15,
                   staircase_slope: float = 5.0, clip_shape: Sequence[int] | None = None) -> BDQEncoder:
    """The encoder of a :class:`~anonpriv.baselines.bdq.BDQBaseline` built with these arguments (the method's own
    names). ``clip_shape`` is only checked: the temporal difference needs clips of at least 2 frames."""
    if clip_shape is not None and len(clip_shape) == 3 and clip_shape[0] < 2:
        raise ValueError(f"clip_shape={list(clip_shape)}: BDQ's temporal difference needs clips of at least 2 frames.")
    return BDQEncoder(blur_kernel_size, blur_sigma, num_thresholds, staircase_slope)
