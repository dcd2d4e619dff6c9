"""The token-pruning anonymizer ``f_A`` with torch alone: the dual-CLS ViT plus pixel masking.

:class:`TokenPruningAnonymizer` is the anonymizer of
:class:`~anonpriv.methods.token_pruning.TokenPruningMethod`, and :func:`token_pruning_anonymizer`
builds it from the method's own arguments (the ViT, a pretrained start, the input scale); the
method builds its anonymizer through it. Neither imports the methods' base class nor Lightning, so
a trained checkpoint's anonymizer is rebuilt without them
(:func:`anonpriv.methods.registry.load_checkpoint_anonymizer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from anonpriv.layers.tubelets import DEFAULT_MEAN, DEFAULT_STD
from anonpriv.methods.token_pruning.model import DualCLSTubeletViT, PruningOutput
from anonpriv.methods.token_pruning.pretrained_file import load_pretrained, read_pretrained

#: The clip shape a token-pruning model is built for when none is given.
DEFAULT_CLIP_SHAPE = (16, 64, 64)


def upsample_tubelet_mask(mask: torch.Tensor, tubelet: tuple[int, int, int]) -> torch.Tensor:
    """(B, t, h, w) -> (B, 1, t*T_t, h*p, w*p) by nearest repetition (each cell is a tube).

    One broadcast and one copy (an expanded view reshaped), not three ``repeat_interleave`` passes.
    """
    t, ph, pw = tubelet
    B, gt, gh, gw = mask.shape
    tubes = mask[:, None, :, None, :, None, :, None].expand(B, 1, gt, t, gh, ph, gw, pw)
    return tubes.reshape(B, 1, gt * t, gh * ph, gw * pw)


class TokenPruningAnonymizer(nn.Module):
    """``f_A``: the dual-CLS ViT plus pixel masking. Returns a dict (see :meth:`forward`)."""

    #: What :func:`token_pruning_anonymizer` loaded into the ViT (``None``: a fresh start).
    pretrained_report: dict | None = None

    def __init__(self, vit: DualCLSTubeletViT, straight_through: bool = True, temperature: float = 1.0) -> None:
        super().__init__()
        self.vit = vit
        self.straight_through = straight_through
        self.temperature = temperature

    @property
    def clip_shape(self) -> list[int]:
        """``[T, H, W]`` of the clips the ViT was built for (its position embeddings fix it)."""
        return list(self.vit.embed.clip_shape)

    def forward(self, video: torch.Tensor, keep_ratio: float | None = None) -> dict[str, torch.Tensor]:
        out: PruningOutput = self.vit(video, keep_ratio)
        hard = out.tubelet_mask.to(video.dtype)
        mask = hard
        if self.straight_through and self.training:
            s = out.score
            z = (s - s.mean(dim=(1, 2, 3), keepdim=True)) / s.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
            soft = torch.sigmoid(z / self.temperature)
            mask = hard + soft - soft.detach()
        pixel_mask = upsample_tubelet_mask(mask, self.vit.embed.tubelet)
        return {
            "video": video * pixel_mask,
            "mask": pixel_mask.detach(),
            "tubelet_mask": out.tubelet_mask,
            "tokens": out.tokens,
            "token_ids": out.token_ids,
            "act_cls_logits": out.action_logits,
            "priv_cls_logits": out.privacy_logits,
            "stage_act_cls_logits": out.stage_action_logits,
            "stage_priv_cls_logits": out.stage_privacy_logits,
            "act_attention": out.act_attention.detach(),
            "priv_attention": out.priv_attention.detach(),
            "score": out.score.detach(),
        }


def token_pruning_anonymizer(
    tubelet: Sequence[int] = (4, 8, 8),
    embed_dim: int = 64,
    depth: int = 4,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    prune_blocks: Sequence[int] = (3,),
    keep_ratio: float = 0.5,
    lambda_priv: float = 1.0,
    straight_through: bool = True,
    mask_temperature: float = 1.0,
    drop_path_rate: float = 0.0,
    drop_rate: float = 0.0,
    attn_drop_rate: float = 0.0,
    stem: str = "linear",
    stem_width: int = 16,
    motion_channels: bool | str = "magnitude",
    pretrained_file: str | None = None,
    pretrained_model: str = "vit_base_patch16_224",
    pretrained: bool | str = False,
    input_mean: Sequence[float] | None = None,
    input_std: Sequence[float] | None = None,
    clip_shape: Sequence[int] | None = None,
    num_actions: int = 2,
    num_privacy: int = 1,
    action_names: Sequence[str] | None = None,
    privacy_names: Sequence[str] | None = None,
) -> TokenPruningAnonymizer:
    """The anonymizer of a :class:`~anonpriv.methods.token_pruning.TokenPruningMethod` built with
    these arguments (the method's own; see its docstring): the ViT on ``clip_shape`` (default
    16 x 64 x 64), started from ``pretrained_file`` or ``pretrained`` 2D weights when given, with the
    input normalisation ``input_mean`` / ``input_std`` (else the loaded weights' own, else the tiny
    default). What was loaded is in the result's ``pretrained_report`` (``None``: a fresh start)."""
    shape = list(clip_shape) if clip_shape is not None else list(DEFAULT_CLIP_SHAPE)
    vit = DualCLSTubeletViT(
        clip_shape=tuple(shape), num_actions=num_actions, num_privacy=num_privacy, tubelet=tuple(tubelet),
        embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
        prune_blocks=tuple(prune_blocks), keep_ratio=keep_ratio, lambda_priv=lambda_priv,
        drop_path_rate=drop_path_rate, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
        stem=stem, stem_width=stem_width, motion_channels=motion_channels,
    )
    if pretrained_file and pretrained:
        raise ValueError(f"both pretrained_file={pretrained_file!r} and pretrained={pretrained!r} are set: keep "
                         "one (a local file, or 2D ViT weights downloaded by name).")
    report = None
    ours = read_pretrained(pretrained_file) if pretrained_file else None
    if ours is not None:  # our own dual-CLS backbone from `anonpriv pretrain` (the shipped `anonpriv:NAME` files)
        report = load_pretrained(vit, ours, action_names, privacy_names)
    elif pretrained_file or pretrained:
        report = vit.load_pretrained_vit(pretrained_file or None, pretrained_model, pretrained=pretrained)
    loaded_scale = report is not None and "mean" in report  # 2D timm weights: their pretrained_cfg's
    for name, value in (("input_mean", input_mean), ("input_std", input_std)):
        if value is not None and len(value) != vit.embed.mean.numel():
            raise ValueError(f"{name}={list(value)} needs one value per input channel ({vit.embed.mean.numel()}).")
    if input_std is not None and min(input_std) <= 0:
        raise ValueError(f"input_std={list(input_std)} must be positive.")
    if input_mean is not None or input_std is not None:
        vit.set_input_normalization(
            input_mean if input_mean is not None else (report["mean"] if loaded_scale else DEFAULT_MEAN),
            input_std if input_std is not None else (report["std"] if loaded_scale else DEFAULT_STD),
        )
    anonymizer = TokenPruningAnonymizer(vit, straight_through=straight_through, temperature=mask_temperature)
    anonymizer.pretrained_report = report
    return anonymizer
