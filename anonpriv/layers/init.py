"""The ViT initialisation, written with torch alone: building a transformer imports no timm, and a
seed still draws timm's initial weights."""

from __future__ import annotations

import math

import torch
from torch import nn


def trunc_normal_(tensor: torch.Tensor, std: float = 1.0, mean: float = 0.0, a: float = -2.0, b: float = 2.0) -> torch.Tensor:
    """Fill ``tensor`` in place from a normal(``mean``, ``std``) truncated to [``a``, ``b``] (absolute
    bounds), by the inverse-CDF method: uniform draws between the bounds' CDF values, mapped back
    through the normal quantile function. Draws the same numbers for a seed as timm's
    ``trunc_normal_``."""
    def normal_cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    with torch.no_grad():
        low, high = normal_cdf((a - mean) / std), normal_cdf((b - mean) / std)
        tensor.uniform_(2 * low - 1, 2 * high - 1)  # erf's range: erfinv maps it to the standard normal
        tensor.erfinv_().mul_(std * math.sqrt(2.0)).add_(mean)
        return tensor.clamp_(min=a, max=b)


def init_vit_weights(module: nn.Module) -> None:
    """The usual ViT initialisation, for ``model.apply``: truncated-normal (std 0.02) linear
    weights with zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
