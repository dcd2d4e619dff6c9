"""Gradient scaling between a shared backbone and an adversarial head, and DANN's schedule for it.

:func:`scale_gradient` is the identity forward and multiplies the gradient backward, so one head can
learn a task at full strength while the backbone below it receives that task's gradient scaled,
reversed (a gradient-reversal layer) or not at all. :func:`dann_ramp` is the weight schedule of
domain-adversarial training (Ganin & Lempitsky), which token pruning's privacy CLS follows.
"""

from __future__ import annotations

import torch


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
