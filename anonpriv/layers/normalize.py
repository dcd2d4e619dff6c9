"""Per-channel input normalisation, the first layer of the models that take [0, 1] clips or frames."""

from __future__ import annotations

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel normalisation of a (B, C, ...) tensor."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean), persistent=False)
        self.register_buffer("std", torch.tensor(std), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)
