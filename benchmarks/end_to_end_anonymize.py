"""Benchmark 3: ``anonpriv anonymize`` end to end on a generated video: frames/s and peak memory.

A 112 x 112, 30 fps video of a few hundred frames is written with PyAV (libx264) into a temporary
folder; then each method variant anonymizes it through the command's Python entry point
(:func:`anonpriv.anonymize.cli.main`: decode + resize + anonymize + mask + encode, defaults otherwise:
batch 4, libx264 CRF 18). Each variant runs in its own process so its peak resident memory
(``VmHWM``) is its own; the process first anonymizes the video once untimed (warm-up),
then ``--repeats`` timed times, and the median wall time of a whole ``main()`` call (method build
included) gives frames/s. Real time is the video's 30 frames/s. (``--quick`` measures in this
process instead, so its memory column is cumulative.)

Variants: ``raw`` (decode + encode only: the floor), token pruning as configured in
``configs/method/token_pruning.yaml`` (4 x 8 x 8 tubelets, linear stem, motion channels; clips of
the default data config's 16 x 64 x 64, so the frames are resized to 64 px and the kept-tubelet mask
is upsampled back to 112 px), the same tiny model built for 16 x 112 x 112 clips with 4 x 14 x 14
tubelets (the config's 4 x 8 x 8 grid of 256 tubelets, no resize; see
:func:`~benchmarks.anonymize_throughput.tubelet_like_config`), and the tiny config again with
``--threads`` set to every core instead of the command's default of one core fewer
(:func:`~anonpriv.anonymize.cli.default_cpu_threads`; decoding and encoding run in their own threads).
The tubelet and frame size are read from the configs. Weights are untrained: speed does not depend
on them, so token pruning is built with ``--method-arg pretrained_file=null`` (its config starts
from ``anonpriv:dual_cls_vit_tiny``) and the benchmark runs whether or not that file exists.

    python -m benchmarks.end_to_end_anonymize [--quick] [--frames 300] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from anonpriv.anonymize.cli import default_cpu_threads
from benchmarks.anonymize_throughput import (
    NUM_ACTIONS,
    NUM_PRIVACY,
    config_clip_shape,
    speed_config,
    tubelet_like_config,
)
from benchmarks.common import REPO_ROOT, benchmark_parser, emit, fmt, machine_line, markdown_table

REAL_TIME_FPS = 30


def write_moving_video(path: Path, frames: int, size: int = 112, fps: int = REAL_TIME_FPS) -> None:
    """A textured background with a bright square moving across it, encoded with libx264
    (``mpeg4`` when this PyAV build lacks it)."""
    import av

    from anonpriv.data.video_io import default_video_codec

    rng = np.random.default_rng(0)
    background = (rng.random((size // 8, size // 8, 3)) * 200).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    yy, xx = np.mgrid[0:size, 0:size]
    side = size // 4
    with av.open(str(path), "w") as container:
        stream = container.add_stream(default_video_codec(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for i in range(frames):
            image = background.copy()
            image[..., 1] = (image[..., 1].astype(np.int32) + 2 * i) % 256
            x0, y0 = (3 * i) % (size - side), (2 * i) % (size - side)
            inside = (xx >= x0) & (xx < x0 + side) & (yy >= y0) & (yy < y0 + side)
            image[inside] = (250, 220, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def variants(quick: bool) -> list[tuple[str, str, list[str]]]:
    """``(row name, clip size the model sees, anonpriv anonymize arguments)``."""
    # speed_config: untrained (pretrained_file=None, passed as `null`), so no weights file is needed.
    config = speed_config("token_pruning") | {"num_actions": NUM_ACTIONS, "num_privacy": NUM_PRIVACY}
    token_args = ["--method", "token_pruning"]
    for key, value in config.items():
        token_args += ["--method-arg", f"{key}={json.dumps(value)}"]  # JSON is YAML, as the option reads it
    frames = 8 if quick else 16
    _, height, width = config_clip_shape()  # the config's 64 px frames
    config_args = token_args + ["--clip-shape", str(frames), str(height), str(width)]
    # At 112 px: the tubelet that keeps the config's grid (4 x 14 x 14 -> 4 x 8 x 8 = 256 tubelets).
    full_tubelet = tubelet_like_config([frames, 112, 112])
    full_args = token_args + ["--clip-shape", str(frames), "112", "112",
                              "--method-arg", f"tubelet={json.dumps(full_tubelet)}"]
    config_input = f"{frames}x{height}x{width}"
    rows = [
        ("raw (decode + encode only)", "native", ["--method", "raw"]),
        ("token_pruning, tiny config (untrained)", config_input, config_args),
        (f"token_pruning, tiny model at 112 px ({'x'.join(map(str, full_tubelet))} tubelets)", f"{frames}x112x112",
         full_args),
    ]
    cores = default_cpu_threads() + 1
    if not quick and cores > 1:  # what the command's thread default buys over letting the model take every core
        rows.append((f"token_pruning, tiny config, --threads {cores} (every core)", config_input,
                     config_args + ["--threads", str(cores)]))
    return rows


# -- the measuring process ------------------------------------------------------------------------------
def max_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``. (``getrusage``'s ``ru_maxrss`` survives ``exec``, so a
    child started from a big parent would report the parent's peak.) Elsewhere ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def measure(video: str, output: str, arguments: list[str], repeats: int) -> dict:
    """Warm up once, then time ``repeats`` whole ``anonpriv anonymize`` calls in this process."""
    import contextlib
    import io

    import torch

    from anonpriv.anonymize.cli import main as anonymize_main
    from anonpriv.data.video_io import probe_video

    video, output = Path(video), Path(output)
    baseline = max_rss_mb()
    command = [str(video), "--output", str(output), "--overwrite", "--device", "cpu"] + arguments
    times = []
    for attempt in range(repeats + 1):
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()) as messages:  # progress bar and summary
            status = anonymize_main(command)
        if status != 0:
            raise RuntimeError(f"anonpriv anonymize {' '.join(command)} failed:\n{messages.getvalue()}")
        if attempt:  # the first call is the warm-up
            times.append(time.perf_counter() - start)
    frames = probe_video(output / (video.stem + ".mp4")).num_frames
    return {"seconds": statistics.median(times), "frames": frames, "peak_rss_mb": max_rss_mb(),
            "baseline_rss_mb": baseline, "threads": torch.get_num_threads()}


def measure_in_new_process(name: str, request: dict) -> dict:
    """:func:`measure` in a fresh Python process, so the peak memory is this variant's alone."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.end_to_end_anonymize", "--measure", json.dumps(request)],
        cwd=REPO_ROOT, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO_ROOT)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name}: the measuring process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the driver ---------------------------------------------------------------------------------------------
def run(quick: bool = False, frames: int = 300, repeats: int = 3) -> str:
    frames, repeats = (40, 1) if quick else (frames, repeats)
    rows = []
    with tempfile.TemporaryDirectory(prefix="anonpriv-e2e-") as folder:
        video = Path(folder) / "walk.mp4"
        write_moving_video(video, frames)
        for name, clip, arguments in variants(quick):
            request = {"video": str(video), "output": str(Path(folder) / "out"), "arguments": arguments,
                       "repeats": repeats}
            numbers = measure(**request) if quick else measure_in_new_process(name, request)
            fps = numbers["frames"] / numbers["seconds"]
            rows.append([name, clip, numbers["frames"], fmt(numbers["seconds"], 2), fmt(fps),
                         f"{fps / REAL_TIME_FPS:.1f}x",
                         fmt(numbers["peak_rss_mb"], 0), fmt(numbers["peak_rss_mb"] - numbers["baseline_rss_mb"], 0)])
    title = (f"### End-to-end `anonpriv anonymize` (112x112, {frames} frames at {REAL_TIME_FPS} fps, libx264; "
             f"median of {repeats} after a warm-up, CPU)\n\nMachine: {machine_line()}\n\n")
    return title + markdown_table(
        ["method", "model input", "frames", "s / video", "frames/s", "x real time", "peak RSS MiB",
         "peak above imports MiB"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0], repeats=3)
    parser.add_argument("--frames", type=int, default=300, help="frames of the generated video")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # JSON request: run inside the measuring process
    args = parser.parse_args(argv)
    if args.measure:  # inside the measuring process
        print(json.dumps(measure(**json.loads(args.measure))))
        return 0
    if args.devices and args.devices != ["cpu"]:
        parser.error("this benchmark measures the command on the CPU only.")
    emit(run(args.quick, args.frames, args.repeats), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
