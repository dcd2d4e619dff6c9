"""Benchmark 1: anonymization throughput of every registered method on the same synthetic clips.

Each method is built as ``configs/method/<name>.yaml`` configures it (untrained weights: speed does
not depend on training) for clips of 16 x 112 x 112 and anonymizes the same batch of random clips
under ``torch.inference_mode()``, the methods timed in round-robin order. Reported: milliseconds
per batch (median), clips/s and frames/s (input frames; BDQ returns T - 1 frames per clip), per
device (the CPU, and CUDA when there is one).

Token pruning appears twice:

* ``token_pruning (2x16x16, 112 px)``: the tiny config built for the 112-pixel clip with 2 x 16 x 16
  tubelets (an 8 x 7 x 7 grid of 392 tubelets; the conv stem needs power-of-two tubelets), i.e.
  the model trained at 112 px;
* ``token_pruning (config, 32 px)``: the tiny config as it is (16 x 32 x 32 clips, 2 x 4 x 4
  tubelets) on 112-pixel uint8 clips the way ``anonpriv anonymize`` runs it
  (:meth:`SlidingClipAnonymizer.run_batch <anonpriv.anonymize.SlidingClipAnonymizer.run_batch>`:
  resize to 32 px, prune, upsample the mask to 112 px, mask the original frames in uint8).

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
# Token pruning at the clip's own size: its conv stem needs power-of-two tubelets, and 2 x 16 x 16
# on 16 x 112 x 112 gives an 8 x 7 x 7 grid (392 tubelets), close to the config's 8 x 8 x 8.
FULL_SIZE_TUBELET = [2, 16, 16]
NUM_ACTIONS, NUM_PRIVACY = 8, 5


def method_config(name: str) -> dict:
    """``init_args`` of ``configs/method/<name>.yaml`` (empty when there is no such config)."""
    path = REPO_ROOT / "configs" / "method" / f"{name}.yaml"
    if not path.is_file():
        return {}
    return dict(yaml.safe_load(path.read_text()).get("init_args") or {})


def build_configured(name: str, clip_shape: list[int], **overrides):
    """The registered method ``name`` with its config's settings, in eval mode."""
    from anonpriv.methods.registry import build_method

    kwargs = method_config(name) | overrides
    return build_method(name, num_actions=NUM_ACTIONS, num_privacy=NUM_PRIVACY, clip_shape=list(clip_shape),
                        **kwargs).eval()


Setup = Callable[[str, torch.Tensor], Callable[[], object]]


def candidates(clip_shape: list[int]) -> list[tuple[str, Setup]]:
    """``(row name, setup(device, batch) -> timed call)`` for every method variant."""
    from anonpriv.anonymize import SlidingClipAnonymizer
    from anonpriv.methods.registry import METHODS

    def plain(name: str, **overrides):
        def setup(device: str, batch: torch.Tensor) -> Callable[[], object]:
            method = build_configured(name, clip_shape, **overrides).to(device)
            video = batch.to(device)
            return lambda: method.anonymize(video)
        return setup

    def token_pruning_anonymize_path(device: str, batch: torch.Tensor) -> Callable[[], object]:
        config_shape = [clip_shape[0], 32, 32]  # the config's 32 px frames, the benchmark's clip length
        method = build_configured("token_pruning", config_shape).to(device)
        runner = SlidingClipAnonymizer(method, batch_size=len(batch), device=device)
        windows = (batch.permute(0, 2, 3, 4, 1) * 255).round().to(torch.uint8).numpy()  # (B, T, H, W, 3)
        return lambda: runner.run_batch(np.ascontiguousarray(windows))

    rows = []
    for name in METHODS:
        if name == "token_pruning":
            rows.append((f"token_pruning (2x16x16, {clip_shape[1]} px)", plain(name, tubelet=FULL_SIZE_TUBELET)))
            rows.append(("token_pruning (config, 32 px, anonymize path)", token_pruning_anonymize_path))
        else:
            rows.append((name, plain(name)))
    return rows


def run(quick: bool = False, batch_size: int = 4, repeats: int = 5, devices: list[str] | None = None) -> str:
    clip_shape = [8, 32, 32] if quick else CLIP_SHAPE
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
