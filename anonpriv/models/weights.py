"""Weights: the ViT initialisation shared by the tubelet ViTs, and loading pretrained weights from a
local file (nothing is ever downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def init_vit_weights(module: nn.Module) -> None:
    """The usual ViT initialisation, for ``model.apply``: truncated-normal (std 0.02) linear
    weights with zero biases, unit LayerNorms."""
    from timm.layers import trunc_normal_

    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def load_local_weights(model: nn.Module, path: str | Path, strict: bool = False, skip_prefixes: tuple[str, ...] = ()) -> None:
    """Load a state dict saved with ``torch.save`` (or a Lightning checkpoint) into ``model``.

    Keys whose shapes disagree with the model (a classifier head with another number of classes)
    and keys starting with ``skip_prefixes`` are left at their fresh initialisation.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {str(path)!r} does not exist: pass the path of a local .pth/.pt/.ckpt file "
            "(weights are never downloaded)."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    kept = {
        k: v for k, v in state.items()
        if k in own and own[k].shape == v.shape and not k.startswith(skip_prefixes)
    }
    if not kept:
        raise ValueError(
            f"no tensor in {str(path)!r} matches the model: is it the weights of the right architecture?"
        )
    missing, _ = model.load_state_dict(kept, strict=False)
    if strict and missing:
        raise ValueError(f"weights file {str(path)!r} lacks {len(missing)} tensors, e.g. {missing[:3]}")
