"""Benchmark: ``anonpriv anonymize`` on camera-sized footage (issue 28): speed against the PyAV floor
and ``deface``, peak memory against ``import torch`` + the floor, and whether faces stay hidden.

Clips are made here (:mod:`anonpriv.data.hd_footage`: real faces from scikit-image's photographs, 5%
to 55% of the frame height, drifting over a textured background; libx264 CRF 23): 1920 x 1080 and
340 x 256 (Kinetics-sized), and 3840 x 2160 for memory (one run of raw,
face_blur and token pruning). Every row is a whole process, as a user runs
it, measured side by side in one run (round-robin, median of the repeats; the launcher of
:mod:`benchmarks.startup_and_deface` reports wall time and peak resident memory):

* ``import torch``: the reference for memory (the CUDA build's libraries alone are ~650 MiB);
* the **floor**: decode -> RGB -> encode -> mux with plain PyAV in one Python thread, with the
  command's own encoder settings (:class:`~anonpriv.data.video_io.VideoWriter`: libx264 CRF 18,
  preset medium, the encoder's own threads) and nothing else: the cost of the video I/O alone;
* ``anonpriv anonymize --method M`` for raw, blur, downsample, face_blur (footage defaults) and the
  tiny token-pruning model (16 x 64 x 64 clips, mask upsampled to the frame);
* ``deface`` with its defaults (CenterFace at the native size + blur), where installed.

Columns: wall time, the start-up (the same command on a 2-frame clip), frames/s over the whole
process and after the start-up (``(frames - 2) / (wall - start-up)``, against the floor's), the speed
ratio to the floor / to deface (their wall times over this row's: above 1 is faster); peak RSS, and the peak **over** ``import torch`` + (floor - ``import av``), in clips of 16
frames at the clip's size: the memory the command adds beyond what torch and the encoder take
anyway. The face table runs CenterFace (at the face-rate threshold 0.5 and at deface's 0.2) on
every frame before and after face_blur, blur and downsample: frames with a face after, of those
with one before.

    python -m benchmarks.footage [--quick] [--repeats 2] [--output FILE]

(``benchmarks/footage.md`` keeps the latest tables under the notes on how they were reached.)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import benchmark_parser, emit, fmt, machine_line, markdown_table
from benchmarks.startup_and_deface import deface_executable, method_available, run_process, token_pruning_arguments

CLIP_FRAMES = 16  # a clip, the unit of the memory column
STARTUP_FRAMES = 2  # the start-up column: the same command on a clip this short
# The floor in plain PyAV (no anonpriv import: anonpriv.data would bring torch in), with the settings
# VideoWriter gives the command's outputs: libx264 CRF 18 (preset medium), yuv420p, the encoder's own
# threads (thread_type AUTO, thread_count 0), RGB frames converted by the encoder, the input's frame rate.
# Arguments: input, output[, x264 preset].
FLOOR = """
import sys, av
with av.open(sys.argv[1]) as source, av.open(sys.argv[2], "w") as sink:
    video = source.streams.video[0]
    stream = sink.add_stream("libx264", rate=video.average_rate)
    stream.width, stream.height, stream.pix_fmt = video.codec_context.width, video.codec_context.height, "yuv420p"
    options = {"crf": "18", **({"preset": sys.argv[3]} if len(sys.argv) > 3 else {})}
    stream.thread_type, stream.thread_count, stream.options = "AUTO", 0, options
    for index, frame in enumerate(source.decode(video)):
        out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
        out.pts = index
        sink.mux(stream.encode(out))
    sink.mux(stream.encode(None))
"""


def sizes(quick: bool) -> list[tuple[str, int, int, int]]:
    """``(name, width, height, frames)`` of the clips measured."""
    if quick:
        return [("1080p", 1920, 1080, 16), ("340x256", 340, 256, 16)]
    return [("1080p", 1920, 1080, 150), ("340x256", 340, 256, 300), ("4K", 3840, 2160, 32)]


def commands(source: Path, out: Path, quick: bool, methods: list[str], deface: bool = True) -> dict[str, list[str]]:
    python = sys.executable
    rows = {"`import torch`": [python, "-c", "import torch"],
            "`import av`": [python, "-c", "import av, numpy"],
            "floor: PyAV decode + encode": [python, "-c", FLOOR, str(source), str(out / "floor.mp4")]}
    for name in methods:
        reason = method_available(name)
        if reason is None:
            rows[f"`--method {name}`"] = [python, "-m", "anonpriv", "anonymize", str(source), "-o",
                                          str(out / f"{name}.mp4"), "--method", name, "--overwrite"]
    rows["tiny token pruning"] = [python, "-m", "anonpriv", "anonymize", str(source), "-o", str(out / "tp.mp4"),
                                  *token_pruning_arguments(quick), "--overwrite"]
    executable = deface_executable() if deface else None
    if executable:
        rows["deface"] = [executable, str(source), "-o", str(out / "deface.mp4")]
    return rows


def measure(rows: dict[str, list[str]], repeats: int, folder: Path) -> dict[str, dict]:
    """Round-robin runs: ``{row: {"seconds": median, "peak_mib": median}}``."""
    runs: dict[str, list[dict]] = {name: [] for name in rows}
    for _ in range(repeats):
        for index, (name, command) in enumerate(rows.items()):
            log = folder / f"row_{index}.log"
            result = run_process(command, folder, log)
            if result["status"] != 0:
                raise RuntimeError(f"{name}: exited with {result['status']}:\n{log.read_text()[-3000:]}")
            runs[name].append(result)
    return {name: {"seconds": statistics.median(r["seconds"] for r in results),
                   "peak_mib": statistics.median(r["peak_mib"] for r in results)} for name, results in runs.items()}


def speed_table(label: str, width: int, height: int, frames: int, numbers: dict[str, dict],
                startup: dict[str, dict] | None = None) -> str:
    torch_peak, av_peak = numbers["`import torch`"]["peak_mib"], numbers["`import av`"]["peak_mib"]
    floor = numbers["floor: PyAV decode + encode"]
    clip_mib = CLIP_FRAMES * width * height * 3 / 2**20
    allowance = torch_peak + floor["peak_mib"] - av_peak
    deface = numbers.get("deface")
    rows = []
    for name, n in numbers.items():
        if name in ("`import torch`", "`import av`"):
            continue
        rate = frames / n["seconds"]
        over = n["peak_mib"] - allowance
        start = (startup or {}).get(name)
        steady = (frames - STARTUP_FRAMES) / (n["seconds"] - start["seconds"]) if start else None
        floor_steady = ((frames - STARTUP_FRAMES) / (floor["seconds"] - startup["floor: PyAV decode + encode"]["seconds"])
                        if startup else None)
        rows.append([name, fmt(n["seconds"], 1), fmt(start["seconds"], 1) if start else "-", fmt(rate, 1),
                     f"{fmt(steady, 1)} ({steady / floor_steady:.2f}x)" if steady and floor_steady else "-",
                     f"{floor['seconds'] / n['seconds']:.2f}x",
                     f"{deface['seconds'] / n['seconds']:.2f}x" if deface else "n/a", fmt(n["peak_mib"], 0),
                     "-" if name.startswith("floor") or name == "deface" else f"{over:+.0f} ({over / clip_mib:+.1f})"])
    head = (f"**{label}** ({width} x {height}, {frames} frames; a clip of {CLIP_FRAMES} frames is {clip_mib:.0f} MiB; "
            f"`import torch` peaks at {torch_peak:.0f} MiB, the floor at {floor['peak_mib']:.0f} MiB, `import av` "
            f"at {av_peak:.0f} MiB)\n\n")
    return head + markdown_table(["process", "wall s", f"start-up s ({STARTUP_FRAMES} frames)", "frames/s",
                                  "frames/s after start-up (vs floor)", "speed vs floor", "speed vs deface",
                                  "peak RSS MiB", "MiB (clips) over torch + floor"], rows)


def face_table(source: Path, out: Path, methods: list[str], frames_label: str) -> str:
    """Frames with a face (CenterFace) before and after each method's output, at 0.5 and 0.2."""
    import numpy as np

    from anonpriv.data.video_io import iter_frames
    from anonpriv.faces import FaceDetector

    detector = FaceDetector(threshold=0.2)

    def scores(path: Path) -> np.ndarray:  # every 2nd frame, at the native size
        return np.concatenate([detector.max_scores(frame[None]) for i, frame in enumerate(iter_frames(path))
                               if i % 2 == 0])

    before = scores(source)
    rows = []
    for name in methods:
        path = out / f"{name}.mp4"
        if not path.is_file():
            continue
        after = scores(path)
        cells = [f"`{name}`"]
        for threshold in (0.5, 0.2):
            had = before >= threshold
            still = int((after[: len(had)][had[: len(after)]] >= threshold).sum())
            cells.append(f"{still}/{int(had.sum())} ({100 * still / max(1, int(had.sum())):.1f}%)")
        cells.append(f"{after.max():.2f}")
        rows.append(cells)
    head = f"**Faces after anonymization, {frames_label}** (raw: highest score {before.max():.2f})\n\n"
    return head + markdown_table(["method", "frames with a face after / before, threshold 0.5", "same, 0.2",
                                  "highest score after"], rows)


def run(quick: bool = False, repeats: int = 2) -> str:
    from anonpriv.data.hd_footage import write_face_scene

    methods = ["raw", "blur", "downsample", "face_blur"]
    parts = [f"### anonymize on camera-sized footage ({machine_line()})"]
    with tempfile.TemporaryDirectory(prefix="anonpriv-footage-") as folder:
        folder = Path(folder)
        for label, width, height, frames in sizes(quick):
            source = write_face_scene(folder / f"{label}.mp4", frames, width, height)
            out = folder / f"out_{label}"
            out.mkdir()
            big = label == "4K"  # memory only: one run, no blur / downsample / deface (minutes at 4K)
            rows = commands(source, out, quick, ["raw", "face_blur"] if big else methods, deface=not big)
            numbers = measure(rows, 1 if quick or big else repeats, folder)
            startup = None
            if not big:  # each command on a 2-frame clip: its start-up, to tell it from the per-frame cost
                short = write_face_scene(folder / f"{label}_short.mp4", STARTUP_FRAMES, width, height)
                (folder / f"short_{label}").mkdir()
                startup = measure(commands(short, folder / f"short_{label}", quick, methods), 1 if quick else repeats,
                                  folder)
            parts.append(speed_table(label, width, height, frames, numbers, startup))
            if not big:
                parts.append(face_table(source, out, [m for m in methods if m != "raw"], f"{label}, every 2nd frame"))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__.splitlines()[0], repeats=2)
    args = parser.parse_args(argv)
    emit(run(args.quick, args.repeats), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
