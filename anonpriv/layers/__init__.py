"""Layers: the torch-only building blocks the models and the token-pruning method are made of.

``anonpriv.models`` holds whole models, built by registered name; the pieces they share live here,
one concern a module:

* :mod:`~anonpriv.layers.vit`: the pre-norm ViT block and its parts (timm's parameter names);
* :mod:`~anonpriv.layers.tubelets`: tubelet ids, the ops that cut a clip into tubelets or pick
  some of them, and the tubelet embedding;
* :mod:`~anonpriv.layers.gradient`: gradient scaling / reversal and DANN's ramp;
* :mod:`~anonpriv.layers.init`: the ViT initialisation (timm's draws for a seed);
* :mod:`~anonpriv.layers.normalize`: per-channel input normalisation.

Every module imports torch and nothing else heavy: building a tubelet ViT, or anonymizing with
token pruning, imports no timm.
"""

from anonpriv.layers.gradient import dann_ramp, scale_gradient
from anonpriv.layers.init import init_vit_weights, trunc_normal_
from anonpriv.layers.normalize import Normalize
from anonpriv.layers.tubelets import (
    TubeletEmbedding,
    gather_rows,
    gather_tubelets,
    kept_tubelet_ids,
    patchify_tubelets,
    tubelet_grid,
    tubelet_view,
)
from anonpriv.layers.vit import DropPath, FeedForward, SelfAttention, ViTBlock

__all__ = [
    "DropPath",
    "FeedForward",
    "Normalize",
    "SelfAttention",
    "TubeletEmbedding",
    "ViTBlock",
    "dann_ramp",
    "gather_rows",
    "gather_tubelets",
    "init_vit_weights",
    "kept_tubelet_ids",
    "patchify_tubelets",
    "scale_gradient",
    "trunc_normal_",
    "tubelet_grid",
    "tubelet_view",
]
