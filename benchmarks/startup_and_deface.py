"""Benchmark: start-up cost of ``anonpriv``, and ``anonpriv anonymize`` end to end against ``deface``.

Everything is a whole process, as a user runs it, measured side by side in one run (round-robin,
median of the repeats): wall time from start to exit and peak resident memory (the largest
process of the command's tree, ``wait4``'s ``ru_maxrss``). Each command is started by a tiny
launcher process (``python -S``), so no process of this benchmark lends it its own memory.

Start-up (first table), each against ``python -c "import torch"`` in the same run:

* ``import anonpriv.anonymize`` (the command's module: no torch until a video is processed);
* everything ``anonpriv anonymize --method blur`` imports and builds before its first frame
  (``load_anonymizer("blur", None)``), and the same for the tiny token-pruning model;
* ``anonpriv anonymize --help`` and ``anonpriv --help``.

The imports column says whether the process imported torch and Lightning (from the untimed
warm-up round, run under ``python -X importtime``, so the timed runs carry no tracing).

End to end (second table): 224 x 224 clips of a real face (scikit-image's ``astronaut``
photograph, head and shoulders, slowly panning; 30 fps, libx264) of 64 and 640 frames. Each
training-free method registered in :data:`anonpriv.methods.catalog.CATALOG` (``raw``, ``blur``,
``downsample``, and ``face_blur`` where it is registered) and the tiny token-pruning model (the
``configs/method/token_pruning.yaml`` settings on the default data config's 16 x 64 x 64 clips:
frames are resized to 64 px and the kept-tubelet mask upsampled back to 224 px; untrained weights,
which run at the same speed) anonymize the clip with the command's defaults (libx264 CRF 18,
batch 4, on the CPU). ``deface`` runs with its defaults (CenterFace face detection + blur,
libx264). The ratio is deface's wall time over the method's: above 1 the method is faster. Without
``deface`` installed (``pip install 'anonpriv[benchmarks]'``) its rows say "skipped".

    python -m benchmarks.startup_and_deface [--quick] [--repeats 3] [--long-repeats 1] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import emit, fmt, machine_line, markdown_table

CLIP_SIZE = 224
FPS = 30
SHORT_FRAMES, LONG_FRAMES = 64, 640
# The goals of issue 16 (printed beside the figures; nothing here fails when one is missed).
IMPORT_ALLOWANCE_S = 1.5  # the command's imports: at most `import torch` + this
HELP_LIMIT_S = 1.5
MEMORY_ALLOWANCE_MIB = 150  # peak of a training-free method: at most `import torch` + this
SPEEDUP_GOALS = {SHORT_FRAMES: 1.5, LONG_FRAMES: 2.0}
TRAINING_FREE = ("raw", "blur", "downsample", "face_blur")
TRACED = ("torch", "lightning")  # the start-up table says which of these each process imports

# Runs one command (argv[2:]) and reports its wall time and peak memory as JSON on the file
# descriptor argv[1].
# `python -S`: no site-packages, so the launcher itself stays a few MiB (a child's ru_maxrss
# starts from the memory of the process that started it).
LAUNCHER = """
import os, sys, time, json
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
os.write(int(sys.argv[1]), json.dumps({"seconds": wall, "peak_kib": usage.ru_maxrss, "status": os.waitstatus_to_exitcode(status)}).encode())
"""


# -- measuring one process ------------------------------------------------------------------------
def run_process(command: list[str], cwd: Path, log: Path) -> dict:
    """Run ``command`` in ``cwd`` through the launcher: ``{"seconds", "peak_mib", "status"}``;
    its stdout and stderr go to ``log``."""
    read, write = os.pipe()
    try:
        with open(log, "wb") as output:
            process = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(write), *command], cwd=cwd,
                                       stdout=output, stderr=subprocess.STDOUT, pass_fds=(write,))
            os.close(write)
            write = -1
            report = b""
            while chunk := os.read(read, 4096):
                report += chunk
            process.wait()
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
    if not report:
        raise RuntimeError(f"the launcher of {' '.join(command)} reported nothing:\n{log.read_text()[-2000:]}")
    result = json.loads(report)
    return {"seconds": result["seconds"], "peak_mib": result["peak_kib"] / 1024, "status": result["status"]}


def measure_round_robin(commands: dict[str, list[str]], repeats: int, cwd: Path, warmup: bool = True,
                        trace: bool = False) -> dict:
    """Each command ``repeats`` times, one of each per round, after one untimed round that warms
    the file cache when ``warmup``: ``{name: {"seconds": median, "peak_mib": median, "low", "high"}}``.
    With ``trace`` (Python commands only) the first round runs under ``python -X importtime`` and
    ``"imports"`` lists which of :data:`TRACED` each command imported (that round is the warm-up,
    or counted when there is none: then its time includes the tracing). A command that fails
    raises with the end of its output."""
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    imports: dict[str, list[str]] = {}
    for round_ in range(repeats + (1 if warmup else 0)):
        for index, (name, command) in enumerate(commands.items()):
            log = cwd / f"command_{index}.log"
            traced = trace and round_ == 0
            result = run_process([command[0], "-X", "importtime", *command[1:]] if traced else command, cwd, log)
            output = log.read_text(errors="replace")
            if result["status"] != 0:
                raise RuntimeError(f"{name}: `{' '.join(command)}` exited with {result['status']}:\n{output[-3000:]}")
            if traced:
                names = {line.rsplit("|", 1)[-1].strip() for line in output.splitlines()
                         if line.startswith("import time:")}
                imports[name] = [module for module in TRACED if module in names]
            if round_ or not warmup:
                runs[name].append(result)
    summary = {}
    for name, results in runs.items():
        seconds = [r["seconds"] for r in results]
        summary[name] = {"seconds": statistics.median(seconds), "low": min(seconds), "high": max(seconds),
                         "peak_mib": statistics.median(r["peak_mib"] for r in results)}
        if name in imports:
            summary[name]["imports"] = imports[name]
    return summary


# -- the clip -------------------------------------------------------------------------------------------
def write_face_clip(path: Path, frames: int, size: int = CLIP_SIZE, fps: int = FPS) -> None:
    """``frames`` frames of scikit-image's ``astronaut`` photograph (a real face; head and
    shoulders, a 240-px window panning slowly over it), ``size`` x ``size``, libx264 (``mpeg4``
    when this PyAV build lacks it)."""
    import av
    from skimage import data

    from anonpriv.data.video_io import default_video_codec

    photo = np.ascontiguousarray(data.astronaut())  # 512 x 512 RGB
    window = 240
    with av.open(str(path), "w") as container:
        stream = container.add_stream(default_video_codec(), rate=Fraction(fps))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            dy = int(round(8 * np.sin(2 * np.pi * i / 70)))
            dx = int(round(16 * np.sin(2 * np.pi * i / 90)))
            crop = np.ascontiguousarray(photo[8 + dy: 8 + dy + window, 104 + dx: 104 + dx + window])
            frame = av.VideoFrame.from_ndarray(crop, format="rgb24").reformat(width=size, height=size)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


# -- what is measured ----------------------------------------------------------------------------------
def anonpriv_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "anonpriv", *arguments]


def token_pruning_arguments(quick: bool = False) -> list[str]:
    """``--method token_pruning`` with the config's settings (untrained) on the config's clips."""
    from benchmarks.anonymize_throughput import NUM_ACTIONS, NUM_PRIVACY, config_clip_shape, speed_config

    config = speed_config("token_pruning") | {"num_actions": NUM_ACTIONS, "num_privacy": NUM_PRIVACY}
    arguments = ["--method", "token_pruning"]
    for key, value in config.items():
        arguments += ["--method-arg", f"{key}={json.dumps(value)}"]  # JSON is YAML, as the option reads it
    frames, height, width = config_clip_shape()
    return arguments + ["--clip-shape", str(8 if quick else frames), str(height), str(width)]


def training_free_methods() -> list[str]:
    from anonpriv.methods.catalog import CATALOG

    return [name for name in TRAINING_FREE if name in CATALOG]


def method_available(name: str) -> str | None:
    """None when ``--method name`` can run here, else why not (an optional extra that is missing)."""
    if name == "face_blur":
        try:
            from anonpriv.faces import faces_available
        except ImportError:
            return "needs anonpriv.faces"
        return None if faces_available() else "needs the optional extra `faces`"
    return None


def deface_executable() -> str | None:
    """The ``deface`` command beside this Python, else on the PATH; None when not installed."""
    beside = Path(sys.executable).with_name("deface")
    return str(beside) if beside.is_file() else shutil.which("deface")


def startup_commands(quick: bool) -> dict[str, list[str]]:
    python = sys.executable
    token = token_pruning_arguments(quick)
    token_kwargs = {token[i + 1].split("=", 1)[0]: token[i + 1].split("=", 1)[1]
                    for i in range(len(token) - 1) if token[i] == "--method-arg"}
    clip_shape = [int(v) for v in token[token.index("--clip-shape") + 1:][:3]]
    build_token = ("import yaml; from anonpriv.anonymize.cli import load_anonymizer; "
                   f"load_anonymizer('token_pruning', None, {{k: yaml.safe_load(v) for k, v in {token_kwargs!r}.items()}}, "
                   f"{clip_shape!r})")
    return {
        "`import torch` (reference)": [python, "-c", "import torch"],
        "`import anonpriv.anonymize`": [python, "-c", "import anonpriv.anonymize"],
        "anonymize imports + build, `--method blur`": [
            python, "-c", "from anonpriv.anonymize.cli import load_anonymizer; load_anonymizer('blur', None)"],
        "anonymize imports + build, tiny token pruning": [python, "-c", build_token],
        "`anonpriv anonymize --help`": anonpriv_command("anonymize", "--help"),
        "`anonpriv --help`": anonpriv_command("--help"),
    }


def startup_table(quick: bool, repeats: int, folder: Path) -> tuple[str, dict]:
    commands = startup_commands(quick)
    numbers = measure_round_robin(commands, repeats, folder, warmup=not quick, trace=True)
    torch_row = numbers["`import torch` (reference)"]
    rows = []
    for name in commands:
        n = numbers[name]
        modules = n["imports"]
        rows.append([name, fmt(n["seconds"], 2), f"{fmt(n['low'], 2)}-{fmt(n['high'], 2)}",
                     f"{n['seconds'] / torch_row['seconds']:.2f}x", f"{n['seconds'] - torch_row['seconds']:+.2f}",
                     fmt(n["peak_mib"], 0), ", ".join(modules) or "neither"])
    table = markdown_table(["process", "wall s (median)", "range s", "vs import torch", "s over import torch",
                            "peak RSS MiB", "imports torch / lightning"], rows)
    return table, numbers


def end_to_end_variants(quick: bool) -> tuple[dict[str, list[str]], list[str]]:
    """``{row name: anonpriv anonymize arguments}`` and a line for each method that cannot run here
    (``quick``: ``raw`` and token pruning only)."""
    variants: dict[str, list[str]] = {}
    skipped: list[str] = []
    for name in ["raw"] if quick else training_free_methods():
        reason = method_available(name)
        if reason:
            skipped.append(f"`--method {name}`: skipped ({reason})")
        else:
            variants[f"`--method {name}`"] = ["--method", name]
    variants["tiny token pruning (16x64x64 clips)"] = token_pruning_arguments(quick)
    return variants, skipped


def end_to_end_rows(frames: int, numbers: dict[str, dict]) -> list[list]:
    """Table rows for one clip length from :func:`measure_round_robin`'s numbers (``deface``
    among them when it ran)."""
    reference = numbers.get("deface")
    goal = SPEEDUP_GOALS.get(frames)
    rows = []
    for name, n in numbers.items():
        if name == "deface":
            ratio, met = "1.00x (reference)", "-"
        elif reference is None:
            ratio, met = "skipped (deface not installed)", "-"
        else:
            speedup = reference["seconds"] / n["seconds"]
            ratio = f"{speedup:.2f}x"
            met = "-" if goal is None else f"{goal}x: {'yes' if speedup >= goal else 'no'}"
        rows.append([name, frames, fmt(n["seconds"], 2), fmt(frames / n["seconds"], 1), fmt(n["peak_mib"], 0),
                     ratio, met])
    if reference is None:
        rows.append(["deface", frames, "skipped", "-", "-", "-", "-"])
    return rows


def end_to_end_table(quick: bool, repeats: int, long_repeats: int, folder: Path) -> tuple[str, list[str], dict]:
    variants, notes = end_to_end_variants(quick)
    deface = deface_executable()
    if deface is None:
        notes.append("deface: skipped (not installed; `pip install 'anonpriv[benchmarks]'`)")
    lengths = [(16, 1)] if quick else [(SHORT_FRAMES, repeats), (LONG_FRAMES, long_repeats)]
    rows, all_numbers = [], {}
    for frames, rounds in lengths:
        clip = folder / f"face_{frames}.mp4"
        write_face_clip(clip, frames)
        commands = {name: anonpriv_command("anonymize", str(clip), "--output", str(folder / "out"), "--overwrite",
                                           "--device", "cpu", *arguments)
                    for name, arguments in variants.items()}
        if deface is not None:
            commands["deface"] = [deface, str(clip), "--output", str(folder / "out" / f"deface_{frames}.mp4")]
        # no warm-up round: the start-up table's runs have brought the libraries into the file cache
        all_numbers[frames] = measure_round_robin(commands, rounds, folder, warmup=False)
        rows += end_to_end_rows(frames, all_numbers[frames])
    table = markdown_table(["command", "frames", "wall s (median)", "frames/s", "peak RSS MiB",
                            "speed vs deface (deface s / this s)", "goal met"], rows)
    return table, notes, all_numbers


def goal_lines(startup: dict, end_to_end: dict) -> list[str]:
    """One line per goal of issue 16 with the measured figure."""
    torch_row = startup["`import torch` (reference)"]
    lines = []
    build = startup["anonymize imports + build, `--method blur`"]
    over = build["seconds"] - torch_row["seconds"]
    lines.append(f"imports of `anonpriv anonymize --method blur`: import torch + {over:.2f} s "
                 f"(goal: + {IMPORT_ALLOWANCE_S} s at most: {'met' if over <= IMPORT_ALLOWANCE_S else 'not met'})")
    help_s = startup["`anonpriv anonymize --help`"]["seconds"]
    lines.append(f"`anonpriv anonymize --help`: {help_s:.2f} s (goal: under {HELP_LIMIT_S} s: "
                 f"{'met' if help_s < HELP_LIMIT_S else 'not met'})")
    for frames, numbers in end_to_end.items():
        if "deface" in numbers:
            ceiling = numbers["deface"]["seconds"] / torch_row["seconds"]
            lines.append(f"{frames} frames: deface takes {numbers['deface']['seconds']:.2f} s, `import torch` alone "
                         f"{torch_row['seconds']:.2f} s: no command that imports torch can beat deface by more "
                         f"than {ceiling:.2f}x here (goal: {SPEEDUP_GOALS.get(frames, '-')}x)")
        for name, n in numbers.items():
            if name.startswith("`--method") and name != "`--method face_blur`":
                extra = n["peak_mib"] - torch_row["peak_mib"]
                lines.append(f"peak memory of {name} on {frames} frames: import torch + {extra:.0f} MiB (goal: "
                             f"+ {MEMORY_ALLOWANCE_MIB} MiB at most: {'met' if extra <= MEMORY_ALLOWANCE_MIB else 'not met'})")
    return lines


def run(quick: bool = False, repeats: int = 3, long_repeats: int = 1) -> str:
    if quick:
        repeats = long_repeats = 1
    with tempfile.TemporaryDirectory(prefix="anonpriv-startup-") as name:
        folder = Path(name)
        (folder / "out").mkdir()
        startup, startup_numbers = startup_table(quick, repeats, folder)
        end_to_end, notes, e2e_numbers = end_to_end_table(quick, repeats, long_repeats, folder)
    lengths = "16 frames (quick)" if quick else f"{SHORT_FRAMES} frames (median of {repeats}) and {LONG_FRAMES} " \
                                                f"frames (median of {long_repeats})"
    parts = [
        f"### Start-up of `anonpriv` (fresh processes, median of {repeats}"
        f"{' (traced: numbers mean little)' if quick else ' after a warm-up'})\n\nMachine: {machine_line()}",
        startup,
        f"### `anonpriv anonymize` vs `deface`, end to end (224x224 face clip, {lengths}, whole processes, CPU)",
        end_to_end,
        "Goals (issue 16):\n" + "\n".join(f"* {line}" for line in goal_lines(startup_numbers, e2e_numbers) + notes),
    ]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run each, no warm-up, a 16-frame clip, raw and token pruning only: checks that it runs")
    parser.add_argument("--output", type=Path, help="also write the tables to this markdown file")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each start-up and 64-frame command")
    parser.add_argument("--long-repeats", type=int, default=1, help="timed runs of each 640-frame command")
    args = parser.parse_args(argv)
    emit(run(args.quick, args.repeats, args.long_repeats), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
