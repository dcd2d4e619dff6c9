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
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from anonpriv.methods.token_pruning.model import DualCLSTubeletViT

PRETRAINED_FORMAT = "anonpriv.dual_cls_vit/1"
#: ``pretrained_file: anonpriv:NAME`` names a file shipped in this folder (``NAME.pt``).
BUILTIN_PREFIX = "anonpriv:"
BUILTIN_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"

# The shape of the backbone a pretrained file holds; a model must match it to load the file (the clip
# shape may differ: the position embeddings are then resampled to the model's tubelet grid).
GEOMETRY_KEYS = ("tubelet", "embed_dim", "depth", "num_heads", "mlp_ratio", "stem", "stem_width", "motion_channels")


def resolve_weights_file(name: str | Path) -> Path:
    """``anonpriv:NAME`` -> the shipped ``anonpriv/weights/NAME.pt``; any other value is a path."""
    text = str(name)
    if text.startswith(BUILTIN_PREFIX):
        path = BUILTIN_WEIGHTS_DIR / f"{text[len(BUILTIN_PREFIX):]}.pt"
        if not path.is_file():
            shipped = sorted(p.stem for p in BUILTIN_WEIGHTS_DIR.glob("*.pt"))
            raise FileNotFoundError(
                f"no shipped weights {text!r}: the shipped ones are {[BUILTIN_PREFIX + s for s in shipped]} "
                "(remake them with `make pretrain`)."
            )
        return path
    return Path(text)


def vit_geometry(vit: DualCLSTubeletViT) -> dict:
    """The plain-typed shape of ``vit`` (what :data:`GEOMETRY_KEYS` names)."""
    return {"clip_shape": list(vit.embed.clip_shape), "tubelet": list(vit.embed.tubelet),
            "embed_dim": vit.pos_embed.shape[-1], "depth": len(vit.blocks), "num_heads": vit.blocks[0].attn.num_heads,
            "mlp_ratio": vit.blocks[0].mlp.fc1.out_features / vit.pos_embed.shape[-1], "stem": vit.stem_name,
            "stem_width": vit.stem_width, "motion_channels": vit.embed.motion_channels}


def read_pretrained(path: str | Path) -> dict | None:
    """The contents of a file written by :func:`save_pretrained` (with its resolved ``file``), or
    ``None`` when ``path`` is not one (a 2D timm ViT, say, or no file at all)."""
    path = resolve_weights_file(path)
    if not path.is_file() or path.suffix not in (".pt", ".pth"):
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file of ours: leave it to the timm loader, which names the problem
        return None
    if not isinstance(payload, dict) or payload.get("format") != PRETRAINED_FORMAT:
        return None
    return dict(payload, file=str(path))


def is_pretrained_file(path: str | Path) -> bool:
    """Whether ``path`` is a file written by :func:`save_pretrained` (not a 2D timm ViT)."""
    return read_pretrained(path) is not None


def save_pretrained(vit: DualCLSTubeletViT, path: str | Path, action_names: list[str], privacy_names: list[str],
                    metrics: Mapping[str, float] | None = None) -> Path:
    """Write the backbone and both CLS heads, its geometry and label names to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": PRETRAINED_FORMAT,
        "geometry": vit_geometry(vit),
        "action_names": list(action_names),
        "privacy_names": list(privacy_names),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "state_dict": {k: v.detach().cpu().clone() for k, v in vit.state_dict().items()},
    }
    torch.save(payload, path)
    return path


def load_pretrained(vit: DualCLSTubeletViT, source: str | Path | dict, action_names: list[str] | None = None,
                    privacy_names: list[str] | None = None) -> dict:
    """Load a :func:`save_pretrained` file (its path, or what :func:`read_pretrained` returned for
    it) into ``vit``; returns a report of what was loaded.

    The geometry must match exactly (a clear error names the differences), except the clip shape:
    for other clip sizes the position embeddings are resampled (trilinear) to the model's tubelet
    grid, as the paper resamples ImageNet's. The two CLS heads are loaded only when the label names
    match the file's (same actions / attributes in the same order); otherwise they stay fresh, as
    the paper's heads do after its ImageNet start.
    """
    payload = source if isinstance(source, dict) else read_pretrained(source)
    if payload is None:
        path = resolve_weights_file(source)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights {str(path)!r} do not exist: run `make pretrain` or pass a file.")
        raise ValueError(f"{str(path)!r} is not a dual-CLS ViT file written by `anonpriv pretrain`.")
    path = payload["file"]
    mine, theirs = vit_geometry(vit), payload["geometry"]
    differ = {k: (theirs.get(k), mine[k]) for k in GEOMETRY_KEYS if _plain(theirs.get(k)) != _plain(mine[k])}
    if differ:
        detail = ", ".join(f"{k}: file {a!r} vs model {b!r}" for k, (a, b) in differ.items())
        raise ValueError(f"pretrained weights {path!r} were made for another ViT shape ({detail}): build the "
                         "method with the file's shape, or pretrain one for this shape with `anonpriv pretrain`.")
    state = dict(payload["state_dict"])
    heads = {"act_head": action_names is not None and list(action_names) == payload["action_names"],
             "priv_head": privacy_names is not None and list(privacy_names) == payload["privacy_names"]}
    for head, keep in heads.items():
        if not keep:
            for key in [k for k in state if k.startswith(head + ".")]:
                state[key] = getattr(vit, head).state_dict()[key.split(".", 1)[1]]
    grid, file_grid = list(vit.grid), [c // t for c, t in zip(theirs["clip_shape"], theirs["tubelet"])]
    if grid != file_grid:
        state["pos_embed"] = resample_position_embedding(state["pos_embed"], file_grid, grid)
    vit.load_state_dict(state, strict=True)
    return {"file": path, "heads_loaded": [h for h, keep in heads.items() if keep],
            "resampled_grid": (file_grid, grid) if grid != file_grid else None, "metrics": payload.get("metrics", {})}


def resample_position_embedding(pos_embed: torch.Tensor, old_grid: list[int], new_grid: list[int]) -> torch.Tensor:
    """(1, t*h*w, D) position embeddings on ``old_grid`` (t, h, w) -> the same on ``new_grid``."""
    D = pos_embed.shape[-1]
    volume = pos_embed.reshape(1, *old_grid, D).permute(0, 4, 1, 2, 3)
    volume = F.interpolate(volume, size=tuple(new_grid), mode="trilinear", align_corners=False)
    return volume.permute(0, 2, 3, 4, 1).reshape(1, -1, D)


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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
