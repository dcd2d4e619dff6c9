"""A tubelet ViT action model that can classify a clip from a subset of its tubelets.

Token pruning (:mod:`anonpriv.methods.token_pruning`) decides which tubelets of a clip survive
anonymization. A 3D CNN downstream still has to process the whole masked clip; a ViT can instead
be fed only the surviving tubelets, so its cost shrinks with the keep ratio (attention is
quadratic and the MLPs linear in the token count). :class:`TubeletViT` does both:

* :meth:`TubeletViT.forward` classifies a full clip (B, C, T, H, W) in [0, 1], like every other
  utility model, so any method's config can select it (``utility_model: tubelet_vit_tiny``);
* :meth:`TubeletViT.forward_tubelets` classifies a clip from the tubelets named by ``ids``
  (B, k): only those tubelets' pixels are embedded, each gets its own position embedding, and the
  transformer runs on ``1 + k`` tokens instead of ``1 + N``. With every id it equals the full
  forward.

Tubelet ids are the same everywhere in anonpriv (:mod:`anonpriv.layers.tubelets`): non-overlapping
``t x p x q`` tubelets numbered in (time, row, column) order. An anonymizer whose tubelet grid equals
this model's grid hands its ids over directly: e.g. token pruning on 16 x 64 x 64 clips with
4 x 8 x 8 tubelets and this model on the full 16 x 112 x 112 clip with 4 x 14 x 14 tubelets both
have a 4 x 8 x 8 grid. :func:`~anonpriv.layers.tubelets.kept_tubelet_ids` turns an anonymizer's
``tubelet_mask`` into such ids. The pruned path copies only the kept tubelets' pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.layers import (
    ViTBlock,
    gather_rows,
    gather_tubelets,
    init_vit_weights,
    patchify_tubelets,
    trunc_normal_,
    tubelet_grid,
)
from anonpriv.layers.tubelets import DEFAULT_MEAN, DEFAULT_STD, Shape3
from anonpriv.models.registry import register_utility_model


class TubeletViT(nn.Module):
    """A ViT over non-overlapping tubelets with a CLS token (:class:`~anonpriv.layers.vit.ViTBlock` blocks).

    Args:
        num_classes: action classes.
        clip_shape: (T, H, W) the position embeddings are sized for. Clips of another size (still
            divisible by the tubelet) get the embeddings resampled trilinearly to their grid.
        tubelet: (t, p, q) tubelet size.
        embed_dim, depth, num_heads, mlp_ratio: transformer shape.
        in_channels: input channels.
        drop_rate: dropout before the head.
        drop_path_rate: stochastic depth, increasing linearly over the blocks.
        mean, std: per-channel normalisation of the [0, 1] input.
    """

    def __init__(
        self,
        num_classes: int,
        clip_shape: Shape3 = (16, 32, 32),
        tubelet: Shape3 = (2, 4, 4),
        embed_dim: int = 192,
        depth: int = 4,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        in_channels: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        mean: tuple[float, ...] = DEFAULT_MEAN,
        std: tuple[float, ...] = DEFAULT_STD,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be a multiple of num_heads={num_heads}.")
        self.clip_shape = tuple(int(s) for s in clip_shape)
        self.tubelet = tuple(int(s) for s in tubelet)
        self.grid = tubelet_grid(self.clip_shape, self.tubelet)
        # (C, 1): normalises tubelet rows viewed as (..., C, t * p * q)
        self.register_buffer("mean", torch.tensor(mean[:in_channels]).float().view(-1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std[:in_channels]).float().view(-1, 1), persistent=False)
        t, p, q = self.tubelet
        self.embed = nn.Linear(in_channels * t * p * q, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tubelets, embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            ViTBlock(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=rate)
            for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.apply(init_vit_weights)

    @property
    def num_tubelets(self) -> int:
        gt, gh, gw = self.grid
        return gt * gh * gw

    def grid_of(self, video: torch.Tensor) -> Shape3:
        """The tubelet grid of a (B, C, T, H, W) clip."""
        return tubelet_grid(tuple(video.shape[2:]), self.tubelet)

    def position_embeddings(self, grid: Shape3) -> torch.Tensor:
        """(1, N, D) position embeddings for a tubelet ``grid`` (resampled if it is not the model's)."""
        if tuple(grid) == self.grid:
            return self.pos_embed
        D = self.pos_embed.shape[-1]
        volume = self.pos_embed.reshape(1, *self.grid, D).permute(0, 4, 1, 2, 3)
        volume = F.interpolate(volume, size=tuple(grid), mode="trilinear", align_corners=False)
        return volume.flatten(2).transpose(1, 2)

    def embed_tubelets(self, video: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Tubelet tokens with position embeddings: (B, N, D) for the whole clip, or (B, k, D)
        for the tubelets ``ids`` (B, k) (only those tubelets' pixels are embedded)."""
        grid = self.grid_of(video)
        positions = self.position_embeddings(grid)
        if ids is None:
            patches = patchify_tubelets(video, self.tubelet)
        else:
            self._check_ids(ids, video.shape[0], grid)
            patches = gather_tubelets(video, self.tubelet, ids)
            positions = gather_rows(positions, ids)
        return self.embed(self._normalize_rows(patches)) + positions

    def _normalize_rows(self, patches: torch.Tensor) -> torch.Tensor:
        """Per-channel normalisation of tubelet rows (B, k, C * t * p * q) (only the rows used)."""
        B, k, _ = patches.shape
        rows = patches.reshape(B, k, self.mean.shape[0], -1)
        return ((rows - self.mean) / self.std).reshape(B, k, -1)

    def forward_tubelets(self, video: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        """Action logits (B, num_classes) from the tubelets ``ids`` (B, k) of ``video`` only.

        ``ids`` index the clip's tubelet grid; ``-1`` entries are padding (rows that keep fewer
        tubelets than others) and are masked out of the attention. ``None`` uses every tubelet.
        (On meta tensors, which hold no values, ids are taken to be valid and unpadded.)
        """
        tokens = self.embed_tubelets(video, ids)
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        attn_mask = None
        if ids is not None and not ids.is_meta and bool((ids < 0).any()):
            # Additive mask over keys (B, 1, 1, 1 + k): the CLS token is always attended.
            padding = F.pad(ids < 0, (1, 0), value=False)
            attn_mask = torch.zeros(padding.shape, dtype=x.dtype, device=x.device)
            attn_mask = attn_mask.masked_fill(padding, float("-inf"))[:, None, None, :]
        for block in self.blocks:
            x = block(x, attn_mask=attn_mask)
        return self.head(self.head_drop(self.norm(x[:, 0])))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Action logits (B, num_classes) of full clips (B, C, T, H, W) in [0, 1]."""
        return self.forward_tubelets(video, None)

    def _check_ids(self, ids: torch.Tensor, batch: int, grid: Shape3) -> None:
        if ids.dim() != 2 or ids.shape[0] != batch or ids.shape[1] < 1:
            raise ValueError(f"tubelet ids must be (B={batch}, k >= 1), got {tuple(ids.shape)}.")
        count = grid[0] * grid[1] * grid[2]
        if not ids.is_meta and int(ids.max()) >= count:  # meta tensors (FLOP counting) hold no values
            raise ValueError(
                f"tubelet id {int(ids.max())} is outside this clip's {count} tubelets (grid {grid}): "
                "the anonymizer and this model must use the same tubelet grid."
            )


@register_utility_model
def tubelet_vit_tiny(
    num_classes: int,
    clip_shape: list[int] = (16, 32, 32),
    tubelet: list[int] = (2, 4, 4),
    embed_dim: int = 192,
    depth: int = 4,
    num_heads: int = 3,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
) -> nn.Module:
    """:class:`TubeletViT` with ViT-Ti width (192, 3 heads) and 4 blocks: a CPU-sized
    transformer action model that can be fed a pruned tubelet set. The defaults (2 x 4 x 4 tubelets
    on 16 x 32 x 32 clips) give an 8 x 8 x 8 grid; to take the ids of token pruning's default
    (4 x 8 x 8 tubelets on 16 x 64 x 64 clips, a 4 x 8 x 8 grid) pass
    ``clip_shape=[16, 64, 64], tubelet=[4, 8, 8]``, or for 16 x 112 x 112 clips with the same grid
    ``clip_shape=[16, 112, 112], tubelet=[4, 14, 14]``."""
    return TubeletViT(
        num_classes, clip_shape=tuple(clip_shape), tubelet=tuple(tubelet), embed_dim=embed_dim, depth=depth,
        num_heads=num_heads, drop_rate=drop_rate, drop_path_rate=drop_path_rate,
    )
