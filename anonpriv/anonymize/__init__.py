"""``anonpriv anonymize``: run an anonymizer over whole video files and write anonymized videos.

    anonpriv anonymize INPUT --output OUT (--checkpoint CKPT | --method NAME [--method-arg KEY=VALUE ...])

``INPUT`` is a video file or a folder (searched recursively; sub-folders are mirrored under
``OUT``). Each output has the input's frame count, frame timestamps and size (see :class:`VideoWriter
<anonpriv.data.video_io.VideoWriter>` for the timing rule), encoded with ``--codec`` (libx264 by
default, CRF ``--crf``), optionally with the input's audio (``--copy-audio``). A display rotation
is applied before the model (the output is upright, with the rotated size); frames after a
resolution change are rescaled to the first frame's size.

How a video is processed (:class:`SlidingClipAnonymizer`):

* Frames are decoded in a background thread and cut into windows of the method's clip length
  ``T`` (its ``clip_shape``; ``--clip-shape`` overrides; 16 for a method without one). Windows are
  batched (``--batch-size``), moved to ``--device`` and, when the method has a clip size ``H x W``,
  each whole frame is resized to it (no crop, so every pixel is covered; the aspect ratio follows).
* If ``anonymizer_outputs`` returns a ``mask`` (B, 1, T, H, W) in [0, 1] (the kept region of
  token pruning), the mask is upsampled (nearest) to the original size and multiplies the
  original frames, so kept regions keep their full detail; otherwise the anonymized clip is resized
  back to the original size.
* A method that returns ``T_out < T`` frames (BDQ's temporal difference returns ``T - 1``) has its
  outputs aligned with the *last* ``T_out`` frames of each window, and windows advance by
  ``T_out`` so they overlap by ``T - T_out`` frames: every input frame gets exactly one output
  frame. Before the first frame the video is padded with copies of the first frame, so the very
  first output frame is computed against a copy of itself (for BDQ: a blank difference frame).
* The last window is padded by repeating the last frame; outputs for padding are dropped.
* Decoding, the model and encoding overlap (a decoding thread, a batch on the model, an encoding
  thread). On the CPU the model gets ``--threads`` intra-op threads, by default one fewer than the
  cores (:func:`default_cpu_threads`), so that the decoder and the encoder keep a core.
* With ``--save-masks`` and a method whose outputs include ``tubelet_mask``, an audit file
  ``<output>.masks.npz`` is written beside each video: ``tubelet_mask`` (windows, ...) as the
  method returns it per clip, ``window_start`` (first input frame of each window; negative means
  padding with the first frame), ``output_range`` (windows, 2: the frames ``[start, end)`` each
  window wrote), plus ``clip_frames``, ``fps``, ``num_frames``, ``width``, ``height``.
* With ``--face-audit``, each input and output is checked for faces afterwards (frames with a face
  before and after, ``<output>.faces.json`` per video and a summary; :mod:`anonpriv.face_audit`).

Resuming: outputs are written under a temporary name and renamed when complete, so a file at the
output path is always finished. Beside each output a record ``<stem>.anonpriv.json`` says which
input (size and a fingerprint of its content) and which request (method and options, checkpoint
hash, clip shape, encoder settings) it was written from (:mod:`anonpriv.anonymize.records`). A rerun
skips an output whose record matches (and whose mask file exists, when asked); an existing output
with no record or a different one is refused before anything is written, naming both sources and
the fix (``--overwrite`` redoes it, or another ``--output``). An input that ends early (:func:`~anonpriv.data.video_io.truncation`,
or a decoder error midway) is a failure and gets no output, unless ``--allow-truncated`` (then
``<name>.truncated<suffix>``, never counted as done). Inputs that would share an output are
refused before anything is written. Encoder settings are tried once on a test encode before any
video. Failures: ``--on-error raise`` (default) stops at the first unreadable video; ``skip`` goes
on and lists the failures at the end (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import yaml

from anonpriv.anonymize.footage import footage_options, weak_setting
from anonpriv.anonymize.records import Request, ResumeState, describe_source, file_hash, resume_state, write_record
from anonpriv.anonymize.shards import ShardError, parse_shard, shard_of
from anonpriv.cores import usable_cores
from anonpriv.data.video_io import (
    VIDEO_SUFFIXES,
    FrameLog,
    VideoInfo,
    VideoReadError,
    VideoTruncatedError,
    VideoWriter,
    codec_available,
    default_video_codec,
    is_video_file,
    iter_frames,
    probe_video,
    truncation,
)

if TYPE_CHECKING:  # imported where used, so that `anonpriv anonymize --help` needs no torch
    import torch

DEFAULT_CLIP_FRAMES = 16
MASK_SUFFIX = ".masks.npz"
TRUNCATED_TAG = ".truncated"


class AnonymizeError(RuntimeError):
    """Bad input to ``anonpriv anonymize``; the message names the problem and the fix."""


class VideoWriteError(AnonymizeError):
    """One video could not be encoded (its output is not kept); the message names the input."""


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
                f"{_first_line(error)}). Give a .ckpt written by `anonpriv fit`; if it is one, it is damaged or "
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


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """What the method returns for a clip of ``clip_frames`` frames (learned from one dummy clip)."""

    clip_frames: int
    output_frames: int  # frames of the output used for writing (mask if any, else video)
    uses_mask: bool
    has_tubelet_mask: bool
    uint8: bool = False  # the method works frame by frame on uint8 frames of any size (its anonymize_uint8)

    @property
    def lag(self) -> int:
        """Frames of context before the first output frame of each window."""
        return self.clip_frames - self.output_frames


# torch is imported where it is used, so that `anonpriv anonymize --help` answers without it.
def _inference_mode(function):
    """``@torch.inference_mode()`` that imports torch when ``function`` is first called."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        import torch

        with torch.inference_mode():
            return function(*args, **kwargs)

    return wrapper


class SlidingClipAnonymizer:
    """Anonymizes whole videos of any size and length with a method trained on fixed-size clips.

    Args:
        method: an :class:`~anonpriv.methods.AnonymizationMethod` or a method's anonymizer alone
            (:class:`~anonpriv.methods.registry.MethodAnonymizer`), in eval mode, on ``device``.
        clip_frames: window length ``T`` (default: the method's ``clip_shape[0]``, else 16).
        clip_size: ``(H, W)`` frames are resized to (default: the method's; None: native size).
        batch_size: windows per forward pass (``None``: as many as fit in :data:`BATCH_BYTES`, at most 4).
        device: where the method runs.
    """

    def __init__(self, method, clip_frames: int | None = None, clip_size: tuple[int, int] | None = None,
                 batch_size: int | None = None, device: str | torch.device = "cpu") -> None:
        import torch

        shape = getattr(method, "clip_shape", None)
        self.method = method
        self.clip_frames = int(clip_frames or (shape[0] if shape else DEFAULT_CLIP_FRAMES))
        self.clip_size = tuple(clip_size) if clip_size else (tuple(shape[1:]) if shape else None)
        if batch_size is not None and batch_size < 1:
            raise AnonymizeError(f"--batch-size {batch_size} must be at least 1.")
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.layout = self._probe_layout()

    @_inference_mode
    def _probe_layout(self) -> OutputLayout:
        import torch

        height, width = self.clip_size or (64, 64)
        dummy = torch.zeros(1, 3, self.clip_frames, height, width, device=self.device)
        out = self.method.anonymizer_outputs(dummy)
        uses_mask = "mask" in out
        frames = (out["mask"] if uses_mask else out["video"]).shape[2]
        if not 1 <= frames <= self.clip_frames:
            raise AnonymizeError(f"the method returned {frames} frames for a clip of {self.clip_frames}: "
                                 "expected between 1 and the clip length.")
        uint8 = (self.clip_size is None and not uses_mask and frames == self.clip_frames
                 and bool(getattr(self.method, "takes_uint8", False)))
        return OutputLayout(self.clip_frames, frames, uses_mask, "tubelet_mask" in out, uint8)

    def windows(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, int]]:
        """``(window (T, h, w, 3), valid outputs)`` over a frame stream (see the module docstring).
        Each window is one array that decoded frames are copied into as they arrive (a frame lives
        in one window and, for the overlap, the next), so a window costs one clip of memory."""
        window, lag = self.clip_frames, self.layout.lag
        step = window - lag
        buffer: np.ndarray | None = None
        filled = 0
        for frame in frames:
            if buffer is None:  # the first frame: pad with copies of it
                buffer = np.empty((window, *frame.shape), frame.dtype)
                buffer[:lag] = frame
                filled = lag
            buffer[filled] = frame
            filled += 1
            if filled == window:
                done, buffer = buffer, np.empty_like(buffer)
                buffer[:lag] = done[step:]
                filled = lag
                yield done, step
        pending = filled - lag
        if buffer is not None and pending > 0:
            buffer[filled:] = buffer[filled - 1]
            yield buffer, pending

    @_inference_mode
    def run_batch(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 windows ``(B, T, h, w, 3)`` -> uint8 outputs ``(B, T_out, h, w, 3)`` for the last
        ``T_out`` frames of each window, and the ``tubelet_mask`` (B, ...) when the method has one.

        Frames stay uint8 at their own size; only a few full-size frames at a time become floats
        (:mod:`anonpriv.frames`), so memory follows the clip, not the resolution: a method that works
        frame by frame gets them through its uint8 path; any other gets float clips at its clip size."""
        import torch

        from anonpriv.frames import resize_from_clip, resize_to_clip, upsample_mask

        frames = torch.from_numpy(windows).to(self.device, non_blocking=True)  # (B, T, h, w, 3) uint8
        batch, clip_frames, height, width, _ = frames.shape
        if self.layout.uint8:
            flat = frames.reshape(batch * clip_frames, height, width, 3)
            result = self.method.anonymize_uint8(flat).reshape(batch, clip_frames, height, width, 3)
            return result.cpu().numpy(), None
        out = self.method.anonymizer_outputs(resize_to_clip(frames, self.clip_size))
        keep = self.layout.output_frames
        original = frames[:, clip_frames - keep:]  # (B, T_out, h, w, 3)
        if self.layout.uses_mask:
            mask = out["mask"][:, 0, -keep:]  # (B, T_out, mh, mw)
            result = torch.empty_like(original)
            for i in range(batch):  # one clip of full-size frames at a time
                if bool(((mask[i] == 0) | (mask[i] == 1)).all()):  # checked at clip size: cheap
                    binary = upsample_mask(mask[i].to(torch.uint8), (height, width))
                    torch.mul(original[i], binary, out=result[i])  # no temporary
                else:  # soft weights: nearest-upsampled like a binary mask, applied in float
                    weights = upsample_mask(mask[i].float(), (height, width))
                    result[i] = (original[i].float() * weights).round_().clamp_(0, 255).to(torch.uint8)
        else:
            result = resize_from_clip(out["video"][:, :, -keep:], (height, width))
        tubelets = out.get("tubelet_mask")
        return result.cpu().numpy(), None if tubelets is None else tubelets.detach().cpu().numpy()

    def output_queue_depth(self, frame_bytes: int) -> int:
        """Batches the writer's queue holds for frames of ``frame_bytes`` (2 for small frames, 1 at 1080p)."""
        windows = self.batch_size or batch_windows(self.clip_frames, frame_bytes)
        return queue_depth(windows * self.layout.output_frames * frame_bytes, most=2)

    def anonymize(self, frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, list]]:
        """Stream anonymized frames for a stream of frames: yields ``(uint8 frames (n, h, w, 3),
        [(window tubelet mask or None, first output frame, end), ...])`` per batch. Without a
        ``batch_size``, a batch holds as many windows as fit in :data:`BATCH_BYTES` (at least one)."""
        written = 0
        stream = iter(frames)
        first = next(stream, None)
        if first is None:
            return
        size = self.batch_size or batch_windows(self.clip_frames, first.nbytes)
        for batch in _batched(self.windows(_chained(first, stream)), size):
            stacked = batch[0][0][None] if len(batch) == 1 else np.stack([w for w, _ in batch])
            valids = [valid for _, valid in batch]
            del batch  # the windows live on in `stacked` alone
            outputs, tubelets = self.run_batch(stacked)
            del stacked
            kept, audit = [], []
            for i, valid in enumerate(valids):
                kept.append(outputs[i, :valid])
                audit.append((None if tubelets is None else tubelets[i], written, written + valid))
                written += valid
            yield (kept[0] if len(kept) == 1 else np.concatenate(kept)), audit


#: uint8 bytes of windows a batch holds when ``--batch-size`` is not given (at least one window)
BATCH_BYTES = 64 * 1024 * 1024
#: bytes of frames each queue between threads holds at most (decoded frames, written batches),
#: beyond its least depth (2 decoded frames, 1 batch)
QUEUE_BYTES = 64 * 1024 * 1024


#: at most this many windows a batch when ``--batch-size`` is not given
MAX_AUTO_BATCH = 4


def queue_depth(item_bytes: int, most: int, least: int = 1, budget: int = QUEUE_BYTES) -> int:
    """Items of ``item_bytes`` a queue holds: what fits in ``budget``, within ``[least, most]``."""
    return max(least, min(most, budget // max(1, item_bytes)))


def batch_windows(clip_frames: int, frame_bytes: int) -> int:
    """Windows per batch for frames of ``frame_bytes``: 4 for small frames, 1 at 1080p and above."""
    return max(1, min(MAX_AUTO_BATCH, BATCH_BYTES // max(1, clip_frames * frame_bytes)))


def _chained(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def prefetch(items: Iterable, depth: int = 64) -> Iterator:
    """Iterate ``items`` in a background thread (decoding overlaps with the model and the encoder);
    an exception in the thread is raised here."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put(item)
            buffer.put(done)
        except BaseException as error:  # handed to the consumer
            buffer.put(error)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


class BackgroundSink:
    """Calls ``consume(item)`` for every :meth:`put` item in a background thread (encoding overlaps
    with the model); :meth:`close` waits for the queue and re-raises the thread's error, if any."""

    def __init__(self, consume, depth: int = 4) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._consume = consume
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as error:  # raised by put/close in the caller's thread
                    self._error = error

    def put(self, item) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


# -- files ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Job:
    """One input video and where its outputs go."""

    source: Path
    output: Path
    masks: Path | None

    def resume(self, request: Request) -> ResumeState:
        """``todo``, ``done`` or ``conflict`` for a rerun with ``request``
        (:func:`~anonpriv.anonymize.records.resume_state`); with ``--save-masks`` a missing mask
        file makes a done output ``todo`` again."""
        state = resume_state(self.source, self.output, request)
        if state.kind == "done" and self.masks is not None and not self.masks.is_file():
            return ResumeState("todo")
        return state


def _temporary(path: Path) -> Path:
    """Where ``path`` is written before it is complete (same suffix, so the format is kept)."""
    return path.with_name(f".{path.stem}.incomplete{path.suffix}")


def plan_jobs(input_path: Path, output: Path, suffix: str, save_masks: bool) -> list[Job]:
    """The jobs for a video file or for every video under a folder (outputs mirror sub-folders;
    files under ``output`` itself are never taken as inputs when ``output`` lies inside the input
    folder). Raises :class:`AnonymizeError` for a request that cannot be met, and
    :class:`OutputCollision` when inputs would share an output (before anything is written)."""
    if not suffix.startswith("."):
        suffix = "." + suffix
    if input_path.is_file():
        target = output if output.suffix.lower() in VIDEO_SUFFIXES else output / (input_path.stem + suffix)
        sources = [(input_path, target)]
    elif input_path.is_dir():
        if output.is_file():
            raise AnonymizeError(f"--output {str(output)!r} is a file, but the input {str(input_path)!r} is a folder: "
                                 "give an output folder (new or existing).")
        input_resolved, output_resolved = input_path.resolve(), output.resolve()
        if output_resolved == input_resolved:
            raise AnonymizeError(f"--output {str(output)!r} is the input folder: outputs would mix with the inputs "
                                 "(and be taken as inputs on a rerun); choose another --output.")
        output_inside_input = input_resolved in output_resolved.parents
        sources = []
        for path in sorted(input_path.rglob("*")):
            if not (path.is_file() and is_video_file(path)) or path.name.startswith("."):
                continue
            if output_inside_input and output_resolved in path.resolve().parents:
                continue  # an earlier run's outputs
            sources.append((path, output / path.relative_to(input_path).with_suffix(suffix)))
        if not sources:
            raise AnonymizeError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) under {str(input_path)!r}.")
    else:
        raise AnonymizeError(f"input {str(input_path)!r} does not exist: give a video file or a folder of videos.")
    jobs = []
    for source, target in sources:
        if target.resolve() == source.resolve():
            raise AnonymizeError(f"output {str(target)!r} would overwrite its input: choose another --output.")
        masks = target.with_name(target.stem + MASK_SUFFIX) if save_masks else None
        jobs.append(Job(source, target, masks))
    by_output: dict[Path, list[Job]] = {}
    for job in jobs:
        by_output.setdefault(job.output.resolve(), []).append(job)
    inputs = {job.source.resolve() for job in jobs}
    collisions = {path: group for path, group in by_output.items() if len(group) > 1 or path in inputs}
    if collisions:
        raise OutputCollision(jobs, collisions)
    return jobs


class OutputCollision(AnonymizeError):
    """Inputs that would be written to the same output (``clip.avi`` and ``clip.mp4`` both give
    ``clip.mp4``), or an output that is also an input. ``jobs`` are all planned jobs, ``reasons``
    maps each job involved to why it cannot be written; nothing has been written."""

    FIX = "rename one input or anonymize them into different --output folders"

    def __init__(self, jobs: list[Job], collisions: dict[Path, list[Job]]) -> None:
        self.jobs = jobs
        self.reasons: dict[Job, str] = {}
        groups = []
        for group in collisions.values():
            output = group[0].output
            for job in group:
                others = [str(other.source) for other in group if other is not job]
                self.reasons[job] = (f"same output {str(output)!r} as {', '.join(others)}" if others else
                                     f"its output {str(output)!r} is also an input") + f"; {self.FIX}"
            groups.append(" + ".join(str(job.source) for job in group) + f" -> {output}")
        super().__init__(f"{len(self.reasons)} input(s) would overwrite each other's output (an output is named "
                         f"after its input's stem): {'; '.join(groups)}. Nothing was written: {self.FIX} "
                         "(with --on-error skip the other videos are written and these are listed as failed).")


@dataclasses.dataclass
class WriteOptions:
    """Encoder settings of the outputs (see :class:`~anonpriv.data.video_io.VideoWriter`)."""

    codec: str | None = None
    crf: float | None = 18
    bitrate: int | None = None
    pix_fmt: str | None = None
    codec_options: dict | None = None
    copy_audio: bool = False


def truncated_name(path: Path) -> Path:
    """Where ``--allow-truncated`` keeps the partial output of an input that ends early."""
    return path.with_name(f"{path.stem}{TRUNCATED_TAG}{path.suffix}")


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """What :func:`anonymize_video` wrote: frames, the output file, and notes for the user (the
    reason a partial output was kept, rescaled frames)."""

    frames: int
    output: Path
    truncated: str | None = None
    notes: tuple[str, ...] = ()


def anonymize_video(job: Job, anonymizer: SlidingClipAnonymizer, options: WriteOptions,
                    progress: FolderProgress | None = None, allow_truncated: bool = False,
                    info: VideoInfo | None = None, request: Request | None = None) -> VideoResult:
    """Anonymize one video into ``job.output`` (and ``job.masks``).

    Nothing is left at the output paths unless the whole video was written. An input that ends
    early (fewer frames or a shorter span than its header states, or a decoder error midway) raises
    :class:`VideoTruncatedError` and leaves nothing; with ``allow_truncated`` the frames it has are
    written to :func:`truncated_name` of the output instead (never the output's own name, so a
    rerun does it again). Frames whose size differs from the first frame's are rescaled to it.
    ``info`` is the input's :func:`probe_video` with ``check_complete=not allow_truncated``, when the
    caller has it already (``anonpriv anonymize`` probes every input first, for the progress total).
    ``request``: write the output's record (:mod:`anonpriv.anonymize.records`) beside it, just before
    the output is moved into place (not for a truncated output, which is never counted as done)."""
    source_description = describe_source(job.source) if request is not None else None
    if info is None:
        info = probe_video(job.source, check_complete=not allow_truncated)
    if options.copy_audio and not info.has_audio:
        _note(f"anonpriv anonymize: {job.source.name} has no audio track to copy.")
    temporary = _temporary(job.output)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    audit: list = []
    log = FrameLog()
    decode_errors: list[VideoReadError] = []

    def frames() -> Iterator[np.ndarray]:
        try:
            yield from iter_frames(job.source, size=(info.width, info.height), log=log, rotate=True)
        except VideoReadError as error:  # the decoder failed midway: the file is damaged
            if not allow_truncated or not log.times:
                raise VideoTruncatedError(f"{error}; the input is damaged or cut short, no output was kept. "
                                          f"Re-copy or re-encode it, or pass "
                                          "--allow-truncated to keep the frames before the damage.") from error
            decode_errors.append(error)

    try:
        try:
            with VideoWriter(temporary, *info.display_size, info.fps, codec=options.codec, crf=options.crf,
                             bitrate=options.bitrate, pix_fmt=options.pix_fmt, codec_options=options.codec_options,
                             audio_from=job.source if options.copy_audio else None,
                             timestamps=log.times, time_base=info.time_base) as writer:
                frame_bytes = 3 * info.display_size[0] * info.display_size[1]
                sink = BackgroundSink(writer.write, depth=anonymizer.output_queue_depth(frame_bytes))
                try:
                    decoded = prefetch(frames(), depth=queue_depth(frame_bytes, 2 * anonymizer.clip_frames, least=2))
                    for batch, windows in anonymizer.anonymize(decoded):
                        sink.put(batch)
                        audit.extend(windows)
                        if progress is not None:
                            progress.update(len(batch))
                finally:
                    sink.close()
        except av.FFmpegError as error:  # decoding errors are VideoReadError already: this is the encoder
            raise VideoWriteError(f"{str(job.source)!r}: encoding failed ({_first_line(error)}); no output was kept. "
                                  "Try another --codec / --pix-fmt, or drop --codec-option.") from error
        if writer.frames_written == 0:
            raise VideoReadError(f"{str(job.source)!r} decoded no frames.")
        problem = str(decode_errors[0]) if decode_errors else truncation(
            info.num_frames, info.duration, writer.frames_written, _span(log.times, info.fps), info.fps)
        output, masks = job.output, job.masks
        if problem:
            kept = truncated_name(job.output)
            if not allow_truncated:
                raise VideoTruncatedError(
                    f"{str(job.source)!r} ends early ({problem}): no output was kept. Re-copy or re-download it, "
                    f"or pass --allow-truncated to keep the frames it has as {kept.name}.")
            output = kept
            masks = None if job.masks is None else kept.with_name(kept.stem + MASK_SUFFIX)
        if masks is not None:
            _save_masks(masks, audit, anonymizer, info)
        if request is not None and not problem:
            write_record(output, source_description, request, writer.frames_written)
        os.replace(temporary, output)
        if not problem:  # an earlier --allow-truncated run's partial output is stale now
            truncated_name(job.output).unlink(missing_ok=True)
    finally:
        temporary.unlink(missing_ok=True)
    notes = []
    if info.rotation:
        notes.append(f"turned upright by its {info.rotation} degree display rotation (as players show it): "
                     f"the output is {info.display_size[0]}x{info.display_size[1]} and carries no rotation")
    if log.rescaled:
        index, (width, height) = log.rescaled[0]
        notes.append(f"its resolution changes from {info.width}x{info.height} to {width}x{height} at frame {index}: "
                     f"{len(log.rescaled)} frame(s) were rescaled to {info.width}x{info.height}")
    return VideoResult(writer.frames_written, output, problem or None, tuple(notes))


def _span(times: list, fps) -> float | None:
    """Seconds covered by frames with these timestamps (the last one lasting ``1 / fps``)."""
    known = [t for t in times if t is not None]
    if len(known) != len(times) or not known:
        return None
    return float(max(known) - min(known) + 1 / Fraction(fps))


def _save_masks(path: Path, audit: list, anonymizer: SlidingClipAnonymizer, info) -> None:
    lag = anonymizer.layout.lag
    temporary = _temporary(path)
    with open(temporary, "wb") as handle:
        np.savez_compressed(
            handle,
            tubelet_mask=np.stack([mask for mask, _, _ in audit]),
            window_start=np.array([start - lag for _, start, _ in audit], dtype=np.int64),
            output_range=np.array([[start, end] for _, start, end in audit], dtype=np.int64),
            clip_frames=np.int64(anonymizer.clip_frames),
            fps=np.float64(info.fps),
            num_frames=np.int64(audit[-1][2] if audit else 0),
            width=np.int64(info.display_size[0]),
            height=np.int64(info.display_size[1]),
        )
    os.replace(temporary, path)


# -- progress ------------------------------------------------------------------------------------
class FolderProgress:
    """One progress bar for a whole run (a folder or a single file): videos done of the total,
    frames done of the total, frames/s and the time left, e.g.
    ``2/5 videos (walk.mp4):  41%|████      | 1230/3000 frames [00:12<00:17, 101.3 frames/s]``.

    The bar is drawn on stderr only when stderr is a terminal (``enabled=None``): in a log file or a
    pipe it stays quiet and the command prints only its start and summary lines. ``update(n)`` counts
    frames of the current video; ``finish_video(frames)`` sets the count to what the video's header
    announced, so that a failed or miscounted video does not leave the total off.
    """

    def __init__(self, videos: int, frames: int, enabled: bool | None = None, file=None) -> None:
        from tqdm.auto import tqdm

        self.videos, self.done, self.frames = videos, 0, 0
        self._before, self._name = 0, ""
        self._bar = tqdm(total=frames, desc=self._description(), unit=" frames", dynamic_ncols=True,
                         file=file or sys.stderr, disable=None if enabled is None else not enabled, leave=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames "
                                    "[{elapsed}<{remaining}, {rate_fmt}]")

    def _description(self) -> str:
        return f"{self.done}/{self.videos} videos" + (f" ({self._name})" if self._name else "")

    def _describe(self) -> None:
        self._bar.set_description_str(self._description(), refresh=False)

    def start_video(self, name: str) -> None:
        self._before, self._name = self.frames, name
        self._describe()
        self._bar.refresh()

    def update(self, frames: int) -> None:
        self.frames += frames
        self._bar.update(frames)

    def finish_video(self, frames: int) -> None:
        self.done += 1
        self.frames = self._bar.n = self._before + frames
        self._name = ""
        self._describe()
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> FolderProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _note(message: str) -> None:
    """Print a line to stderr without breaking a progress bar that is being drawn."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


# -- the command ---------------------------------------------------------------------------------
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


def check_write_options(options: WriteOptions, suffix: str) -> None:
    """Encode two small frames with ``options`` into a ``suffix`` file in a temporary folder, so
    that a bad --codec / --pix-fmt / --codec-option / --suffix fails once, before any video, with
    the fix (raises :class:`AnonymizeError`; nothing is left behind)."""
    import tempfile

    codec = options.codec or default_video_codec()
    if options.pix_fmt is not None:
        formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
        if formats and options.pix_fmt not in formats:
            raise AnonymizeError(f"--pix-fmt {options.pix_fmt}: {codec} encodes {', '.join(formats)}; pick one of "
                                 "those (or drop --pix-fmt for yuv420p, yuv444p at odd sizes).")
    with tempfile.TemporaryDirectory(prefix="anonpriv-check-") as folder:
        path = Path(folder) / f"check{suffix}"
        try:
            with VideoWriter(path, 64, 64, Fraction(25), codec=codec, crf=options.crf, bitrate=options.bitrate,
                             pix_fmt=options.pix_fmt, codec_options=options.codec_options) as writer:
                writer.write(np.zeros((2, 64, 64, 3), np.uint8))
        except (av.FFmpegError, ValueError, OSError) as error:
            message = _first_line(error)
            if "format does not support" in message or "Could not determine output format" in message:
                raise AnonymizeError(
                    f"--suffix {suffix} with --codec {codec}: {message}. Use --suffix .mp4 or .mkv (which hold "
                    "libx264, mpeg4, ffv1), or for .webm --codec libvpx-vp9.") from error
            if options.codec_options or "avcodec_open2" in message:
                raise AnonymizeError(
                    f"{codec} rejects the encoder settings {options.codec_options or {}} ({message}): check the "
                    "--codec-option names and values (e.g. preset=veryfast) and --crf / --bitrate.") from error
            raise AnonymizeError(f"--codec {codec} --suffix {suffix}: a test encode fails ({message}).") from error


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


def run(args: argparse.Namespace) -> int:
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


#: share of the frames with a face before in which one may remain after, without a warning
AUDIT_TOLERANCE = 0.01


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

    if not codec_available(args.codec):
        raise AnonymizeError(f"--codec {args.codec}: not available in this PyAV build; try libx264, mpeg4 or ffv1.")
    method_args, footage_defaults = footage_options(args.method, parse_method_args(args.method_arg))
    method = load_anonymizer(args.method, args.checkpoint, method_args, args.clip_shape, device)
    anonymizer = SlidingClipAnonymizer(method, batch_size=args.batch_size, device=device)
    if args.save_masks and not anonymizer.layout.has_tubelet_mask:
        raise AnonymizeError(f"--save-masks: {method_label(method)} returns no tubelet_mask to audit; drop the flag.")
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
                for note in result.notes:
                    _note(f"anonpriv anonymize: {job.source.name}: {note}.")
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


if __name__ == "__main__":
    sys.exit(main())
