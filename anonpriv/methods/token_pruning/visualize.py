"""Attention maps in TensorBoard: what the two CLS tokens look at, and what survives pruning.

For a few fixed validation clips, :class:`AttentionMapLogger` writes one image per clip after each
validation epoch (``add_image``, not ``add_video``, which logs nothing with moviepy 2). Each image
is a grid whose columns are evenly spaced frames and whose rows are

1. the raw frames,
2. the action-CLS attention ``a_act`` (first pruning stage, every tubelet present),
3. the privacy-CLS attention ``a_priv``,
4. the score ``s = a_act - lambda_priv * a_priv``,
5. the anonymized frames (pruned tubelets black).

Heat maps are upsampled from the tubelet grid (nearest) and coloured with a colormap, each map
normalised to its own range for the clip.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib import colormaps
from torchvision.utils import make_grid

MAP_KEYS = ("act_attention", "priv_attention", "score")


def colorize(maps: torch.Tensor, cmap: str = "inferno") -> torch.Tensor:
    """(N, H, W) values -> (N, 3, H, W) RGB in [0, 1], each map scaled to its own min..max."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    scaled = (maps - lo[:, None, None]) / (hi - lo).clamp_min(1e-12)[:, None, None]
    lut = torch.tensor(colormaps[cmap](torch.linspace(0, 1, 256).numpy())[:, :3], dtype=torch.float32)
    return lut[(scaled * 255).round().long().clamp(0, 255)].permute(0, 3, 1, 2)


def attention_grid(video: torch.Tensor, outputs: dict, num_frames: int = 8) -> torch.Tensor:
    """One clip's grid image (3, rows*H, num_frames*W) from raw ``video`` (C, T, H, W) and the
    method's ``anonymizer_outputs`` for it (batch dimension already removed)."""
    C, T, H, W = video.shape
    frames = torch.linspace(0, T - 1, min(num_frames, T)).round().long()
    rows = [video[:, frames].permute(1, 0, 2, 3)]  # (F, C, H, W)
    for key in MAP_KEYS:
        if key in outputs:
            grid = outputs[key].float()[None, None]  # (1, 1, t, h, w)
            upsampled = F.interpolate(grid, size=(T, H, W), mode="nearest")[0, 0]
            rows.append(colorize(upsampled[frames]))
    anonymized = outputs["video"].float()
    if anonymized.shape[1] == T:
        rows.append(anonymized[:, frames].permute(1, 0, 2, 3).clamp(0, 1))
    return make_grid(torch.cat(rows), nrow=len(frames), padding=1, pad_value=1.0)


class AttentionMapLogger(pl.Callback):
    """Logs :func:`attention_grid` images of ``num_clips`` fixed validation clips to TensorBoard.

    Works with any method; rows whose maps a method does not produce are left out.
    """

    def __init__(self, num_clips: int = 4, num_frames: int = 8, every_n_epochs: int = 1) -> None:
        super().__init__()
        self.num_clips = num_clips
        self.num_frames = num_frames
        self.every_n_epochs = max(1, every_n_epochs)
        self._clips: torch.Tensor | None = None
        self._warned = False

    def _fixed_clips(self, trainer: pl.Trainer) -> torch.Tensor | None:
        if self._clips is None:
            loaders = trainer.val_dataloaders
            loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
            if loader is None:
                return None
            dataset = loader.dataset
            count = min(self.num_clips, len(dataset))
            self._clips = torch.stack([dataset[i]["video"] for i in range(count)])
        return self._clips

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers:
            if not self._warned:
                warnings.warn("AttentionMapLogger needs a TensorBoardLogger; no attention maps are logged.")
                self._warned = True
            return
        clips = self._fixed_clips(trainer)
        if clips is None:
            return
        clips = clips.to(pl_module.device)
        with torch.inference_mode():
            outputs = pl_module.anonymizer_outputs(clips)
        writer = loggers[0].experiment
        for i in range(len(clips)):
            per_clip = {k: v[i].cpu() for k, v in outputs.items() if isinstance(v, torch.Tensor) and len(v) == len(clips)}
            image = attention_grid(clips[i].cpu(), per_clip, self.num_frames)
            writer.add_image(f"attention/clip_{i}", image, global_step=trainer.global_step)
        writer.flush()
