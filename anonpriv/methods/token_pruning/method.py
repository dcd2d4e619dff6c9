"""The headline method as a LightningModule on the common base.

``f_A`` is :class:`~anonpriv.methods.token_pruning.model.DualCLSTubeletViT` followed by masking
(:class:`~anonpriv.methods.token_pruning.anonymizer.TokenPruningAnonymizer`, which needs torch alone):
the clip is multiplied by the kept-tubelet mask (nearest upsampling, pruned tubelets black). The
utility and privacy models (``f_T`` / ``f_B``) see that masked clip; the kept tokens themselves are
also returned (``tokens``, ``token_ids``) for a downstream ViT that consumes the token set directly.

Objective of the anonymizer phase (all weights are config values):

* ``CE(f_T(x_anon), y)`` (trains ``f_T``; reaches the ViT only through the straight-through mask),
* ``act_cls_weight * CE(act_head(act_cls), y)``,
* ``priv_cls_weight * BCE(priv_head(GRL(priv_cls)), privacy)``, the gradient reversal weight
  ramping DANN-style with training progress up to ``reversal_weight``,
* the base's adversarial term through the frozen privacy model on ``x_anon`` (``adversarial_loss``).

Top-k is not differentiable, so the score is shaped through the CLS attention. With
``straight_through`` the hard mask passes the downstream gradient to the scores as if it were
``sigmoid(standardised score / temperature)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from anonpriv.layers import dann_ramp
from anonpriv.methods.base import AnonymizationMethod, LossTerms
from anonpriv.methods.token_pruning.anonymizer import token_pruning_anonymizer
from anonpriv.methods.token_pruning.model import DualCLSTubeletViT
from anonpriv.methods.token_pruning.scoring import check_keep_ratio
from anonpriv.methods.token_pruning.visualize import AttentionMapLogger


class TokenPruningMethod(AnonymizationMethod):
    """Temporally consistent video anonymization by dual-CLS tubelet pruning.

    Args:
        tubelet: (t, p, p) tubelet size; must divide ``clip_shape``.
        embed_dim, depth, num_heads, mlp_ratio: ViT shape (tiny CPU default; ViT-B is 768/12/12).
        prune_blocks: 1-based blocks that prune.
        keep_ratio: fraction of patch tokens each pruning stage keeps at the end of annealing
            and at evaluation.
        keep_ratio_start: keep ratio at the start of training (1.0 keeps everything).
        anneal: ``[start, end]`` fractions of training between which the keep ratio goes linearly
            from ``keep_ratio_start`` to ``keep_ratio`` (the downstream models first learn on
            nearly raw clips, so their gradients carry information when pruning starts).
        lambda_priv: weight of the privacy attention in the score (above 1 removes more privacy).
        act_cls_weight, priv_cls_weight: weights of the two CLS heads' losses.
        stage_supervision: weight of the same two losses applied to the CLS tokens right after
            each pruning stage's attention (deep supervision; 0 is the paper's objective). It
            teaches the attention that scores the tubelets to find action and private evidence
            where it is computed, which a small ViT trained from scratch does not learn otherwise.
        privacy_cls_gradient: how the privacy-CLS loss reaches the backbone. ``detector`` (default):
            plainly, so the privacy CLS learns to find private evidence and ``a_priv`` marks it.
            ``reversal``: through a gradient-reversal layer whose weight ramps DANN-style up to
            ``reversal_weight`` (the public code's choice; it pushes ``a_priv`` away from private
            evidence, see the measurements in docs/methods.md).
        reversal_weight: final weight of the gradient reversal in ``reversal`` mode.
        straight_through: let the downstream losses reach the score through the hard mask.
        mask_temperature: temperature of the straight-through surrogate.
        drop_path_rate, drop_rate, attn_drop_rate: the ViT's stochastic depth, dropout and attention
            dropout, in training only (see :class:`DualCLSTubeletViT`); 0 in the tiny default, 0.2 /
            0.2 / 0.1 in the paper's config (the authors' code; the paper is silent).
        stem, stem_width, motion_channels: the tubelet embedding (see
            :class:`~anonpriv.layers.tubelets.TubeletEmbedding`); pretrained 2D
            weights need ``stem="linear"``.
        attention_map_clips: how many fixed validation clips :class:`AttentionMapLogger` draws in
            TensorBoard after each validation epoch (0: none).
        pretrained_file: weights to start from: a dual-CLS backbone written by ``anonpriv pretrain``
            (``anonpriv:NAME`` for a file shipped in ``anonpriv/weights``; its shape must match, its
            CLS heads load when the label names match), or local 2D ViT weights (see
            :meth:`DualCLSTubeletViT.load_pretrained_vit`), with ``pretrained_model`` their timm name
            (a plain timm name, its tag naming the weights the file holds; a ``hf-hub:`` name is
            refused with a local file, as timm would fetch from the Hub and ignore the file).
            Never downloaded.
        pretrained: 2D ViT weights by name through timm's own download and cache: ``true`` for
            ``pretrained_model``'s, or a timm name (``vit_base_patch16_224.augreg_in21k_ft_in1k``;
            ``hf-hub:org/name`` fetches config and weights from the Hugging Face Hub). ``false`` (the
            default) downloads nothing. A failed download is a one-line error naming the fix (a
            local ``pretrained_file``). Once loaded, the hyperparameters a checkpoint stores say
            ``pretrained: false`` (its weights replace the start), so the checkpoint loads offline.
        input_mean, input_std: the per-channel normalisation of the [0, 1] clip. ``null``: the
            loaded 2D weights' own (their timm ``pretrained_cfg``), else 0.5 / 0.25 (the tiny
            default). The values in use are recorded in the hyperparameters, so a checkpoint is
            rebuilt at the same scale.
        clip_shape: linked from the DataModule; the ViT's position embeddings are sized from it.
    """

    def __init__(
        self,
        tubelet: list[int] = (4, 8, 8),
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        prune_blocks: list[int] = (3,),
        keep_ratio: float = 0.5,
        keep_ratio_start: float = 1.0,
        anneal: list[float] = (0.3, 0.6),
        lambda_priv: float = 1.0,
        act_cls_weight: float = 1.0,
        priv_cls_weight: float = 1.0,
        stage_supervision: float = 1.0,
        privacy_cls_gradient: Literal["detector", "reversal"] = "detector",
        reversal_weight: float = 1.0,
        straight_through: bool = True,
        mask_temperature: float = 1.0,
        drop_path_rate: float = 0.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        stem: Literal["conv", "linear"] = "linear",
        stem_width: int = 16,
        motion_channels: bool | str = "magnitude",
        attention_map_clips: int = 4,
        pretrained_file: str | None = None,
        pretrained_model: str = "vit_base_patch16_224",
        pretrained: bool | str = False,
        input_mean: list[float] | None = None,
        input_std: list[float] | None = None,
        clip_shape: list[int] | None = None,
        num_actions: int = 2,
        num_privacy: int = 1,
        **kwargs,
    ) -> None:
        check_keep_ratio(keep_ratio)
        check_keep_ratio(keep_ratio_start)
        kwargs.setdefault("adversarial_loss", "entropy")
        kwargs.setdefault("adversarial_weight", 2.0)
        if len(anneal) != 2 or not 0.0 <= anneal[0] <= anneal[1] <= 1.0:
            raise ValueError(f"anneal={list(anneal)} must be [start, end] with 0 <= start <= end <= 1.")
        anonymizer = token_pruning_anonymizer(
            tubelet=tubelet, embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
            prune_blocks=prune_blocks, keep_ratio=keep_ratio, lambda_priv=lambda_priv,
            straight_through=straight_through, mask_temperature=mask_temperature, drop_path_rate=drop_path_rate,
            drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            stem=stem, stem_width=stem_width, motion_channels=motion_channels, pretrained_file=pretrained_file,
            pretrained_model=pretrained_model, pretrained=pretrained, input_mean=input_mean, input_std=input_std,
            clip_shape=clip_shape, num_actions=num_actions, num_privacy=num_privacy,
            action_names=kwargs.get("action_names"), privacy_names=kwargs.get("privacy_names"),
        )
        report = anonymizer.pretrained_report
        loaded_scale = report is not None and "mean" in report  # 2D timm weights: their pretrained_cfg's
        super().__init__(anonymizer=anonymizer, clip_shape=anonymizer.clip_shape, num_actions=num_actions,
                         num_privacy=num_privacy, **kwargs)
        self.pretrained_report: dict | None = report
        if pretrained and report is not None:
            # The 2D start is in the weights now; a checkpoint's weights replace it. Lightning rebuilds a
            # model from its checkpoint's hyperparameters (`anonpriv test --ckpt_path FILE` re-applies
            # them over the command line), so record that nothing is to be fetched again: a checkpoint
            # then loads offline. The run's config.yaml and the logger keep the value given.
            self.hparams["pretrained"] = False
        if loaded_scale:
            # Record the scale in use, so a checkpoint rebuilt without its weights source keeps it.
            self.hparams["input_mean"] = [float(v) for v in (input_mean if input_mean is not None else report["mean"])]
            self.hparams["input_std"] = [float(v) for v in (input_std if input_std is not None else report["std"])]

    @property
    def vit(self) -> DualCLSTubeletViT:
        return self.anonymizer.vit

    def current_keep_ratio(self) -> float:
        """The annealed keep ratio during training; the target ``keep_ratio`` otherwise."""
        hp = self.hparams
        if not self.training:
            return hp.keep_ratio
        start, end = hp.anneal
        p = self.training_progress
        progress = 1.0 if p >= end else 0.0 if p <= start else (p - start) / (end - start)
        return hp.keep_ratio_start + (hp.keep_ratio - hp.keep_ratio_start) * progress

    def anonymizer_outputs(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.hparams.privacy_cls_gradient == "reversal":
            self.vit.privacy_gradient_scale = -self.hparams.reversal_weight * dann_ramp(self.training_progress)
        else:
            self.vit.privacy_gradient_scale = 1.0
        return self.anonymizer(video, self.current_keep_ratio())

    def extra_anonymizer_losses(self, batch: Mapping, out: dict[str, torch.Tensor]) -> LossTerms:
        hp = self.hparams
        terms: LossTerms = {}
        if hp.act_cls_weight > 0:
            terms["act_cls"] = hp.act_cls_weight * F.cross_entropy(out["act_cls_logits"], batch["action"])
        if hp.priv_cls_weight > 0:
            terms["priv_cls"] = hp.priv_cls_weight * F.binary_cross_entropy_with_logits(
                out["priv_cls_logits"], batch["privacy"].float()
            )
        stages = list(zip(out["stage_act_cls_logits"], out["stage_priv_cls_logits"]))
        if hp.stage_supervision > 0 and stages:
            weight = hp.stage_supervision / len(stages)
            if hp.act_cls_weight > 0:
                terms["stage_act_cls"] = weight * hp.act_cls_weight * sum(
                    F.cross_entropy(a, batch["action"]) for a, _ in stages)
            if hp.priv_cls_weight > 0:
                terms["stage_priv_cls"] = weight * hp.priv_cls_weight * sum(
                    F.binary_cross_entropy_with_logits(p, batch["privacy"].float()) for _, p in stages)
        return terms

    def configure_callbacks(self) -> list[pl.Callback]:
        clips = self.hparams.attention_map_clips
        return [AttentionMapLogger(num_clips=clips)] if clips > 0 else []

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        super().training_step(batch, batch_idx)
        self.log("train/keep_ratio", self.current_keep_ratio(), on_step=True, on_epoch=False)

    def _evaluation_step(self, batch: Mapping, stage: str) -> dict[str, torch.Tensor]:
        outputs = super()._evaluation_step(batch, stage)
        self.log(f"{stage}/kept_fraction", self._last_kept_fraction, batch_size=len(batch["action"]))
        return outputs

    def evaluation_outputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        out = self.anonymizer_outputs(batch["video"])
        self._last_kept_fraction = float(out["tubelet_mask"].float().mean())
        anonymized = out["video"]
        return {
            "action_logits": self.utility(anonymized),
            "privacy_logits": self.privacy_model(anonymized),
            "act_cls_logits": out["act_cls_logits"],
            "priv_cls_logits": out["priv_cls_logits"],
        }

    _last_kept_fraction = float("nan")
