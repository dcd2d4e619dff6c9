"""Tubelets: the token unit of every transformer in anonpriv, and the ops that select them.

A (B, C, T, H, W) clip is cut into non-overlapping ``t x p x q`` tubelets, numbered in (time, row,
column) order; tubelet id ``i`` is the token's index in that order, the same everywhere (token
pruning's ``tubelet_mask``, the tubelet ViT's ``ids``). An anonymizer whose tubelet grid equals a
model's grid hands its ids over directly: e.g. 4 x 8 x 8 tubelets on 16 x 64 x 64 clips and
4 x 14 x 14 tubelets on 16 x 112 x 112 clips both have a 4 x 8 x 8 grid.

* :func:`tubelet_grid`, :func:`tubelet_view`, :func:`patchify_tubelets`, :func:`gather_tubelets`,
  :func:`gather_rows`, :func:`kept_tubelet_ids`: tensor ops (views, advanced indexing, gather,
  argsort) that cut a clip into tubelet rows or pick some of them; nothing loops over tubelets, and
  gathering copies only the chosen tubelets' pixels.
* :class:`TubeletEmbedding`: a clip -> one token per tubelet, through a strided Conv3d (or a small
  convolutional stem).
"""

from __future__ import annotations

import torch
from torch import nn

#: The tiny default's input normalisation of [0, 1] clips (2D timm weights bring their own).
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.25, 0.25, 0.25)

Shape3 = tuple[int, int, int]


def tubelet_grid(clip_shape: Shape3, tubelet: Shape3) -> Shape3:
    """Tubelets along (time, rows, columns) of a ``clip_shape`` (T, H, W) clip; the tubelet
    ``(t, p, q)`` must divide it exactly."""
    (T, H, W), (t, p, q) = clip_shape, tubelet
    if min(t, p, q) < 1 or T % t or H % p or W % q:
        raise ValueError(
            f"tubelet {tuple(tubelet)} must divide the clip {tuple(clip_shape)} (T, H, W) exactly: "
            "change the tubelet size or the clip size."
        )
    return T // t, H // p, W // q


def tubelet_view(video: torch.Tensor, tubelet: Shape3) -> torch.Tensor:
    """(B, C, T, H, W) -> a (B, gt, gh, gw, C, t, p, q) view of the same memory: tubelet
    ``(i, j, k)`` of the grid is ``view[:, i, j, k]`` (nothing is copied)."""
    B, C, T, H, W = video.shape
    t, p, q = tubelet
    gt, gh, gw = tubelet_grid((T, H, W), tubelet)
    return video.reshape(B, C, gt, t, gh, p, gw, q).permute(0, 2, 4, 6, 1, 3, 5, 7)


def patchify_tubelets(video: torch.Tensor, tubelet: Shape3) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, N, C * t * p * q): the pixels of every tubelet, one row each.

    Rows are in tubelet-id order (time, row, column); each row is flattened in (C, t, p, q) order,
    the order of a ``Conv3d(kernel=stride=tubelet)`` weight, so a linear layer on these rows is
    that convolution.
    """
    view = tubelet_view(video, tubelet)
    B, gt, gh, gw = view.shape[:4]
    return view.reshape(B, gt * gh * gw, -1)


def gather_tubelets(video: torch.Tensor, tubelet: Shape3, ids: torch.Tensor) -> torch.Tensor:
    """The rows of :func:`patchify_tubelets` for tubelets ``ids`` (B, k) only -> (B, k, C*t*p*q).

    Only the chosen tubelets' pixels are copied (one advanced-indexing gather on
    :func:`tubelet_view`). Negative ids (padding) read tubelet 0.
    """
    view = tubelet_view(video, tubelet)
    B, _, gh, gw = view.shape[:4]
    safe = ids.clamp_min(0)
    frame_slot, cell = safe // (gh * gw), safe % (gh * gw)
    batch = torch.arange(B, device=ids.device).unsqueeze(1)
    return view[batch, frame_slot, cell // gw, cell % gw].reshape(B, ids.shape[1], -1)


def gather_rows(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``values`` (B or 1, N, D) at row ``ids`` (B, k) -> (B, k, D). Negative ids (padding)
    read row 0; callers mask those positions out."""
    B, k = ids.shape
    safe = ids.clamp_min(0)
    index = safe.unsqueeze(-1).expand(B, k, values.shape[-1])
    return values.expand(B, -1, -1).gather(1, index)


def kept_tubelet_ids(tubelet_mask: torch.Tensor) -> torch.Tensor:
    """Ids of the kept tubelets of a (B, ...) boolean mask, as (B, k) int64 in ascending order.

    ``k`` is the largest kept count in the batch; rows that keep fewer are padded with ``-1``
    (which :meth:`TubeletViT.forward_tubelets` masks out).
    """
    flat = tubelet_mask.flatten(1).bool()
    counts = flat.sum(dim=1)
    k = max(int(counts.max()), 1) if flat.shape[0] else 1
    # Stable sort on "is pruned": kept ids first, each group in ascending id order.
    order = torch.argsort((~flat).to(torch.uint8), dim=1, stable=True)[:, :k]
    padding = torch.arange(k, device=flat.device).unsqueeze(0) >= counts.unsqueeze(1)
    return order.masked_fill(padding, -1)


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
        self.grid = tubelet_grid(clip_shape, tubelet)
        self.clip_shape = tuple(clip_shape)
        self.tubelet = tuple(tubelet)
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
