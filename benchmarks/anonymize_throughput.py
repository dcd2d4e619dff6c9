"""Benchmark 1: anonymization throughput of every registered method on the same synthetic clips.

Each method is built as ``configs/method/<name>.yaml`` configures it for clips of 16 x 112 x 112
and anonymizes the same batch of random clips under ``torch.inference_mode()``, the methods timed
in round-robin order. Weights are untrained: speed does not depend on them, so token pruning is
built with ``pretrained_file=None`` (its config starts from ``anonpriv:dual_cls_vit_tiny``) and the
benchmark runs whether or not that weights file exists. Reported: milliseconds per batch (median),
clips/s and frames/s (input frames; BDQ returns T - 1 frames per clip), per device (the CPU, and
CUDA when there is one).

Token pruning appears twice, both with the config's linear stem and motion channels:

* ``token_pruning (4x14x14, 112 px)``: the tiny config built for the 112-pixel clip with tubelets
  that keep the config's grid (:func:`tubelet_like_config`: the config's 4 x 8 x 8 tubelets on
  16 x 64 x 64 clips are a 4 x 8 x 8 grid of 256 tubelets; 4 x 14 x 14 on 16 x 112 x 112 is the
  same grid), i.e. the model trained at 112 px;
* ``token_pruning (config, 64 px, anonymize path)``: the tiny config as it is (the default data
  config's 64 px frames, the config's tubelets) on 112-pixel uint8 clips the way
  ``anonpriv anonymize`` runs it
  (:meth:`SlidingClipAnonymizer.run_batch <anonpriv.anonymize.engine.SlidingClipAnonymizer.run_batch>`:
  resize to 64 px, prune, upsample the mask to 112 px, mask the original frames in uint8).

The config's tubelet and frame size are read from ``configs/method/token_pruning.yaml`` and
``configs/data/synthetic.yaml``, so the rows follow the configs.

    python -m benchmarks.anonymize_throughput [--quick] [--batch-size 4] [--output FILE]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import yaml

from benchmarks.common import (
    REPO_ROOT,
    benchmark_parser,
    default_devices,
    emit,
    fmt,
    machine_line,
    markdown_table,
    time_calls_interleaved,
)

CLIP_SHAPE = [16, 112, 112]
NUM_ACTIONS, NUM_PRIVACY = 8, 5
# Speed does not depend on the weights: build without the config's pretrained file, which may not exist.
SPEED_OVERRIDES = {"pretrained_file": None}


def method_config(name: str) -> dict:
    """``init_args`` of ``configs/method/<name>.yaml`` (empty when there is no such config)."""
    path = REPO_ROOT / "configs" / "method" / f"{name}.yaml"
    if not path.is_file():
        return {}
    return dict(yaml.safe_load(path.read_text()).get("init_args") or {})


def speed_config(name: str) -> dict:
    """:func:`method_config` for a speed measurement: settings the config has from
    :data:`SPEED_OVERRIDES` replaced (``pretrained_file=None``: untrained weights, same speed)."""
    config = method_config(name)
    return config | {key: value for key, value in SPEED_OVERRIDES.items() if key in config}


def config_clip_shape() -> list[int]:
    """``[T, H, W]`` of the default data config (``configs/data/synthetic.yaml``): the clip size the
    method configs are made for (16 x 64 x 64 at present)."""
    path = REPO_ROOT / "configs" / "data" / "synthetic.yaml"
    source = (yaml.safe_load(path.read_text()) or {}).get("source", {}).get("init_args", {}) if path.is_file() else {}
    return [int(source.get("num_frames", 16)), int(source.get("height", 64)), int(source.get("width", 64))]


def config_tubelet() -> list[int]:
    """The token-pruning config's tubelet ``[t, p, p]`` (4 x 8 x 8 at present)."""
    return [int(size) for size in method_config("token_pruning").get("tubelet", (4, 8, 8))]


def tubelet_like_config(clip_shape: list[int]) -> list[int]:
    """A tubelet for ``clip_shape`` that keeps the token-pruning config's tubelet grid: the config's
    tubelet length in time and as many rows and columns of tubelets as the config's clip has
    (16 x 112 x 112 -> 4 x 14 x 14, a 4 x 8 x 8 grid of 256 tubelets like the config's 4 x 8 x 8
    tubelets on 16 x 64 x 64). The linear stem takes any tubelet that divides the clip."""
    t, p, q = config_tubelet()
    _, height, width = config_clip_shape()
    rows, cols = height // p, width // q
    frames, clip_h, clip_w = clip_shape
    if frames % t or clip_h % rows or clip_w % cols:
        raise ValueError(f"no tubelet gives the config's {rows} x {cols} spatial grid with {t} frames on a "
                         f"{'x'.join(map(str, clip_shape))} clip: pick another clip size.")
    return [t, clip_h // rows, clip_w // cols]


def build_configured(name: str, clip_shape: list[int], **overrides):
    """The registered method ``name`` with its config's settings (:func:`speed_config`), in eval mode."""
    from anonpriv.methods.registry import build_method

    kwargs = speed_config(name) | overrides
    return build_method(name, num_actions=NUM_ACTIONS, num_privacy=NUM_PRIVACY, clip_shape=list(clip_shape),
                        **kwargs).eval()


Setup = Callable[[str, torch.Tensor], Callable[[], object]]


def candidates(clip_shape: list[int]) -> list[tuple[str, Setup]]:
    """``(row name, setup(device, batch) -> timed call)`` for every method variant."""
    from anonpriv.anonymize.engine import SlidingClipAnonymizer
    from anonpriv.methods.catalog import CATALOG

    def plain(name: str, **overrides):
        def setup(device: str, batch: torch.Tensor) -> Callable[[], object]:
            method = build_configured(name, clip_shape, **overrides).to(device)
            video = batch.to(device)
            return lambda: method.anonymize(video)
        return setup

    def token_pruning_anonymize_path(device: str, batch: torch.Tensor) -> Callable[[], object]:
        # The config's frame size (64 px), the benchmark's clip length.
        config_shape = [clip_shape[0], *config_clip_shape()[1:]]
        method = build_configured("token_pruning", config_shape).to(device)
        runner = SlidingClipAnonymizer(method, batch_size=len(batch), device=device)
        windows = (batch.permute(0, 2, 3, 4, 1) * 255).round().to(torch.uint8).numpy()  # (B, T, H, W, 3)
        return lambda: runner.run_batch(np.ascontiguousarray(windows))

    full_size_tubelet = tubelet_like_config(clip_shape)
    config_px = config_clip_shape()[1]
    from anonpriv.faces import faces_available
    from anonpriv.baselines.blackening.anonymizer import DEFAULT_DETECTOR, detector_available

    rows = []
    for name in CATALOG:
        if name == "face_blur" and not faces_available():
            continue  # its detector is the optional extra `faces` (pip install 'anonpriv[faces]')
        if name == "blackening" and not detector_available(method_config(name).get("detector", DEFAULT_DETECTOR),
                                                           method_config(name).get("detector_weights_file")):
            continue  # its person detector's weights: neither in torchvision's cache nor a local file (offline)
        if name == "token_pruning":
            rows.append((f"token_pruning ({'x'.join(map(str, full_size_tubelet))}, {clip_shape[1]} px)",
                         plain(name, tubelet=full_size_tubelet)))
            rows.append((f"token_pruning (config, {config_px} px, anonymize path)", token_pruning_anonymize_path))
        else:
            rows.append((name, plain(name)))
    return rows


def run(quick: bool = False, batch_size: int = 4, repeats: int = 5, devices: list[str] | None = None) -> str:
    # --quick: 80 px, still above the config's 64 px so the anonymize path resizes down as a real run does.
    clip_shape = [8, 80, 80] if quick else CLIP_SHAPE
    batch_size = 1 if quick else batch_size
    repeats = 1 if quick else repeats
    frames = clip_shape[0]
    generator = torch.Generator().manual_seed(0)
    batch = torch.rand(batch_size, 3, *clip_shape, generator=generator)
    table_rows = []
    for device in default_devices(devices):
        calls = {}
        for name, setup in candidates(clip_shape):
            torch.manual_seed(0)
            calls[name] = setup(device, batch)
        with torch.inference_mode():  # round-robin: a load change on the machine hits every method alike
            timings = time_calls_interleaved(calls, repeats=repeats, warmup=1 if quick else 2, device=device)
        for name, timing in timings.items():
            if timing.median < 1e-4:  # raw returns its input: nothing to time
                table_rows.append([name, device, fmt(1e3 * timing.median, 2), "(identity)", "(identity)"])
                continue
            clips_per_s = batch_size / timing.median
            table_rows.append([name, device, fmt(1e3 * timing.median, 2), fmt(clips_per_s),
                               fmt(clips_per_s * frames, 0)])
    shape = "x".join(map(str, clip_shape))
    title = (f"### Anonymization throughput ({shape} clips, batch {batch_size}, median of {repeats})\n\n"
             f"Machine: {machine_line()}\n\n")
    return title + markdown_table(["method", "device", "ms / batch", "clips/s", "frames/s"], table_rows)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4, help="clips per forward pass")
    args = parser.parse_args(argv)
    emit(run(args.quick, args.batch_size, args.repeats, args.devices), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
