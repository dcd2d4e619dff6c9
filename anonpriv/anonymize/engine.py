"""The sliding-clip engine: a method trained on fixed-size clips, run over frame streams of any size and length.

:class:`SlidingClipAnonymizer` takes the windows :mod:`anonpriv.anonymize.windows` cuts from a frame
stream, in batches, and returns uint8 frames of the input's size:

* Windows are batched (``--batch-size``), moved to ``--device`` and, when the method has a clip
  size ``H x W``, each whole frame is resized to it (no crop, so every pixel is covered; the aspect
  ratio follows).
* If ``anonymizer_outputs`` returns a ``mask`` (B, 1, T, H, W) in [0, 1] (the kept region of
  token pruning), the mask is upsampled (nearest) to the original size and multiplies the
  original frames, so kept regions keep their full detail; otherwise the anonymized clip is resized
  back to the original size.
* A method that works frame by frame on uint8 frames (its ``takes_uint8`` and ``anonymize_uint8``)
  and has no clip size gets the frames as they are.

Frames stay uint8 at their own size; only a few full-size frames at a time become floats
(:mod:`anonpriv.frames`), so memory follows the clip, not the resolution.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from anonpriv.anonymize.errors import AnonymizeError
from anonpriv.anonymize.streams import batched, chained, queue_depth
from anonpriv.anonymize.windows import (
    DEFAULT_CLIP_FRAMES,
    OutputLayout,
    batch_windows,
    sliding_windows,
)
from anonpriv.frames import resize_from_clip, resize_to_clip, upsample_mask


class SlidingClipAnonymizer:
    """Anonymizes whole videos of any size and length with a method trained on fixed-size clips.

    Args:
        method: an :class:`~anonpriv.methods.AnonymizationMethod` or a method's anonymizer alone
            (:class:`~anonpriv.methods.registry.MethodAnonymizer`), in eval mode, on ``device``.
        clip_frames: window length ``T`` (default: the method's ``clip_shape[0]``, else 16).
        clip_size: ``(H, W)`` frames are resized to (default: the method's; None: native size).
        batch_size: windows per forward pass (``None``: as many as fit in
            :data:`~anonpriv.anonymize.windows.BATCH_BYTES`, at most 4).
        device: where the method runs.
    """

    def __init__(self, method, clip_frames: int | None = None, clip_size: tuple[int, int] | None = None,
                 batch_size: int | None = None, device: str | torch.device = "cpu") -> None:
        shape = getattr(method, "clip_shape", None)
        self.method = method
        self.clip_frames = int(clip_frames or (shape[0] if shape else DEFAULT_CLIP_FRAMES))
        self.clip_size = tuple(clip_size) if clip_size else (tuple(shape[1:]) if shape else None)
        if batch_size is not None and batch_size < 1:
            raise AnonymizeError(f"--batch-size {batch_size} must be at least 1.")
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.layout = self._probe_layout()

    @torch.inference_mode()
    def _probe_layout(self) -> OutputLayout:
        height, width = self.clip_size or (64, 64)
        dummy = torch.zeros(1, 3, self.clip_frames, height, width, device=self.device)
        out = self.method.anonymizer_outputs(dummy)
        uses_mask = "mask" in out
        frames = (out["mask"] if uses_mask else out["video"]).shape[2]
        if not 1 <= frames <= self.clip_frames:
            raise AnonymizeError(f"the method returned {frames} frames for a clip of {self.clip_frames}: "
                                 "expected between 1 and the clip length.")
        uint8 = (self.clip_size is None and not uses_mask and frames == self.clip_frames
                 and bool(getattr(self.method, "takes_uint8", False)))
        return OutputLayout(self.clip_frames, frames, uses_mask, "tubelet_mask" in out, uint8)

    def windows(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, int]]:
        """``(window (T, h, w, 3), valid outputs)`` over a frame stream
        (:func:`~anonpriv.anonymize.windows.sliding_windows` with this method's length and lag)."""
        return sliding_windows(frames, self.clip_frames, self.layout.lag)

    @torch.inference_mode()
    def run_batch(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 windows ``(B, T, h, w, 3)`` -> uint8 outputs ``(B, T_out, h, w, 3)`` for the last
        ``T_out`` frames of each window, and the ``tubelet_mask`` (B, ...) when the method has one.

        Frames stay uint8 at their own size; only a few full-size frames at a time become floats
        (:mod:`anonpriv.frames`), so memory follows the clip, not the resolution: a method that works
        frame by frame gets them through its uint8 path; any other gets float clips at its clip size."""
        frames = torch.from_numpy(windows).to(self.device, non_blocking=True)  # (B, T, h, w, 3) uint8
        batch, clip_frames, height, width, _ = frames.shape
        if self.layout.uint8:
            flat = frames.reshape(batch * clip_frames, height, width, 3)
            result = self.method.anonymize_uint8(flat).reshape(batch, clip_frames, height, width, 3)
            return result.cpu().numpy(), None
        out = self.method.anonymizer_outputs(resize_to_clip(frames, self.clip_size))
        keep = self.layout.output_frames
        original = frames[:, clip_frames - keep:]  # (B, T_out, h, w, 3)
        if self.layout.uses_mask:
            mask = out["mask"][:, 0, -keep:]  # (B, T_out, mh, mw)
            result = torch.empty_like(original)
            for i in range(batch):  # one clip of full-size frames at a time
                if bool(((mask[i] == 0) | (mask[i] == 1)).all()):  # checked at clip size: cheap
                    binary = upsample_mask(mask[i].to(torch.uint8), (height, width))
                    torch.mul(original[i], binary, out=result[i])  # no temporary
                else:  # soft weights: nearest-upsampled like a binary mask, applied in float
                    weights = upsample_mask(mask[i].float(), (height, width))
                    result[i] = (original[i].float() * weights).round_().clamp_(0, 255).to(torch.uint8)
        else:
            result = resize_from_clip(out["video"][:, :, -keep:], (height, width))
        tubelets = out.get("tubelet_mask")
        return result.cpu().numpy(), None if tubelets is None else tubelets.detach().cpu().numpy()

    def output_queue_depth(self, frame_bytes: int) -> int:
        """Batches the writer's queue holds for frames of ``frame_bytes`` (2 for small frames, 1 at 1080p)."""
        windows = self.batch_size or batch_windows(self.clip_frames, frame_bytes)
        return queue_depth(windows * self.layout.output_frames * frame_bytes, most=2)

    def anonymize(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, list]]:
        """Stream anonymized frames for a stream of frames: yields ``(uint8 frames (n, h, w, 3),
        [(window tubelet mask or None, first output frame, end), ...])`` per batch. Without a
        ``batch_size``, a batch holds as many windows as fit in
        :data:`~anonpriv.anonymize.windows.BATCH_BYTES` (at least one)."""
        written = 0
        stream = iter(frames)
        first = next(stream, None)
        if first is None:
            return
        size = self.batch_size or batch_windows(self.clip_frames, first.nbytes)
        for batch in batched(self.windows(chained(first, stream)), size):
            stacked = batch[0][0][None] if len(batch) == 1 else np.stack([w for w, _ in batch])
            valids = [valid for _, valid in batch]
            del batch  # the windows live on in `stacked` alone
            outputs, tubelets = self.run_batch(stacked)
            del stacked
            kept, mask_windows = [], []
            for i, valid in enumerate(valids):
                kept.append(outputs[i, :valid])
                mask_windows.append((None if tubelets is None else tubelets[i], written, written + valid))
                written += valid
            yield (kept[0] if len(kept) == 1 else np.concatenate(kept)), mask_windows
