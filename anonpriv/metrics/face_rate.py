"""face_rate: how often a pretrained face detector still finds a face, per frame and per video.

A real detector (CenterFace, :mod:`anonpriv.faces`; the optional extra ``pip install 'anonpriv[faces]'``)
is an attacker nobody tuned any anonymizer against. For a batch of clips ``(B, C, T, H, W)`` in
``[0, 1]`` (raw or anonymized; C = 3, or 1 repeated to RGB) a frame *has a face* when the detector's
highest heat in it reaches ``threshold`` (0.5 by default; :data:`anonpriv.faces.DEFAULT_THRESHOLD`).

* per frame: :func:`face_flags` ``(B, T)`` bool and :func:`frame_face_scores` ``(B, T)`` float;
* per clip: :func:`face_rate_per_clip` ``(B,)``, the share of each clip's frames with a face;
* the batch: :func:`face_rate`, the share of all its frames with a face;
* over a whole test set, with clips grouped into videos by id: :class:`FaceRateMeter`
  (``update(video, ids)`` per batch, then ``compute()`` -> :class:`FaceRate` with the share of frames
  with a face, ``frame_rate``, and the share of videos with a face in at least one frame,
  ``video_rate``: an attacker needs one good frame).

    meter = FaceRateMeter()
    for batch in loader:
        meter.update(batch["video"], batch["id"])            # raw clips
    raw = meter.compute()                                    # raw.frame_rate, raw.video_rate, raw.as_dict()

The detector runs on the CPU at the clip's own resolution (frames are padded, never resized).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from anonpriv.faces import DEFAULT_THRESHOLD, FaceDetector, default_detector


def _frames(video: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """``(B*T, 3, H, W)`` frames of a clip batch ``(B, C, T, H, W)`` (or one clip ``(C, T, H, W)``)."""
    if video.dim() == 4:
        video = video.unsqueeze(0)
    if video.dim() != 5 or video.shape[1] not in (1, 3):
        raise ValueError(f"expected clips (B, C, T, H, W) with C = 3 (or 1), got a tensor of shape {tuple(video.shape)}")
    if video.shape[1] == 1:
        video = video.expand(-1, 3, -1, -1, -1)
    b, c, t, h, w = video.shape
    return video.detach().transpose(1, 2).reshape(b * t, c, h, w), b, t


def frame_face_scores(video: torch.Tensor, detector: FaceDetector | None = None) -> torch.Tensor:
    """The detector's highest heat in every frame: ``(B, T)`` float32 (a face when >= its threshold)."""
    frames, b, t = _frames(video)
    detector = detector or default_detector()
    return torch.from_numpy(detector.max_scores(frames)).reshape(b, t)


def face_flags(video: torch.Tensor, threshold: float = DEFAULT_THRESHOLD,
               detector: FaceDetector | None = None) -> torch.Tensor:
    """Whether the detector finds a face in each frame: ``(B, T)`` bool."""
    return frame_face_scores(video, detector) >= threshold


def face_rate_per_clip(video: torch.Tensor, threshold: float = DEFAULT_THRESHOLD,
                       detector: FaceDetector | None = None) -> torch.Tensor:
    """The share of each clip's frames with a face: ``(B,)`` float in [0, 1]."""
    return face_flags(video, threshold, detector).float().mean(dim=1)


def face_rate(video: torch.Tensor, threshold: float = DEFAULT_THRESHOLD, detector: FaceDetector | None = None) -> float:
    """The share of all frames of the batch with a face, in [0, 1]."""
    return float(face_flags(video, threshold, detector).float().mean())


@dataclasses.dataclass
class FaceRate:
    """Face-detector leakage over a set of videos.

    ``per_video`` maps each video id to ``(frames with a face, frames)``.
    """

    threshold: float
    per_video: dict[str, tuple[int, int]]

    @property
    def frames(self) -> int:
        return sum(total for _, total in self.per_video.values())

    @property
    def frames_with_face(self) -> int:
        return sum(hits for hits, _ in self.per_video.values())

    @property
    def videos(self) -> int:
        return len(self.per_video)

    @property
    def videos_with_face(self) -> int:
        return sum(1 for hits, _ in self.per_video.values() if hits > 0)

    @property
    def frame_rate(self) -> float:
        """Share of all frames with a face (NaN for no frames)."""
        return self.frames_with_face / self.frames if self.frames else float("nan")

    @property
    def video_rate(self) -> float:
        """Share of videos with a face in at least one frame (NaN for no videos)."""
        return self.videos_with_face / self.videos if self.videos else float("nan")

    @property
    def mean_video_rate(self) -> float:
        """Mean over videos of the share of each video's frames with a face."""
        shares = [hits / total for hits, total in self.per_video.values() if total]
        return sum(shares) / len(shares) if shares else float("nan")

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "frames": self.frames, "frames_with_face": self.frames_with_face,
                "frame_rate": self.frame_rate, "videos": self.videos, "videos_with_face": self.videos_with_face,
                "video_rate": self.video_rate, "mean_video_rate": self.mean_video_rate,
                "per_video": {key: list(value) for key, value in self.per_video.items()}}


class FaceRateMeter:
    """Accumulates :func:`face_flags` over batches; clips with the same id count as one video.

    Args:
        threshold: the detector heat for a face (0.5).
        detector: a :class:`~anonpriv.faces.FaceDetector` (default: the shared one).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, detector: FaceDetector | None = None) -> None:
        self.threshold = float(threshold)
        self.detector = detector
        self.reset()

    def reset(self) -> None:
        self._counts: dict[str, list[int]] = {}

    def update(self, video: torch.Tensor, ids: Sequence[str] | None = None) -> torch.Tensor:
        """Add a batch of clips ``(B, C, T, H, W)``; ``ids`` name their videos (default: each clip its
        own). Returns the batch's per-frame flags ``(B, T)``."""
        flags = face_flags(video, self.threshold, self.detector)
        if ids is None:
            ids = [f"clip_{len(self._counts) + i}" for i in range(len(flags))]
        if len(ids) != len(flags):
            raise ValueError(f"{len(ids)} ids for a batch of {len(flags)} clips")
        for key, row in zip(ids, flags):
            counts = self._counts.setdefault(str(key), [0, 0])
            counts[0] += int(row.sum())
            counts[1] += int(row.numel())
        return flags

    def compute(self) -> FaceRate:
        return FaceRate(self.threshold, {key: (hits, total) for key, (hits, total) in self._counts.items()})
