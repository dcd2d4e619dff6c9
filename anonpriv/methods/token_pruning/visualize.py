"""Attention maps in TensorBoard: what the two CLS tokens look at, and what survives pruning.

For a few fixed validation clips, :class:`AttentionMapLogger` writes one image per clip after each
validation epoch (``add_image``, not ``add_video``, which logs nothing with moviepy 2). Each image
(:func:`attention_figure`) is a labelled figure whose columns are evenly spaced frames, upscaled
(``scale`` times, 4 by default), and whose rows are

1. the raw frames,
2. the action-CLS attention ``a_act`` (first pruning stage, every tubelet present),
3. the privacy-CLS attention ``a_priv``,
4. the score ``s = a_act - lambda_priv * a_priv``,
5. the anonymized frames (pruned tubelets black) with the kept tubelets outlined.

Rows 2-4 are heat-maps drawn over the (grey) frames at tubelet resolution, one colour bar per row
with the row's own range. ``python -m anonpriv.methods.token_pruning.visualize`` draws the image of
a checkpoint's validation clip to a PNG file.
"""

from __future__ import annotations

import argparse
import warnings

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger

MAP_KEYS = ("act_attention", "priv_attention", "score")
ROW_TITLES = {"act_attention": "action-CLS\nattention", "priv_attention": "privacy-CLS\nattention",
              "score": "score\na_act - λ a_priv"}


def _upsample(grid: torch.Tensor, size: tuple[int, int, int]) -> np.ndarray:
    """(t, h, w) tubelet values -> (T, H, W) by nearest repetition."""
    return F.interpolate(grid.float()[None, None], size=size, mode="nearest")[0, 0].numpy()


def attention_figure(video: torch.Tensor, outputs: dict, num_frames: int = 6, scale: int = 4,
                     title: str | None = None) -> np.ndarray:
    """One clip's figure as an RGB uint8 array (H, W, 3).

    ``video`` is the raw clip (C, T, H, W) in [0, 1]; ``outputs`` the method's ``anonymizer_outputs``
    for it with the batch dimension removed. Rows whose maps are missing are left out.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    C, T, H, W = video.shape
    frames = torch.linspace(0, T - 1, min(num_frames, T)).round().long().tolist()
    raw = video.float().clamp(0, 1).permute(1, 2, 3, 0).numpy()  # (T, H, W, C)
    gray = raw.mean(-1)
    keys = [k for k in MAP_KEYS if k in outputs]
    anonymized = outputs.get("video")
    show_kept = anonymized is not None and anonymized.shape[1] == T
    rows = 1 + len(keys) + int(show_kept)
    cell = max(H, W) * scale / 100.0  # inches at dpi 100: each frame is drawn `scale` times larger
    fig, axes = plt.subplots(rows, len(frames), figsize=(cell * len(frames) + 1.8, cell * rows + 0.5),
                             squeeze=False, dpi=100)
    for col, f in enumerate(frames):
        axes[0, col].imshow(raw[f], interpolation="nearest")
        axes[0, col].set_title(f"frame {f}", fontsize=9)
    axes[0, 0].set_ylabel("frames", fontsize=10)
    for r, key in enumerate(keys, start=1):
        heat = _upsample(outputs[key], (T, H, W))
        cmap = "coolwarm" if key == "score" else "inferno"
        lo, hi = float(heat.min()), float(heat.max())
        if key == "score":  # symmetric around 0: red keeps (action), blue prunes (private)
            lo, hi = -max(abs(lo), abs(hi), 1e-12), max(abs(lo), abs(hi), 1e-12)
        for col, f in enumerate(frames):
            axes[r, col].imshow(gray[f], cmap="gray", interpolation="nearest", vmin=0, vmax=1)
            image = axes[r, col].imshow(heat[f], cmap=cmap, alpha=0.65, interpolation="nearest", vmin=lo, vmax=hi)
        fig.colorbar(image, ax=list(axes[r]), fraction=0.02, pad=0.01)
        axes[r, 0].set_ylabel(ROW_TITLES[key], fontsize=10)
    if show_kept:
        r = rows - 1
        kept = outputs.get("mask")
        kept = kept[0].float().numpy() if kept is not None else None
        anon = anonymized.float().clamp(0, 1).permute(1, 2, 3, 0).numpy()
        for col, f in enumerate(frames):
            axes[r, col].imshow(anon[f], interpolation="nearest")
            if kept is not None and 0 < kept[f].mean() < 1:
                axes[r, col].contour(kept[f], levels=[0.5], colors="lime", linewidths=1.2)
        axes[r, 0].set_ylabel("kept (anonymized,\noutlined)", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


class AttentionMapLogger(pl.Callback):
    """Logs :func:`attention_grid` images of ``num_clips`` fixed validation clips to TensorBoard.

    Works with any method; rows whose maps a method does not produce are left out.
    """

    def __init__(self, num_clips: int = 4, num_frames: int = 6, every_n_epochs: int = 1, scale: int = 4) -> None:
        super().__init__()
        self.num_clips = num_clips
        self.num_frames = num_frames
        self.every_n_epochs = max(1, every_n_epochs)
        self.scale = scale
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
            image = attention_figure(clips[i].cpu(), per_clip, self.num_frames, self.scale)
            writer.add_image(f"attention/clip_{i}", image, global_step=trainer.global_step, dataformats="HWC")
        writer.flush()


def main(argv: list[str] | None = None) -> int:
    """Draw the attention figure of validation clips of the synthetic data for a checkpoint."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--checkpoint", required=True, help="a token-pruning .ckpt from `anonpriv fit`")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--clip", type=int, default=0, help="validation clip index (default 0)")
    parser.add_argument("--frames", type=int, default=6, help="frames shown (default 6)")
    parser.add_argument("--scale", type=int, default=4, help="upscaling of each frame (default 4)")
    args = parser.parse_args(argv)
    from PIL import Image

    from anonpriv.data import SyntheticSource
    from anonpriv.methods.registry import load_method

    method = load_method(args.checkpoint)
    T, H, W = method.hparams.clip_shape
    source = SyntheticSource(num_frames=T, height=H, width=W, num_actions=method.hparams.num_actions,
                             num_val=args.clip + 1)
    item = source.dataset("val")[args.clip]
    with torch.inference_mode():
        outputs = method.anonymizer_outputs(item["video"][None])
    per_clip = {k: v[0] for k, v in outputs.items() if isinstance(v, torch.Tensor) and len(v) == 1}
    names = method.hparams.action_names or source.action_names
    privacy = [n for n, v in zip(source.privacy_names, item["privacy"].tolist()) if v]
    title = f"validation clip {args.clip}: {names[int(item['action'])]}, private: {', '.join(privacy) or 'none'}"
    Image.fromarray(attention_figure(item["video"], per_clip, args.frames, args.scale, title)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
