"""Building blocks of the dual-CLS tubelet ViT beside the shared ViT block
(:mod:`anonpriv.models.vit_layers`): tubelet embedding and gradient reversal. Torch only:
anonymizing with the method imports no timm."""

from __future__ import annotations

import torch
from torch import nn

#: The tiny default's input normalisation of [0, 1] clips (2D timm weights bring their own).
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.25, 0.25, 0.25)


class TubeletEmbedding(nn.Module):
    """Non-overlapping ``t x p x p`` tubelets of a (B, C, T, H, W) clip -> tokens (B, N, D).

    ``N = (T / t) * (H / p) * (W / p)``, in (time, row, column) order; tubelet id ``i`` is the
    token's index in that order. The clip is normalised with ``mean`` / ``std`` first.

    ``stem="linear"`` is the paper's embedding: one Conv3d with kernel = stride = tubelet (2D
    pretrained patch kernels inflate into it). ``stem="conv"`` is a hybrid stem for small models
    trained from scratch: strided 3x3x3 conv-BN-ReLU layers halve the resolution until the
    tubelet grid is reached (ViTs learn far faster with early convolutions). With
    ``motion_channels`` the frame-to-frame difference is stacked onto the input channels so motion
    is visible at once (when 2D pretrained weights are loaded these kernels start at zero):
    ``"signed"`` (or ``True``) stacks the difference itself, ``"magnitude"`` its absolute value. With
    the linear stem a token is a linear function of its own pixels, and the signed difference of a
    limb moving in or out of a tubelet has either sign depending on the colours, so motion *energy*
    is not linear in it; the magnitude makes it so, and a tiny ViT's action CLS learns where the
    motion is several times faster (benchmarks/token_pruning_design.md).
    """

    def __init__(self, clip_shape: tuple[int, int, int], tubelet: tuple[int, int, int], embed_dim: int,
                 in_channels: int = 3, motion_channels: bool | str = False, stem: str = "linear", stem_width: int = 16,
                 mean: tuple[float, ...] = DEFAULT_MEAN, std: tuple[float, ...] = DEFAULT_STD) -> None:
        super().__init__()
        T, H, W = clip_shape
        t, ph, pw = tubelet
        if min(t, ph, pw) < 1 or T % t or H % ph or W % pw:
            raise ValueError(
                f"tubelet {tuple(tubelet)} must divide the clip {tuple(clip_shape)} (T, H, W) exactly: "
                "change the tubelet size or the clip size."
            )
        self.clip_shape = (T, H, W)
        self.tubelet = (t, ph, pw)
        self.grid = (T // t, H // ph, W // pw)
        if motion_channels not in (False, True, "none", "signed", "magnitude"):
            raise ValueError(f"motion_channels={motion_channels!r}: use false, 'signed' (true) or 'magnitude'.")
        self.motion_channels = {False: False, "none": False, True: "signed"}.get(motion_channels, motion_channels)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1, 1), persistent=False)
        channels = 2 * in_channels if motion_channels else in_channels
        if stem == "linear":
            self.stem = nn.Identity()
            self.proj = nn.Conv3d(channels, embed_dim, kernel_size=self.tubelet, stride=self.tubelet)
        elif stem == "conv":
            self.stem, channels = _conv_stem(channels, stem_width, self.tubelet)
            self.proj = nn.Conv3d(channels, embed_dim, kernel_size=1)
        else:
            raise ValueError(f"stem={stem!r}: use 'linear' (the paper's tubelet projection) or 'conv'.")

    @property
    def num_tubelets(self) -> int:
        t, h, w = self.grid
        return t * h * w

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if tuple(video.shape[2:]) != self.clip_shape:
            raise ValueError(
                f"clip of shape {tuple(video.shape[2:])} (T, H, W) given to a model built for "
                f"{self.clip_shape}: resize the clip or build the model with clip_shape={list(video.shape[2:])}."
            )
        x = (video - self.mean) / self.std
        if self.motion_channels:
            diff = torch.diff(x, dim=2, prepend=x[:, :, :1])
            x = torch.cat([x, diff.abs() if self.motion_channels == "magnitude" else diff], dim=1)
        return self.proj(self.stem(x)).flatten(2).transpose(1, 2)


def _conv_stem(in_channels: int, width: int, tubelet: tuple[int, int, int]) -> tuple[nn.Sequential, int]:
    """Conv3d-BN-ReLU layers whose strides multiply to ``tubelet`` (spatial sizes powers of two)."""
    t, ph, pw = tubelet
    if ph != pw or ph & (ph - 1) or t & (t - 1):
        raise ValueError(f"stem='conv' needs tubelet sizes that are powers of two with p x p square, got {tubelet}")
    layers, channels = [], in_channels
    steps = max(ph.bit_length() - 1, t.bit_length() - 1, 1)
    t_left, p_left = t, ph
    for i in range(steps):
        st = 2 if t_left > 1 and steps - i <= t_left.bit_length() - 1 else 1
        sp = 2 if p_left > 1 else 1
        out = width * 2**i
        layers += [nn.Conv3d(channels, out, 3, stride=(st, sp, sp), padding=1, bias=False),
                   nn.BatchNorm3d(out), nn.ReLU(inplace=True)]
        channels, t_left, p_left = out, t_left // st, p_left // sp
    return nn.Sequential(*layers), channels


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.scale * grad, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``scale`` backward.

    ``scale = -w`` is DANN's gradient-reversal layer (GRL); ``scale = 1`` is a plain connection.
    """
    if scale == 1.0:
        return x
    return _ScaleGradient.apply(x, scale)


def dann_ramp(progress: float, gamma: float = 10.0) -> float:
    """DANN's schedule ``2 / (1 + exp(-gamma p)) - 1``: 0 at the start of training, ~1 at the end."""
    return float(2.0 / (1.0 + torch.exp(torch.tensor(-gamma * progress))) - 1.0)
