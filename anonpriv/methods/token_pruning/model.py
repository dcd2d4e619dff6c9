"""The dual-CLS tubelet ViT that scores, prunes and fuses tubelets (Aslam et al., CVPR 2026).

Tokens ``[act_cls, priv_cls, tubelet_1 ... tubelet_N]`` go through ViT blocks. In the pruning
blocks, after attention, every tubelet gets ``s_i = a_act_i - lambda_priv * a_priv_i`` from the two
CLS rows of the attention; the top ``ceil(keep_ratio * M)`` of the M patch tokens present are kept
and the rest are fused into one token ``sum_j a_act_j x_j``. The tubelets that survive the last
stage form the kept mask; each mask cell spans a ``t``-frame tube (temporal consistency).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from anonpriv.layers import TubeletEmbedding, ViTBlock, init_vit_weights, scale_gradient, trunc_normal_
from anonpriv.methods.token_pruning.scoring import (
    NUM_CLS,
    check_keep_ratio,
    cls_to_patch_attention,
    keep_count,
    kept_tubelet_mask,
    prune_and_fuse,
    utility_privacy_score,
)


@dataclasses.dataclass
class PruningOutput:
    """What one forward pass of :class:`DualCLSTubeletViT` produces.

    ``tubelet_mask`` (B, t, h, w) bool: tubelets kept after the last stage. ``tokens`` (B, M, D):
    the final patch tokens (the kept ones, then the fused one) and ``token_ids`` (B, M) their
    tubelet ids, ``-1`` for fused tokens.
    ``act_attention`` / ``priv_attention`` / ``score`` (B, t, h, w): the first stage's maps, where
    every tubelet is still present. ``stage_action_logits`` / ``stage_privacy_logits``: the heads
    applied to the CLS tokens right after each pruning stage's attention (for stage supervision).
    """

    action_logits: torch.Tensor
    privacy_logits: torch.Tensor
    tubelet_mask: torch.Tensor
    tokens: torch.Tensor
    token_ids: torch.Tensor
    act_attention: torch.Tensor
    priv_attention: torch.Tensor
    score: torch.Tensor
    stage_action_logits: list[torch.Tensor] = dataclasses.field(default_factory=list)
    stage_privacy_logits: list[torch.Tensor] = dataclasses.field(default_factory=list)


class DualCLSTubeletViT(nn.Module):
    """Tubelet ViT with an action CLS and a privacy CLS token, pruning inside chosen blocks.

    Args:
        clip_shape: (T, H, W) of the input clips.
        num_actions, num_privacy: sizes of the two CLS heads.
        tubelet: (t, p, p) tubelet size.
        embed_dim, depth, num_heads, mlp_ratio: ViT shape (ViT-B: 768, 12, 12, 4).
        prune_blocks: 1-based indices of the blocks that prune (the paper: 3, 6, 9 of 12; docs/paper.md).
        keep_ratio: fraction of the patch tokens present that each pruning stage keeps.
        lambda_priv: weight of the privacy attention in the score.
        drop_path_rate: stochastic depth, rising linearly over the blocks from 0 to this rate.
        drop_rate: dropout where timm's classic ViT applies ``drop_rate``: on the tokens after the
            position embeddings, on each attention's output projection and inside each MLP.
        attn_drop_rate: dropout on the attention probabilities. The pruning score is computed from
            the attention *before* this dropout (the authors' code takes it after), so attention
            dropout adds no noise to which tubelets are kept.
            All three act in training only; the authors' code sets ``drop_path_rate`` 0.2,
            ``drop_rate`` 0.2 and ``attn_drop_rate`` 0.1 (docs/paper.md#regularisation).
        motion_channels: add frame differences to the tubelet input: ``"signed"`` (``True``) or
            ``"magnitude"`` (see :class:`TubeletEmbedding`).
        stem, stem_width: ``linear`` tubelet projection (the paper's; needed for 2D pretrained
            weights) or a ``conv`` hybrid stem (the tiny from-scratch default).
    """

    def __init__(
        self,
        clip_shape: tuple[int, int, int],
        num_actions: int,
        num_privacy: int,
        tubelet: tuple[int, int, int] = (2, 4, 4),
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        prune_blocks: tuple[int, ...] = (2, 3),
        keep_ratio: float = 0.7,
        lambda_priv: float = 0.5,
        drop_path_rate: float = 0.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        motion_channels: bool | str = True,
        stem: str = "conv",
        stem_width: int = 16,
    ) -> None:
        super().__init__()
        self.stem_name = stem
        self.stem_width = stem_width
        check_keep_ratio(keep_ratio)
        for name, rate in (("drop_path_rate", drop_path_rate), ("drop_rate", drop_rate),
                           ("attn_drop_rate", attn_drop_rate)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name}={rate!r} must be in [0, 1): it is a probability of dropping.")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be a multiple of num_heads={num_heads}.")
        bad = [b for b in prune_blocks if not 1 <= b <= depth]
        if bad:
            raise ValueError(f"prune_blocks {bad} are outside 1..depth={depth}: name blocks by 1-based index.")
        self.embed = TubeletEmbedding(tuple(clip_shape), tuple(tubelet), embed_dim, motion_channels=motion_channels,
                                      stem=stem, stem_width=stem_width)
        self.act_cls = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.priv_cls = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.embed.num_tubelets, embed_dim))
        # No parameters, so checkpoints are unchanged; Identity at 0 leaves the random stream as it was.
        self.pos_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()  # cpu: also under torch.device("meta")
        self.blocks = nn.ModuleList(
            ViTBlock(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=r,
                     proj_drop=drop_rate, attn_drop=attn_drop_rate)
            for r in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.act_head = nn.Linear(embed_dim, num_actions)
        self.priv_head = nn.Linear(embed_dim, num_privacy)
        self.prune_blocks = tuple(sorted(set(prune_blocks)))
        self.keep_ratio = keep_ratio
        self.lambda_priv = lambda_priv
        # Factor on the gradient from the privacy head into the backbone: 1 trains the privacy CLS as
        # a privacy detector, -w is a gradient-reversal layer of weight w (set by the method).
        self.privacy_gradient_scale = 1.0
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.act_cls, std=0.02)
        trunc_normal_(self.priv_cls, std=0.02)
        self.apply(init_vit_weights)

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.embed.grid

    @property
    def num_tubelets(self) -> int:
        return self.embed.num_tubelets

    def kept_count_schedule(self, keep_ratio: float | None = None) -> list[int]:
        """Patch tokens kept at each pruning stage (the fused token comes on top of each)."""
        ratio = self.keep_ratio if keep_ratio is None else keep_ratio
        present, counts = self.num_tubelets, []
        for _ in self.prune_blocks:
            kept = keep_count(present, ratio)
            counts.append(kept)
            present = kept + (1 if kept < present else 0)
        return counts

    def forward(self, video: torch.Tensor, keep_ratio: float | None = None) -> PruningOutput:
        ratio = self.keep_ratio if keep_ratio is None else keep_ratio
        check_keep_ratio(ratio)
        B = video.shape[0]
        x = self.embed(video) + self.pos_embed
        x = torch.cat([self.act_cls.expand(B, -1, -1), self.priv_cls.expand(B, -1, -1), x], dim=1)
        x = self.pos_drop(x)
        ids = torch.arange(self.num_tubelets, device=video.device).expand(B, -1)
        first_maps = None
        stage_act, stage_priv = [], []
        for index, block in enumerate(self.blocks, start=1):
            if index not in self.prune_blocks:
                x = block(x)
                continue
            x, cls_rows = block.attention_half(x, NUM_CLS)
            stage_cls = self.norm(x[:, :NUM_CLS])
            stage_act.append(self.act_head(stage_cls[:, 0]))
            stage_priv.append(self.priv_head(scale_gradient(stage_cls[:, 1], self.privacy_gradient_scale)))
            a_act, a_priv = cls_to_patch_attention(cls_rows)
            score = utility_privacy_score(a_act, a_priv, self.lambda_priv)
            if first_maps is None:
                first_maps = self._tubelet_maps(ids, a_act, a_priv, score)
            x, ids, _ = prune_and_fuse(x, ids, score, a_act, keep_count(ids.shape[1], ratio))
            x = block.mlp_half(x)
        x = self.norm(x)
        if first_maps is None:  # no pruning block: maps from a last look at the final tokens
            first_maps = (torch.zeros(B, *self.grid, device=video.device),) * 3
        act_cls, priv_cls = x[:, 0], x[:, 1]
        return PruningOutput(
            action_logits=self.act_head(act_cls),
            privacy_logits=self.priv_head(scale_gradient(priv_cls, self.privacy_gradient_scale)),
            tubelet_mask=kept_tubelet_mask(ids, self.num_tubelets).view(B, *self.grid),
            tokens=x[:, NUM_CLS:],
            token_ids=ids,
            act_attention=first_maps[0],
            priv_attention=first_maps[1],
            score=first_maps[2],
            stage_action_logits=stage_act,
            stage_privacy_logits=stage_priv,
        )

    def _tubelet_maps(self, ids, a_act, a_priv, score):
        """Scatter per-token values back onto the (t, h, w) tubelet grid (fused token dropped)."""
        B = ids.shape[0]
        valid = ids >= 0
        safe = torch.where(valid, ids, 0)
        maps = []
        for values in (a_act, a_priv, score):
            grid = torch.zeros(B, self.num_tubelets, device=values.device, dtype=values.dtype)
            grid.scatter_(1, safe, torch.where(valid, values, torch.zeros_like(values)))
            maps.append(grid.view(B, *self.grid))
        return maps

    # -- pretrained weights --------------------------------------------------------------------
    def set_input_normalization(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """The per-channel ``(x - mean) / std`` the tubelet embedding applies to the [0, 1] clip."""
        self.embed.mean.copy_(torch.tensor(mean, dtype=self.embed.mean.dtype).view_as(self.embed.mean))
        self.embed.std.copy_(torch.tensor(std, dtype=self.embed.std.dtype).view_as(self.embed.std))

    def load_pretrained_vit(self, weights_file: str | Path | None = None, timm_model: str = "vit_base_patch16_224",
                            pretrained: bool | str = False) -> dict:
        """Initialise from 2D ViT weights through timm: a local file, or weights downloaded by name.

        ``weights_file``: a local checkpoint of ``timm_model`` (never downloaded), read by timm through
        ``pretrained_cfg_overlay=dict(file=...)``. ``pretrained``: ``True`` downloads ``timm_model``'s
        weights through timm's own download and cache, a string those of that timm name (e.g.
        ``vit_base_patch16_224.augreg_in21k_ft_in1k``, or ``hf-hub:org/name`` from the Hugging Face
        Hub). timm builds the 2D model with this model's width, depth and heads; then the 2D patch
        kernel is repeated over the ``t`` frames of a tubelet and divided by ``t`` (motion-channel
        kernels start at zero), the spatial position embeddings are resampled to the tubelet grid and
        repeated over its time slots, and both CLS tokens start from the pretrained CLS token plus its
        position embedding. The two heads stay fresh.

        The input normalisation becomes the one the weights were trained with (``mean`` / ``std`` of
        their ``pretrained_cfg``: 0.5 / 0.5 for the AugReg ViTs, ImageNet's for DeiT), so the loaded
        model sees clips at its pretraining scale.

        Returns a small report of what was loaded (with the ``mean`` / ``std`` now in use).
        """
        from timm.layers import resample_abs_pos_embed

        from anonpriv.models.weights import create_timm_model, timm_normalization

        if weights_file is None and not pretrained:
            raise ValueError("load_pretrained_vit needs a weights_file or pretrained (true or a timm name).")
        if weights_file is not None and not Path(weights_file).is_file():
            raise FileNotFoundError(
                f"pretrained ViT weights {str(weights_file)!r} do not exist: pass a local .pth/.safetensors/.npz "
                "file of a timm ViT (a file is never downloaded; pretrained: true downloads by name)."
            )
        t, ph, pw = self.embed.tubelet
        if ph != pw:
            raise ValueError(f"loading 2D ViT weights needs square tubelets (t, p, p), got {self.embed.tubelet}")
        if not isinstance(self.embed.stem, nn.Identity):
            raise ValueError("2D ViT weights load into the paper's linear tubelet embedding: build with stem='linear'.")
        _, gh, gw = self.grid
        dim = self.pos_embed.shape[-1]
        vit = create_timm_model(
            timm_model, pretrained=pretrained, weights_file=weights_file, file_option="pretrained_file",
            num_classes=0, img_size=(gh * ph, gw * pw), patch_size=ph, embed_dim=dim, depth=len(self.blocks),
            num_heads=self.blocks[0].attn.num_heads, mlp_ratio=self.blocks[0].mlp.fc1.out_features / dim,
            qkv_bias=True,
        )
        with torch.no_grad():
            kernel = vit.patch_embed.proj.weight  # (D, C, p, p)
            weight = self.embed.proj.weight  # (D, C or 2C with motion channels, t, p, p)
            weight.zero_()
            weight[:, : kernel.shape[1]] = kernel.unsqueeze(2).repeat(1, 1, t, 1, 1) / t
            self.embed.proj.bias.copy_(vit.patch_embed.proj.bias)
            prefix = getattr(vit, "num_prefix_tokens", 1)
            spatial = vit.pos_embed[:, prefix:]
            src = int(round(spatial.shape[1] ** 0.5))
            spatial = resample_abs_pos_embed(spatial, new_size=(gh, gw), old_size=(src, src), num_prefix_tokens=0)
            self.pos_embed.copy_(spatial.repeat(1, self.grid[0], 1))
            cls = vit.cls_token + (vit.pos_embed[:, :1] if prefix else 0)
            self.act_cls.copy_(cls)
            self.priv_cls.copy_(cls)
            self.blocks.load_state_dict(vit.blocks.state_dict(), strict=True)
            self.norm.load_state_dict(vit.norm.state_dict())
            mean, std = timm_normalization(vit)
            self.set_input_normalization(mean, std)
        source = str(weights_file) if weights_file is not None else (pretrained if isinstance(pretrained, str) else timm_model)
        return {"file": str(weights_file) if weights_file is not None else None, "timm_model": timm_model,
                "source": source, "blocks": len(self.blocks), "mean": list(mean), "std": list(std)}
