"""Pretraining the dual-CLS tubelet ViT on its two CLS tasks: the CPU analog of the paper's start.

The paper fine-tunes from an ImageNet ViT-B whose attention already finds objects; no such weights
can be downloaded here, and a tiny ViT trained from scratch inside the anonymizer's minimax does
not learn where action and private evidence are before pruning starts. So the backbone is first
trained *without pruning* on the synthetic data's action and attribute labels (cross-entropy on the
action CLS, binary cross-entropy on the privacy CLS), on fresh clips every epoch, and saved to a
small file that :class:`~anonpriv.methods.token_pruning.TokenPruningMethod` starts from
(``pretrained_file``), as the paper starts from ImageNet.

Run it with ``anonpriv pretrain --config configs/pretrain.yaml`` (``make pretrain``); the validation
metrics of the two CLS heads (action top-1, attribute cMAP) come from the shared metrics callback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from anonpriv.methods.token_pruning.model import DualCLSTubeletViT
from anonpriv.methods.token_pruning.pretrained_file import save_pretrained


class DualCLSPretraining(pl.LightningModule):
    """Trains :class:`DualCLSTubeletViT` on its two CLS losses, with no pruning, and exports it.

    Args:
        tubelet, embed_dim, depth, num_heads, mlp_ratio, stem, stem_width, motion_channels: the
            ViT's shape; must equal the token-pruning method's that will load the file.
        lr, weight_decay: AdamW (no decay on biases, norms, CLS tokens and position embeddings).
        warmup_steps: linear warm-up, then cosine decay to zero over the whole fit.
        export_file: where :meth:`on_train_end` writes the weights (``None``: nowhere).
        clip_shape, num_actions, num_privacy, action_names, privacy_names: linked from the DataModule.
    """

    def __init__(
        self,
        tubelet: list[int] = (4, 8, 8),
        embed_dim: int = 64,
        depth: int = 4,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        stem: str = "linear",
        stem_width: int = 16,
        motion_channels: bool | str = "magnitude",
        lr: float = 3e-4,
        weight_decay: float = 0.05,
        warmup_steps: int = 100,
        export_file: str | None = None,
        clip_shape: list[int] | None = None,
        num_actions: int = 2,
        num_privacy: int = 1,
        action_names: list[str] | None = None,
        privacy_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        shape = tuple(clip_shape) if clip_shape is not None else (16, 64, 64)
        self.vit = DualCLSTubeletViT(
            clip_shape=shape, num_actions=num_actions, num_privacy=num_privacy, tubelet=tuple(tubelet),
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, prune_blocks=(),
            keep_ratio=1.0, stem=stem, stem_width=stem_width, motion_channels=motion_channels,
        )
        self._last_val: dict[str, float] = {}

    def losses(self, batch: Mapping) -> dict[str, torch.Tensor]:
        out = self.vit(batch["video"])
        return {"act_cls": F.cross_entropy(out.action_logits, batch["action"]),
                "priv_cls": F.binary_cross_entropy_with_logits(out.privacy_logits, batch["privacy"].float())}

    def training_step(self, batch: Mapping, batch_idx: int) -> torch.Tensor:
        terms = self.losses(batch)
        loss = terms["act_cls"] + terms["priv_cls"]
        size = len(batch["action"])
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, on_step=True, on_epoch=True,
                      batch_size=size)
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=False, batch_size=size)
        return loss

    def _evaluation_step(self, batch: Mapping, stage: str) -> dict[str, torch.Tensor]:
        out = self.vit(batch["video"])
        size = len(batch["action"])
        self.log(f"{stage}/act_cls_loss", F.cross_entropy(out.action_logits, batch["action"]), batch_size=size)
        self.log(f"{stage}/priv_cls_loss", F.binary_cross_entropy_with_logits(
            out.privacy_logits, batch["privacy"].float()), batch_size=size)
        # The shared metrics callback reads these: top-1 of the action CLS, cMAP / F1 of the privacy CLS.
        return {"action_logits": out.action_logits, "privacy_logits": out.privacy_logits}

    def validation_step(self, batch: Mapping, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluation_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluation_step(batch, "test")

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.vit.named_parameters():
            plain = p.ndim <= 1 or name in ("act_cls", "priv_cls", "pos_embed")
            (no_decay if plain else decay).append(p)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": self.hparams.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=self.hparams.lr)
        total = self.trainer.estimated_stepping_batches if self.trainer is not None else 0
        total = int(total) if total and not math.isinf(total) else 0
        warmup = max(1, self.hparams.warmup_steps)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not total:
                return 1.0
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_validation_epoch_end(self) -> None:
        self._last_val = {k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}

    def on_train_epoch_end(self) -> None:
        # One line per epoch (validation has run by now): whether the two CLS heads are learning.
        m = self._last_val
        if self.trainer.global_rank == 0 and "val/top1" in m:
            print(f"anonpriv pretrain: epoch {self.current_epoch}: action CLS top-1 {m['val/top1']:.3f}, "
                  f"attribute cMAP {m.get('val/cmap', float('nan')):.3f}, privacy BCE "
                  f"{m.get('val/priv_cls_loss', float('nan')):.3f}", flush=True)

    def on_train_end(self) -> None:
        if not self.hparams.export_file or self.trainer.global_rank != 0:
            return
        path = save_pretrained(self.vit, self.hparams.export_file, self.hparams.action_names or [],
                               self.hparams.privacy_names or [], metrics=self._last_val)
        print(f"anonpriv pretrain: wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
