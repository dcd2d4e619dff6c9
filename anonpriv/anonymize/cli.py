"""``anonpriv anonymize``: run an anonymizer over whole video files and write anonymized videos.

    anonpriv anonymize INPUT --output OUT (--checkpoint CKPT | --method NAME [--method-arg KEY=VALUE ...])

``INPUT`` is a video file or a folder (searched recursively; sub-folders are mirrored under
``OUT``; :mod:`~anonpriv.anonymize.jobs`). Each output keeps the input's frame count, timestamps and
size (:mod:`~anonpriv.anonymize.writer`). The method runs on windows of its clip length
(:mod:`~anonpriv.anonymize.windows`) with the sliding-clip engine
(:mod:`~anonpriv.anonymize.engine`), while decoding and encoding run in their own threads
(:mod:`~anonpriv.anonymize.streams`). On the CPU the model gets ``--threads`` intra-op threads, by
default one fewer than the cores (:func:`default_cpu_threads`), so that the decoder and the encoder
keep a core. With ``--face-audit``, each input and output is checked for faces afterwards (frames
with a face before and after, ``<output>.faces.json`` per video and a summary;
:mod:`anonpriv.face_audit`).

Resuming: a file at an output path is always finished. Beside each output a record
``<stem>.anonpriv.json`` says which input (size and a fingerprint of its content) and which request
(method and options, checkpoint hash, clip shape, encoder settings) it was written from
(:mod:`anonpriv.anonymize.records`). A rerun skips an output whose record matches (and whose mask
file exists, when asked); an existing output with no record or a different one is refused before
anything is written, naming both sources and the fix (``--overwrite`` redoes it, or another
``--output``). Inputs that would share an output are refused before anything is written, and so
are encoder settings that fail a test encode. Failures: ``--on-error raise`` (default) stops at the
first unreadable video; ``skip`` goes on and lists the failures at the end (exit status 1).
``--shard K/N`` writes one of N disjoint parts of the inputs (:mod:`anonpriv.anonymize.shards`).

This module imports no torch: the parser, ``--help`` and the argument checks answer without it.
torch, the method and the modules that run it (engine, writer, progress) are imported by the
functions that run a request.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from anonpriv.anonymize.errors import AnonymizeError, VideoWriteError, first_line
from anonpriv.anonymize.footage import footage_options, weak_setting
from anonpriv.anonymize.jobs import TRUNCATED_TAG, Job, OutputCollision, plan_jobs
from anonpriv.anonymize.records import Request, ResumeState, file_hash
from anonpriv.anonymize.shards import ShardError, parse_shard, shard_of
from anonpriv.anonymize.windows import DEFAULT_CLIP_FRAMES
from anonpriv.cores import usable_cores
from anonpriv.data.video_io import (
    VideoReadError,
    codec_available,
    default_video_codec,
    probe_video,
)

if TYPE_CHECKING:
    import torch

#: share of the frames with a face before in which one may remain after, without a warning
AUDIT_TOLERANCE = 0.01


# -- the method --------------------------------------------------------------------------------
def parse_method_args(items: list[str] | None) -> dict:
    """``["sigma=2.0", "kernel_size=5"]`` -> ``{"sigma": 2.0, "kernel_size": 5}`` (values read as YAML)."""
    kwargs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AnonymizeError(f"--method-arg {item!r}: write KEY=VALUE, e.g. --method-arg sigma=2.0")
        kwargs[key.strip()] = yaml.safe_load(value)
    return kwargs


def load_anonymizer(method: str | None, checkpoint: str | None, method_args: dict | None = None,
                    clip_shape: list[int] | None = None, device: str | torch.device = "cpu"):
    """The anonymizer of a trained method from ``checkpoint`` or of a fresh registered ``method``
    built with ``method_args``; ``clip_shape`` overrides the method's. Returned in eval mode on
    ``device``. A registered method's anonymizer is built alone, with torch alone (no Lightning):
    :func:`~anonpriv.methods.registry.build_anonymizer`,
    :func:`~anonpriv.methods.registry.load_checkpoint_anonymizer`; any other class path gets its
    whole method."""
    from anonpriv.methods.registry import build_anonymizer, load_checkpoint_anonymizer

    if (method is None) == (checkpoint is None):
        raise AnonymizeError("give exactly one of --checkpoint (a trained method) or --method (a registered name).")
    if checkpoint is not None:
        if method_args:
            raise AnonymizeError("--method-arg applies to --method only; a checkpoint carries its own settings.")
        try:
            with open(checkpoint, "rb") as handle:
                magic = handle.read(4)
            if not (magic.startswith(b"PK\x03\x04") or magic.startswith(b"\x80")):  # torch.save: zip or pickle
                raise AnonymizeError(f"--checkpoint {checkpoint}: not a PyTorch checkpoint (neither a zip archive "
                                     "nor a pickle). Give a .ckpt written by `anonpriv fit`.")
            model = load_checkpoint_anonymizer(checkpoint, map_location="cpu")
        except (FileNotFoundError, AnonymizeError):
            raise
        except Exception as error:  # random bytes, a file cut short, a torch file anonpriv did not write, ...
            raise AnonymizeError(
                f"--checkpoint {checkpoint}: cannot load a method from it ({type(error).__name__}: "
                f"{first_line(error)}). Give a .ckpt written by `anonpriv fit`; if it is one, it is damaged or "
                "incomplete: copy it again.") from error
    else:
        kwargs = dict(method_args or {})
        if clip_shape is not None:
            kwargs.setdefault("clip_shape", list(clip_shape))
        try:
            model = build_anonymizer(method, **kwargs)
        except (ValueError, TypeError) as error:  # unknown name or bad --method-arg
            raise AnonymizeError(f"--method {method}: {error}") from error
    if clip_shape is not None:
        model.clip_shape = list(clip_shape)
    return model.eval().to(device)


def method_label(method) -> str:
    """What messages call a method: its class name (the anonymizer alone,
    :class:`~anonpriv.methods.registry.MethodAnonymizer`, carries its method's)."""
    return getattr(method, "method_name", None) or type(method).__name__


# -- the command line ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anonpriv anonymize",
        description="Write anonymized copies of video files (same frame count, fps and size).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="a video file or a folder of videos (searched recursively)")
    parser.add_argument("--output", "-o", type=Path, required=True,
                        help="output folder (or output file name when INPUT is a file)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="a .ckpt written by `anonpriv fit`")
    which.add_argument("--method", help="a registered training-free method, e.g. raw, blur, downsample")
    parser.add_argument("--method-arg", action="append", metavar="KEY=VALUE",
                        help="option of --method (repeatable), e.g. --method-arg sigma=4")
    parser.add_argument("--clip-shape", type=int, nargs=3, metavar=("T", "H", "W"),
                        help="window length and frame size the method sees (default: the method's clip_shape; "
                             f"a method without one sees {DEFAULT_CLIP_FRAMES} frames at the native size)")
    parser.add_argument("--batch-size", type=int,
                        help="windows per forward pass (default: as many as fit in 64 MiB of frames, at most 4: "
                             "4 for small frames, 1 at 1080p; raise it on a GPU)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda when available)")
    parser.add_argument("--threads", type=int,
                        help="model threads on the CPU (default: the cores less one, which decoding and encoding use)")
    parser.add_argument("--codec", default=default_video_codec(), help="video encoder (libx264, mpeg4, ffv1, ...)")
    parser.add_argument("--crf", type=float, default=18, help="constant quality for libx264/libx265/VP9 (lower is better)")
    parser.add_argument("--bitrate", type=int, help="target bits/s instead of --crf")
    parser.add_argument("--pix-fmt", help="pixel format (default: yuv420p, yuv444p for odd sizes)")
    parser.add_argument("--codec-option", action="append", metavar="KEY=VALUE",
                        help="encoder option passed through (repeatable), e.g. --codec-option preset=veryfast")
    parser.add_argument("--suffix", default=".mp4", help="container of the outputs, by file suffix")
    parser.add_argument("--copy-audio", action="store_true", help="copy the input's audio track")
    parser.add_argument("--save-masks", action="store_true",
                        help="write <output>.masks.npz with the kept-tubelet mask of every clip")
    parser.add_argument("--face-audit", action="store_true",
                        help="count frames with a face before and after (CenterFace; pip install 'anonpriv[faces]'): "
                             "<output>.faces.json per video and a summary")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo videos whose outputs already exist (by default an output counts as done only when "
                             "its .anonpriv.json record names the same input, method and settings; any other "
                             "existing output is refused)")
    parser.add_argument("--shard", metavar="K/N",
                        help="write only shard K of N of the inputs (1-based; e.g. one SLURM array task each): a "
                             "video's shard follows from its path alone, so N jobs write every video exactly once")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                        help="stop at an unreadable video, or skip it and list it at the end")
    parser.add_argument("--allow-truncated", action="store_true",
                        help=f"keep the frames of an input that ends early as <name>{TRUNCATED_TAG}<suffix> "
                             "(by default it fails and nothing is written for it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``anonpriv anonymize``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.shard is not None:
            parse_shard(args.shard)  # a bad value fails at once, before the model is built
        return run(args)
    except (AnonymizeError, ShardError, VideoReadError, OSError) as error:
        if os.environ.get("ANONPRIV_DEBUG"):
            raise
        print(f"anonpriv anonymize: error: {error}", file=sys.stderr)
        return 1


# -- threads and device --------------------------------------------------------------------------
def default_cpu_threads() -> int:
    """Intra-op threads for a model on the CPU: one core fewer than this process may use (at least
    one). Decoding and encoding run beside the model in their own threads, and PyTorch's OpenMP
    threads spin while they wait for each other, so a model that takes every core fights the decoder
    and the encoder for them: on 2 cores that made the tiny token-pruning model many times slower
    (``benchmarks/end_to_end_anonymize.py``)."""
    return max(1, usable_cores() - 1)


@contextlib.contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(count)`` (``None``: unchanged), then restore."""
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _device(name: str) -> str:
    """``--device`` checked: a device PyTorch knows and this machine has."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise AnonymizeError(f"--device {name}: not a device name; use cpu, cuda, cuda:1, ... or auto.") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AnonymizeError(f"--device {name}: PyTorch sees no CUDA GPU on this machine; use --device cpu "
                                 "(or auto, which takes a GPU when there is one).")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise AnonymizeError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                                 f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AnonymizeError(f"--device {name}: MPS is not available here; use --device cpu.")
    return name


# -- the run -------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """Run a parsed request on its device, with the model's threads set for the CPU."""
    # glibc's own malloc settings: an earlier fixed 64 KiB mmap threshold kept 224-px runs flat when
    # windows were lists of frames, but at 1080p it made every frame buffer a fresh mapping (page faults:
    # 2x the system time, 1.2-1.3x the wall time); with one array per window memory stays flat without
    # it (benchmarks/footage.md).
    import torch

    device = _device(args.device)
    if args.threads is not None and args.threads < 1:
        raise AnonymizeError(f"--threads {args.threads} must be at least 1.")
    on_cpu = torch.device(device).type == "cpu"
    with intra_op_threads((args.threads or default_cpu_threads()) if on_cpu else args.threads):
        return _run(args, device)


def weak_on_audit(audits, method: str) -> str | None:
    """A warning when, after ``method``, the face audit still finds a face in more than
    :data:`AUDIT_TOLERANCE` of the frames that had one before (the method is weak on this footage)."""
    before = sum(audit.faces_before for audit in audits)
    after = sum(audit.faces_after for audit in audits)
    if before == 0 or after <= AUDIT_TOLERANCE * before:
        return None
    return (f"after {method} the face detector still finds a face in {after} frame(s), {100 * after / before:.1f}% "
            f"of the {before} that had one: {method} is weak on this footage; use a stronger setting "
            "(--method-arg) or another method, and look at the frames the .faces.json files list.")


def build_request(args: argparse.Namespace, method_args: dict, suffix: str) -> Request:
    """What decides the content of this run's outputs, for their records and the resume rule."""
    checkpoint = None
    if args.checkpoint is not None:
        path = Path(args.checkpoint)
        checkpoint = {"path": str(path.resolve()), "hash": file_hash(path)}
    write = {"codec": args.codec, "crf": args.crf, "bitrate": args.bitrate, "pix_fmt": args.pix_fmt,
             "codec_options": parse_method_args(args.codec_option), "copy_audio": args.copy_audio, "suffix": suffix}
    return Request(method=args.method, method_args=dict(method_args), checkpoint=checkpoint,
                   clip_shape=list(args.clip_shape) if args.clip_shape else None, write=write)


def _run(args: argparse.Namespace, device: str) -> int:
    import torch

    from anonpriv.anonymize.engine import SlidingClipAnonymizer
    from anonpriv.anonymize.progress import FolderProgress, note
    from anonpriv.anonymize.writer import (
        WriteOptions,
        anonymize_video,
        check_write_options,
    )

    if not codec_available(args.codec):
        raise AnonymizeError(f"--codec {args.codec}: not available in this PyAV build; try libx264, mpeg4 or ffv1.")
    method_args, footage_defaults = footage_options(args.method, parse_method_args(args.method_arg))
    method = load_anonymizer(args.method, args.checkpoint, method_args, args.clip_shape, device)
    anonymizer = SlidingClipAnonymizer(method, batch_size=args.batch_size, device=device)
    if args.save_masks and not anonymizer.layout.has_tubelet_mask:
        raise AnonymizeError(f"--save-masks: {method_label(method)} returns no tubelet_mask to save; drop the flag.")
    if args.face_audit:  # the detector is an optional extra: refuse before writing anything
        from anonpriv.faces import FacesExtraMissing, require_faces
        try:
            require_faces()
        except FacesExtraMissing as error:
            raise AnonymizeError(f"--face-audit: {error}") from error
    options = WriteOptions(codec=args.codec, crf=args.crf, bitrate=args.bitrate, pix_fmt=args.pix_fmt,
                           codec_options={k: str(v) for k, v in parse_method_args(args.codec_option).items()},
                           copy_audio=args.copy_audio)
    suffix = args.suffix if args.suffix.startswith(".") else "." + args.suffix
    check_write_options(options, suffix)
    failures: list[str] = []
    shard = parse_shard(args.shard) if args.shard is not None else None

    def in_this_shard(job: Job) -> bool:
        if shard is None:
            return True
        relative = job.source.relative_to(args.input) if args.input.is_dir() else job.source.name
        return shard_of(relative, shard[1]) == shard[0]

    try:
        jobs = plan_jobs(args.input, args.output, suffix, args.save_masks)
    except OutputCollision as collision:
        if args.on_error == "raise":
            raise
        jobs = [job for job in collision.jobs if job not in collision.reasons]
        failures.extend(f"{job.source}: {reason}" for job, reason in collision.reasons.items()
                        if in_this_shard(job))
    if shard is not None:
        total = len(jobs)
        jobs = [job for job in jobs if in_this_shard(job)]
        print(f"anonpriv anonymize: shard {shard[0]}/{shard[1]}: {len(jobs)} of {total} video(s)", file=sys.stderr)
    request = build_request(args, method_args, suffix)
    todo, conflicts = [], []
    for job in jobs:
        state = ResumeState("todo") if args.overwrite else job.resume(request)
        if state.kind == "todo":
            todo.append(job)
        elif state.kind == "conflict":
            conflicts.append((job, state.reason))
    if conflicts:
        if args.on_error == "raise":  # before anything is written
            more = f" (and {len(conflicts) - 1} more output(s) like it)" if len(conflicts) > 1 else ""
            raise AnonymizeError(conflicts[0][1] + more)
        failures.extend(f"{job.source}: {reason}" for job, reason in conflicts)
    already = len(jobs) - len(todo) - len(conflicts)
    probed = {}
    for job in todo:
        try:
            probed[job] = probe_video(job.source, check_complete=not args.allow_truncated)
        except VideoReadError as error:
            if args.on_error == "raise":
                raise
            failures.append(f"{job.source}: {error}")
    shape = f"{anonymizer.clip_frames} x {anonymizer.clip_size or 'native size'}"
    where = f"{device} ({torch.get_num_threads()} threads)" if torch.device(device).type == "cpu" else device
    print(f"anonpriv anonymize: {len(probed)} video(s) to write, {already} already done; "
          f"{method_label(method)} on {where}, clips of {shape}", file=sys.stderr)
    if footage_defaults:
        print(f"anonpriv anonymize: {args.method} at its footage strength "
              f"({', '.join(f'{k}={v}' for k, v in footage_defaults.items())}; --method-arg sets another)",
              file=sys.stderr)
    if probed and args.method is not None:
        warning = weak_setting(args.method, getattr(method, "anonymizer", method),
                               max(info.display_size[1] for info in probed.values()))
        if warning:
            print(f"anonpriv anonymize: warning: {warning}.", file=sys.stderr)
    frames_done, written, start, kept = 0, 0, time.perf_counter(), []
    with FolderProgress(len(probed), sum(info.num_frames for info in probed.values())) as progress:
        for job, info in probed.items():
            progress.start_video(job.source.name)
            try:
                result = anonymize_video(job, anonymizer, options, progress, allow_truncated=args.allow_truncated,
                                         info=info, request=request)
                frames_done += result.frames
                written += 1
                if result.truncated:
                    kept.append(f"{job.source}: {result.truncated}; kept {result.frames} frames as {result.output}")
                for text in result.notes:
                    note(f"anonpriv anonymize: {job.source.name}: {text}.")
            except (VideoReadError, VideoWriteError) as error:
                if args.on_error == "raise":
                    raise
                failures.append(f"{job.source}: {error}")
            progress.finish_video(info.num_frames)  # headers may miscount by a frame or two
    elapsed = time.perf_counter() - start
    rate = frames_done / elapsed if elapsed > 0 else 0.0
    print(f"anonpriv anonymize: wrote {written} video(s) ({frames_done} frames, "
          f"{rate:.1f} frames/s) to {args.output}; skipped {already} already done.", file=sys.stderr)
    if kept:
        print(f"anonpriv anonymize: {len(kept)} input(s) end early (--allow-truncated kept what they hold; a rerun "
              "redoes them):\n  " + "\n  ".join(kept), file=sys.stderr)
    if args.face_audit:  # frames with a face before and after, per video (anonpriv/face_audit.py)
        from anonpriv.face_audit import audit_outputs
        refused = {job for job, _ in conflicts}
        audits = audit_outputs([(job.source, job.output) for job in jobs if job not in refused and job.output.is_file()])
        warning = weak_on_audit(audits, method_label(method))
        if warning:
            print(f"anonpriv anonymize: warning: {warning}", file=sys.stderr)
    if failures:
        print(f"anonpriv anonymize: {len(failures)} video(s) failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0
